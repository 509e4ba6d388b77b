package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/tessera-survey/tessera/media/mediatest"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/pgstore"
	"github.com/tessera-survey/tessera/syncengine/storetest"
)

// PostgresURL returns the test database (TESSERA_TEST_POSTGRES, which
// scripts/test sets after starting PostgreSQL). Without it the PostgreSQL
// tests are skipped on a developer's machine and fail in CI.
func PostgresURL(t testing.TB) string {
	u := os.Getenv("TESSERA_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("TESSERA_TEST_POSTGRES is not set: CI must run the PostgreSQL tests (scripts/test starts PostgreSQL)")
		}
		t.Skip("TESSERA_TEST_POSTGRES is not set; run scripts/test to start PostgreSQL for these tests")
	}
	return u
}

func schema() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "t_" + hex.EncodeToString(b)
}

func TestContract(t *testing.T) {
	url := PostgresURL(t)
	storetest.Run(t, func(t *testing.T, key string) syncengine.Store {
		s, err := pgstore.Open(context.Background(), url, key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, func(t *testing.T) string { return newSchema(t, url) })
}

// newSchema names a fresh schema and drops it when the test ends.
func newSchema(t *testing.T, url string) string {
	name := schema()
	t.Cleanup(func() {
		if s, err := pgstore.Open(context.Background(), url, ""); err == nil {
			s.DropSchema(context.Background(), name)
			s.Close()
		}
	})
	return name
}

func TestMediaContract(t *testing.T) {
	url := PostgresURL(t)
	mediatest.Run(t, func(t *testing.T) syncengine.Store {
		s, err := pgstore.Open(context.Background(), url, newSchema(t, url))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
