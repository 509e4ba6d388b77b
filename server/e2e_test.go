package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

// TestEndToEnd: a real server on loopback and three device stores make
// offline edits (same record different fields, same field, delete vs edit),
// sync in several orders, and all end identical with the expected
// conflicts; then a resolution on one device reaches everyone.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	orders := [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {1, 0, 2}}
	for _, order := range orders {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			srv := startServer(t, server.Config{})
			devs := []*fieldapp.Device{newDevice(t, srv.URL), newDevice(t, srv.URL), newDevice(t, srv.URL)}
			a, b, c := devs[0].Replica(), devs[1].Replica(), devs[2].Replica()
			h1, err := a.Create(ctx, "household", fw("size", "4", "head", "Amina"))
			if err != nil {
				t.Fatal(err)
			}
			h2, _ := a.Create(ctx, "household", fw("q3", "unsure"))
			h3, _ := a.Create(ctx, "household", fw("q1", "1"))
			for _, d := range devs {
				mustSync(t, d)
			}
			// Offline.
			must(t, a.Set(ctx, h1, fw("water", "well")))
			must(t, b.Set(ctx, h1, fw("fear", "high")))
			must(t, a.Set(ctx, h2, fw("q3", "no")))
			must(t, b.Set(ctx, h2, fw("q3", "yes")))
			must(t, c.Set(ctx, h2, fw("q3", "maybe")))
			must(t, a.Delete(ctx, h3))
			must(t, c.Set(ctx, h3, fw("q2", "late")))
			for range 2 {
				for _, i := range order {
					mustSync(t, devs[i])
				}
			}
			assertConverged(t, srv.Replica(), a, b, c)
			for _, r := range []*syncengine.Replica{srv.Replica(), a, b, c} {
				v := snapshot(t, r)
				r1, r2, r3 := v[h1.String()], v[h2.String()], v[h3.String()]
				if r1.Fields["water"].Value.String() != "well" || r1.Fields["fear"].Value.String() != "high" || len(r1.ConflictFields()) != 0 {
					t.Fatalf("%s: different fields did not merge cleanly: %+v", r.ID(), r1)
				}
				if got := values(r2.Fields["q3"]); !slices.Equal(got, []string{"maybe", "no", "yes"}) {
					t.Fatalf("%s: q3 conflict holds %v", r.ID(), got)
				}
				if !r3.DeleteConflict || r3.Fields["q2"].Value.String() != "late" {
					t.Fatalf("%s: delete vs edit: %+v", r.ID(), r3)
				}
			}
			// Resolution on one device.
			must(t, b.Resolve(ctx, h2, fw("q3", "agreed")))
			must(t, b.ResolveDelete(ctx, h3, true))
			for range 2 {
				for _, i := range order {
					mustSync(t, devs[i])
				}
			}
			assertConverged(t, srv.Replica(), a, b, c)
			entries, _, _, err := srv.Auth().AuditTrail(ctx, 0, 0)
			must(t, err)
			resolved := 0
			for _, e := range entries {
				if e.Action == "conflict-resolved" && strings.Contains(e.Detail, h2.String()) {
					resolved++
				}
			}
			if resolved != 1 {
				t.Fatalf("the server audited %d resolutions of q3, want 1", resolved)
			}
			v := snapshot(t, c)
			if f := v[h2.String()].Fields["q3"]; f.Value.String() != "agreed" || len(f.Conflicts) != 0 {
				t.Fatalf("resolution did not reach c: %+v", f)
			}
			if r3 := v[h3.String()]; r3.Deleted || r3.DeleteConflict || r3.Fields["q1"].Value.String() != "1" {
				t.Fatalf("restore did not reach c: %+v", r3)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoOpSyncIsOneRoundTrip: a sync with nothing new costs one request.
func TestNoOpSyncIsOneRoundTrip(t *testing.T) {
	srv := startServer(t, server.Config{})
	d := newDevice(t, srv.URL)
	if _, err := d.Replica().Create(context.Background(), "f", fw("a", "1")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, d)
	res := mustSync(t, d)
	if res.RoundTrips != 1 || res.Pushed != 0 || res.Pulled != 0 {
		t.Fatalf("no-op sync: %+v", res)
	}
}

// TestHub: device → hub → central converges both ways.
func TestHub(t *testing.T) {
	ctx := context.Background()
	central := startServer(t, server.Config{})
	hub := startServer(t, server.Config{Upstream: central.URL, UpstreamInterval: 100 * time.Millisecond})
	a := newDevice(t, hub.URL)
	c := newDevice(t, central.URL)
	id, err := a.Replica().Create(ctx, "household", fw("camp", "north"))
	must(t, err)
	mustSync(t, a)
	waitFor(t, "the hub to relay to central", func() bool {
		mustSync(t, c)
		_, err := c.Replica().Record(ctx, id)
		return err == nil
	})
	must(t, c.Replica().Set(ctx, id, fw("checked", "true")))
	mustSync(t, c)
	waitFor(t, "central's edit to reach the device through the hub", func() bool {
		mustSync(t, a)
		rec, err := a.Replica().Record(ctx, id)
		return err == nil && rec.Fields["checked"] != nil
	})
	must(t, hub.SyncUpstream(ctx))
	mustSync(t, a)
	mustSync(t, c)
	assertConverged(t, central.Replica(), hub.Replica(), a.Replica(), c.Replica())
}

// TestClockWarning: a device whose clock is far from the server's is told.
func TestClockWarning(t *testing.T) {
	srv := startServer(t, server.Config{Clock: func() time.Time { return time.Now().Add(3 * time.Hour) }})
	d := newDevice(t, srv.URL)
	res := mustSync(t, d)
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "clock") || res.ClockSkewMS < 2*3600*1000 {
		t.Fatalf("want a clock warning, got %+v", res)
	}
	ok := startServer(t, server.Config{})
	d2 := newDevice(t, ok.URL)
	if res := mustSync(t, d2); len(res.Warnings) != 0 {
		t.Fatalf("unexpected warning: %+v", res)
	}
}

// TestPipelinedPushSendsEachBatchOnce: with two batches in flight, the
// server orders them itself; nothing is sent twice.
func TestPipelinedPushSendsEachBatchOnce(t *testing.T) {
	for range 3 {
		srv := startServer(t, server.Config{})
		d := newDevice(t, srv.URL)
		recs := make([]syncengine.NewRecord, 5000)
		for i := range recs {
			recs[i] = syncengine.NewRecord{Form: "f", Fields: fw("i", fmt.Sprint(i))}
		}
		// A device store's transactions hold ~1,000 small records.
		for i := 0; i < len(recs); i += 1000 {
			if _, err := d.Replica().CreateMany(context.Background(), recs[i:i+1000]); err != nil {
				t.Fatal(err)
			}
		}
		res := mustSync(t, d)
		if want := 5000/syncengine.PushBatch + 1; res.Pushed != 5000 || res.RoundTrips != want {
			t.Fatalf("pushed %d changes in %d round trips, want 5000 in %d (pushes and 1 pull)", res.Pushed, res.RoundTrips, want)
		}
	}
}

// TestPushAfterPullNeedsNoResend: pulled changes move the device's push
// position locally; the next push must still match what the server holds
// (one push, no resend round trip).
func TestPushAfterPullNeedsNoResend(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	a, b := newDevice(t, srv.URL), newDevice(t, srv.URL)
	_, err := a.Replica().Create(ctx, "f", fw("x", "1"))
	must(t, err)
	mustSync(t, a)
	_, err = b.Replica().Create(ctx, "f", fw("x", "2"))
	must(t, err)
	mustSync(t, b)
	mustSync(t, a) // pulls b's record
	_, err = a.Replica().Create(ctx, "f", fw("x", "3"))
	must(t, err)
	if res := mustSync(t, a); res.Pushed != 1 || res.RoundTrips != 2 {
		t.Fatalf("push after pull: %+v, want 1 change in 1 push + 1 pull", res)
	}
	if n, err := a.Replica().Pending(ctx); err != nil || n != 0 {
		t.Fatalf("pending after sync: %d %v", n, err)
	}
}
