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
	// The in-process run is for profiling; the shipped binaries are what
	// users get and what the comparison is about.
	inProcess = flag.Bool("inprocess", true, "also run Tessera in one process (device and server together) for profiling")
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
	wall  float64 // the whole process, where the case ran as one (ms)
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
		t0 := time.Now()
		b, err := cmd.Output()
		wall := float64(time.Since(t0).Microseconds()) / 1000
		if err != nil {
			log.Fatalf("node %v: %v", args, err)
		}
		var m map[string]float64
		if err := json.Unmarshal(b, &m); err != nil {
			log.Fatalf("node %v said %q", args, b)
		}
		m["wall"] = wall
		return m
	}
	a, b := filepath.Join(dir, "pouch-a"), filepath.Join(dir, "pouch-b")
	node("load", a, dataFile)
	step := func(name string, n int, args ...string) {
		px.bytes.Store(0)
		m := node(args...)
		out[name] = measure{ms: m["ms"], bytes: px.bytes.Load(), n: n, wall: m["wall"]}
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
	if len(xs) == 0 {
		return 0
	}
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
	bin, err := os.MkdirTemp("", "tessera-compare-bin")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(bin)
	buildBinaries(bin)
	tes := map[string][]measure{}  // in-process (profiling)
	pou := map[string][]measure{}  // PouchDB
	sync := map[string][]measure{} // shipped: the sync's own duration
	proc := map[string][]measure{} // shipped: the whole process
	parts := map[string][]syncRun{}
	var raw []float64
	for i := range *count {
		dir, err := os.MkdirTemp("", "tessera-compare")
		if err != nil {
			log.Fatal(err)
		}
		// The order alternates between runs so that neither side always
		// gets the machine first.
		sides := []func(){
			func() {
				log.Printf("run %d/%d: Tessera, shipped binaries", i+1, *count)
				r := shipped(bin, filepath.Join(dir, "shipped"), recs)
				for k, v := range r.sync {
					sync[k] = append(sync[k], v)
					proc[k] = append(proc[k], r.process[k])
					parts[k] = append(parts[k], r.runs[k])
				}
			},
			func() {
				log.Printf("run %d/%d: PouchDB", i+1, *count)
				for k, v := range pouchRun(dir, recs) {
					pou[k] = append(pou[k], v)
				}
			},
		}
		if i%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			side()
		}
		if *inProcess {
			log.Printf("run %d/%d: Tessera in one process (profiling)", i+1, *count)
			for k, v := range tessera(filepath.Join(dir, "inprocess"), recs) {
				tes[k] = append(tes[k], v)
			}
		}
		log.Printf("run %d/%d: raw Badger", i+1, *count)
		raw = append(raw, rawBadger(dir, recs).ms)
		os.RemoveAll(dir)
	}
	var b strings.Builder
	report(&b, sync, proc, parts, pou, tes, raw)
	fmt.Print(b.String())
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(b.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func medianOf(ms []measure, f func(measure) float64) float64 {
	xs := make([]float64, len(ms))
	for i, m := range ms {
		xs[i] = f(m)
	}
	return median(xs)
}

func msOf(m measure) float64    { return m.ms }
func wallOf(m measure) float64  { return m.wall }
func bytesOf(m measure) float64 { return float64(m.bytes) }

func rate(n int, ms float64) string { return fmt.Sprintf("%.0f records/s", float64(n)/(ms/1000)) }

func report(b *strings.Builder, sync, proc map[string][]measure, parts map[string][]syncRun, pou, tes map[string][]measure, raw []float64) {
	n := *records
	fmt.Fprintf(b, "Medians of %d runs, %d records x 22 fields, loopback, bytes counted by the same TCP proxy.\n\n", *count, n)
	fmt.Fprintf(b, "Shipped binaries: surveyd and `fieldapp sync --json` each as its own process, fieldapp in its phone profile\n")
	fmt.Fprintf(b, "(56 MiB soft memory limit, device store). PouchDB: `node pouch.js` per case; its time is the replication's own.\n\n")
	fmt.Fprintf(b, "| case | fieldapp sync (own duration) | PouchDB | ratio | fieldapp whole process | PouchDB whole process | ratio | Tessera bytes/record | PouchDB bytes/record | bytes ratio |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range []string{"push", "pull", "noop"} {
		ts, tp := medianOf(sync[c], msOf), medianOf(proc[c], msOf)
		ps, pp := medianOf(pou[c], msOf), medianOf(pou[c], wallOf)
		tb, pb := medianOf(sync[c], bytesOf), medianOf(pou[c], bytesOf)
		if c == "noop" {
			fmt.Fprintf(b, "| %s | %.1f ms | %.1f ms | %.1fx faster | %.0f ms | %.0f ms | %.1fx | %.0f bytes | %.0f bytes | %.3fx |\n",
				c, ts, ps, ps/ts, tp, pp, pp/tp, tb, pb, tb/pb)
			continue
		}
		fmt.Fprintf(b, "| %s | %s (%.0f ms) | %s (%.0f ms) | %.1fx faster | %.0f ms | %.0f ms | %.1fx | %.1f | %.1f | %.3fx |\n",
			c, rate(n, ts), ts, rate(n, ps), ps, ps/ts, tp, pp, pp/tp, tb/float64(n), pb/float64(n), tb/pb)
	}
	fmt.Fprintf(b, "\nThe fieldapp process in parts (medians): what it spends before and after the sync itself.\n\n")
	fmt.Fprintf(b, "| case | whole process | unlock (argon2id) | store open | sync | the rest (start, exit) | peak RSS |\n|---|---|---|---|---|---|---|\n")
	for _, c := range []string{"push", "pull", "noop"} {
		rs := parts[c]
		f := func(g func(syncRun) float64) float64 {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = g(r)
			}
			return median(xs)
		}
		wall, un, op, sy := f(func(r syncRun) float64 { return r.wallMS }), f(func(r syncRun) float64 { return r.UnlockMS }),
			f(func(r syncRun) float64 { return r.OpenMS }), f(func(r syncRun) float64 { return r.SyncMS })
		rest := f(func(r syncRun) float64 { return r.wallMS - r.UnlockMS - r.OpenMS - r.SyncMS })
		rss := f(func(r syncRun) float64 { return float64(r.rssKB) / 1024 })
		fmt.Fprintf(b, "| %s | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %.1f MiB |\n", c, wall, un, op, sy, rest, rss)
	}
	rawMS := median(raw)
	fmt.Fprintf(b, "\nPhysical limit: the same records written straight into Badger (same batches, fsync per batch): %.0f records/s.\n", float64(n)/(rawMS/1000))
	if len(tes) == 0 {
		return
	}
	fmt.Fprintf(b, "\nIn one process (profiling only: device and server share the process, no phone profile):\n\n")
	fmt.Fprintf(b, "| case | Tessera in-process | PouchDB | ratio |\n|---|---|---|---|\n")
	for _, c := range []string{"push", "pull", "noop", "edit100"} {
		tm, pm := medianOf(tes[c], msOf), medianOf(pou[c], msOf)
		if k := tes[c][0].n; k > 0 {
			fmt.Fprintf(b, "| %s | %s | %s | %.1fx |\n", c, rate(k, tm), rate(k, pm), pm/tm)
		} else {
			fmt.Fprintf(b, "| %s | %.1f ms | %.1f ms | %.1fx |\n", c, tm, pm, pm/tm)
		}
	}
	fmt.Fprintf(b, "\nIn-process push %.2fx and pull %.2fx of the raw Badger write.\n", rawMS/medianOf(tes["push"], msOf), rawMS/medianOf(tes["pull"], msOf))
}
