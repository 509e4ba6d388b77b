package badgerstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
	"github.com/tessera-survey/tessera/syncengine/storetest"
)

func TestContract(t *testing.T) {
	for _, p := range []struct {
		name    string
		profile badgerstore.Profile
		key     []byte
	}{
		{"Server", badgerstore.Server, nil},
		{"DeviceEncrypted", badgerstore.Device, []byte("0123456789abcdef0123456789abcdef")},
	} {
		t.Run(p.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, dir string) syncengine.Store {
				s, err := badgerstore.Open(badgerstore.Options{Dir: dir, Profile: p.profile, EncryptionKey: p.key})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}, func(t *testing.T) string { return filepath.Join(t.TempDir(), "db") })
		})
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := badgerstore.Open(badgerstore.Options{Dir: dir, Profile: badgerstore.Device})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := badgerstore.Open(badgerstore.Options{Dir: dir, Profile: badgerstore.Device}); err == nil {
		t.Fatal("a second Open of the same directory succeeded")
	}
}

// TestTornFiles: a process killed between creating a write-ahead or value
// log file and sizing it leaves it empty; the store must still open, with
// its data.
func TestTornFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key := []byte("0123456789abcdef0123456789abcdef")
	s, err := badgerstore.Open(badgerstore.Options{Dir: dir, Profile: badgerstore.Device, EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx syncengine.Tx) error { return tx.SetMeta("k", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, name := range []string{"00001.mem", "00007.mem", "000042.vlog"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = badgerstore.Open(badgerstore.Options{Dir: dir, Profile: badgerstore.Device, EncryptionKey: key})
	if err != nil {
		t.Fatalf("open with empty log files: %v", err)
	}
	defer s.Close()
	if err := s.View(ctx, func(tx syncengine.ReadTx) error {
		v, err := tx.Meta("k")
		if err == nil && string(v) != "v" {
			t.Errorf("meta = %q", v)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), Profile: badgerstore.Device})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // a second Close must not panic
}
