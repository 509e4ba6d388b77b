// Command console measures the project leads' console on a large store
// (default 1,000,000 records): how long a page of the record list takes at
// the start, following the "next" cursor page after page, in the middle
// and at the end of the records, one record's page, and a filter no record
// matches (the worst case: every record is read to find none).
//
//	go run ./scripts/bench/console [-records N] [-walk PAGES]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

func main() {
	n := flag.Int("records", 1_000_000, "records in the store")
	walk := flag.Int("walk", 200, "pages to follow from the first with the next-page cursor")
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tessera-console-bench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)
	srv, err := server.New(ctx, server.Config{DataDir: filepath.Join(dir, "srv"), Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("filling the store with %d records of 10 fields", *n)
	t0 := time.Now()
	var ids []syncengine.RecordID
	batch := make([]syncengine.NewRecord, 0, 1000)
	for i := range *n {
		fs := make([]syncengine.FieldWrite, 10)
		for k := range fs {
			fs[k] = syncengine.FieldWrite{Name: fmt.Sprintf("q%02d", k), Value: syncengine.IntValue(int64(i * k % 97))}
		}
		batch = append(batch, syncengine.NewRecord{Form: "bench@1", Fields: fs})
		if len(batch) == cap(batch) || i == *n-1 {
			got, err := srv.Replica().CreateMany(ctx, batch)
			if err != nil {
				log.Fatal(err)
			}
			ids = append(ids, got...)
			batch = batch[:0]
		}
	}
	log.Printf("filled in %v", time.Since(t0).Round(time.Second))
	// Restart on the store compacted, as time would leave it (see the
	// export benchmark).
	if err := srv.Close(); err != nil {
		log.Fatal(err)
	}
	st, err := badgerstore.Open(badgerstore.Options{Dir: filepath.Join(dir, "srv"), Profile: badgerstore.Server})
	if err != nil {
		log.Fatal(err)
	}
	if err := st.Settle(); err != nil {
		log.Fatal(err)
	}
	srv, err = server.New(ctx, server.Config{Store: st, DataDir: filepath.Join(dir, "srv"), Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	tok, err := srv.Auth().NewSetupToken(ctx, "admin")
	if err != nil {
		log.Fatal(err)
	}
	session, _, err := srv.Auth().UseSetupToken(ctx, tok, "a long benchmark password")
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Serve(sctx, ln)
	base := "http://" + ln.Addr().String()
	slices.SortFunc(ids, func(a, b syncengine.RecordID) int { return bytes.Compare(a[:], b[:]) }) // the store's order

	get := func(path string) (time.Duration, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.AddCookie(&http.Cookie{Name: "tessera_session", Value: session})
		t := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		el := time.Since(t)
		if resp.StatusCode != http.StatusOK {
			log.Fatalf("GET %s: %s", path, resp.Status)
		}
		return el, string(b)
	}
	nextRe := regexp.MustCompile(`after=([0-9a-f-]{36})`)
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		fmt.Printf("%-44s median %8.2f ms   max %8.2f ms   (%d requests)\n", name,
			float64(ds[len(ds)/2].Microseconds())/1000, float64(ds[len(ds)-1].Microseconds())/1000, len(ds))
	}
	get("/console/records") // warm up

	var first []time.Duration
	for range 20 {
		d, _ := get("/console/records")
		first = append(first, d)
	}
	var walked []time.Duration
	path := "/console/records"
	for i := range *walk {
		d, body := get(path)
		walked = append(walked, d)
		m := nextRe.FindStringSubmatch(body)
		if m == nil {
			log.Fatalf("page %d has no next-page link", i+1)
		}
		path = "/console/records?after=" + m[1]
	}
	at := func(frac float64) []time.Duration {
		var ds []time.Duration
		for k := range 20 {
			i := int(frac*float64(len(ids))) - k*(len(ids)/2000) // pages still full
			id := ids[max(0, min(i, len(ids)-60))]
			d, _ := get("/console/records?after=" + id.String())
			ds = append(ds, d)
		}
		return ds
	}
	var one []time.Duration
	for k := range 20 {
		d, _ := get("/console/records/" + ids[(k*7919)%len(ids)].String())
		one = append(one, d)
	}
	var none, noDevice []time.Duration
	for range 3 {
		d, _ := get("/console/records?status=finalized")
		none = append(none, d)
		d, _ = get("/console/records?device=zzzz")
		noDevice = append(noDevice, d)
	}
	fmt.Printf("\nconsole over %d records (50 per page)\n\n", *n)
	report("first page", first)
	report(fmt.Sprintf("pages 1-%d, following next", *walk), walked)
	report("a page from the middle", at(0.5))
	report("a page near the end", at(0.99))
	report("one record's page", one)
	report("a filter no record matches (reads all)", none)
	report("a device no record has (reads all)", noDevice)
}
