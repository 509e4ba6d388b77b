package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// postgresSchema creates a fresh schema in the test database and returns a
// --store URL that uses it.
func postgresSchema(t *testing.T) string {
	u := os.Getenv("TESSERA_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("TESSERA_TEST_POSTGRES is not set: CI must run the PostgreSQL tests")
		}
		t.Skip("TESSERA_TEST_POSTGRES is not set; run scripts/test to start PostgreSQL for these tests")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "e2e_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), u); err == nil {
			c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "search_path=" + schema
}

// TestSeveralServersOnePostgres: two surveyd processes share one PostgreSQL
// database; four devices, two on each, create and edit records and sync
// concurrently. Every device converges, and the shared change log holds
// every write exactly once with no gap.
func TestSeveralServersOnePostgres(t *testing.T) {
	store := postgresSchema(t)
	tmp := t.TempDir()
	s1 := startSurveyd(t, filepath.Join(tmp, "s1"), "127.0.0.1:0", "--store", store)
	s2 := startSurveyd(t, filepath.Join(tmp, "s2"), "127.0.0.1:0", "--store", store)
	devs := []string{filepath.Join(tmp, "a"), filepath.Join(tmp, "b"), filepath.Join(tmp, "c"), filepath.Join(tmp, "d")}
	for i, d := range devs {
		url := s1.URL
		if i%2 == 1 {
			url = s2.URL
		}
		mustFieldapp(t, d, "init", "--server", url)
		importN(t, d, 600)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for round := range 3 {
		for i, d := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := fieldapp(t, d, "record", "new", "household", fmt.Sprintf("round=%d", round), fmt.Sprintf("dev=%d", i)); r.err != nil {
					errs <- fmt.Errorf("%s: %v %s", d, r.err, r.stderr)
					return
				}
				if r := fieldapp(t, d, "sync"); r.err != nil {
					errs <- fmt.Errorf("%s sync: %v %s", d, r.err, r.stderr)
				}
			}()
		}
		wg.Wait()
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for range 2 {
		for _, d := range devs {
			mustFieldapp(t, d, "sync")
		}
	}
	const total = 4 * (600 + 3)
	if h1, h2 := health(t, s1.URL), health(t, s2.URL); h1 != total || h2 != total {
		t.Fatalf("shared log heads %v and %v, want %d each", h1, h2, total)
	}
	var first []recordJSON
	for i, d := range devs {
		recs := listRecords(t, d)
		if len(recs) != total {
			t.Fatalf("device %d holds %d records, want %d", i, len(recs), total)
		}
		if i == 0 {
			first = recs
			continue
		}
		for j := range recs {
			if recs[j].ID != first[j].ID || fmt.Sprint(recs[j].Fields) != fmt.Sprint(first[j].Fields) {
				t.Fatalf("device %d differs from device 0 at record %s", i, recs[j].ID)
			}
		}
	}
}
