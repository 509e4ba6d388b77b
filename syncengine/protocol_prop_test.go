package syncengine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
	"github.com/tessera-survey/tessera/syncengine/memstore"
	"github.com/tessera-survey/tessera/syncengine/pgstore"
)

var errLost = errors.New("lost")

// flaky is a Remote whose requests are lost before the server sees them or
// whose answers are lost after the server applied them, following a fault
// schedule rapid drew up front on the test's goroutine (a sync's pushes
// run on goroutines of their own, where rapid may not draw).
type flaky struct {
	srv    *syncengine.Replica
	faults []int // per request: 0 lost before the server, 1 after, else delivered
	next   atomic.Int64
	on     atomic.Bool
}

func (f *flaky) fail(string) (before, after bool) {
	if !f.on.Load() {
		return false, false
	}
	i := f.next.Add(1) - 1
	if i >= int64(len(f.faults)) {
		return false, false
	}
	return f.faults[i] == 0, f.faults[i] == 1
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

// protocolStores are the stores the property runs on: the server's store
// is the one under test (the devices keep theirs in memory).
func protocolStores(t *testing.T) map[string]func(t *rapid.T) syncengine.Store {
	m := map[string]func(t *rapid.T) syncengine.Store{
		"memory": func(*rapid.T) syncengine.Store { return memstore.New() },
		"badger": func(t *rapid.T) syncengine.Store {
			s, err := badgerstore.Open(badgerstore.Options{InMemory: true, Profile: badgerstore.Server})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	url := os.Getenv("TESSERA_TEST_POSTGRES")
	if url == "" && os.Getenv("CI") != "" {
		t.Fatal("TESSERA_TEST_POSTGRES is not set: CI must run the PostgreSQL tests")
	}
	if url != "" {
		m["postgres"] = func(t *rapid.T) syncengine.Store {
			name := fmt.Sprintf("prop_%d_%d", time.Now().UnixNano(), rand.Int64())
			s, err := pgstore.Open(context.Background(), url, name)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.DropSchema(context.Background(), name) })
			return s
		}
	}
	return m
}

func openReplica(t *rapid.T, s syncengine.Store, clock func() time.Time) *syncengine.Replica {
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
	for name, open := range protocolStores(t) {
		t.Run(name, func(t *testing.T) { protocolConverges(t, open) })
	}
}

func protocolConverges(t *testing.T, open func(*rapid.T) syncengine.Store) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { return now }
		srv := openReplica(t, open(t), clock)
		remote := &flaky{srv: srv, faults: rapid.SliceOfN(rapid.IntRange(0, 5), 0, 400).Draw(t, "faults")}
		remote.on.Store(true)
		devs := []*syncengine.Replica{openReplica(t, memstore.New(), clock), openReplica(t, memstore.New(), clock), openReplica(t, memstore.New(), clock)}
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
		remote.on.Store(false)
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
