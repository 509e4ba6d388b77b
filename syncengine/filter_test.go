package syncengine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

// TestPullFilterErrorFailsThePull: a filter that cannot decide (its store
// read failed) fails the page; the cursor does not pass the change, and the
// next pull delivers it.
func TestPullFilterErrorFailsThePull(t *testing.T) {
	ctx := context.Background()
	open := func() *syncengine.Replica {
		s := memstore.New()
		if err := syncengine.Init(ctx, s, syncengine.NewReplicaID()); err != nil {
			t.Fatal(err)
		}
		r, err := syncengine.Open(ctx, s, syncengine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	srv, dev := open(), open()
	id, err := srv.Create(ctx, "f", []syncengine.FieldWrite{{Name: "a", Value: syncengine.IntValue(1)}})
	if err != nil {
		t.Fatal(err)
	}
	errRead := errors.New("store read failed")
	fail := true
	filter := syncengine.WithFilter(func(tx syncengine.ReadTx, c *syncengine.Change) (bool, error) {
		if fail {
			return false, errRead
		}
		return true, nil
	})
	req := syncengine.PullRequest{For: dev.ID()}
	if _, err := srv.Page(ctx, req, filter); !errors.Is(err, errRead) {
		t.Fatalf("pull with a failing filter: %v, want the filter's error", err)
	}
	fail = false
	page, err := srv.Page(ctx, req, filter)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 1 || page.Changes[0].Record != id {
		t.Fatalf("the next pull delivered %d changes, want the record's one", len(page.Changes))
	}
}
