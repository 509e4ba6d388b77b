package syncengine_test

import (
	"context"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// TestHistory: a replica with History lists every change a record went
// through, local or received, once each and in log order; a replica
// without it keeps no index.
func TestHistory(t *testing.T) {
	ctx := context.Background()
	w := &world{t: t, ctx: ctx, nodes: map[string]*node{}, records: map[string]syncengine.RecordID{}, now: time.Now()}
	w.add("A", "")
	a := w.nodes["A"].rep
	s, err := badgerstore.Open(badgerstore.Options{InMemory: true})
	must(t, err)
	defer s.Close()
	must(t, syncengine.Init(ctx, s, syncengine.NewReplicaID()))
	srv, err := syncengine.Open(ctx, s, syncengine.Options{History: true})
	must(t, err)
	w.nodes["S"] = &node{name: "S", rep: srv}

	id, err := a.Create(ctx, "f", []syncengine.FieldWrite{{Name: "q1", Value: syncengine.TextValue("x")}})
	must(t, err)
	must(t, a.Set(ctx, id, []syncengine.FieldWrite{{Name: "q2", Value: syncengine.IntValue(7)}}))
	for range 2 { // the second sync repeats nothing
		if _, err := a.Sync(ctx, direct{w, "S"}, syncengine.SyncOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	must(t, srv.Set(ctx, id, []syncengine.FieldWrite{{Name: "q1", Value: syncengine.TextValue("y")}}))
	other, err := srv.Create(ctx, "f", []syncengine.FieldWrite{{Name: "q1", Value: syncengine.TextValue("z")}})
	must(t, err)

	h, err := srv.History(ctx, id)
	must(t, err)
	type step struct {
		by    syncengine.ReplicaID
		field string
	}
	want := []step{{a.ID(), "q1"}, {a.ID(), "q2"}, {srv.ID(), "q1"}}
	if len(h) != len(want) {
		t.Fatalf("history has %d entries, want %d: %+v", len(h), len(want), h)
	}
	for i, e := range h {
		if e.Change.Record != id || e.Change.Dot.Replica != want[i].by || !hasField(e.Change, want[i].field) {
			t.Fatalf("entry %d: %+v, want a write of %s by %s", i, e.Change, want[i].field, want[i].by)
		}
		if i > 0 && e.Seq <= h[i-1].Seq {
			t.Fatalf("history out of log order: %d after %d", e.Seq, h[i-1].Seq)
		}
	}
	if h, err := srv.History(ctx, other); err != nil || len(h) != 1 {
		t.Fatalf("history of the other record: %d entries, %v", len(h), err)
	}
	if h, err := a.History(ctx, id); err != nil || len(h) != 0 {
		t.Fatalf("a replica without History listed %d entries (%v)", len(h), err)
	}
}

func hasField(c syncengine.Change, name string) bool {
	for _, f := range c.Fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
