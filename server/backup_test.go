package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

// TestBackupSealed (issue 18): a sealed backup with any one byte altered,
// frames swapped, or bytes added after its end is refused whole, leaving
// nothing in the folder; the untouched one restores the record.
func TestBackupSealed(t *testing.T) {
	ctx := context.Background()
	const pass = "a long enough passphrase"
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	fixed := func(bool) (string, error) { return pass, nil }
	key, err := server.StoreKey(data, true, fixed)
	must(t, err)
	srv, err := server.New(ctx, server.Config{DataDir: data, EncryptionKey: key})
	must(t, err)
	// Enough records for a backup of several frames.
	big := string(bytes.Repeat([]byte("0123456789abcdef"), 1<<8))
	var kvs []string
	for i := range 40 {
		kvs = append(kvs, fmt.Sprintf("q%d", i), big)
	}
	var id syncengine.RecordID
	for range 200 {
		id, err = srv.Replica().Create(ctx, "f@1", fw(kvs...))
		must(t, err)
	}
	must(t, srv.Close())
	if _, err := server.New(ctx, server.Config{DataDir: data}); !errors.Is(err, server.ErrNoPassphrase) {
		t.Fatalf("opened without its key: %v", err)
	}
	file := filepath.Join(tmp, "b")
	_, err = server.Backup(data, key, pass, file)
	must(t, err)
	b, err := os.ReadFile(file)
	must(t, err)
	for name, bad := range map[string][]byte{
		"a byte altered": func() []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }(),
		"cut short":      b[:len(b)-1],
		"bytes after":    append(bytes.Clone(b), 0),
		"no last frame":  b[:len(b)/2],
	} {
		f := filepath.Join(tmp, "bad")
		must(t, os.WriteFile(f, bad, 0o600))
		dir := filepath.Join(tmp, "r-"+name)
		if err := server.Restore(dir, f, pass, false); !errors.Is(err, server.ErrBadBackup) {
			t.Errorf("%s: %v", name, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("%s: %d files left", name, len(entries))
		}
	}
	dir := filepath.Join(tmp, "restored")
	must(t, server.Restore(dir, file, pass, false))
	key2, err := server.StoreKey(dir, false, fixed)
	must(t, err)
	srv, err = server.New(ctx, server.Config{DataDir: dir, EncryptionKey: key2})
	must(t, err)
	defer srv.Close()
	rec, err := srv.Replica().Record(ctx, id)
	must(t, err)
	if rec.Values()["q39"].String() != big {
		t.Fatal("the restored record differs")
	}
}
