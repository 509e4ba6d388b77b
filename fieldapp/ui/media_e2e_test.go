package ui_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/internal/browsertest"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// markedJPEG is a photo of noise (so it does not compress) with marker in
// a comment segment, as a camera's metadata would carry it.
func markedJPEG(t *testing.T, w, h int, marker string) []byte {
	r := rand.New(rand.NewPCG(5, 6))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32()), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	com := append([]byte{0xFF, 0xFE, 0, byte(len(marker) + 2)}, marker...)
	out := append([]byte{0xFF, 0xD8}, com...)
	return append(out, b.Bytes()[2:]...)
}

// cutEvery forwards connections to target, cutting each after budget
// bytes in either direction.
func cutEvery(t *testing.T, target string, budget int64) (url string, cuts *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cuts = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				var left atomic.Int64
				left.Store(budget)
				done := make(chan struct{}, 2)
				pipe := func(dst, src net.Conn) {
					defer func() { done <- struct{}{} }()
					buf := make([]byte, 4096)
					for {
						n, err := src.Read(buf)
						if n > 0 {
							if left.Add(-int64(n)) < 0 {
								cuts.Add(1)
								return
							}
							dst.Write(buf[:n])
						}
						if err != nil {
							return
						}
					}
				}
				go pipe(up, c)
				go pipe(c, up)
				<-done
			}()
		}
	}()
	return "http://" + ln.Addr().String(), cuts
}

// TestPhotoInBrowser (issue 16): in headless Chromium on a phone-sized
// screen an enumerator takes a photo through the file input, sees its
// preview, finalizes; the page loads nothing from anywhere but the device;
// the device syncs through a link cut every 400 KB; the photo is on the
// server and in the export byte for byte, and no file of the device's data
// folder holds it in plaintext.
func TestPhotoInBrowser(t *testing.T) {
	bctx, cancel := browsertest.New(t, browsertest.Options{Width: 412, Height: 915, Timeout: 120 * time.Second})
	defer cancel()
	srv, serverURL := startServer(t)
	ctx := context.Background()
	xf := excelize.NewFile()
	xf.SetSheetName("Sheet1", "survey")
	xf.NewSheet("settings")
	for i, r := range [][]string{{"type", "name", "label"}, {"image", "photo", "Photo of the shelter"}, {"text", "note", "Note"}} {
		for j, v := range r {
			cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
			xf.SetCellStr("survey", cell, v)
		}
	}
	xf.SetCellStr("settings", "A1", "form_id")
	xf.SetCellStr("settings", "A2", "shelters")
	var xb bytes.Buffer
	xf.Write(&xb)
	if _, _, err := srv.Forms().Publish(ctx, xb.Bytes(), "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	dir, url, stopUI := startUI(t, serverURL)
	const marker = "PHOTO-MARKER-Zq9w"
	photo := markedJPEG(t, 1600, 1200, marker)
	photoPath := filepath.Join(t.TempDir(), "shelter.jpg")
	os.WriteFile(photoPath, photo, 0o600)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			browsertest.Screenshot(t, bctx, "fieldapp-photo-failed")
			h, herr := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.outerHTML`))
			t.Fatalf("%s: %v\n%.3000s %v", what, err, h, herr)
		}
	}
	// The first action on bctx starts the browser: not under a step's
	// timeout, whose end would close it.
	if _, err := chromedp.Run(bctx, chromedp.Navigate(url+"/")); err != nil {
		t.Fatal(err)
	}
	do("unlock",
		chromedp.WaitVisible(css(`#pin`)),
		chromedp.SendKeys(css(`#pin`), pin),
		chromedp.Submit(css(`#pin`)),
		chromedp.WaitVisible(css(`#choose-language`)),
		chromedp.Click(css(`#choose-language`)),
		chromedp.WaitVisible(css(`button[data-form="shelters"]`)))
	do("new interview", chromedp.Click(css(`button[data-form="shelters"]`)), chromedp.WaitVisible(css(`#iv`)))
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	rid, err := uuid.Parse(loc[strings.LastIndexByte(loc, '/')+1:])
	if err != nil {
		t.Fatal(err)
	}
	do("take the photo",
		chromedp.SetUploadFiles(css(`input[data-media="photo"]`), []string{photoPath}),
		chromedp.WaitVisible(css(`[data-media-q="photo"] img.preview`)),
		void(chromedp.Poll[bool](`(i => i.complete && i.naturalWidth === 1600)(document.querySelector("img.preview"))`, chromedp.WithPollingTimeout(10*time.Second))))
	browsertest.Screenshot(t, bctx, "fieldapp-photo")
	foreign, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](
		`performance.getEntriesByType("resource").map(e => e.name).filter(u => !u.startsWith(`+jsString(url)+`))`))
	if err != nil || len(foreign) > 0 {
		t.Fatalf("the page fetched from elsewhere: %v %v", foreign, err)
	}
	do("finalize", chromedp.Click(css(`#finalize`)), chromedp.WaitVisible(css(`#interviews`)))
	stopUI()

	// Sync through a link cut every 400 KB.
	proxy, cuts := cutEvery(t, strings.TrimPrefix(serverURL, "http://"), 400<<10)
	d, err := fieldapp.Open(ctx, dir, pin)
	if err != nil {
		t.Fatal(err)
	}
	failures := 0
	for {
		if _, err := d.Sync(ctx, proxy, nil); err == nil {
			break
		}
		if failures++; failures > 100 {
			t.Fatal("the sync never got through")
		}
	}
	d.Close()
	if cuts.Load() == 0 || failures == 0 {
		t.Fatalf("no cut (%d cuts, %d failures): the test proved nothing", cuts.Load(), failures)
	}
	id := syncengine.RecordID(rid)
	rec, err := srv.Replica().Record(ctx, id)
	if err != nil || rec.Status() != "finalized" {
		t.Fatalf("record on the server: %v", err)
	}
	ref, err := media.ParseRef(rec.Values()["photo"].String())
	if err != nil || ref.Name != "shelter.jpg" {
		t.Fatalf("the photo's answer: %+v %v", ref, err)
	}
	if _, _, err := srv.Service().OpenMedia(ctx, auth.Principal{}, id, ref.SHA256); err != nil {
		t.Fatalf("the server does not hold the photo: %v", err)
	}
	cl, err := wire.Dial(serverURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, _, err := wire.Download(ctx, cl, id, ref.SHA256, 0, &got); err != nil || !bytes.Equal(got.Bytes(), photo) {
		t.Fatalf("the exported photo: %d bytes of %d, %v", got.Len(), len(photo), err)
	}
	t.Logf("photo of %d bytes synced through %d cuts (%d failed syncs)", len(photo), cuts.Load(), failures)
	noPlaintext(t, dir, []string{marker})
}
