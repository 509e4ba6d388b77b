package shared

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Peer returns the path of a file of scripts/peers (the peer clients from
// npm: ODK's form engine and Web Forms), with the packages it names
// installed. Without them the test is skipped with how to install them,
// except in CI (CI set), which installs them: there it fails.
func Peer(t testing.TB, file string, packages ...string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := wd
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no go.mod above %s", wd)
		}
		dir = filepath.Dir(dir)
	}
	peers := filepath.Join(dir, "scripts", "peers")
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node"
	}
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(peers, "node_modules", p)); err != nil {
			missing = p
		}
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("peer client %s is not installed: run scripts/peers/install", missing)
		}
		t.Skipf("peer client %s is not installed: run scripts/peers/install (needs npm)", missing)
	}
	return filepath.Join(peers, file)
}
