package ui_test

import (
	"bytes"
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/fieldapp/ui"
	"github.com/tessera-survey/tessera/internal/browsertest"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

const pin = "5-8-1-3-2"

// startServer runs a real surveyd on loopback with the sample form
// published.
func startServer(t *testing.T) (*server.Server, string) {
	t.Helper()
	ctx := context.Background()
	srv, err := server.New(ctx, server.Config{DataDir: filepath.Join(t.TempDir(), "server")})
	if err != nil {
		t.Fatal(err)
	}
	xlsx, err := os.ReadFile("../../examples/forms/community-security.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Forms().Publish(ctx, xlsx, "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return srv, "http://" + ln.Addr().String()
}

// startUI makes an encrypted device store that has fetched the forms and
// serves its UI on loopback.
func startUI(t *testing.T, serverURL string) (dir, url string, stop func()) {
	t.Helper()
	ctx := context.Background()
	dir = filepath.Join(t.TempDir(), "device")
	d, err := fieldapp.Init(ctx, dir, fieldapp.Config{Server: serverURL, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sync(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	d.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web, err := ui.NewUI(dir, ui.UIOptions{Listen: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	uctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ui.Serve(uctx, ln, web, nil) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return dir, "http://" + ln.Addr().String(), stop
}

// TestInterviewInBrowser is an enumerator's day in a real headless
// Chromium on a phone-sized screen: unlock (after a wrong PIN), pick
// French, fill the sample survey with a household roster (repeat added,
// filled and one instance removed), see a constraint message in French,
// skip the sensitive section, be told what is missing, finalize, sync to
// a real surveyd; then the record is on the server with the right values,
// and no answer is readable in any file of the device's data directory.
func TestInterviewInBrowser(t *testing.T) {
	bctx, cancel := browsertest.New(t, browsertest.Options{Width: 412, Height: 915, Timeout: 150 * time.Second})
	defer cancel()
	srv, serverURL := startServer(t)
	dir, url, stopUI := startUI(t, serverURL)
	shot := func(name string) { browsertest.Screenshot(t, bctx, "fieldapp-"+name) }
	// "Remove member 3?" is confirmed.
	dialogs := chromedp.Events(bctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	field := func(f string) string { return `[data-field="` + f + `"]` }
	radio := func(f, v string) chromedp.CSS { return css(`input` + field(f) + `[value="` + v + `"]`) }
	node := func(f string) string { return `[data-node="` + f + `"]` }
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	hidden := func(sel string) bool {
		t.Helper()
		h, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector(`+jsString(sel)+`).closest("[hidden]") !== null`))
		if err != nil {
			t.Fatalf("hidden %s: %v", sel, err)
		}
		return h
	}
	saved := void(chromedp.Poll[bool](`document.getElementById("saved").textContent.startsWith("Saved")`, chromedp.WithPollingTimeout(10*time.Second)))
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot("failed")
			if h, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.outerHTML`)); err == nil {
				os.WriteFile(filepath.Join(t.TempDir(), "failed.html"), []byte(h), 0o644)
				t.Logf("page at the failure:\n%.4000s", h[max(0, strings.Index(h, "hh_size")-200):])
			}
			t.Fatalf("%s: %v", what, err)
		}
	}
	member := func(i int, rest string) chromedp.CSS {
		return css(`section.repeat fieldset.instance:nth-of-type(` + string(rune('0'+i)) + `) ` + rest)
	}

	do("unlock with a wrong PIN",
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(css(`#pin`)),
		chromedp.SendKeys(css(`#pin`), "0000"),
		chromedp.Submit(css(`#pin`)),
		chromedp.WaitVisible(css(`p.error`)))
	if s := text(`p.error`); !strings.Contains(s, "Wrong PIN") {
		t.Fatalf("wrong PIN says %q", s)
	}
	shot("01-unlock-wrong-pin")
	do("unlock",
		chromedp.SendKeys(css(`#pin`), pin),
		chromedp.Submit(css(`#pin`)),
		chromedp.WaitVisible(css(`#choose-language`)))
	shot("02-language")
	do("pick French",
		chromedp.Click(css(`input[name="lang"][value="Français (fr)"]`)),
		chromedp.Click(css(`#choose-language`)),
		chromedp.WaitVisible(css(`button[data-form="community_security"]`)))
	shot("03-forms")
	do("new interview",
		chromedp.Click(css(`button[data-form="community_security"]`)),
		chromedp.WaitVisible(css(`#iv`)))
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	rid, err := uuid.Parse(loc[strings.LastIndexByte(loc, '/')+1:])
	if err != nil {
		t.Fatalf("interview URL %s: %v", loc, err)
	}
	if s := text(node("intro/consent") + ` .label`); !strings.Contains(s, "Acceptez-vous de participer") {
		t.Fatalf("consent label in French: %q", s)
	}
	if !hidden(node("household")) {
		t.Fatal("the household section shows before consent")
	}
	do("consent",
		chromedp.Click(radio("intro/consent", "yes")), saved,
		chromedp.WaitVisible(css(node("household"))))

	// A constraint message in the form's own French words.
	do("household size out of range",
		chromedp.Click(radio("household/site", "camp_b")),
		chromedp.SendKeys(css(field("household/hh_size")), "40"),
		chromedp.Blur(css(field("household/hh_size"))), saved,
		chromedp.WaitVisible(css(`[data-msg="household/hh_size"]`)))
	if s := text(`[data-msg="household/hh_size"]`); s != "Entre 1 et 30." {
		t.Fatalf("constraint message %q", s)
	}
	shot("04-constraint")
	if n, _ := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("fieldset.instance").length`)); n != 0 {
		t.Fatalf("an answer the constraint rejects made %d roster members", n)
	}

	// The roster follows the household size; one more is added by hand,
	// then removed.
	do("household size 2",
		void(chromedp.Evaluate[bool](`(e => (e.value = "", true))(document.querySelector(`+jsString(field("household/hh_size"))+`))`)),
		chromedp.SendKeys(css(field("household/hh_size")), "2"),
		chromedp.Blur(css(field("household/hh_size"))),
		chromedp.WaitVisible(member(2, `legend`)))
	do("members",
		chromedp.SendKeys(member(1, `input[data-field$="/member_name"]`), "Amina-Qx7"),
		chromedp.Blur(member(1, `input[data-field$="/member_name"]`)), saved,
		chromedp.Click(member(1, `input[value="female"]`)), saved,
		chromedp.SendKeys(member(1, `input[data-field$="/age"]`), "34"),
		chromedp.Blur(member(1, `input[data-field$="/age"]`)), saved,
		chromedp.SendKeys(member(2, `input[data-field$="/member_name"]`), "Yusuf-Kz4"),
		chromedp.Blur(member(2, `input[data-field$="/member_name"]`)), saved,
		chromedp.Click(member(2, `input[value="male"]`)), saved,
		chromedp.Click(css(`button[data-add="household/roster"]`)),
		chromedp.WaitVisible(member(3, `legend`)),
		chromedp.SendKeys(member(3, `input[data-field$="/member_name"]`), "Removed-Person"),
		chromedp.Blur(member(3, `input[data-field$="/member_name"]`)), saved)
	if s := text(node("household/members_note")); s != "3 membres enregistrés." {
		t.Fatalf("note with ${members}: %q", s)
	}
	shot("05-roster")
	do("remove member 3",
		chromedp.Click(member(3, `button[data-remove]`)),
		chromedp.WaitNotPresent(member(3, `legend`)))

	// Skip logic: "other" opens a question; a "no" skips the GBV section.
	do("threats",
		chromedp.Click(radio("threats/safe_day", "unsafe")), saved,
		chromedp.Click(radio("threats/threats_faced", "theft")), saved,
		chromedp.Click(radio("threats/threats_faced", "other")), saved,
		chromedp.WaitVisible(css(field("threats/threat_other"))),
		chromedp.SendKeys(css(field("threats/threat_other")), "barrage routier la nuit"),
		chromedp.Blur(css(field("threats/threat_other"))), saved,
		chromedp.Click(radio("gbv/gbv_private", "no")), saved)
	if !hidden(node("gbv/gbv_risk")) || !hidden(node("gbv/gbv_services")) {
		t.Fatal("the sensitive questions show although the interview is not private")
	}
	if hidden(node("threats/threat_other")) {
		t.Fatal("threat_other is hidden although 'other' is picked")
	}

	// Finalize tells what is missing (safe_night is required), in French.
	do("finalize with an answer missing",
		chromedp.Click(css(`#finalize`)),
		chromedp.WaitVisible(css(`[data-msg="threats/safe_night"]`)))
	if s := text(`[data-msg="threats/safe_night"]`); s != "Une réponse est nécessaire." {
		t.Fatalf("required message %q", s)
	}
	shot("06-missing")
	do("finalize",
		chromedp.Click(radio("threats/safe_night", "very_unsafe")), saved,
		chromedp.Click(css(`#finalize`)),
		chromedp.WaitVisible(css(`#interviews`)))
	if s := text(`a[data-id="` + rid.String() + `"] .tags`); !strings.Contains(s, "finalized") || !strings.Contains(s, "not sent") {
		t.Fatalf("list tags before sync: %q", s)
	}
	shot("07-list")
	do("sync",
		chromedp.Click(css(`nav a[href="sync"]`)), // the session lives under its own path: follow its links
		chromedp.Click(css(`#sync-now`)),
		chromedp.WaitVisible(css(`#sync[data-done="true"]`)))
	if s := text(`#sync-state`); !strings.Contains(s, "Done") || !strings.Contains(s, "sent") {
		t.Fatalf("sync result: %q", s)
	}
	shot("08-sync")
	do("list after sync", chromedp.Click(css(`nav a[href="interviews"]`)), chromedp.WaitVisible(css(`#interviews`)))
	if s := text(`a[data-id="` + rid.String() + `"] .tags`); !strings.Contains(s, "sent") || strings.Contains(s, "not sent") {
		t.Fatalf("list tags after sync: %q", s)
	}

	// On the server, with the right values.
	rec, err := srv.Replica().Record(context.Background(), syncengine.RecordID(rid))
	if err != nil {
		t.Fatalf("record on the server: %v", err)
	}
	vals := rec.Values()
	want := map[string]string{
		"intro/consent": "yes", "household/site": "camp_b", "household/hh_size": "2", "household/members": "2",
		"threats/safe_day": "unsafe", "threats/safe_night": "very_unsafe", "threats/threats_faced": "theft other",
		"threats/threat_other": "barrage routier la nuit", "gbv/gbv_private": "no",
	}
	for k, w := range want {
		if got := vals[k].String(); got != w {
			t.Errorf("server %s = %q, want %q", k, got, w)
		}
	}
	if rec.Status() != "finalized" {
		t.Errorf("server status %q, want finalized", rec.Status())
	}
	if vals["household/hh_size"].Kind != syncengine.Int {
		t.Errorf("hh_size stored as %v, want an integer", vals["household/hh_size"].Kind)
	}
	names := map[string]string{}
	for k, v := range vals {
		if strings.HasPrefix(k, "household/roster[") && strings.HasSuffix(k, "/member_name") {
			inst := k[:strings.LastIndexByte(k, '/')]
			if vals[inst].Kind != syncengine.Null {
				names[v.String()] = vals[inst+"/sex"].String()
			}
		}
	}
	if len(names) != 2 || names["Amina-Qx7"] != "female" || names["Yusuf-Kz4"] != "male" {
		t.Errorf("roster on the server: %v", names)
	}
	if _, ok := vals["gbv/gbv_risk"]; ok {
		t.Error("a skipped question has an answer")
	}

	// Encrypted at rest: none of the answers typed is in any file, with the
	// store open and after it is locked.
	secrets := []string{"Amina-Qx7", "Yusuf-Kz4", "Removed-Person", "barrage routier la nuit"}
	noPlaintext(t, dir, secrets)
	do("lock", chromedp.Click(css(`#lock`)), chromedp.WaitVisible(css(`#pin`)))
	stopUI()
	noPlaintext(t, dir, secrets)
}

func noPlaintext(t *testing.T, dir string, secrets []string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, s := range secrets {
			for _, form := range [][]byte{[]byte(s), []byte(strings.ToLower(s))} {
				if bytes.Contains(b, form) {
					t.Errorf("%s holds %q in plaintext", p, s)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Fatalf("only %d files under %s: the scan looked at nothing", files, dir)
	}
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// void drops an action's result so it can run among other steps.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}
