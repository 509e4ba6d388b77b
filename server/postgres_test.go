package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/pgstore"
)

// pgStore opens a PostgreSQL store in a schema of its own, dropped when
// the test ends; it returns the connection URL and the schema too.
func pgStore(t *testing.T) (*pgstore.Store, string, string) {
	t.Helper()
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
	return st, url, schema
}

// TestEndToEndPostgres runs three devices' offline edits and syncs against
// a server kept in PostgreSQL: the same expectations as on Badger.
func TestEndToEndPostgres(t *testing.T) {
	ctx := context.Background()
	st, _, _ := pgStore(t)
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

// TestErasurePostgres (issue 19): on a server kept in PostgreSQL, an
// erased record's answers are in no row of the store's tables (records,
// change log, meta) once the erasure is made, and a device's edit made
// before it arrived brings nothing back.
func TestErasurePostgres(t *testing.T) {
	ctx := context.Background()
	st, url, schema := pgStore(t)
	srv := startServer(t, server.Config{Store: st})
	a, late := newDevice(t, srv.URL), newDevice(t, srv.URL)
	id, err := a.Replica().Create(ctx, "household", fw("story", "MARKER-1", "size", "4"))
	must(t, err)
	must(t, a.Replica().Set(ctx, id, fw("story", "MARKER-2")))
	mustSync(t, a)
	mustSync(t, late)
	must(t, late.Replica().Set(ctx, id, fw("story", "MARKER-offline")))
	cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Bearer "+adminSession(t, srv)))
	must(t, err)
	defer cl.Close()
	if _, err := cl.Review().EraseRecord(ctx, &tesserav1.EraseRecordRequest{Record: id.String(), Reason: "asked"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, late)
	mustSync(t, a)
	rows := func() int {
		db, err := pgx.Connect(ctx, url)
		must(t, err)
		defer db.Close(ctx)
		n := 0
		for _, q := range []string{"SELECT count(*) FROM %s.records WHERE position('MARKER'::bytea IN state) > 0",
			"SELECT count(*) FROM %s.log WHERE position('MARKER'::bytea IN entry) > 0",
			"SELECT count(*) FROM %s.meta WHERE position('MARKER'::bytea IN value) > 0"} {
			var c int
			must(t, db.QueryRow(ctx, fmt.Sprintf(q, pgx.Identifier{schema}.Sanitize())).Scan(&c))
			n += c
		}
		return n
	}
	if n := rows(); n > 0 {
		t.Fatalf("%d rows of the PostgreSQL store hold erased answers", n)
	}
	for _, r := range []*syncengine.Replica{srv.Replica(), a.Replica(), late.Replica()} {
		rec, err := r.Record(ctx, id)
		must(t, err)
		if !rec.Erased() || len(rec.FieldNames()) != 0 {
			t.Fatalf("%s holds %v after the erasure", r.ID(), rec.Values())
		}
	}
}
