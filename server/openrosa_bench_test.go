package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// formOfN is a form of n text and integer questions.
func formOfN(b testing.TB, id string, n int) []byte {
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
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkOpenRosa measures a real server on loopback (in process: the
// profiling benchmark) as ODK Collect uses it: a formList of 200 forms
// (issue 17: < 20 ms), and submissions of a 30-question form with one
// 100 KB photo each from 4 devices at once (>= 500/s; the photo is read
// and set aside until the media store of issue 16 keeps it).
func BenchmarkOpenRosa(b *testing.B) {
	ctx := context.Background()
	srv := benchServer(b)
	defer srv.stop()
	if err := srv.Auth().CreateProject(ctx, "bench", "camp"); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		if _, _, err := srv.Forms().Publish(ctx, formOfN(b, fmt.Sprintf("form%03d", i), 30), "", "camp", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	var bases []string
	for range 4 {
		_, token, err := srv.Auth().NewCollectDevice(ctx, "bench", "camp", "", "")
		if err != nil {
			b.Fatal(err)
		}
		bases = append(bases, srv.URL+"/key/"+token)
	}
	b.Run("FormList200", func(b *testing.B) {
		get := func() {
			res, err := http.Get(bases[0] + "/formList")
			if err != nil || res.StatusCode != 200 {
				b.Fatal(res, err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		get() // the md5s are computed once per version
		for b.Loop() {
			get()
		}
	})
	photo := bytes.Repeat([]byte{0xAB}, 100<<10)
	body := func(n int64) (*bytes.Buffer, string) {
		var x bytes.Buffer
		fmt.Fprintf(&x, `<data id="form000" version="1">`)
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
	var seq atomic.Int64
	b.Run("Submit30q", func(b *testing.B) {
		start := time.Now()
		var wg sync.WaitGroup
		per := b.N/len(bases) + 1
		for _, base := range bases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range per {
					buf, ct := body(seq.Add(1))
					res, err := http.Post(base+"/submission", ct, buf)
					if err != nil || res.StatusCode != http.StatusCreated {
						b.Error(res, err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(per*len(bases))/time.Since(start).Seconds(), "submissions/s")
	})
}
