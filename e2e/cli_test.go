package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binDir   string
	buildErr error
	once     sync.Once
)

// binaries builds surveyd and fieldapp once per test run.
func binaries(t *testing.T) (surveyd, fieldapp string) {
	t.Helper()
	once.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "tessera-bin")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir, "../cmd/surveyd", "../cmd/fieldapp").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "surveyd"), filepath.Join(binDir, "fieldapp")
}

// devicePIN unlocks every device store the tests create; fieldapp reads it
// from TESSERA_PIN, which the processes started here inherit.
const devicePIN = "e2e-pin-1357"

func TestMain(m *testing.M) {
	os.Setenv("TESSERA_PIN", devicePIN)
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

type proc struct {
	cmd  *exec.Cmd
	URL  string
	logs *bytes.Buffer
	mu   *sync.Mutex
}

var urlRe = regexp.MustCompile(`url=(http://\S+)`)

// startSurveyd starts the server binary and waits for its one log line
// with the URL.
func startSurveyd(t *testing.T, data, listen string, extra ...string) *proc {
	t.Helper()
	bin, _ := binaries(t)
	cmd := exec.Command(bin, append([]string{"--data", data, "--listen", listen}, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &bytes.Buffer{}, mu: &sync.Mutex{}}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := urlRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case p.URL = <-urlc:
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("surveyd did not log its URL:\n%s", p.logs)
	}
	return p
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

type result struct {
	stdout, stderr string
	err            error
}

func fieldapp(t *testing.T, dir string, args ...string) result {
	t.Helper()
	_, bin := binaries(t)
	cmd := exec.Command(bin, append([]string{"--data", dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return result{out.String(), errb.String(), err}
}

func mustFieldapp(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := fieldapp(t, dir, args...)
	if r.err != nil {
		t.Fatalf("fieldapp %v: %v\n%s", args, r.err, r.stderr)
	}
	return r.stdout
}

func health(t *testing.T, url string) (head float64) {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string  `json:"status"`
		Head   float64 `json:"head"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "ok" {
		t.Fatalf("healthz: %v %+v", err, body)
	}
	return body.Head
}

type recordJSON struct {
	ID     string `json:"id"`
	Form   string `json:"form"`
	Status string `json:"status"`
	Fields map[string]struct {
		Value     any `json:"value"`
		Conflicts []struct {
			Value   any    `json:"value"`
			Replica string `json:"replica"`
			Time    string `json:"time"`
		} `json:"conflicts"`
	} `json:"fields"`
	Deleted        bool `json:"deleted"`
	DeleteConflict bool `json:"delete_conflict"`
}

func getRecord(t *testing.T, dir, id string) recordJSON {
	t.Helper()
	var r recordJSON
	out := mustFieldapp(t, dir, "record", "get", id, "--json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("record get --json: %v\n%s", err, out)
	}
	return r
}

func listRecords(t *testing.T, dir string) []recordJSON {
	t.Helper()
	var rs []recordJSON
	out := mustFieldapp(t, dir, "record", "list", "--json")
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("record list --json: %v\n%.500s", err, out)
	}
	return rs
}

// TestCommandLine walks the command-line contract: init, record
// new/set/get/list/resolve/delete/import, sync, errors and --help.
func TestCommandLine(t *testing.T) {
	tmp := t.TempDir()
	srv := startSurveyd(t, filepath.Join(tmp, "srv"), "127.0.0.1:0")
	a, b, c := filepath.Join(tmp, "a"), filepath.Join(tmp, "b"), filepath.Join(tmp, "c")
	for _, d := range []string{a, b, c} {
		if out := mustFieldapp(t, d, "init", "--server", srv.URL); !strings.Contains(out, "initialized device") {
			t.Fatalf("init said %q", out)
		}
	}
	if r := fieldapp(t, a, "init", "--server", srv.URL); r.err == nil || !strings.Contains(r.stderr, "already") {
		t.Fatalf("second init must fail: %+v", r)
	}
	id := strings.TrimSpace(mustFieldapp(t, a, "record", "new", "household", "size=4", "head=Amina", "q3=unsure", "code=007"))
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(id) {
		t.Fatalf("record new printed %q", id)
	}
	mustFieldapp(t, a, "sync")
	mustFieldapp(t, b, "sync")
	mustFieldapp(t, c, "sync")
	mustFieldapp(t, a, "record", "set", id, "q3=no")
	mustFieldapp(t, b, "record", "set", id, "q3=yes", "water=well")
	for _, d := range []string{a, b, a, c} {
		var res map[string]any
		if err := json.Unmarshal([]byte(mustFieldapp(t, d, "sync", "--json")), &res); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"pushed", "pulled", "bytes_sent", "bytes_received", "duration_ms", "round_trips"} {
			if _, ok := res[k]; !ok {
				t.Fatalf("sync --json lacks %q: %v", k, res)
			}
		}
	}
	for _, d := range []string{a, b, c} {
		r := getRecord(t, d, id)
		if r.ID != id || r.Form != "household" || r.Fields["size"].Value != float64(4) || r.Fields["code"].Value != "007" ||
			r.Fields["water"].Value != "well" || len(r.Fields["size"].Conflicts) != 0 {
			t.Fatalf("%s: record %+v", d, r)
		}
		cs := r.Fields["q3"].Conflicts
		if len(cs) != 2 || cs[0].Replica == cs[1].Replica || cs[0].Time == "" {
			t.Fatalf("%s: q3 conflicts %+v", d, cs)
		}
		if got := []any{cs[0].Value, cs[1].Value}; !(got[0] == "yes" && got[1] == "no" || got[0] == "no" && got[1] == "yes") {
			t.Fatalf("%s: q3 conflict values %v", d, got)
		}
	}
	raw := mustFieldapp(t, c, "record", "get", id, "--json")
	if strings.Count(raw, `"conflicts"`) != 1 {
		t.Fatalf("conflicts must appear only for the field in conflict:\n%s", raw)
	}
	mustFieldapp(t, c, "record", "resolve", id, "q3=maybe")
	if r := fieldapp(t, c, "record", "resolve", id, "size=5"); r.err == nil || !strings.Contains(r.stderr, "no conflict") {
		t.Fatalf("resolving a field without conflict must fail: %+v", r)
	}
	for _, d := range []string{c, a, b} {
		mustFieldapp(t, d, "sync")
	}
	for _, d := range []string{a, b, c} {
		if r := getRecord(t, d, id); r.Fields["q3"].Value != "maybe" || len(r.Fields["q3"].Conflicts) != 0 {
			t.Fatalf("%s: resolution missing: %+v", d, r.Fields["q3"])
		}
	}

	// Delete vs edit, settled by restoring.
	mustFieldapp(t, a, "record", "delete", id)
	mustFieldapp(t, b, "record", "set", id, "late=1")
	for _, d := range []string{a, b, a} {
		mustFieldapp(t, d, "sync")
	}
	if r := getRecord(t, a, id); !r.DeleteConflict || r.Fields["late"].Value != float64(1) {
		t.Fatalf("delete vs edit: %+v", r)
	}
	mustFieldapp(t, a, "record", "resolve", id, "--restore")
	if r := getRecord(t, a, id); r.DeleteConflict || r.Deleted {
		t.Fatalf("restore: %+v", r)
	}

	// Import: a bad file imports nothing; a good one everything.
	bad := filepath.Join(tmp, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"form\":\"hh\",\"fields\":{\"a\":1}}\n{\"form\":\"hh\",\"fields\":{\"bad name\":1}}\nnot json\n"), 0o600)
	r := fieldapp(t, c, "record", "import", bad)
	if r.err == nil || !strings.Contains(r.stderr, "line 2") || !strings.Contains(r.stderr, "line 3") {
		t.Fatalf("bad import: %+v", r)
	}
	if n := len(listRecords(t, c)); n != 1 {
		t.Fatalf("a rejected import left %d records", n)
	}
	good := filepath.Join(tmp, "good.jsonl")
	var sb strings.Builder
	for i := range 2500 {
		fmt.Fprintf(&sb, "{\"form\":\"roster\",\"fields\":{\"hh\":%d,\"name\":\"p%d\",\"adult\":%v,\"w\":1.5}}\n", i, i, i%2 == 0)
	}
	os.WriteFile(good, []byte(sb.String()), 0o600)
	if out := mustFieldapp(t, c, "record", "import", good); !strings.Contains(out, "imported 2500 records") {
		t.Fatalf("import said %q", out)
	}
	recs := listRecords(t, c)
	if len(recs) != 2501 {
		t.Fatalf("%d records after import", len(recs))
	}
	mustFieldapp(t, c, "sync")
	mustFieldapp(t, a, "sync")
	if n := len(listRecords(t, a)); n != 2501 {
		t.Fatalf("a holds %d records after sync", n)
	}

	// Errors: non-zero exit, message on stderr; --help answers.
	for _, args := range [][]string{
		{"record", "get", "not-an-id"}, {"record", "set", id}, {"record", "set", id, "novalue"}, {"bogus"},
		{"record", "get", "01a21c7a-b389-755d-8059-0d12d32ba25e"},
	} {
		if r := fieldapp(t, a, args...); r.err == nil || r.stderr == "" {
			t.Fatalf("fieldapp %v: want an error on stderr, got %+v", args, r)
		}
	}
	if r := fieldapp(t, filepath.Join(tmp, "none"), "record", "list"); r.err == nil || !strings.Contains(r.stderr, "fieldapp init") {
		t.Fatalf("no store: %+v", r)
	}
	for _, args := range [][]string{{"--help"}, {"init", "--help"}, {"record", "--help"}, {"record", "new", "--help"},
		{"record", "get", "--help"}, {"record", "import", "--help"}, {"sync", "--help"}} {
		if r := fieldapp(t, a, args...); r.err != nil || !strings.Contains(r.stderr, "Usage") {
			t.Fatalf("fieldapp %v: %+v", args, r)
		}
	}
	surveyd, _ := binaries(t)
	out, err := exec.Command(surveyd, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--upstream") {
		t.Fatalf("surveyd --help: %v %s", err, out)
	}
}

// importN fills a device with n records through the import command.
func importN(t *testing.T, dir string, n int) {
	t.Helper()
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "{\"form\":\"household\",\"fields\":{\"i\":%d,\"camp\":\"north\",\"note\":\"n%05d\"}}\n", i, i)
	}
	f := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(f, []byte(sb.String()), 0o600)
	mustFieldapp(t, dir, "record", "import", f)
}

// TestHubCommandLine: surveyd --upstream relays device → hub → central;
// the hub's store is encrypted by default (issue 18).
func TestHubCommandLine(t *testing.T) {
	tmp := t.TempDir()
	central := startSurveyd(t, filepath.Join(tmp, "central"), "127.0.0.1:0")
	t.Setenv("TESSERA_STORE_PASSPHRASE", "hub passphrase for the test")
	hub := startSurveyd(t, filepath.Join(tmp, "hub"), "127.0.0.1:0", "--upstream", central.URL, "--upstream-interval", "200ms")
	hub.mu.Lock()
	logs := hub.logs.String()
	hub.mu.Unlock()
	if _, err := os.Stat(filepath.Join(tmp, "hub", "encryption.json")); err != nil || !strings.Contains(logs, "encrypted=true") {
		t.Fatalf("the hub's store is not encrypted: %v\n%s", err, logs)
	}
	a, c := filepath.Join(tmp, "a"), filepath.Join(tmp, "c")
	mustFieldapp(t, a, "init", "--server", hub.URL)
	mustFieldapp(t, c, "init", "--server", central.URL)
	id := strings.TrimSpace(mustFieldapp(t, a, "record", "new", "household", "camp=east"))
	mustFieldapp(t, a, "sync")
	deadline := time.Now().Add(20 * time.Second)
	for {
		mustFieldapp(t, c, "sync")
		if r := fieldapp(t, c, "record", "get", id, "--json"); r.err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the record never reached central through the hub:\n%s", hub.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustFieldapp(t, c, "record", "set", id, "checked=true")
	mustFieldapp(t, c, "sync")
	for {
		mustFieldapp(t, a, "sync")
		if r := getRecord(t, a, id); r.Fields["checked"].Value == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("central's edit never reached the device through the hub")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReflectionWithBufCurl: generic gRPC tools list and call the API
// through server reflection, with no copy of the schema.
func TestReflectionWithBufCurl(t *testing.T) {
	srv := startSurveyd(t, filepath.Join(t.TempDir(), "srv"), "127.0.0.1:0")
	buf := func(args ...string) (string, error) {
		cmd := exec.Command("go", append([]string{"tool", "-modfile=../tools/go.mod", "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge"}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := buf("--list-methods", srv.URL)
	if err != nil || !strings.Contains(out, "tessera.v1.SyncService/Push") || !strings.Contains(out, "tessera.v1.SyncService/Pull") {
		t.Fatalf("buf curl --list-methods: %v\n%s", err, out)
	}
	out, err = buf("-d", `{"replica":"AAAAAAAAAAAAAAAAAAAAAQ=="}`, srv.URL+"/tessera.v1.SyncService/Pull")
	if err != nil || !strings.Contains(out, "serverTime") {
		t.Fatalf("buf curl Pull: %v\n%s", err, out)
	}
	out, _ = buf("-d", `{"replica":"AAE="}`, srv.URL+"/tessera.v1.SyncService/Pull")
	if !strings.Contains(out, "invalid_argument") || !strings.Contains(out, "replica id of 2 bytes") {
		t.Fatalf("buf curl with a malformed id: %s", out)
	}
}

// TestFormsCommandLine: surveyctl checks and publishes the sample form; a
// device receives it on sync, answers on it, and finalizes with the form's
// messages in French.
func TestFormsCommandLine(t *testing.T) {
	tmp := t.TempDir()
	srv := startSurveyd(t, filepath.Join(tmp, "srv"), "127.0.0.1:0")
	ctlBin := buildCtl(t)
	ctl := func(args ...string) result {
		cmd := exec.Command(ctlBin, append([]string{"--server", srv.URL}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return result{out.String(), errb.String(), err}
	}
	sample := "../examples/forms/community-security.xlsx"
	if r := ctl("form", "check", sample); r.err != nil || !strings.Contains(r.stdout, "community_security") || !strings.Contains(r.stdout, "no problems") {
		t.Fatalf("form check: %+v", r)
	}
	bad := filepath.Join(tmp, "bad.xlsx")
	os.WriteFile(bad, []byte("not a spreadsheet"), 0o600)
	if r := ctl("form", "check", bad); r.err == nil {
		t.Fatalf("form check of garbage succeeded: %+v", r)
	}
	if r := ctl("form", "publish", sample); r.err != nil || !strings.Contains(r.stdout, "published community_security@2026.11.1") {
		t.Fatalf("form publish: %+v", r)
	}
	if r := ctl("form", "list", "--json"); r.err != nil || !strings.Contains(r.stdout, `"form_id": "community_security"`) {
		t.Fatalf("form list: %+v", r)
	}
	// The XForm: the server's copy, and the same written from the file.
	served := ctl("form", "xform", "community_security")
	local := ctl("form", "xform", sample)
	if served.err != nil || local.err != nil || !strings.HasPrefix(served.stdout, "<?xml") || served.stdout != local.stdout {
		t.Fatalf("form xform: served %v, local %v (%d vs %d bytes)", served.err, local.err, len(served.stdout), len(local.stdout))
	}
	if r := ctl("form", "xform", "community_security@2026.11.1", "--json"); r.err != nil || !strings.Contains(r.stdout, `"md5": "`) {
		t.Fatalf("form xform --json: %+v", r)
	}
	// An XForm publishes too (kept as the XLSForm it amounts to).
	xml := strings.Replace(served.stdout, `version="2026.11.1"`, `version="2026.11.2"`, 1)
	xmlPath := filepath.Join(tmp, "community-security.xml")
	os.WriteFile(xmlPath, []byte(xml), 0o600)
	if r := ctl("form", "check", xmlPath); r.err != nil || !strings.Contains(r.stdout, "33 questions") {
		t.Fatalf("form check of the XForm: %+v", r)
	}
	if r := ctl("form", "publish", xmlPath); r.err != nil || !strings.Contains(r.stdout, "published community_security@2026.11.2") {
		t.Fatalf("form publish of the XForm: %+v", r)
	}
	if r := ctl("form", "xform", "community_security@2026.11.2"); r.err != nil || !strings.Contains(r.stdout, `version="2026.11.2"`) {
		t.Fatalf("the XForm of the version published as an XForm: %+v", r)
	}
	if r := ctl("form", "xform", "no_such_form"); r.err == nil || !strings.Contains(r.stderr, "not_found") && !strings.Contains(r.stderr, "unknown form") {
		t.Fatalf("form xform of an unknown form: %+v", r)
	}
	dev := filepath.Join(tmp, "dev")
	mustFieldapp(t, dev, "init", "--server", srv.URL)
	mustFieldapp(t, dev, "sync")
	if out := mustFieldapp(t, dev, "form", "list"); !strings.Contains(out, "community_security@2026.11.1") || !strings.Contains(out, "community_security@2026.11.2") {
		t.Fatalf("form list on the device: %s", out)
	}
	// The newest version is the one published as an XForm: a device answers on it.
	id := strings.TrimSpace(mustFieldapp(t, dev, "record", "new", "community_security", "intro/consent=yes", "household/hh_size=45"))
	if r := getRecord(t, dev, id); r.Form != "community_security@2026.11.2" {
		t.Fatalf("the record names %q, want the form version", r.Form)
	}
	r := fieldapp(t, dev, "record", "finalize", id, "--lang", "Français (fr)")
	if r.err == nil || !strings.Contains(r.stdout, "Entre 1 et 30.") || !strings.Contains(r.stdout, "Une réponse est nécessaire.") {
		t.Fatalf("finalize with problems: %+v", r)
	}
	mustFieldapp(t, dev, "record", "set", id, "household/hh_size=3", "household/site=camp_a", "threats/safe_day=safe",
		"threats/safe_night=safe", "gbv/gbv_private=no")
	if out := mustFieldapp(t, dev, "record", "finalize", id); !strings.Contains(out, "finalized") {
		t.Fatalf("finalize: %s", out)
	}
	if r := getRecord(t, dev, id); r.Status != "finalized" {
		t.Fatalf("status %q", r.Status)
	}
	mustFieldapp(t, dev, "sync")
	if r := ctl("flags"); r.err != nil || !strings.Contains(r.stdout, "no flagged records") {
		t.Fatalf("flags: %+v", r)
	}
}

var (
	ctlOnce sync.Once
	ctlPath string
	ctlErr  error
)

func buildCtl(t *testing.T) string {
	binaries(t)
	ctlOnce.Do(func() {
		ctlPath = filepath.Join(binDir, "surveyctl")
		if out, err := exec.Command("go", "build", "-o", ctlPath, "../cmd/surveyctl").CombinedOutput(); err != nil {
			ctlErr = fmt.Errorf("build surveyctl: %v\n%s", err, out)
		}
	})
	if ctlErr != nil {
		t.Fatal(ctlErr)
	}
	return ctlPath
}

// TestSecurityCommandLine: a server that requires sign-in, its first-start
// setup token, surveyctl login/project/device code, a device enrolled with
// fieldapp init --enroll syncing, an unenrolled one refused, revocation, and
// surveyctl audit verify.
func TestSecurityCommandLine(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "srv")
	srv := startSurveyd(t, data, "127.0.0.1:0", "--require-auth")
	tokenBytes, err := os.ReadFile(filepath.Join(data, "setup-token"))
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
	if r := ctl("project", "create", "camp"); r.err == nil {
		t.Fatalf("project create without signing in succeeded: %+v", r)
	}
	if r := ctl("login", "--setup-token", strings.TrimSpace(string(tokenBytes))); r.err != nil || !strings.Contains(r.stdout, "signed in") {
		t.Fatalf("login with the setup token: %+v", r)
	}
	if r := ctl("login", "--setup-token", strings.TrimSpace(string(tokenBytes))); r.err == nil {
		t.Fatal("the setup token worked twice")
	}
	if r := ctl("project", "create", "camp"); r.err != nil {
		t.Fatalf("project create: %+v", r)
	}
	// A device for ODK Collect: the first line is its URL, the QR a PNG.
	qrPath := filepath.Join(tmp, "collect.png")
	if r := ctl("device", "collect", "--project", "camp", "--team", "north", "--name", "Collect 1", "--qr", qrPath); r.err != nil {
		t.Fatalf("device collect: %+v", r)
	} else {
		collectURL, _, _ := strings.Cut(r.stdout, "\n")
		png, err := os.ReadFile(qrPath)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) || !strings.HasPrefix(collectURL, srv.URL+"/key/") {
			t.Fatalf("device collect: URL %q, QR %d bytes (%v)", collectURL, len(png), err)
		}
		res, err := http.Get(collectURL + "/formList")
		if err != nil || res.StatusCode != http.StatusOK || res.Header.Get("X-OpenRosa-Version") != "1.0" {
			t.Fatalf("the Collect URL's formList: %v %v", res, err)
		}
		res.Body.Close()
	}
	r := ctl("device", "code", "--project", "camp", "--team", "north")
	if r.err != nil {
		t.Fatalf("device code: %+v", r)
	}
	code := strings.TrimSpace(r.stdout)

	plain := filepath.Join(tmp, "plain")
	mustFieldapp(t, plain, "init", "--server", srv.URL)
	if r := fieldapp(t, plain, "sync"); r.err == nil || !strings.Contains(r.stderr, "unauthenticated") {
		t.Fatalf("an unenrolled device synced: %+v", r)
	}
	dev := filepath.Join(tmp, "dev")
	if out := mustFieldapp(t, dev, "init", "--server", srv.URL, "--enroll", code); !strings.Contains(out, "enrolled in project camp, team north") {
		t.Fatalf("enroll: %s", out)
	}
	mustFieldapp(t, dev, "record", "new", "household", "q1=1")
	if out := mustFieldapp(t, dev, "sync"); !strings.Contains(out, "pushed 1 changes") {
		t.Fatalf("sync: %s", out)
	}
	var devices []struct {
		ID      string `json:"id"`
		Collect bool   `json:"collect"`
	}
	r = ctl("device", "list", "--project", "camp")
	if err := json.Unmarshal([]byte(r.stdout), &devices); err != nil || len(devices) != 2 { // the Collect device and this one
		t.Fatalf("device list: %+v %v", r, err)
	}
	if devices[0].Collect {
		devices[0], devices[1] = devices[1], devices[0]
	}
	if !devices[1].Collect || devices[0].Collect {
		t.Fatalf("device list does not say which is the Collect device: %s", r.stdout)
	}
	if r := ctl("device", "revoke", devices[0].ID); r.err != nil {
		t.Fatalf("revoke: %+v", r)
	}
	if r := fieldapp(t, dev, "sync"); r.err == nil || !strings.Contains(r.stderr, "revoked") {
		t.Fatalf("a revoked device synced: %+v", r)
	}
	if r := ctl("audit", "verify"); r.err != nil || !strings.Contains(r.stdout, "audit trail verified") {
		t.Fatalf("audit verify: %+v", r)
	}
	// The trail in pages: two entries after the first, as JSON lines.
	r = ctl("audit", "list", "--after", "1", "--limit", "2")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.err != nil || len(lines) != 2 || !strings.Contains(lines[0], `"seq":2`) || !strings.Contains(lines[1], `"seq":3`) {
		t.Fatalf("audit list: %+v", r)
	}
}

// TestShutdownWhenStoreCannotBeSaved: surveyd whose data folder is removed
// under it (its memtable can never be flushed) exits after SIGTERM within
// --shutdown-timeout, non-zero, saying why; it does not retry forever.
func TestShutdownWhenStoreCannotBeSaved(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "srv")
	srv := startSurveyd(t, data, "127.0.0.1:0", "--shutdown-timeout", "2s")
	dev := filepath.Join(dir, "dev")
	mustFieldapp(t, dev, "init", "--server", srv.URL)
	mustFieldapp(t, dev, "record", "new", "f", "q=1")
	mustFieldapp(t, dev, "sync")
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- srv.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("surveyd exited with %v, want a non-zero code", err)
		}
		t.Logf("surveyd exited %v after SIGTERM: %v", time.Since(t0).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatalf("surveyd still running 30 s after SIGTERM")
	}
	srv.mu.Lock()
	logs := srv.logs.String()
	srv.mu.Unlock()
	if !strings.Contains(logs, "not closed in time") && !strings.Contains(logs, "closing the store") {
		t.Errorf("surveyd did not say why it gave up:\n%s", logs)
	}
}

