package syncengine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

// exchange is what a server does with a bundle: merge its pushes in order
// (stopping at a resend) and page its log from the bundle's pull position.
func exchange(t *rapid.T, srv *syncengine.Replica, out syncengine.Outgoing, limit int) syncengine.Reply {
	ctx := context.Background()
	var rep syncengine.Reply
	for _, p := range out.Pushes {
		res, err := srv.Receive(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		rep.Acknowledged, rep.Resend = res.Acknowledged, res.Resend
		if res.Resend {
			break
		}
	}
	req := out.Pull
	req.Limit = limit
	for {
		page, err := srv.Page(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		rep.Pages = append(rep.Pages, syncengine.ReplyPage{From: req.Cursor, FromDot: req.CursorDot, Page: page})
		if !page.More || page.Reset {
			return rep
		}
		req.Cursor, req.CursorDot = page.Cursor, page.CursorDot
	}
}

// TestBundlesConverge: devices edit at random and reach the server by
// network syncs and by bundles whose replies come back late, twice, out
// of order or never, and whose bundles are cut short (a limit). Once
// everyone syncs, every replica holds the server's records and every
// write is in the server's log exactly once.
func TestBundlesConverge(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { return now }
		srv := openReplica(t, memstore.New(), clock)
		devs := []*syncengine.Replica{openReplica(t, memstore.New(), clock), openReplica(t, memstore.New(), clock)}
		replies := make([][]syncengine.Reply, len(devs)) // made, not yet applied
		var ids []syncengine.RecordID
		writes := 0
		for range rapid.IntRange(1, 50).Draw(t, "steps") {
			now = now.Add(time.Second)
			i := rapid.IntRange(0, len(devs)-1).Draw(t, "device")
			d := devs[i]
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op <= 2 || len(ids) == 0:
				id, err := d.Create(ctx, "f", []syncengine.FieldWrite{{Name: "a", Value: syncengine.IntValue(1)}})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
				writes++
			case op <= 4:
				id := rapid.SampledFrom(ids).Draw(t, "record")
				if d.Set(ctx, id, []syncengine.FieldWrite{{Name: "b", Value: syncengine.IntValue(int64(op))}}) == nil {
					writes++
				}
			case op == 5:
				if _, err := d.Sync(ctx, direct1{srv}, syncengine.SyncOptions{PageLimit: 2}); err != nil {
					t.Fatal(err)
				}
			case op <= 7: // export a bundle; the server answers it
				out, err := d.Outgoing(ctx, rapid.IntRange(0, 3).Draw(t, "bundle limit"))
				if err != nil {
					t.Fatal(err)
				}
				replies[i] = append(replies[i], exchange(t, srv, out, rapid.IntRange(1, 3).Draw(t, "page")))
			default: // a reply comes back: any of those made, maybe again
				if len(replies[i]) == 0 {
					continue
				}
				k := rapid.IntRange(0, len(replies[i])-1).Draw(t, "reply")
				if _, err := d.ApplyReply(ctx, replies[i][k]); err != nil {
					t.Fatal(err)
				}
				if !rapid.Bool().Draw(t, "keep it") {
					replies[i] = append(replies[i][:k], replies[i][k+1:]...)
				}
			}
		}
		for range 2 {
			for _, d := range devs {
				if _, err := d.Sync(ctx, direct1{srv}, syncengine.SyncOptions{PageLimit: 3}); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Late replies after everything: harmless.
		for i, rs := range replies {
			for _, r := range rs {
				if _, err := devs[i].ApplyReply(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, d := range devs {
			if _, err := d.Sync(ctx, direct1{srv}, syncengine.SyncOptions{PageLimit: 3}); err != nil {
				t.Fatal(err)
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
			if p, _ := d.Pending(ctx); p != 0 {
				t.Fatalf("device %d still has %d pending", i, p)
			}
		}
		var head uint64
		srv.Store().View(ctx, func(tx syncengine.ReadTx) (err error) { head, err = tx.Head(); return })
		if head != uint64(writes) {
			t.Fatalf("server log holds %d changes; %d writes were made", head, writes)
		}
	})
}

// TestBundleAlone: with no network at all, a bundle and its reply carry a
// device's interviews to the server and the server's back; the pending
// count drops to zero, and the same reply again changes nothing.
func TestBundleAlone(t *testing.T) {
	ctx := context.Background()
	srv, dev := newRep(t), newRep(t)
	for range 5 {
		if _, err := dev.Create(ctx, "f", []syncengine.FieldWrite{{Name: "a", Value: syncengine.IntValue(1)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Create(ctx, "f", []syncengine.FieldWrite{{Name: "a", Value: syncengine.IntValue(2)}}); err != nil {
		t.Fatal(err)
	}
	out, err := dev.Outgoing(ctx, 0)
	if err != nil || len(out.Pushes) != 1 || len(out.Pushes[0].Changes) != 5 {
		t.Fatalf("outgoing: %+v %v", out, err)
	}
	if p, _ := dev.Pending(ctx); p != 5 {
		t.Fatalf("exporting moved the pending count: %d", p)
	}
	rep := exchangeT(t, srv, out)
	st, err := dev.ApplyReply(ctx, rep)
	if err != nil || !st.Acknowledged || st.Applied != 1 {
		t.Fatalf("reply: %+v %v", st, err)
	}
	if p, _ := dev.Pending(ctx); p != 0 {
		t.Fatalf("%d pending after the reply", p)
	}
	if st, err := dev.ApplyReply(ctx, rep); err != nil || st.Acknowledged || st.Applied != 0 || st.Pages != 0 {
		t.Fatalf("the same reply again: %+v %v", st, err)
	}
	bad := rep
	bad.Acknowledged = 1 << 40
	if _, err := dev.ApplyReply(ctx, bad); err == nil {
		t.Fatal("a reply acknowledging past the log was applied")
	}
}

func exchangeT(t *testing.T, srv *syncengine.Replica, out syncengine.Outgoing) syncengine.Reply {
	var rep syncengine.Reply
	ctx := context.Background()
	for _, p := range out.Pushes {
		res, err := srv.Receive(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		rep.Acknowledged = res.Acknowledged
	}
	page, err := srv.Page(ctx, out.Pull)
	if err != nil {
		t.Fatal(err)
	}
	rep.Pages = []syncengine.ReplyPage{{From: out.Pull.Cursor, FromDot: out.Pull.CursorDot, Page: page}}
	return rep
}

func newRep(t *testing.T) *syncengine.Replica {
	s := memstore.New()
	t.Cleanup(func() { s.Close() })
	if err := syncengine.Init(context.Background(), s, syncengine.NewReplicaID()); err != nil {
		t.Fatal(err)
	}
	r, err := syncengine.Open(context.Background(), s, syncengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type direct1 struct{ srv *syncengine.Replica }

func (d direct1) Push(ctx context.Context, p syncengine.Push) (syncengine.PushResult, error) {
	return d.srv.Receive(ctx, p)
}
func (d direct1) Pull(ctx context.Context, r syncengine.PullRequest) (syncengine.Page, error) {
	return d.srv.Page(ctx, r)
}
