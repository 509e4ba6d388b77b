package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// import22 bulk-loads n records of 22 answers (8 integers, 8 texts, 6
// booleans), as the sync benchmarks do.
func import22(t *testing.T, dir string, n, seed int) {
	t.Helper()
	var sb strings.Builder
	for i := range n {
		f := map[string]any{}
		for k := range 8 {
			f[fmt.Sprintf("i%d", k)] = (i*7 + k*13 + seed) % 1000
			f[fmt.Sprintf("s%d", k)] = fmt.Sprintf("text %d-%d", (i+seed)%97, k)
		}
		for k := range 6 {
			f[fmt.Sprintf("b%d", k)] = (i+k)%2 == 0
		}
		b, _ := json.Marshal(map[string]any{"form": "household", "fields": f})
		sb.Write(b)
		sb.WriteByte('\n')
	}
	file := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	mustFieldapp(t, dir, "record", "import", file)
}

// TestBundleCommandLine (issue 18): with the binaries and sign-in
// required, a device enrolled and synced once exports its interviews to a
// file, a lead imports it with surveyctl and writes the reply, the device
// imports the reply: its changes are no longer pending, and a second
// device's record came back. Then the size figure: 10,000 records of 22
// answers in a bundle against the bytes the same push takes on the
// network (≤ 1.2×).
func TestBundleCommandLine(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "srv")
	srv := startSurveyd(t, data, "127.0.0.1:0", "--require-auth")
	tok, err := os.ReadFile(filepath.Join(data, "setup-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctlBin := buildCtl(t)
	sessions := filepath.Join(tmp, "sessions.json")
	ctl := func(args ...string) result {
		cmd := exec.Command(ctlBin, append([]string{"--server", srv.URL}, args...)...)
		cmd.Env = append(os.Environ(), "TESSERA_SESSIONS="+sessions, "TESSERA_PASSWORD=the admin's long password")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return result{out.String(), errb.String(), err}
	}
	mustCtl := func(args ...string) string {
		t.Helper()
		r := ctl(args...)
		if r.err != nil {
			t.Fatalf("surveyctl %v: %v\n%s", args, r.err, r.stderr)
		}
		return r.stdout
	}
	mustCtl("login", "--setup-token", strings.TrimSpace(string(tok)))
	mustCtl("project", "create", "camp")
	mustCtl("project", "policy", "camp", "--team-records") // the second device reads the first's records
	enroll := func(name string) string {
		dir := filepath.Join(tmp, name)
		code := strings.TrimSpace(mustCtl("device", "code", "--project", "camp"))
		mustFieldapp(t, dir, "init", "--server", srv.URL, "--enroll", code)
		mustFieldapp(t, dir, "sync")
		return dir
	}
	a, b := enroll("a"), enroll("b")
	other := strings.TrimSpace(mustFieldapp(t, b, "record", "new", "household", "camp=west"))
	mustFieldapp(t, b, "sync")

	// The link is down for a: interviews go out on a file.
	id := strings.TrimSpace(mustFieldapp(t, a, "record", "new", "household", "camp=east"))
	file := filepath.Join(tmp, "a.bundle")
	if out := mustFieldapp(t, a, "bundle", "export", file); !strings.Contains(out, "1 changes") {
		t.Fatalf("bundle export: %s", out)
	}
	if r := fieldapp(t, a, "info", "--json"); !strings.Contains(r.stdout, `"pending": 1`) && !strings.Contains(r.stdout, `"pending":1`) {
		t.Fatalf("exporting marked the change sent: %s", r.stdout)
	}
	reply := filepath.Join(tmp, "a.reply")
	if out := mustCtl("bundle", "import", file, "--reply", reply); !strings.Contains(out, "1 new here") {
		t.Fatalf("surveyctl bundle import: %s", out)
	}
	if out := mustFieldapp(t, a, "bundle", "import", reply); !strings.Contains(out, "0 changes still pending") {
		t.Fatalf("fieldapp bundle import: %s", out)
	}
	if out := mustFieldapp(t, a, "bundle", "import", reply); !strings.Contains(out, "0 new") {
		t.Fatalf("the same reply again: %s", out)
	}
	if r := getRecord(t, a, other); r.ID != other {
		t.Fatalf("b's record did not come back: %+v", r)
	}
	mustFieldapp(t, b, "sync")
	if r := getRecord(t, b, id); r.Fields["camp"].Value != "east" {
		t.Fatalf("a's record did not reach b through the server: %+v", r)
	}
	if r := fieldapp(t, b, "bundle", "import", reply); r.err == nil || !strings.Contains(r.stderr, "another") {
		t.Fatalf("another device's reply: %+v", r)
	}

	// Size: the same 10,000 records by network and by bundle.
	const n = 10_000
	net, bun := enroll("net"), enroll("bun")
	import22(t, net, n, 1)
	import22(t, bun, n, 1)
	var res struct {
		Pushed    int   `json:"pushed"`
		BytesSent int64 `json:"bytes_sent"`
	}
	if err := json.Unmarshal([]byte(mustFieldapp(t, net, "sync", "--json")), &res); err != nil || res.Pushed != n {
		t.Fatalf("sync: %+v %v", res, err)
	}
	big := filepath.Join(tmp, "big.bundle")
	t0 := time.Now()
	mustFieldapp(t, bun, "bundle", "export", big)
	export := time.Since(t0)
	st, err := os.Stat(big)
	if err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	mustCtl("bundle", "import", big, "--reply", big+".reply")
	imp := time.Since(t0)
	t0 = time.Now()
	mustFieldapp(t, bun, "bundle", "import", big+".reply")
	back := time.Since(t0)
	ratio := float64(st.Size()) / float64(res.BytesSent)
	t.Logf("10,000 records × 22 answers: bundle %d bytes, network push %d bytes sent (%.2f×); export %v, surveyctl import %v, reply import %v (whole processes)",
		st.Size(), res.BytesSent, ratio, export.Round(time.Millisecond), imp.Round(time.Millisecond), back.Round(time.Millisecond))
	if ratio > 1.2 {
		t.Fatalf("the bundle is %.2f× the network's bytes (target ≤ 1.2×)", ratio)
	}
}
