package syncengine_test

import (
	"context"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

// line is a device's line to a server in the same process.
type line struct{ srv *syncengine.Replica }

func (d line) Push(ctx context.Context, p syncengine.Push) (syncengine.PushResult, error) {
	return d.srv.Receive(ctx, p)
}

func (d line) Pull(ctx context.Context, r syncengine.PullRequest) (syncengine.Page, error) {
	return d.srv.Page(ctx, r)
}

// TestCompactionLooksAtEditedRecords: compaction drops what edits of a
// record superseded once they are acknowledged, and keeps its mark on a
// record whose edit is not; a device whose log holds only new records
// besides has nothing else looked at. A device upgraded with the old
// whole-log mark still compacts.
func TestCompactionLooksAtEditedRecords(t *testing.T) {
	ctx := context.Background()
	clock := func() time.Time { return time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC) }
	open := func(s syncengine.Store) *syncengine.Replica {
		if err := syncengine.Init(ctx, s, syncengine.NewReplicaID()); err != nil {
			t.Fatal(err)
		}
		r, err := syncengine.Open(ctx, s, syncengine.Options{Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	srv := open(memstore.New())
	dev := open(memstore.New())
	remote := line{srv}
	sync := func() {
		t.Helper()
		if _, err := dev.Sync(ctx, remote, syncengine.SyncOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create := func() syncengine.RecordID {
		t.Helper()
		id, err := dev.Create(ctx, "f", []syncengine.FieldWrite{{Name: "a", Value: syncengine.IntValue(0)}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	edit := func(id syncengine.RecordID, n int) {
		t.Helper()
		for i := range n {
			if err := dev.Set(ctx, id, []syncengine.FieldWrite{{Name: "a", Value: syncengine.IntValue(int64(i + 1))}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	marks := func() int {
		n := 0
		dev.Store().View(ctx, func(tx syncengine.ReadTx) error {
			return tx.ScanMeta("log.edited/", func(string, []byte) error { n++; return nil })
		})
		return n
	}
	for range 50 {
		create()
	}
	edited, later := create(), create()
	edit(edited, 3)
	sync()
	edit(later, 2) // not acknowledged yet
	st, err := dev.CompactLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 1 || st.Dropped != 3 || marks() != 1 {
		t.Fatalf("compacted %+v, %d marks left; want 1 record, 3 entries dropped, the unacknowledged edit's mark", st, marks())
	}
	sync()
	if st, err = dev.CompactLog(ctx); err != nil || st.Records != 1 || st.Dropped != 2 || marks() != 0 {
		t.Fatalf("after the second sync: %+v %v, %d marks", st, err, marks())
	}

	// The old mark: a head past the compacted position, no record marks.
	edit(edited, 2)
	sync()
	err = dev.Store().Update(ctx, func(tx syncengine.Tx) error {
		var keys []string
		tx.ScanMeta("log.edited/", func(k string, _ []byte) error { keys = append(keys, k); return nil })
		for _, k := range keys {
			if err := tx.DeleteMeta(k); err != nil {
				return err
			}
		}
		head, err := tx.Head()
		if err != nil {
			return err
		}
		return tx.SetMeta("log.edited", []byte{0, 0, 0, 0, 0, 0, byte(head >> 8), byte(head)})
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, err = dev.CompactLog(ctx); err != nil || st.Dropped != 2 {
		t.Fatalf("a device with the old mark: %+v %v", st, err)
	}
}
