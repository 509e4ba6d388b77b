package syncengine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// Sync scenarios as data: each file in testdata/scenarios is a history of
// offline edits and syncs between devices, hubs and a server, with the
// merged state every replica must reach. The verbs:
//
//	device A [via H]           a device syncing with the server (or hub H)
//	hub H                      a hub: server to its devices, client of S
//	A create r1 FORM f=v ...   A creates record r1
//	A set r1 f=v ...           A edits r1
//	A delete r1 | A restore r1 | A confirm-delete r1
//	A resolve r1 f=v ...       A resolves conflicting fields
//	A sync                     A pushes then pulls
//	S wipe                     the server loses everything (fresh install)
//	A fails set r1 f=v         the command must fail
//	expect WHO r1 f = v        WHO is a replica name or * (every replica)
//	expect WHO r1 f conflict v1 v2 ...
//	expect WHO r1 deleted | live | delete-conflict | missing
//	converged                  every replica holds identical records
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

type node struct {
	name     string
	rep      *syncengine.Replica
	upstream string
}

type world struct {
	t       *testing.T
	ctx     context.Context
	nodes   map[string]*node
	order   []string
	records map[string]syncengine.RecordID
	now     time.Time
}

// direct connects a replica to its upstream without a network; the Connect
// path is tested in package server.
type direct struct {
	w  *world
	up string
}

func (d direct) Push(ctx context.Context, p syncengine.Push) (syncengine.PushResult, error) {
	return d.w.nodes[d.up].rep.Receive(ctx, p)
}
func (d direct) Pull(ctx context.Context, r syncengine.PullRequest) (syncengine.Page, error) {
	return d.w.nodes[d.up].rep.Page(ctx, r)
}

func (w *world) add(name, upstream string) {
	s, err := badgerstore.Open(badgerstore.Options{InMemory: true, Profile: badgerstore.Device})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { s.Close() })
	if err := syncengine.Init(w.ctx, s, syncengine.NewReplicaID()); err != nil {
		w.t.Fatal(err)
	}
	// Every replica reads the same simulated clock, which ticks per step,
	// so provisional values are reproducible.
	rep, err := syncengine.Open(w.ctx, s, syncengine.Options{Clock: func() time.Time { return w.now }})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, ok := w.nodes[name]; !ok {
		w.order = append(w.order, name)
	}
	w.nodes[name] = &node{name: name, rep: rep, upstream: upstream}
}

func runScenario(t *testing.T, file string) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &world{t: t, ctx: context.Background(), nodes: map[string]*node{}, records: map[string]syncengine.RecordID{},
		now: time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)}
	w.add("S", "")
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		words := strings.Fields(text)
		if len(words) == 0 {
			continue
		}
		w.now = w.now.Add(time.Second)
		if err := w.step(words); err != nil {
			t.Fatalf("%s:%d: %s: %v", file, line, strings.Join(words, " "), err)
		}
	}
}

func (w *world) step(words []string) error {
	switch words[0] {
	case "device":
		up := "S"
		if len(words) == 4 && words[2] == "via" {
			up = words[3]
		}
		w.add(words[1], up)
		return nil
	case "hub":
		w.add(words[1], "S")
		return nil
	case "converged":
		return w.converged()
	case "expect":
		return w.expect(words[1:])
	}
	n := w.nodes[words[0]]
	if n == nil || len(words) < 2 {
		return fmt.Errorf("unknown replica or verb")
	}
	if words[1] == "fails" {
		if err := w.act(n, words[2:]); err == nil {
			return fmt.Errorf("succeeded, want an error")
		}
		return nil
	}
	return w.act(n, words[1:])
}

func (w *world) act(n *node, words []string) error {
	verb, args := words[0], words[1:]
	fields := func(from int) []syncengine.FieldWrite {
		var fs []syncengine.FieldWrite
		for _, a := range args[from:] {
			k, v, _ := strings.Cut(a, "=")
			fs = append(fs, syncengine.FieldWrite{Name: k, Value: syncengine.ParseValue(v)})
		}
		return fs
	}
	id := func() syncengine.RecordID { return w.records[args[0]] }
	switch verb {
	case "sync":
		_, err := n.rep.Sync(w.ctx, direct{w, n.upstream}, syncengine.SyncOptions{PageLimit: 2})
		return err
	case "wipe":
		w.add(n.name, n.upstream)
		return nil
	case "create":
		rid, err := n.rep.Create(w.ctx, args[1], fields(2))
		w.records[args[0]] = rid
		return err
	case "set":
		return n.rep.Set(w.ctx, id(), fields(1))
	case "resolve":
		return n.rep.Resolve(w.ctx, id(), fields(1))
	case "delete":
		return n.rep.Delete(w.ctx, id())
	case "restore":
		return n.rep.ResolveDelete(w.ctx, id(), true)
	case "confirm-delete":
		return n.rep.ResolveDelete(w.ctx, id(), false)
	case "restamp": // restamp REC FROM: write again FROM's current writes
		rec, err := n.rep.Record(w.ctx, id())
		if err != nil {
			return err
		}
		var dots syncengine.DotSet
		for _, reg := range rec.Fields {
			for _, e := range reg.Entries {
				if e.Dot.Replica == w.nodes[args[1]].rep.ID() {
					dots = dots.Add(e.Dot)
				}
			}
		}
		_, err = n.rep.Restamp(w.ctx, id(), dots)
		return err
	}
	return fmt.Errorf("unknown verb %q", verb)
}

