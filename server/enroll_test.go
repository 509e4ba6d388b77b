package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/server"
)

// TestEnrollRevokeWipe: on a server that requires sign-in, an enrolled
// device syncs and an unenrolled one is refused; expired, reused and forged
// codes enroll nothing; a revoked device is refused on its next call; a
// device flagged for wipe first delivers everything it holds, then erases
// its store.
func TestEnrollRevokeWipe(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "srv")
	srv := startServer(t, server.Config{DataDir: dir, RequireAuth: true})
	if b, err := os.ReadFile(filepath.Join(dir, server.SetupTokenFile)); err != nil || len(strings.TrimSpace(string(b))) < 20 {
		t.Fatalf("setup token file: %q %v", b, err)
	} else if st, _ := os.Stat(filepath.Join(dir, server.SetupTokenFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("setup token file mode %v", st.Mode())
	}
	a := srv.Auth()
	must(t, a.CreateProject(ctx, "lead", "camp"))
	code := func(ttl time.Duration) string {
		c, _, err := a.NewEnrollmentCode(ctx, "lead", "camp", "north", ttl)
		must(t, err)
		return c
	}

	plain := newDevice(t, srv.URL)
	if _, err := plain.Sync(ctx, "", nil); err == nil || !strings.Contains(err.Error(), "unauthenticated") {
		t.Fatalf("an unenrolled device synced with a server that requires sign-in: %v", err)
	}

	var lastDir string
	enroll := func(code string) (*fieldapp.Device, error) {
		lastDir = filepath.Join(t.TempDir(), "dev")
		return fieldapp.Init(ctx, lastDir, fieldapp.Config{Server: srv.URL, Enroll: code, PIN: testPIN})
	}
	good := code(time.Hour)
	d, err := enroll(strings.ToLower(good))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dDir := lastDir
	if p, team, _ := d.Enrollment(ctx); p != "camp" || team != "north" {
		t.Fatalf("enrollment %q %q", p, team)
	}
	if _, err := enroll(good); err == nil {
		t.Fatal("a used code enrolled a second device")
	}
	expired := code(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if _, err := enroll(expired); err == nil {
		t.Fatal("an expired code enrolled a device")
	}
	if _, err := enroll("ABCDE-FGHJK"); err == nil {
		t.Fatal("a forged code enrolled a device")
	}
	if _, err := os.Stat(filepath.Join(lastDir, "store")); !os.IsNotExist(err) {
		t.Fatalf("a refused enrollment left a store behind: %v", err)
	}

	id, err := d.Replica().Create(ctx, "household", fw("q1", "1"))
	must(t, err)
	mustSync(t, d)
	if _, err := srv.Replica().Record(ctx, id); err != nil {
		t.Fatalf("the enrolled device's record did not arrive: %v", err)
	}

	// Wipe: records made after the flag still arrive before the erase.
	devs, err := a.Devices(ctx, "camp")
	must(t, err)
	must(t, a.SetDevice(ctx, "lead", devs[0].ID, false, true))
	late, err := d.Replica().Create(ctx, "household", fw("q1", "late"))
	must(t, err)
	res, err := d.Sync(ctx, "", nil)
	if err != nil || !res.Wiped || res.Pushed != 1 {
		t.Fatalf("wipe sync: %+v %v", res, err)
	}
	if _, err := srv.Replica().Record(ctx, late); err != nil {
		t.Fatalf("a record made before the wipe was lost: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dDir, "store")); !os.IsNotExist(err) {
		t.Fatalf("the wiped device still has its store: %v", err)
	}
	dev, err := a.GetDevice(ctx, devs[0].ID)
	if err != nil || dev.Wiped == 0 || !dev.Revoked {
		t.Fatalf("the server does not record the wipe: %+v %v", dev, err)
	}

	// Revocation.
	d2, err := enroll(code(time.Hour))
	must(t, err)
	defer d2.Close()
	mustSync(t, d2)
	devs, _ = a.Devices(ctx, "camp")
	for _, x := range devs {
		if !x.Revoked {
			must(t, a.SetDevice(ctx, "lead", x.ID, true, false))
		}
	}
	if _, err := d2.Sync(ctx, "", nil); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked device synced: %v", err)
	}
	if n, err := a.VerifyAudit(ctx); err != nil || n < 6 {
		t.Fatalf("audit after the run: %d entries, %v", n, err)
	}
}

// TestRateLimitPerDevice: a device hammering the server gets
// ResourceExhausted; another device is served as usual meanwhile.
func TestRateLimitPerDevice(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{RequireAuth: true, RateLimit: 5})
	a := srv.Auth()
	must(t, a.CreateProject(ctx, "t", "p"))
	enroll := func() *fieldapp.Device {
		code, _, err := a.NewEnrollmentCode(ctx, "t", "p", "", time.Hour)
		must(t, err)
		d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "d"), fieldapp.Config{Server: srv.URL, Enroll: code, PIN: testPIN})
		must(t, err)
		t.Cleanup(func() { d.Close() })
		return d
	}
	abusive, honest := enroll(), enroll()
	refused := 0
	for range 60 {
		if _, err := abusive.Sync(ctx, "", nil); err != nil && strings.Contains(err.Error(), "resource_exhausted") {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("60 syncs in a burst were never limited")
	}
	if _, err := honest.Sync(ctx, "", nil); err != nil {
		t.Fatalf("another device was refused while one was limited: %v", err)
	}
}

// TestPlainHTTPRefusedOffLoopback: surveyd will not serve plain HTTP on a
// network address unless told --insecure.
func TestPlainHTTPRefusedOffLoopback(t *testing.T) {
	var buf strings.Builder
	err := server.Main(context.Background(), []string{"--data", t.TempDir(), "--listen", "0.0.0.0:0"}, &buf)
	if err == nil || !strings.Contains(err.Error(), "refusing plain HTTP") {
		t.Fatalf("got %v", err)
	}
}
