package syncengine_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tessera-survey/tessera/internal/residue"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

// TestForgetAfterSend (issue 19): a device forgets a sent record. Its
// answers leave every version of the device's store (and its raw files);
// an unsent record is never forgotten; an edit made at the server later
// merges into the stub and brings back only what it wrote; the server
// keeps everything.
func TestForgetAfterSend(t *testing.T) {
	ctx := context.Background()
	srvStore := memstore.New()
	if err := syncengine.Init(ctx, srvStore, syncengine.NewReplicaID()); err != nil {
		t.Fatal(err)
	}
	srv, err := syncengine.Open(ctx, srvStore, syncengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "device")
	st, err := badgerstore.Open(badgerstore.Options{Dir: dir, Profile: badgerstore.Device})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := syncengine.Init(ctx, st, syncengine.NewReplicaID()); err != nil {
		t.Fatal(err)
	}
	dev, err := syncengine.Open(ctx, st, syncengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := func(name, v string) []syncengine.FieldWrite {
		return []syncengine.FieldWrite{{Name: name, Value: syncengine.TextValue(v)}}
	}
	sent, err := dev.Create(ctx, "f@1", append(w("story", "MARKER-story"), w("place", "MARKER-place")...))
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Set(ctx, sent, w("story", "MARKER-story2")); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Sync(ctx, direct1{srv}, syncengine.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	unsent, err := dev.Create(ctx, "f@1", w("story", "UNSENT-answer"))
	if err != nil {
		t.Fatal(err)
	}
	all := func(*syncengine.Record) bool { return true }
	fs, err := dev.Forget(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	if fs != (syncengine.ForgetStats{Forgotten: 1, Holding: 1, Unsent: 1, Stubs: 1}) {
		t.Fatalf("forget: %+v", fs)
	}
	rec, err := dev.Record(ctx, sent)
	if err != nil || len(rec.FieldNames()) != 0 {
		t.Fatalf("the forgotten record holds %v (%v)", rec.Values(), err)
	}
	if got, err := dev.Forgotten(ctx); !got[sent] || got[unsent] || err != nil {
		t.Fatalf("forgotten: %v %v", got, err)
	}
	if n := residue.Versions(t, st.DB(), "MARKER"); n > 0 {
		t.Errorf("%d versions of the device store hold a sent answer", n)
	}
	if n := residue.Versions(t, st.DB(), "UNSENT-answer"); n == 0 {
		t.Errorf("the unsent answer is gone")
	}
	for _, f := range residue.Files(t, dir, "MARKER") {
		t.Errorf("%s still holds a sent answer", f)
	}
	// The server keeps it; an edit there merges into the stub.
	if err := srv.Set(ctx, sent, w("note", "follow-up")); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Sync(ctx, direct1{srv}, syncengine.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, _ = dev.Record(ctx, sent)
	if got := rec.Values(); len(got) != 1 || got["note"].Str != "follow-up" {
		t.Fatalf("after the server's edit the device holds %v", got)
	}
	// The device's own edit of the stub supersedes what it had sent.
	if err := dev.Set(ctx, sent, w("story", "revised")); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Sync(ctx, direct1{srv}, syncengine.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	srec, _ := srv.Record(ctx, sent)
	if got := srec.Values(); got["story"].Str != "revised" || got["place"].Str != "MARKER-place" || got["note"].Str != "follow-up" || len(srec.Conflicts()) > 0 {
		t.Fatalf("server: %v conflicts %v", got, srec.Conflicts())
	}
	if _, err := dev.Record(ctx, unsent); err != nil {
		t.Fatal(err)
	}
}