// TestImportProgressOnlyOnTerminal: an import large enough for a progress
// line, with stderr going to a file (a pipe here), writes no carriage
// returns there, only the summary on stdout.
func TestImportProgressOnlyOnTerminal(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "dev")
	mustFieldapp(t, dev, "init", "--server", "http://127.0.0.1:1")
	var sb strings.Builder
	for i := range 12000 {
		fmt.Fprintf(&sb, "{\"form\":\"roster\",\"fields\":{\"hh\":%d}}\n", i)
	}
	file := filepath.Join(dir, "big.jsonl")
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r := fieldapp(t, dev, "record", "import", file)
	if r.err != nil {
		t.Fatalf("import: %v\n%s", r.err, r.stderr)
	}
	if strings.Contains(r.stderr, "\r") || strings.Contains(r.stderr, "imported 1000/") {
		t.Errorf("progress lines written to a non-terminal stderr: %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "imported 12000 records") {
		t.Errorf("no summary: %q", r.stdout)
	}
}

// TestParallelWrongPINsAcrossProcesses (issue 13, finding 11): wrong PINs
// tried at once by separate fieldapp processes are each counted (the
// failure count is read and written under a lock every process honours).
func TestParallelWrongPINsAcrossProcesses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "device")
	mustFieldapp(t, dir, "init", "--server", "http://127.0.0.1:1")
	_, bin := binaries(t)
	const n = 3
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(bin, "--data", dir, "record", "list")
			cmd.Env = append(os.Environ(), "TESSERA_PIN=wrong-pin-0")
			cmd.Run()
		}()
	}
	wg.Wait()
	b, err := os.ReadFile(filepath.Join(dir, "unlock.json"))
	if err != nil {
		t.Fatal(err)
	}
	var l struct{ Failures int }
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	if l.Failures != n {
		t.Fatalf("%d wrong PINs in parallel processes counted as %d", n, l.Failures)
	}
}