func (w *world) who(name string) []*node {
	if name == "*" {
		var out []*node
		for _, n := range w.order {
			out = append(out, w.nodes[n])
		}
		return out
	}
	return []*node{w.nodes[name]}
}

func (w *world) expect(args []string) error {
	for _, n := range w.who(args[0]) {
		if n == nil {
			return fmt.Errorf("unknown replica %s", args[0])
		}
		rec, err := n.rep.Record(w.ctx, w.records[args[1]])
		if args[2] == "missing" {
			if !errors.Is(err, syncengine.ErrNotFound) {
				return fmt.Errorf("%s: record exists (%v)", n.name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		switch args[2] {
		case "deleted", "live", "delete-conflict":
			got := "live"
			if rec.DeleteConflict() {
				got = "delete-conflict"
			} else if rec.Deleted() {
				got = "deleted"
			}
			if got != args[2] {
				return fmt.Errorf("%s: record is %s", n.name, got)
			}
			continue
		}
		reg := rec.Fields[args[2]]
		var vals []string
		if reg != nil {
			for _, e := range reg.Sorted() {
				vals = append(vals, e.Value.String())
			}
		}
		switch args[3] {
		case "=":
			if len(vals) != 1 || vals[0] != args[4] {
				return fmt.Errorf("%s: %s is %v, want %s", n.name, args[2], vals, args[4])
			}
		case "conflict":
			want := slices.Clone(args[4:])
			slices.Sort(want)
			slices.Sort(vals)
			if !slices.Equal(vals, want) {
				return fmt.Errorf("%s: %s holds %v, want the conflict %v", n.name, args[2], vals, want)
			}
		default:
			return fmt.Errorf("bad expectation")
		}
	}
	return nil
}

func (w *world) converged() error {
	states := map[string]map[syncengine.RecordID]*syncengine.Record{}
	for _, name := range w.order {
		m := map[syncengine.RecordID]*syncengine.Record{}
		if err := w.nodes[name].rep.Records(w.ctx, func(r *syncengine.Record) error { m[r.ID] = r; return nil }); err != nil {
			return err
		}
		states[name] = m
	}
	first := w.order[0]
	for _, name := range w.order[1:] {
		a, b := states[first], states[name]
		if len(a) != len(b) {
			return fmt.Errorf("%s has %d records, %s has %d", first, len(a), name, len(b))
		}
		for id, r := range a {
			if o := b[id]; o == nil || !r.Equal(o) {
				return fmt.Errorf("record %s differs between %s and %s", id, first, name)
			}
		}
	}
	return nil
}

// tinyTx fails any transaction that writes more than max log entries, like
// a phone's Badger with small memtables.
type tinyTx struct {
	syncengine.Store
	max int
}

func (s tinyTx) Update(ctx context.Context, fn func(syncengine.Tx) error) error {
	return s.Store.Update(ctx, func(tx syncengine.Tx) error {
		n := 0
		return fn(countingTx{Tx: tx, n: &n, max: s.max})
	})
}

type countingTx struct {
	syncengine.Tx
	n   *int
	max int
}

func (c countingTx) Append(o syncengine.Origin, ch *syncengine.Change) (uint64, error) {
	if *c.n++; *c.n > c.max {
		return 0, syncengine.ErrTooLarge
	}
	return c.Tx.Append(o, ch)
}

// TestPullPageTooLargeIsSplit: a page that does not fit in the device's
// transaction is asked again in halves until it does; nothing is lost.
func TestPullPageTooLargeIsSplit(t *testing.T) {
	ctx := context.Background()
	w := &world{t: t, ctx: ctx, nodes: map[string]*node{}, records: map[string]syncengine.RecordID{}, now: time.Now()}
	w.add("S", "")
	w.add("A", "S")
	a := w.nodes["A"].rep
	recs := make([]syncengine.NewRecord, 300)
	for i := range recs {
		recs[i] = syncengine.NewRecord{Form: "f", Fields: []syncengine.FieldWrite{{Name: "i", Value: syncengine.IntValue(int64(i))}}}
	}
	if _, err := a.CreateMany(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sync(ctx, direct{w, "S"}, syncengine.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	mem, err := badgerstore.Open(badgerstore.Options{InMemory: true, Profile: badgerstore.Device})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	small := tinyTx{Store: mem, max: 70}
	if err := syncengine.Init(ctx, small, syncengine.NewReplicaID()); err != nil {
		t.Fatal(err)
	}
	b, err := syncengine.Open(ctx, small, syncengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Sync(ctx, direct{w, "S"}, syncengine.SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	b.Records(ctx, func(*syncengine.Record) error { n++; return nil })
	if n != 300 || st.Applied != 300 {
		t.Fatalf("pulled %d records (%+v), want 300", n, st)
	}
}
