package syncengine_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tessera-survey/tessera/internal/residue"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// TestErasureReachesEveryStore (issue 19): a record edited on two devices
// is erased at the server. After one sync of everything no store holds any
// of its answers in any version Badger keeps, an edit made offline before
// the erasure arrived does not bring them back, and erasing twice is
// harmless.
func TestErasureReachesEveryStore(t *testing.T) {
	ctx := context.Background()
	open := func(name string, p badgerstore.Profile, history bool) (*syncengine.Replica, *badgerstore.Store, string) {
		dir := filepath.Join(t.TempDir(), name)
		s, err := badgerstore.Open(badgerstore.Options{Dir: dir, Profile: p})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := syncengine.Init(ctx, s, syncengine.NewReplicaID()); err != nil {
			t.Fatal(err)
		}
		r, err := syncengine.Open(ctx, s, syncengine.Options{History: history})
		if err != nil {
			t.Fatal(err)
		}
		return r, s, dir
	}
	srv, srvStore, srvDir := open("server", badgerstore.Server, true)
	d1, d1Store, d1Dir := open("d1", badgerstore.Device, false)
	d2, d2Store, d2Dir := open("d2", badgerstore.Device, false)
	sync := func(d *syncengine.Replica) {
		t.Helper()
		if _, err := d.Sync(ctx, direct1{srv}, syncengine.SyncOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	text := func(s string) []syncengine.FieldWrite {
		return []syncengine.FieldWrite{{Name: "story", Value: syncengine.TextValue(s)}}
	}
	id, err := d1.Create(ctx, "gbv@1", text("MARKER-first"))
	if err != nil {
		t.Fatal(err)
	}
	keep, err := d1.Create(ctx, "gbv@1", text("KEPT-answer"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"MARKER-second", "MARKER-third"} {
		if err := d1.Set(ctx, id, text(s)); err != nil {
			t.Fatal(err)
		}
	}
	sync(d1)
	sync(d2)
	if err := d2.Set(ctx, id, text("MARKER-offline")); err != nil { // offline, before the erasure
		t.Fatal(err)
	}
	if err := srv.Erase(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := srv.Erase(ctx, id); err != nil {
		t.Fatalf("erasing twice: %v", err)
	}
	sync(d1)
	sync(d2) // pushes the offline edit, pulls the erasure
	sync(d1)
	for name, r := range map[string]*syncengine.Replica{"server": srv, "d1": d1, "d2": d2} {
		rec, err := r.Record(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !rec.Erased() || len(rec.FieldNames()) != 0 {
			t.Fatalf("%s holds %v after the erasure", name, rec.Values())
		}
		if other, err := r.Record(ctx, keep); err != nil || other.Values()["story"].Str != "KEPT-answer" {
			t.Fatalf("%s lost the other record: %v %v", name, other, err)
		}
		if err := r.Set(ctx, id, text("MARKER-after")); err == nil {
			t.Fatalf("%s wrote into an erased record", name)
		}
	}
	for name, s := range map[string]*badgerstore.Store{"server": srvStore, "d1": d1Store, "d2": d2Store} {
		if n := residue.Versions(t, s.DB(), "MARKER"); n > 0 {
			t.Errorf("%s: %d versions of its store hold an erased answer", name, n)
		}
		if n := residue.Versions(t, s.DB(), "KEPT-answer"); n == 0 {
			t.Errorf("%s: the scan found not even the kept answer", name)
		}
	}
	// What is left on disk, read as bytes (these stores are not encrypted):
	// the value-log file that held the erased values was rewritten.
	for name, dir := range map[string]string{"server": srvDir, "d1": d1Dir, "d2": d2Dir} {
		for _, f := range residue.Files(t, dir, "MARKER") {
			t.Errorf("%s: %s still holds erased bytes", name, f)
		}
	}
}
