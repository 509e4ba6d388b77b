// Command compare runs Tessera and PouchDB (with express-pouchdb) on the
// same generated records, on loopback, in the same run, with bytes counted
// by the same TCP proxy, and prints both side by side with ratios. Run it
// through scripts/bench/compare, which installs PouchDB from npm.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

var (
	count   = flag.Int("count", 3, "runs; medians are reported")
	records = flag.Int("records", 10000, "records (22 fields: 8 integers, 8 strings, 6 booleans)")
	pouch   = flag.String("pouch", "", "folder with node_modules (pouchdb, express-pouchdb) and pouch.js")
	mdOut   = flag.String("md", "", "also write the table as markdown to this file")
)

var choices = []string{"yes", "no", "unsure", "refused", "often", "sometimes", "never", "water", "food", "shelter",
	"health", "school", "police", "elders", "ngo", "camp-a", "camp-b", "host-village", "market", "clinic"}

type rec struct {
	ints  [8]int64
	strs  [8]string
	bools [6]bool
}

func data(n int) []rec {
	rng := rand.New(rand.NewPCG(7, 7))
	out := make([]rec, n)
	for i := range out {
		for j := range 8 {
			out[i].ints[j] = rng.Int64N(100)
			out[i].strs[j] = choices[rng.IntN(len(choices))]
		}
		out[i].strs[7] = fmt.Sprintf("hh-%05d", i)
		for j := range 6 {
			out[i].bools[j] = rng.IntN(2) == 0
		}
	}
	return out
}

func (r rec) fields() []syncengine.FieldWrite {
	fs := make([]syncengine.FieldWrite, 0, 22)
	for j, v := range r.ints {
		fs = append(fs, syncengine.FieldWrite{Name: fmt.Sprintf("n%d", j), Value: syncengine.IntValue(v)})
	}
	for j, v := range r.strs {
		fs = append(fs, syncengine.FieldWrite{Name: fmt.Sprintf("s%d", j), Value: syncengine.TextValue(v)})
	}
	for j, v := range r.bools {
		fs = append(fs, syncengine.FieldWrite{Name: fmt.Sprintf("b%d", j), Value: syncengine.BoolValue(v)})
	}
	return fs
}

func (r rec) doc(i int) map[string]any {
	d := map[string]any{"_id": fmt.Sprintf("r%06d", i)}
	for _, f := range r.fields() {
		d[f.Name] = f.Value.Any()
	}
	return d
}

// proxy forwards TCP to target and counts every byte both ways.
type proxy struct {
	ln     net.Listener
	target string
	bytes  atomic.Int64
}

func newProxy(target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
	return p
}

func (p *proxy) handle(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	var wg sync.WaitGroup
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(countWriter{dst, &p.bytes}, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}
	wg.Add(2)
	go cp(up, c)
	go cp(c, up)
	wg.Wait()
}

// countWriter counts bytes as they pass, so a step's count is complete
// when the step ends even if its connection stays open.
type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

type measure struct {
	ms    float64
	bytes int64
	n     int
}

type runResult map[string]measure

func tessera(dir string, recs []rec) runResult {
	ctx := context.Background()
	out := runResult{}
	srv, err := server.New(ctx, server.Config{DataDir: filepath.Join(dir, "server")})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Serve(sctx, ln)
	px := newProxy(ln.Addr().String())
	defer px.ln.Close()
	dev := func(name string) *fieldapp.Device {
		d, err := fieldapp.Init(ctx, filepath.Join(dir, name), fieldapp.Config{Server: px.url(), PIN: "bench-pin"})
		if err != nil {
			log.Fatal(err)
		}
		return d
	}
	a := dev("a")
	defer a.Close()
	nrs := make([]syncengine.NewRecord, len(recs))
	for i, r := range recs {
		nrs[i] = syncengine.NewRecord{Form: "perception@3", Fields: r.fields()}
	}
	for i := 0; i < len(nrs); i += 1000 {
		if _, err := a.Replica().CreateMany(ctx, nrs[i:min(i+1000, len(nrs))]); err != nil {
			log.Fatal(err)
		}
	}
	step := func(name string, n int, fn func() error) {
		px.bytes.Store(0)
		t0 := time.Now()
		if err := fn(); err != nil {
			log.Fatalf("tessera %s: %v", name, err)
		}
		out[name] = measure{ms: float64(time.Since(t0).Microseconds()) / 1000, bytes: px.bytes.Load(), n: n}
	}
	syncOf := func(d *fieldapp.Device) func() error {
		return func() error { _, err := d.Sync(ctx, "", nil); return err }
	}
	step("push", len(recs), syncOf(a))
	b := dev("b")
	defer b.Close()
	step("pull", len(recs), syncOf(b))
	// A no-op sync is one after a completed sync in both directions.
	step("warm-up", 0, syncOf(b))
	step("noop", 0, syncOf(b))
	var ids []syncengine.RecordID
	a.Replica().Records(ctx, func(r *syncengine.Record) error {
		if len(ids) < 100 {
			ids = append(ids, r.ID)
		}
		return nil
	})
	for _, id := range ids {
		a.Replica().Set(ctx, id, []syncengine.FieldWrite{{Name: "n0", Value: syncengine.IntValue(1)}, {Name: "s0", Value: syncengine.TextValue("revisited")}})
	}
	step("edit100", 100, syncOf(a))
	return out
}

