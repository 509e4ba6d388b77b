// Package arch holds tests of the code's layout: which package may import
// what, and that every package says what it holds.
package arch

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/tessera-survey/tessera"

type pkg struct {
	ImportPath string
	Dir        string
	Deps       []string
	Imports    []string
	GoFiles    []string
}

func list(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Dir,Deps,Imports,GoFiles"}, patterns...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// forbidden: what each layer must not depend on. A package of this module
// is forbidden directly or through another; a standard or third-party
// package only as a direct import (Badger and excelize use net/http
// inside; what matters is that our layer does not). The domain knows no
// transport and no application; the use cases no HTTP and no generated
// code; the device API no HTML, flags or terminal.
var forbidden = map[string][]string{
	"syncengine": {module + "/forms", module + "/auth", module + "/gen/", module + "/survey", module + "/server",
		module + "/internal/wire", "net/http", "html/template"},
	"survey":   {"net/http", module + "/gen/", module + "/internal/wire", module + "/server", "html/template"},
	"forms":    {"net/http", module + "/gen/", module + "/auth"},
	"dataset":  {"net/http", module + "/gen/"},
	"auth":     {"net/http", module + "/gen/", module + "/forms"},
	"fieldapp": {"html/template", "flag", "golang.org/x/term", module + "/fieldapp/ui", module + "/fieldapp/cli"},
}

func TestDependencies(t *testing.T) {
	for _, p := range list(t, "./...") {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for layer, bad := range forbidden {
			if rel != layer && !(strings.HasPrefix(rel, layer+"/") && layer == "syncengine" && !strings.HasSuffix(rel, "test")) {
				continue
			}
			check := func(deps []string, ours bool) {
				for _, d := range deps {
					for _, b := range bad {
						if strings.HasPrefix(b, module) == ours && (d == b || (strings.HasSuffix(b, "/") && strings.HasPrefix(d, b))) {
							t.Errorf("%s depends on %s", p.ImportPath, d)
						}
					}
				}
			}
			check(p.Deps, true)
			check(p.Imports, false)
		}
	}
}

// TestPackageDocs: every package has one package comment, in one file,
// that starts "Package name" and says something.
func TestPackageDocs(t *testing.T) {
	for _, p := range list(t, "./...") {
		if len(p.GoFiles) == 0 || strings.HasPrefix(p.ImportPath, module+"/gen/") {
			continue // generated code: protoc-gen-go writes no package comment
		}
		var docs []string
		name := ""
		for _, f := range p.GoFiles {
			af, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				t.Fatal(err)
			}
			name = af.Name.Name
			if af.Doc != nil {
				docs = append(docs, af.Doc.Text())
			}
		}
		switch {
		case len(docs) == 0:
			t.Errorf("%s has no package comment", p.ImportPath)
		case len(docs) > 1:
			t.Errorf("%s has %d package comments (keep one)", p.ImportPath, len(docs))
		case name == "main" && !strings.HasPrefix(docs[0], "Command "):
			t.Errorf("%s: a command's comment starts \"Command NAME\"", p.ImportPath)
		case name != "main" && !strings.HasPrefix(docs[0], "Package "+name+" "):
			t.Errorf("%s: the package comment starts %q, want \"Package %s ...\"", p.ImportPath, firstWords(docs[0]), name)
		case len(strings.Fields(docs[0])) < 8:
			t.Errorf("%s: the package comment says too little: %q", p.ImportPath, docs[0])
		}
	}
}

func firstWords(s string) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(3, len(f))], " ")
}
