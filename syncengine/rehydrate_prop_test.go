package syncengine_test

import (
	"context"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

// feed is an upstream that acknowledges every push and answers one pull
// with the changes it was given (a server resending a record's history).
type feed []syncengine.Change

func (f feed) Push(_ context.Context, p syncengine.Push) (syncengine.PushResult, error) {
	return syncengine.PushResult{Acknowledged: p.Through}, nil
}

func (f feed) Pull(_ context.Context, r syncengine.PullRequest) (syncengine.Page, error) {
	return syncengine.Page{Changes: f, Cursor: r.Cursor + 1}, nil
}

func deliver(t *rapid.T, r *syncengine.Replica, cs []syncengine.Change) {
	if _, err := r.Sync(context.Background(), feed(cs), syncengine.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
}

// own returns the changes r wrote itself, from its log.
func own(t *rapid.T, r *syncengine.Replica) []syncengine.Change {
	var out []syncengine.Change
	err := r.Store().View(context.Background(), func(tx syncengine.ReadTx) error {
		return tx.ScanLog(0, func(e syncengine.LogEntry, _ int) error {
			if e.Change.Dot.Replica == r.ID() {
				out = append(out, e.Change)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestForgottenRecordTakesBackItsAnswers: a device forgets a record part
// way through receiving its changes (in any order). Changes arriving after
// the forgetting merge as usual; once the whole history is sent again (a
// lead assigned the record back to the device), the device holds exactly
// the answers, conflicts included, of a replica that forgot nothing.
func TestForgottenRecordTakesBackItsAnswers(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		n := rapid.IntRange(2, 3).Draw(t, "writers")
		ws := make([]*syncengine.Replica, n)
		for i := range ws {
			ws[i] = openReplica(t, memstore.New(), nil)
		}
		id, err := ws[0].Create(ctx, "f@1", []syncengine.FieldWrite{{Name: "q1", Value: syncengine.IntValue(0)}})
		if err != nil {
			t.Fatal(err)
		}
		known := own(t, ws[0])
		for i := range rapid.IntRange(1, 20).Draw(t, "steps") {
			w := ws[rapid.IntRange(0, n-1).Draw(t, "who")]
			if rapid.Bool().Draw(t, "learn") {
				deliver(t, w, rapid.SliceOfN(rapid.SampledFrom(known), 1, 4).Draw(t, "seen"))
				continue
			}
			if _, err := w.Record(ctx, id); err != nil {
				deliver(t, w, known[:1])
			}
			name := rapid.SampledFrom([]string{"q1", "q2", "q3"}).Draw(t, "field")
			if err := w.Set(ctx, id, []syncengine.FieldWrite{{Name: name, Value: syncengine.IntValue(int64(i + 1))}}); err != nil {
				t.Fatal(err)
			}
			known = nil
			for _, w := range ws {
				known = append(known, own(t, w)...)
			}
		}
		order := rapid.Permutation(known).Draw(t, "order")
		cut := rapid.IntRange(1, len(order)).Draw(t, "forget at")
		dev, full := openReplica(t, memstore.New(), nil), openReplica(t, memstore.New(), nil)
		deliver(t, full, order)
		deliver(t, dev, order[:cut])
		if _, err := dev.Forget(ctx, func(*syncengine.Record) bool { return true }); err != nil {
			t.Fatal(err)
		}
		if cut < len(order) {
			deliver(t, dev, order[cut:])
		}
		deliver(t, dev, rapid.Permutation(order).Draw(t, "resent"))
		got, err := dev.Record(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want, err := full.Record(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"q1", "q2", "q3"} {
			var g, w []syncengine.Entry
			if r := got.Fields[name]; r != nil {
				g = r.Entries
			}
			if r := want.Fields[name]; r != nil {
				w = r.Entries
			}
			if !slices.Equal(g, w) {
				t.Fatalf("%s: the device holds %v after the resend, the full replica %v", name, g, w)
			}
		}
		if f, err := dev.Forgotten(ctx); err != nil || f[id] {
			t.Fatalf("the record is still marked forgotten (%v)", err)
		}
	})
}
