// Package browsertest starts Debian's headless Chromium for the web UI
// tests (the console's and the field app's), driven by chromedp, and saves
// screenshots for people to look at.
package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium finds Debian's Chromium; the browser tests fail in CI without
// it and are skipped (loudly) on a developer's machine that lacks it.
func Chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: .ci/run installs Debian's chromium for the browser tests")
	}
	t.Skip("no chromium here (apt-get install chromium); this browser test is skipped")
	return ""
}

// Options tune New.
type Options struct {
	Width, Height int           // window size (default 1200×900)
	Timeout       time.Duration // for the whole test (default 90 s)
}

// New starts a headless Chromium with the flags these machines need and
// returns a chromedp context; cancel stops it.
func New(t *testing.T, o Options) (context.Context, context.CancelFunc) {
	if o.Width == 0 {
		o.Width, o.Height = 1200, 900
	}
	if o.Timeout == 0 {
		o.Timeout = 90 * time.Second
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(Chromium(t)),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(o.Width, o.Height))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, o.Timeout)
	return ctx, func() { cancelC(); cancelB(); cancelA() }
}

// Screenshot saves a full-page PNG named name in TESSERA_SCREENSHOTS (or
// the test's temporary folder); never committed.
func Screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("TESSERA_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	os.MkdirAll(dir, 0o755)
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
}