func rawBadger(dir string, recs []rec) measure {
	st, err := badgerstore.Open(badgerstore.Options{Dir: filepath.Join(dir, "raw")})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	t0 := time.Now()
	for i := 0; i < len(recs); i += 1000 {
		err := st.DB().Update(func(txn *badger.Txn) error {
			for j := i; j < min(i+1000, len(recs)); j++ {
				c := syncengine.Change{Record: syncengine.NewRecordID(), Form: "perception@3", HLC: 1,
					Dot: syncengine.Dot{Replica: syncengine.ReplicaID{1}, Counter: uint64(j + 1)}, Fields: recs[j].fields()}
				r := syncengine.EmptyRecord(c.Record)
				r.Apply(&c)
				if err := txn.Set(append([]byte{'r'}, c.Record[:]...), syncengine.MarshalRecord(nil, r)); err != nil {
					return err
				}
				if err := txn.Set(fmt.Appendf(nil, "l%08d", j), syncengine.MarshalLogEntry(nil, syncengine.Local, &c)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	return measure{ms: float64(time.Since(t0).Microseconds()) / 1000, n: len(recs)}
}

func pouchRun(dir string, recs []rec) runResult {
	out := runResult{}
	js := filepath.Join(*pouch, "pouch.js")
	dataFile := filepath.Join(dir, "data.jsonl")
	f, err := os.Create(dataFile)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i, r := range recs {
		b, _ := json.Marshal(r.doc(i))
		w.Write(append(b, '\n'))
	}
	w.Flush()
	f.Close()

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := exec.Command("node", js, "server", fmt.Sprint(port), filepath.Join(dir, "pouch-server"))
	srv.Dir = *pouch
	stdout, _ := srv.StdoutPipe()
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		log.Fatalf("node: %v", err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.Contains(line, "listening") {
		log.Fatalf("express-pouchdb did not start: %q %v", line, err)
	}
	px := newProxy(fmt.Sprintf("127.0.0.1:%d", port))
	defer px.ln.Close()
	remote := px.url() + "/bench"
	node := func(args ...string) map[string]float64 {
		cmd := exec.Command("node", append([]string{js}, args...)...)
		cmd.Dir = *pouch
		cmd.Stderr = os.Stderr
		b, err := cmd.Output()
		if err != nil {
			log.Fatalf("node %v: %v", args, err)
		}
		var m map[string]float64
		if err := json.Unmarshal(b, &m); err != nil {
			log.Fatalf("node %v said %q", args, b)
		}
		return m
	}
	a, b := filepath.Join(dir, "pouch-a"), filepath.Join(dir, "pouch-b")
	node("load", a, dataFile)
	step := func(name string, n int, args ...string) {
		px.bytes.Store(0)
		m := node(args...)
		out[name] = measure{ms: m["ms"], bytes: px.bytes.Load(), n: n}
	}
	step("push", len(recs), "push", a, remote)
	step("pull", len(recs), "pull", b, remote)
	// PouchDB's first two-way sync of b still checks its pulled documents
	// back (revs_diff); the no-op is the one after it.
	step("warm-up", 0, "noop", b, remote)
	step("noop", 0, "noop", b, remote)
	step("edit100", 100, "edit", a, remote, "100")
	return out
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func main() {
	flag.Parse()
	if *pouch == "" {
		log.Fatal("-pouch DIR is required (scripts/bench/compare sets it)")
	}
	recs := data(*records)
	cases := []string{"push", "pull", "noop", "edit100"}
	tes := map[string][]measure{}
	pou := map[string][]measure{}
	var raw []float64
	for i := range *count {
		dir, err := os.MkdirTemp("", "tessera-compare")
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("run %d/%d: Tessera", i+1, *count)
		for k, v := range tessera(dir, recs) {
			tes[k] = append(tes[k], v)
		}
		log.Printf("run %d/%d: PouchDB", i+1, *count)
		for k, v := range pouchRun(dir, recs) {
			pou[k] = append(pou[k], v)
		}
		log.Printf("run %d/%d: raw Badger", i+1, *count)
		raw = append(raw, rawBadger(dir, recs).ms)
		os.RemoveAll(dir)
	}
	med := func(ms []measure, f func(measure) float64) float64 {
		xs := make([]float64, len(ms))
		for i, m := range ms {
			xs[i] = f(m)
		}
		return median(xs)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Medians of %d runs, %d records x 22 fields, loopback, bytes counted by the same TCP proxy.\n\n", *count, *records)
	fmt.Fprintf(&b, "| case | Tessera | PouchDB | Tessera / PouchDB | Tessera bytes/record | PouchDB bytes/record | bytes ratio |\n|---|---|---|---|---|---|---|\n")
	for _, c := range cases {
		tm, pm := med(tes[c], func(m measure) float64 { return m.ms }), med(pou[c], func(m measure) float64 { return m.ms })
		tb, pb := med(tes[c], func(m measure) float64 { return float64(m.bytes) }), med(pou[c], func(m measure) float64 { return float64(m.bytes) })
		n := float64(tes[c][0].n)
		if n > 0 {
			fmt.Fprintf(&b, "| %s | %.0f records/s | %.0f records/s | %.1fx faster | %.1f | %.1f | %.3fx |\n",
				c, n/(tm/1000), n/(pm/1000), pm/tm, tb/n, pb/n, tb/pb)
		} else {
			fmt.Fprintf(&b, "| %s | %.1f ms | %.1f ms | %.1fx faster | %.0f bytes | %.0f bytes | %.3fx |\n", c, tm, pm, pm/tm, tb, pb, tb/pb)
		}
	}
	rawMS := median(raw)
	tp := med(tes["push"], func(m measure) float64 { return m.ms })
	tl := med(tes["pull"], func(m measure) float64 { return m.ms })
	fmt.Fprintf(&b, "\nPhysical limit: the same records written straight into Badger (same batches, fsync per batch): %.0f records/s;\n", float64(*records)/(rawMS/1000))
	fmt.Fprintf(&b, "Tessera's push reaches %.2fx of it and its pull %.2fx.\n", rawMS/tp, rawMS/tl)
	fmt.Print(b.String())
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(b.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
