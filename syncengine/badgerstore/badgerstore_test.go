package badgerstore_test

import (
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
