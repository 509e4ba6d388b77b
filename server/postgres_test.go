package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine/pgstore"
)

// TestEndToEndPostgres runs three devices' offline edits and syncs against
// a server kept in PostgreSQL: the same expectations as on Badger.
func TestEndToEndPostgres(t *testing.T) {
	url := os.Getenv("TESSERA_TEST_POSTGRES")
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("TESSERA_TEST_POSTGRES is not set: CI must run the PostgreSQL tests")
		}
		t.Skip("TESSERA_TEST_POSTGRES is not set; run scripts/test to start PostgreSQL")
	}
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "srv_" + hex.EncodeToString(b)
	st, err := pgstore.Open(ctx, url, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := pgstore.Open(ctx, url, ""); err == nil {
			s.DropSchema(ctx, schema)
			s.Close()
		}
	})
	srv := startServer(t, server.Config{Store: st})
	a, b2, c := newDevice(t, srv.URL), newDevice(t, srv.URL), newDevice(t, srv.URL)
	h, err := a.Replica().Create(ctx, "household", fw("q3", "unsure", "size", "4"))
	must(t, err)
	mustSync(t, a)
	mustSync(t, b2)
	mustSync(t, c)
	must(t, a.Replica().Set(ctx, h, fw("q3", "no")))
	must(t, b2.Replica().Set(ctx, h, fw("q3", "yes")))
	must(t, c.Replica().Set(ctx, h, fw("water", "well")))
	for range 2 {
		mustSync(t, c)
		mustSync(t, b2)
		mustSync(t, a)
	}
	assertConverged(t, srv.Replica(), a.Replica(), b2.Replica(), c.Replica())
	v := snapshot(t, srv.Replica())[h.String()]
	if len(v.Fields["q3"].Conflicts) != 2 || v.Fields["water"].Value.String() != "well" {
		t.Fatalf("merged state on PostgreSQL: %+v", v)
	}
}
