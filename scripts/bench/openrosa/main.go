// Command openrosa measures what ships as ODK Collect uses it: surveyd
// built from this tree and run as its own process (its Badger store in a
// temporary folder, every commit synced), reached over loopback HTTP like
// a Collect phone: the formList of a project with many forms, and
// submissions of a 30-question form with one 100 KB photo each from
// several Collect devices at once (issue 17: < 20 ms; >= 500/s).
//
//	go run ./scripts/bench/openrosa [-forms 200] [-submissions 4000] [-devices 4] [-runs 5]
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/xuri/excelize/v2"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/scripts/bench/internal/procstat"
	"github.com/tessera-survey/tessera/scripts/bench/internal/surveyd"
)

func main() {
	nForms := flag.Int("forms", 200, "forms published in the project")
	nSubs := flag.Int("submissions", 4000, "submissions per run")
	nDev := flag.Int("devices", 4, "Collect devices submitting at once")
	runs := flag.Int("runs", 5, "runs of each measure (medians reported)")
	flag.Parse()
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "tessera-openrosa-bench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	build := exec.Command("go", "build", "-o", tmp+string(filepath.Separator), "./cmd/surveyd")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		log.Fatalf("go build: %v", err)
	}
	data := filepath.Join(tmp, "data")
	addr, pid, stop := surveyd.Start(filepath.Join(tmp, "surveyd"), data, nil)
	defer stop()
	fatal = func(v ...any) { stop(); os.RemoveAll(tmp); log.Fatal(v...) }
	base := "http://" + addr
	token, err := os.ReadFile(filepath.Join(data, "setup-token"))
	if err != nil {
		fatal(err)
	}
	anon, err := wire.Dial(base, nil)
	if err != nil {
		fatal(err)
	}
	res, err := anon.Auth().Setup(ctx, &tesserav1.SetupRequest{SetupToken: strings.TrimSpace(string(token)), Password: "the bench admin's password"})
	if err != nil {
		fatal(err)
	}
	cl, err := wire.Dial(base, nil, wire.WithAuthorization("Bearer "+res.Token))
	if err != nil {
		fatal(err)
	}
	if _, err := cl.Admin().CreateProject(ctx, &tesserav1.CreateProjectRequest{Name: "camp"}); err != nil {
		fatal(err)
	}
	for i := range *nForms {
		req := &tesserav1.PublishFormRequest{Xlsx: formOf(fmt.Sprintf("form%03d", i), 30), Project: "camp"}
		for {
			_, err := cl.Forms().PublishForm(ctx, req)
			if connect.CodeOf(err) == connect.CodeResourceExhausted {
				time.Sleep(200 * time.Millisecond) // the server's per-caller rate limit
				continue
			}
			if err != nil {
				fatal(err)
			}
			break
		}
	}
	time.Sleep(6 * time.Second) // let the rate limit's bucket refill
	var urls []string
	for range *nDev {
		d, err := cl.Admin().CreateCollectDevice(ctx, &tesserav1.CreateCollectDeviceRequest{Project: "camp"})
		if err != nil {
			fatal(err)
		}
		urls = append(urls, base+"/key/"+d.Token)
	}
	get := func() time.Duration {
		t0 := time.Now()
		r, err := http.Get(urls[0] + "/formList")
		if err != nil || r.StatusCode != 200 {
			fatal(r, err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return time.Since(t0)
	}
	get() // the first list computes each version's md5
	var lists []float64
	for range *runs * 10 {
		lists = append(lists, float64(get().Microseconds())/1000)
	}
	fmt.Printf("formList of %d forms: median %.2f ms (%d requests, %.2f–%.2f)\n", *nForms, median(lists), len(lists), slices.Min(lists), slices.Max(lists))

	// Photos look like photos to the server: incompressible bytes, and
	// each submission's its own (a shared one would be stored once, the
	// rest deduplicated for free).
	photo := make([]byte, 100<<10)
	rand.Read(photo)
	var seq atomic.Int64
	var rates []float64
	stopRSS := procstat.WatchPeak(pid, 20*time.Millisecond)
	for range *runs {
		t0 := time.Now()
		var wg sync.WaitGroup
		per := *nSubs / len(urls)
		for _, u := range urls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := slices.Clone(photo)
				for range per {
					n := seq.Add(1)
					binary.BigEndian.PutUint64(mine, uint64(n))
					body, ct := submission(n, mine)
					r, err := http.Post(u+"/submission", ct, body)
					if err != nil || r.StatusCode != http.StatusCreated {
						fatal(r, err)
					}
					io.Copy(io.Discard, r.Body)
					r.Body.Close()
				}
			}()
		}
		wg.Wait()
		rates = append(rates, float64(per*len(urls))/time.Since(t0).Seconds())
	}
	fmt.Printf("submissions (30 questions + 100 KB photo, %d devices at once): median %.0f/s (%d runs of %d: %.0f–%.0f); surveyd peak RSS %d MB\n",
		*nDev, median(rates), *runs, *nSubs, slices.Min(rates), slices.Max(rates), stopRSS()/1024)
}

// fatal stops surveyd before exiting (log.Fatal would leave it running).
var fatal = func(v ...any) { log.Fatal(v...) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func formOf(id string, n int) []byte {
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "survey")
	f.NewSheet("settings")
	f.SetSheetRow("survey", "A1", &[]string{"type", "name", "label"})
	for i := range n {
		typ := "text"
		if i%2 == 1 {
			typ = "integer"
		}
		f.SetSheetRow("survey", fmt.Sprintf("A%d", i+2), &[]string{typ, fmt.Sprintf("q%d", i), fmt.Sprintf("Question %d", i)})
	}
	f.SetSheetRow("settings", "A1", &[]string{"form_id", "version"})
	f.SetSheetRow("settings", "A2", &[]string{id, "1"})
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func submission(n int64, photo []byte) (*bytes.Buffer, string) {
	var x bytes.Buffer
	x.WriteString(`<data id="form000" version="1">`)
	for i := range 30 {
		if i%2 == 1 {
			fmt.Fprintf(&x, "<q%d>%d</q%d>", i, i, i)
		} else {
			fmt.Fprintf(&x, "<q%d>answer %d</q%d>", i, i, i)
		}
	}
	fmt.Fprintf(&x, "<meta><instanceID>uuid:bench-%d</instanceID></meta></data>", n)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("xml_submission_file", "submission.xml")
	w.Write(x.Bytes())
	w, _ = mw.CreateFormFile("photo.jpg", "photo.jpg")
	w.Write(photo)
	mw.Close()
	return &buf, mw.FormDataContentType()
}
