package syncengine_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

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
		if n := versionsHolding(t, s.DB(), "MARKER"); n > 0 {
			t.Errorf("%s: %d versions of its store hold an erased answer", name, n)
		}
		if n := versionsHolding(t, s.DB(), "KEPT-answer"); n == 0 {
			t.Errorf("%s: the scan found not even the kept answer", name)
		}
	}
	// What is left on disk, read as bytes (these stores are not encrypted):
	// the value-log file that held the erased values was rewritten.
	for name, dir := range map[string]string{"server": srvDir, "d1": d1Dir, "d2": d2Dir} {
		for _, f := range filesHolding(t, dir, "MARKER") {
			t.Errorf("%s: %s still holds erased bytes", name, f)
		}
	}
}

// versionsHolding counts the versions of keys (every version Badger keeps,
// deleted ones included) whose value holds marker.
func versionsHolding(t *testing.T, db *badger.DB, marker string) int {
	t.Helper()
	n := 0
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.AllVersions = true
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if bytes.Contains(v, []byte(marker)) {
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// filesHolding lists the files under dir whose bytes hold marker.
func filesHolding(t *testing.T, dir, marker string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(marker)) {
			out = append(out, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
