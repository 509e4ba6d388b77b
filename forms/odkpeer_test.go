package forms

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tessera-survey/tessera/internal/shared"
)

// TestODKWebFormsLoadsOurXForms (issue 15): every XForm Tessera writes for
// pyxform's corpus is loaded into ODK Web Forms' engine
// (@getodk/xforms-engine under jsdom, scripts/peers) and given an
// instance, beside pyxform's own XForm of the same case in the same run:
// a form whose pyxform XForm loads must load from Tessera's too.
func TestODKWebFormsLoadsOurXForms(t *testing.T) {
	peer := shared.Peer(t, "odk-load.mjs", "@getodk/xforms-engine", "jsdom")
	f, err := os.Open(filepath.Join(shared.Dir(t, "conformance/pyxform"), "cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	var ours, theirs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var c xformCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		form, err := importCase(t, c)
		if err != nil {
			continue
		}
		x, err := form.XForm()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, c.ID+".tessera.xml")
		if err := os.WriteFile(p, x, 0o600); err != nil {
			t.Fatal(err)
		}
		ours = append(ours, p)
		if c.PyxformXForm != "" {
			p := filepath.Join(dir, c.ID+".pyxform.xml")
			if err := os.WriteFile(p, []byte(c.PyxformXForm), 0o600); err != nil {
				t.Fatal(err)
			}
			theirs = append(theirs, p)
		}
	}
	run := func(files []string) (map[string]string, int) {
		cmd := exec.Command("node", append([]string{peer}, files...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("node %s: %v\n%s", peer, err, errb.String())
		}
		failed := map[string]string{}
		ok := 0
		for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
			var r struct {
				File  string  `json:"file"`
				OK    bool    `json:"ok"`
				Error *string `json:"error"`
			}
			if json.Unmarshal(line, &r) != nil || r.File == "" {
				continue
			}
			if r.OK {
				ok++
			} else {
				failed[filepath.Base(r.File)] = *r.Error
			}
		}
		return failed, ok
	}
	oursFailed, oursOK := run(ours)
	theirsFailed, theirsOK := run(theirs)
	for file, why := range oursFailed {
		id := file[:len(file)-len(".tessera.xml")]
		_, pyxformFails := theirsFailed[id+".pyxform.xml"]
		if _, had := bytesIndex(theirs, id); had && !pyxformFails {
			t.Errorf("%s: ODK Web Forms loads pyxform's XForm but not Tessera's: %s", id, why)
		} else {
			t.Logf("%s: not loaded (nor pyxform's, or pyxform wrote none): %s", id, why)
		}
	}
	t.Logf("ODK Web Forms' engine loads %d of %d of Tessera's XForms; %d of %d of pyxform's for the same corpus",
		oursOK, len(ours), theirsOK, len(theirs))
}

func bytesIndex(files []string, id string) (int, bool) {
	for i, f := range files {
		if filepath.Base(f) == id+".pyxform.xml" {
			return i, true
		}
	}
	return 0, false
}
