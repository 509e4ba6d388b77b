package cli

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/tessera-survey/tessera/fieldapp/ui"
)

// memoryLimit is the Go runtime's soft memory limit while the UI or a sync
// runs, unless GOMEMLIMIT says otherwise: a cheap phone has little RAM to
// spare, and without a limit the collector lets the heap grow to twice
// what is live (sync and Badger's compactions make a lot of short-lived
// garbage). Bulk imports run without it: they would spend their time in
// the collector.
const memoryLimit = 56 << 20

func limitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}

func (c *cli) serve(args []string) error {
	limitMemory()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8081", "address of the web UI; loopback only (the phone's own browser)")
	idle := fs.Duration("idle-lock", 15*time.Minute, "lock the store after this long without use (0 = never)")
	if _, err := c.parse(fs, "serve [--listen 127.0.0.1:8081] [--idle-lock 15m]", args, 0, 0); err != nil {
		return helpOK(err)
	}
	if err := c.haveStore(); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("serve: --listen: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("serve: --listen %s: the UI serves interviews to the device's own browser and listens on loopback only", *listen)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if *idle == 0 {
		*idle = -1
	}
	log := slog.New(slog.NewTextHandler(c.stderr, nil))
	web, err := ui.NewUI(c.dir, ui.UIOptions{IdleLock: *idle, Listen: ln.Addr().String(), Logger: log})
	if err != nil {
		return err
	}
	return ui.Serve(c.ctx, ln, web, func(url string) {
		fmt.Fprintf(c.stdout, "fieldapp UI on %s (open it in this device's browser; the store stays locked until the PIN is entered)\n", url)
	})
}
