package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// filesHolding lists the files under dir whose bytes contain marker.
func filesHolding(t *testing.T, dir string, marker []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, marker) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func stopSurveyd(t *testing.T, p *proc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("surveyd exited with %v:\n%s", err, p.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("surveyd did not stop")
	}
}

func surveydRun(t *testing.T, env []string, args ...string) result {
	t.Helper()
	bin, _ := binaries(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return result{out.String(), errb.String(), err}
}

// TestEncryptedServerStore (issue 18): surveyd --encrypt keeps no answer
// in plaintext in any file of its data folder (a plain server, the
// control, does); it does not start without its passphrase or with a
// wrong one; its backup holds no answer in the clear either, and restores
// (encrypted) into a store the devices sync with; a backup cut short is
// refused whole.
func TestEncryptedServerStore(t *testing.T) {
	const pass = "camp office laptop 42"
	marker := "ANSWER-MARKER-7f3a9c1e5b2d8046af13" // incompressible: Snappy keeps it whole in a plain table
	tmp := t.TempDir()
	run := func(data string, extra ...string) string {
		srv := startSurveyd(t, data, "127.0.0.1:0", extra...)
		dev := filepath.Join(tmp, "dev-"+filepath.Base(data))
		mustFieldapp(t, dev, "init", "--server", srv.URL)
		id := strings.TrimSpace(mustFieldapp(t, dev, "record", "new", "household", "story="+marker))
		mustFieldapp(t, dev, "sync")
		stopSurveyd(t, srv)
		return id
	}
	plain := filepath.Join(tmp, "plain")
	run(plain)
	if hits := filesHolding(t, plain, []byte(marker)); len(hits) == 0 {
		t.Fatal("the plain server's files do not hold the answer: this search cannot tell")
	}

	t.Setenv("TESSERA_STORE_PASSPHRASE", pass)
	enc := filepath.Join(tmp, "enc")
	id := run(enc, "--encrypt")
	if hits := filesHolding(t, enc, []byte(marker)); len(hits) > 0 {
		t.Fatalf("the encrypted server's files hold the answer in plaintext: %v", hits)
	}

	t.Setenv("TESSERA_STORE_PASSPHRASE", "")
	if r := surveydRun(t, nil, "--data", enc, "--listen", "127.0.0.1:0"); r.err == nil || !strings.Contains(r.stderr, "passphrase") {
		t.Fatalf("started without its passphrase: %+v", r)
	}
	if r := surveydRun(t, []string{"TESSERA_STORE_PASSPHRASE=not the passphrase"}, "--data", enc, "--listen", "127.0.0.1:0"); r.err == nil || !strings.Contains(r.stderr, "wrong passphrase") {
		t.Fatalf("started with a wrong passphrase: %+v", r)
	}
	if r := surveydRun(t, nil, "--data", plain, "--encrypt", "--listen", "127.0.0.1:0"); r.err == nil || !strings.Contains(r.stderr, "not encrypted") {
		t.Fatalf("--encrypt on a plain store: %+v", r)
	}

	// Backup and restore, with the passphrase from a file.
	pf := filepath.Join(tmp, "pass")
	if err := os.WriteFile(pf, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(tmp, "hub.backup")
	r := surveydRun(t, nil, "--data", enc, "--passphrase-file", pf, "backup", backup)
	if r.err != nil || !strings.Contains(r.stdout, "sealed") {
		t.Fatalf("backup: %+v", r)
	}
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(marker)) {
		t.Fatal("the backup holds the answer in plaintext")
	}
	cut := filepath.Join(tmp, "cut.backup")
	if err := os.WriteFile(cut, b[:len(b)-100], 0o600); err != nil {
		t.Fatal(err)
	}
	restoredCut := filepath.Join(tmp, "restored-cut")
	if r := surveydRun(t, nil, "--data", restoredCut, "--passphrase-file", pf, "restore", cut); r.err == nil || !strings.Contains(r.stderr, "not a whole Tessera backup") {
		t.Fatalf("a backup cut short restored: %+v", r)
	}
	if entries, _ := os.ReadDir(restoredCut); len(entries) > 0 {
		t.Fatalf("a refused restore left %d files", len(entries))
	}
	if r := surveydRun(t, []string{"TESSERA_STORE_PASSPHRASE=not the passphrase"}, "--data", filepath.Join(tmp, "wrong"), "restore", backup); r.err == nil || !strings.Contains(r.stderr, "wrong passphrase") {
		t.Fatalf("restored with a wrong passphrase: %+v", r)
	}
	restored := filepath.Join(tmp, "restored")
	if r := surveydRun(t, nil, "--data", restored, "--passphrase-file", pf, "restore", backup); r.err != nil || !strings.Contains(r.stdout, "encrypted") {
		t.Fatalf("restore: %+v", r)
	}
	if hits := filesHolding(t, restored, []byte(marker)); len(hits) > 0 {
		t.Fatalf("the restored store holds the answer in plaintext: %v", hits)
	}
	t.Setenv("TESSERA_STORE_PASSPHRASE", pass)
	srv := startSurveyd(t, restored, "127.0.0.1:0")
	fresh := filepath.Join(tmp, "fresh")
	mustFieldapp(t, fresh, "init", "--server", srv.URL)
	mustFieldapp(t, fresh, "sync")
	if rec := getRecord(t, fresh, id); rec.Fields["story"].Value != marker {
		t.Fatalf("after restore a device pulled %+v", rec)
	}
}
