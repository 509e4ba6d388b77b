package forms

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

// TestXFormWrittenOncePerVersion (issue 15): publishing stores the
// version's XForm; it is the same bytes on every read, from a fresh
// registry over the same store too, and a version stored before XForms
// were written gets one on first read that never changes after.
func TestXFormWrittenOncePerVersion(t *testing.T) {
	ctx := context.Background()
	b, err := os.ReadFile("../examples/forms/community-security.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	reg := NewRegistry(store)
	info, _, err := reg.Publish(ctx, b, "community_security", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := reg.Form(ctx, info.Key())
	if err != nil {
		t.Fatal(err)
	}
	want, err := f.XForm()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, got, err := NewRegistry(store).XForm(ctx, info.ID, "")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %d: %d bytes, %v", i, len(got), err)
		}
	}
	// Stored by an earlier Tessera: no XForm kept with the version.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.Update(ctx, func(tx syncengine.Tx) error { return tx.DeleteMeta(metaFormXForm + info.Key()) }))
	_, first, err := reg.XForm(ctx, info.ID, info.Version)
	must(err)
	must(store.Update(ctx, func(tx syncengine.Tx) error {
		return tx.SetMeta(metaFormXForm+info.Key(), append([]byte(nil), first...))
	}))
	_, second, err := NewRegistry(store).XForm(ctx, info.ID, info.Version)
	if err != nil || !bytes.Equal(first, second) || !bytes.Equal(first, want) {
		t.Fatalf("the XForm written on first read changed: %v", err)
	}
	var kept []byte
	must(store.View(ctx, func(tx syncengine.ReadTx) error { kept, err = tx.Meta(metaFormXForm + info.Key()); return err }))
	if !bytes.Equal(kept, first) {
		t.Fatal("the XForm made on first read was not stored")
	}
	if _, _, err := reg.XForm(ctx, info.ID, "nope"); err == nil {
		t.Fatal("an unknown version has an XForm")
	}
}
