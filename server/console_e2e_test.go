package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/internal/browsertest"
	"github.com/tessera-survey/tessera/server"
)

func browser(t *testing.T) (context.Context, context.CancelFunc) {
	return browsertest.New(t, browsertest.Options{})
}

func screenshot(t *testing.T, ctx context.Context, name string) { browsertest.Screenshot(t, ctx, name) }

// TestConsoleResolvesConflict: two devices make a same-field conflict; a lead
// signs in to the console in a real headless Chromium, finds the record in
// the conflict queue and resolves it with a reason; both devices sync and
// show the resolved value, and the resolution is in the audit trail.
func TestConsoleResolvesConflict(t *testing.T) {
	bctx, cancel := browser(t)
	defer cancel()
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	must(t, srv.Auth().CreateProject(ctx, "t", "camp"))
	must(t, srv.Auth().AddUser(ctx, "t", "lena", "lena's long password"))
	must(t, srv.Auth().Grant(ctx, "t", "lena", "camp", "lead"))
	// The records' form is camp's: a record of no known project would be
	// an admin's alone.
	_, _, err := srv.Forms().Publish(ctx, xlsxRows(t, "household", "1", [][]string{{"type", "name", "label"},
		{"text", "q3", "Q3"}, {"integer", "size", "Size"}}), "", "camp", time.Now())
	must(t, err)
	a, b := newDevice(t, srv.URL), newDevice(t, srv.URL)
	id, err := a.Replica().Create(ctx, "household", fw("q3", "unsure", "size", "4"))
	must(t, err)
	mustSync(t, a)
	mustSync(t, b)
	must(t, a.Replica().Set(ctx, id, fw("q3", "no")))
	must(t, b.Replica().Set(ctx, id, fw("q3", "yes")))
	mustSync(t, a)
	mustSync(t, b)
	mustSync(t, a)

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	link := css(`a[href="/console/records/` + id.String() + `"]`)
	err = chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/console/login"),
		chromedp.WaitVisible(css(`#user`)),
		chromedp.SendKeys(css(`#user`), "lena"),
		chromedp.SendKeys(css(`#password`), "lena's long password"),
		chromedp.Submit(css(`#password`)),
		chromedp.WaitVisible(css(`#conflicts`)),
		chromedp.Click(css(`#conflicts`)),
		chromedp.WaitVisible(link),
	)
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, bctx, "console-conflicts")
	err = chromedp.Do(bctx,
		chromedp.Click(link),
		chromedp.WaitVisible(css(`form.resolve`)),
		chromedp.Click(css(`form.resolve input[name="pick"][value="0"]`)),
		chromedp.SendKeys(css(`form.resolve input[name="reason"]`), "confirmed with the respondent by phone"),
	)
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, bctx, "console-record")
	want, err := chromedp.Run(bctx, chromedp.Text(css(`form.resolve label`)))
	must(t, err)
	want = strings.Fields(want)[0] // the provisional value, first in the list
	must(t, chromedp.Do(bctx, chromedp.Submit(css(`form.resolve input[name="reason"]`)), chromedp.WaitVisible(css(`#message`))))
	page, err := chromedp.Run(bctx, chromedp.Text(css(`#message`)))
	must(t, err)
	screenshot(t, bctx, "console-resolved")
	if !strings.Contains(page, "Resolved q3") {
		t.Fatalf("console said %q", page)
	}
	mustSync(t, a)
	mustSync(t, b)
	for _, d := range []*fieldapp.Device{a, b} {
		v := snapshot(t, d.Replica())[id.String()]
		if f := v.Fields["q3"]; f.Value.String() != want || len(f.Conflicts) != 0 {
			t.Fatalf("device shows q3 %+v after the console's resolution to %q", f, want)
		}
	}
	assertConverged(t, srv.Replica(), a.Replica(), b.Replica())
	entries, _, _, _ := srv.Auth().AuditTrail(ctx, 0, 0)
	found := false
	for _, e := range entries {
		found = found || (e.Action == "conflict-resolved" && strings.Contains(e.Detail, "confirmed with the respondent"))
	}
	if !found {
		t.Fatal("the console's resolution is not in the audit trail")
	}

	// The devices page makes an enrollment code whose QR image the
	// browser actually renders (the page's CSP must allow it).
	must(t, chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/console/devices?project=camp"),
		chromedp.WaitVisible(css(`#newcode`)),
		chromedp.Click(css(`#newcode`)),
		chromedp.WaitVisible(css(`#qr`)),
	))
	w, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.getElementById("qr").naturalWidth`))
	must(t, err)
	if w == 0 {
		t.Fatal("the enrollment code's QR image does not render")
	}
	screenshot(t, bctx, "console-devices")
	must(t, chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/console/records"), chromedp.WaitVisible(css(`#from`))))
	screenshot(t, bctx, "console-records")
}
