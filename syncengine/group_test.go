package syncengine_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

// slowStore makes every transaction take a while after it is applied, as
// a durable commit waits for the disk: pushes that arrive meanwhile queue
// and are merged as a group.
type slowStore struct {
	syncengine.Store
	updates atomic.Int64
	delay   time.Duration // 2 ms unless set
}

func (s *slowStore) Update(ctx context.Context, fn func(syncengine.Tx) error) error {
	s.updates.Add(1)
	err := s.Store.Update(ctx, fn)
	time.Sleep(cmp.Or(s.delay, 2*time.Millisecond))
	return err
}

// counting is a device's direct line to a server, counting its pushes.
type counting struct {
	srv    *syncengine.Replica
	opts   []syncengine.ServeOption
	pushes *atomic.Int64
}

func (c counting) Push(ctx context.Context, p syncengine.Push) (syncengine.PushResult, error) {
	c.pushes.Add(1)
	return c.srv.Receive(ctx, p, c.opts...)
}

func (c counting) Pull(ctx context.Context, r syncengine.PullRequest) (syncengine.Page, error) {
	return c.srv.Page(ctx, r, c.opts...)
}

// TestConcurrentPushesGroup: devices editing shared records push at once
// to a server whose commits are slow, so their pushes merge in groups.
// One device's pushes are refused by the guard: its error reaches it alone,
// and none of its writes land, while every other device's writes do. The
// server then holds exactly what a server given the same pushes one by one
// holds.
func TestConcurrentPushesGroup(t *testing.T) {
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
	store := &slowStore{Store: memstore.New()}
	srv := open(store)
	devs := make([]*syncengine.Replica, 6)
	for i := range devs {
		devs[i] = open(memstore.New())
	}
	bad := devs[len(devs)-1]
	errRefused := errors.New("refused")
	guard := syncengine.WithGuard(func(_ syncengine.Tx, cs []syncengine.Change) error {
		for _, c := range cs {
			if c.Dot.Replica == bad.ID() {
				return errRefused
			}
		}
		return nil
	})
	var pushes atomic.Int64
	remote := counting{srv: srv, opts: []syncengine.ServeOption{guard}, pushes: &pushes}

	shared := make([]syncengine.RecordID, 3)
	for i := range shared {
		id, err := devs[0].Create(ctx, "f", []syncengine.FieldWrite{{Name: "a", Value: syncengine.IntValue(0)}})
		if err != nil {
			t.Fatal(err)
		}
		shared[i] = id
	}
	for _, d := range devs {
		if _, err := d.Sync(ctx, remote, syncengine.SyncOptions{}); err != nil && d != bad {
			t.Fatal(err)
		}
	}
	updatesBefore, pushesBefore := store.updates.Load(), pushes.Load()

	const rounds = 25
	var wg sync.WaitGroup
	errs := make([]error, len(devs))
	for i, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range rounds {
				id := shared[n%len(shared)]
				if n%5 == 4 {
					var err error
					if id, err = d.Create(ctx, "f", []syncengine.FieldWrite{{Name: "a", Value: syncengine.IntValue(int64(n))}}); err != nil {
						errs[i] = err
						return
					}
				}
				field := fmt.Sprintf("d%d", i%3) // devices 0 and 3, 1 and 4 write the same answers: conflicts
				if err := d.Set(ctx, id, []syncengine.FieldWrite{{Name: field, Value: syncengine.IntValue(int64(n))}}); err != nil {
					errs[i] = err
					return
				}
				if d == bad && n%5 != 0 {
					continue // a failed group is merged again push by push: keep those few
				}
				if _, err := d.Sync(ctx, remote, syncengine.SyncOptions{}); err != nil {
					if d == bad && errors.Is(err, errRefused) {
						continue
					}
					errs[i] = err
					return
				}
				if d == bad {
					errs[i] = errors.New("the refused device's sync succeeded")
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("device %d: %v", i, err)
		}
	}
	p, u := pushes.Load()-pushesBefore, store.updates.Load()-updatesBefore
	t.Logf("%d pushes merged in %d transactions", p, u)
	if u >= p {
		t.Errorf("%d pushes took %d transactions: none were grouped", p, u)
	}

	// The same pushes, one at a time, into a server of its own.
	oracle := open(memstore.New())
	one := counting{srv: oracle, opts: []syncengine.ServeOption{guard}, pushes: new(atomic.Int64)}
	for range 2 {
		for _, d := range devs[:len(devs)-1] {
			if _, err := d.Sync(ctx, one, syncengine.SyncOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Sync(ctx, remote, syncengine.SyncOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[syncengine.RecordID]*syncengine.Record{}
	if err := oracle.Records(ctx, func(r *syncengine.Record) error { want[r.ID] = r; return nil }); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := srv.Records(ctx, func(r *syncengine.Record) error {
		n++
		if w := want[r.ID]; w == nil || !w.Equal(r) {
			return fmt.Errorf("record %s differs from the one-by-one server's", r.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) || n != len(shared)+(len(devs)-1)*(rounds/5) {
		t.Fatalf("server holds %d records, the one-by-one server %d, want %d", n, len(want), len(shared)+(len(devs)-1)*(rounds/5))
	}
	for _, id := range shared {
		rec, err := srv.Record(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if w := rec.WroteBy(bad.ID()); w {
			t.Fatalf("record %s holds a write of the refused device", id)
		}
	}
}

// TestOnePushersBatchesGroup: a device's batches that arrive while the
// one before them is merged queue behind it, in order, and merge
// together, without waiting for its commit.
func TestOnePushersBatchesGroup(t *testing.T) {
	ctx := context.Background()
	store := &slowStore{Store: memstore.New(), delay: 200 * time.Millisecond}
	if err := syncengine.Init(ctx, store, syncengine.NewReplicaID()); err != nil {
		t.Fatal(err)
	}
	srv, err := syncengine.Open(ctx, store, syncengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store.updates.Store(0)
	from := syncengine.NewReplicaID()
	const per, batches = 100, 3
	push := func(k int) syncengine.Push {
		p := syncengine.Push{From: from, After: uint64(k * per), Through: uint64((k + 1) * per)}
		for i := range per {
			p.Changes = append(p.Changes, syncengine.Change{Record: syncengine.NewRecordID(), Form: "f", HLC: 1,
				Dot: syncengine.Dot{Replica: from, Counter: uint64(k*per + i + 1)}, Fields: []syncengine.FieldWrite{{Name: "a", Value: syncengine.IntValue(1)}}})
		}
		return p
	}
	var wg sync.WaitGroup
	res := make([]syncengine.PushResult, batches)
	errs := make([]error, batches)
	for k := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[k], errs[k] = srv.Receive(ctx, push(k))
		}()
		time.Sleep(20 * time.Millisecond) // in order, the first merging (its commit takes 200 ms)
	}
	wg.Wait()
	for k := range batches {
		if errs[k] != nil || res[k].Resend || res[k].Acknowledged != uint64((k+1)*per) {
			t.Fatalf("push %d: %+v %v", k, res[k], errs[k])
		}
	}
	if u := store.updates.Load(); u != 2 {
		t.Fatalf("%d pushes in %d transactions, want 2 (the first, then the two that queued behind it)", batches, u)
	}
	var head uint64
	srv.Store().View(ctx, func(tx syncengine.ReadTx) (err error) { head, err = tx.Head(); return })
	if head != per*batches {
		t.Fatalf("server log holds %d entries, want %d", head, per*batches)
	}
}
