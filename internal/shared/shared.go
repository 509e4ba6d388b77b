// Package shared finds the read-only material beside the project
// (../shared from the module root): peer conformance suites the tests
// measure Tessera against.
package shared

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the path of ../shared/sub relative to the module root. It
// fails the test when the folder is missing: CI always has it, and a
// conformance run that silently skipped would read as passing.
func Dir(t testing.TB, sub string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "..", "shared", sub)
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("shared material %s is missing (expected beside the project root): %v", p, err)
			}
			return p
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no go.mod above %s", wd)
		}
	}
}
