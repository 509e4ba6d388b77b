package syncengine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

var errLost = errors.New("lost")

// flaky is a Remote whose requests are lost before the server sees them or
// whose answers are lost after the server applied them, as rapid decides.
type flaky struct {
	t   *rapid.T
	srv *syncengine.Replica
	on  bool
}

func (f *flaky) fail(label string) (before, after bool) {
	if !f.on {
		return false, false
	}
	switch rapid.IntRange(0, 5).Draw(f.t, label) {
	case 0:
		return true, false
	case 1:
		return false, true
	}
	return false, false
}

func (f *flaky) Push(ctx context.Context, p syncengine.Push) (syncengine.PushResult, error) {
	before, after := f.fail("push fault")
	if before {
		return syncengine.PushResult{}, errLost
	}
	res, err := f.srv.Receive(ctx, p)
	if after {
		return syncengine.PushResult{}, errLost
	}
	return res, err
}

func (f *flaky) Pull(ctx context.Context, r syncengine.PullRequest) (syncengine.Page, error) {
	before, after := f.fail("pull fault")
	if before {
		return syncengine.Page{}, errLost
	}
	page, err := f.srv.Page(ctx, r)
	if after {
		return syncengine.Page{}, errLost
	}
	return page, err
}

func openReplica(t *rapid.T, clock func() time.Time) *syncengine.Replica {
	s, err := badgerstore.Open(badgerstore.Options{InMemory: true, Profile: badgerstore.Device})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := syncengine.Init(ctx, s, syncengine.NewReplicaID()); err != nil {
		t.Fatal(err)
	}
	r, err := syncengine.Open(ctx, s, syncengine.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestProtocolConverges: three devices edit, delete and resolve at random
// while syncs lose requests and answers at random (before or after the
// server applied them) and pages are tiny. Once the faults stop and
// everyone syncs twice, every replica holds the same records and every
// write that was made is in the server's log exactly once.
func TestProtocolConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { return now }
		srv := openReplica(t, clock)
		remote := &flaky{t: t, srv: srv, on: true}
		devs := []*syncengine.Replica{openReplica(t, clock), openReplica(t, clock), openReplica(t, clock)}
		var ids []syncengine.RecordID
		writes := 0
		for range rapid.IntRange(1, 40).Draw(t, "steps") {
			now = now.Add(time.Second)
			d := devs[rapid.IntRange(0, len(devs)-1).Draw(t, "device")]
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op <= 1 || len(ids) == 0:
				id, err := d.Create(ctx, "f", []syncengine.FieldWrite{{Name: "a", Value: syncengine.IntValue(1)}})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
				writes++
			case op <= 5:
				id := rapid.SampledFrom(ids).Draw(t, "record")
				f := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "field")
				err := d.Set(ctx, id, []syncengine.FieldWrite{{Name: f, Value: syncengine.IntValue(int64(rapid.IntRange(0, 5).Draw(t, "v")))}})
				if err == nil {
					writes++
				} else if !errors.Is(err, syncengine.ErrNotFound) && !errors.Is(err, syncengine.ErrDeleted) {
					t.Fatal(err)
				}
			case op == 6:
				if err := d.Delete(ctx, rapid.SampledFrom(ids).Draw(t, "record")); err == nil {
					writes++
				}
			case op == 7:
				id := rapid.SampledFrom(ids).Draw(t, "record")
				if rec, err := d.Record(ctx, id); err == nil {
					for _, f := range rec.Conflicts() {
						if d.Resolve(ctx, id, []syncengine.FieldWrite{{Name: f, Value: syncengine.IntValue(9)}}) == nil {
							writes++
						}
					}
				}
			default:
				_, _ = d.Sync(ctx, remote, syncengine.SyncOptions{PageLimit: rapid.IntRange(1, 4).Draw(t, "page")})
			}
		}
		remote.on = false
		for range 2 {
			for _, d := range devs {
				if _, err := d.Sync(ctx, remote, syncengine.SyncOptions{PageLimit: 3}); err != nil {
					t.Fatal(err)
				}
			}
		}
		want := map[syncengine.RecordID]*syncengine.Record{}
		srv.Records(ctx, func(r *syncengine.Record) error { want[r.ID] = r; return nil })
		for i, d := range devs {
			n := 0
			err := d.Records(ctx, func(r *syncengine.Record) error {
				n++
				if w := want[r.ID]; w == nil || !w.Equal(r) {
					return fmt.Errorf("device %d: record %s differs from the server's", i, r.ID)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != len(want) {
				t.Fatalf("device %d holds %d records, the server %d", i, n, len(want))
			}
		}
		var head uint64
		srv.Store().View(ctx, func(tx syncengine.ReadTx) (err error) { head, err = tx.Head(); return })
		if head != uint64(writes) {
			t.Fatalf("server log holds %d changes; %d writes were made", head, writes)
		}
	})
}
