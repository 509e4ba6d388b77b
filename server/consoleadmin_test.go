package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleClient signs in to the console and returns a client holding the
// session and the session's CSRF token.
func consoleClient(t *testing.T, srv *testServer, user, pass string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	page := httpBody(t, c, http.MethodGet, srv.URL+"/console/login", "", nil, http.StatusOK)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the login page")
	}
	home := httpBody(t, c, http.MethodPost, srv.URL+"/console/login", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"user": {user}, "password": {pass}, "csrf": {m[1]}}.Encode()), http.StatusOK)
	m = csrfRE.FindStringSubmatch(home)
	if m == nil {
		t.Fatalf("not signed in:\n%s", home)
	}
	return c, m[1]
}

func httpBody(t *testing.T, c *http.Client, method, u, ctype string, body io.Reader, want int) string {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	must(t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d:\n%s", method, u, resp.StatusCode, want, b)
	}
	return string(b)
}

func postForm(t *testing.T, c *http.Client, u string, v url.Values, want int) string {
	t.Helper()
	return httpBody(t, c, http.MethodPost, u, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()), want)
}

// TestConsoleFormsAndDevices drives the forms and devices pages as a lead
// would: publish an XLSForm, see a broken one refused with its row, make
// an enrollment code, enroll a device with it, then revoke it. A lead of
// another project can do none of that here.
func TestConsoleFormsAndDevices(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{RequireAuth: true})
	a := srv.Auth()
	for _, u := range []string{"lena", "omar"} {
		must(t, a.AddUser(ctx, "t", u, u+"'s long password"))
	}
	must(t, a.CreateProject(ctx, "t", "camp"))
	must(t, a.CreateProject(ctx, "t", "other"))
	must(t, a.Grant(ctx, "t", "lena", "camp", "lead"))
	must(t, a.Grant(ctx, "t", "omar", "other", "lead"))
	c, csrf := consoleClient(t, srv, "lena", "lena's long password")

	upload := func(c *http.Client, csrf, project string, xlsx []byte, want int) string {
		return consoleUpload(t, c, srv, csrf, project, xlsx, want)
	}
	xlsx, err := os.ReadFile(filepath.Join("..", "examples", "forms", "community-security.xlsx"))
	must(t, err)
	page := upload(c, csrf, "camp", xlsx, http.StatusOK)
	if !strings.Contains(page, "Published community_security") {
		t.Fatalf("publish page:\n%s", page)
	}
	if page = upload(c, csrf, "camp", xlsx, http.StatusOK); !strings.Contains(page, "already published") {
		t.Fatalf("republish of the same content:\n%s", page)
	}
	if page = upload(c, csrf, "camp", []byte("not a workbook"), http.StatusBadRequest); !strings.Contains(page, `class="err"`) {
		t.Fatalf("a broken upload was not refused with a message:\n%s", page)
	}
	upload(c, csrf, "other", xlsx, http.StatusForbidden)
	upload(c, "", "camp", xlsx, http.StatusForbidden)
	list := httpBody(t, c, http.MethodGet, srv.URL+"/console/forms", "", nil, http.StatusOK)
	if !strings.Contains(list, "community_security") {
		t.Fatalf("forms list:\n%s", list)
	}

	page = postForm(t, c, srv.URL+"/console/devices/code", url.Values{"csrf": {csrf}, "project": {"camp"}, "team": {"north"}, "ttl": {"1h"}}, http.StatusOK)
	m := regexp.MustCompile(`id="code"[^>]*>([^<]+)<`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `src="data:image/png;base64,iVBOR`) {
		t.Fatalf("no enrollment code with a QR image:\n%s", page)
	}
	d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "dev"), fieldapp.Config{Server: srv.URL, Enroll: m[1], PIN: testPIN})
	must(t, err)
	defer d.Close()
	if _, err := d.Sync(ctx, "", nil); err != nil {
		t.Fatalf("the enrolled device cannot sync: %v", err)
	}
	page = httpBody(t, c, http.MethodGet, srv.URL+"/console/devices?project=camp", "", nil, http.StatusOK)
	ids := regexp.MustCompile(`action="/console/devices/([^/]+)/revoke"`).FindStringSubmatch(page)
	if ids == nil || !strings.Contains(page, "north") || !strings.Contains(page, "active") {
		t.Fatalf("devices page:\n%s", page)
	}

	// A device for ODK Collect, from the console: its URL serves the formList.
	page = postForm(t, c, srv.URL+"/console/devices/collect", url.Values{"csrf": {csrf}, "project": {"camp"}, "name": {"Collect of Amina"}}, http.StatusOK)
	cu := regexp.MustCompile(`id="collecturl">([^<]+)<`).FindStringSubmatch(page)
	if cu == nil || !strings.Contains(page, `id="collectqr"`) || !strings.Contains(page, "base64,iVBOR") {
		t.Fatalf("no Collect URL with a QR image:\n%s", page)
	}
	if res, err := http.Get(cu[1] + "/formList"); err != nil || res.StatusCode != http.StatusOK || res.Header.Get("X-OpenRosa-Version") != "1.0" {
		t.Fatalf("the Collect URL's formList: %v %v", res, err)
	}
	if page = httpBody(t, c, http.MethodGet, srv.URL+"/console/devices?project=camp", "", nil, http.StatusOK); !strings.Contains(page, "ODK Collect: Collect of Amina") {
		t.Fatalf("the devices page does not list the Collect device:\n%s", page)
	}

	oc, ocsrf := consoleClient(t, srv, "omar", "omar's long password")
	postForm(t, oc, srv.URL+"/console/devices/collect", url.Values{"csrf": {ocsrf}, "project": {"camp"}}, http.StatusForbidden)
	httpBody(t, oc, http.MethodGet, srv.URL+"/console/devices?project=camp", "", nil, http.StatusForbidden)
	postForm(t, oc, srv.URL+"/console/devices/"+ids[1]+"/revoke", url.Values{"csrf": {ocsrf}}, http.StatusForbidden)
	postForm(t, oc, srv.URL+"/console/devices/code", url.Values{"csrf": {ocsrf}, "project": {"camp"}}, http.StatusForbidden)
	if _, err := d.Sync(ctx, "", nil); err != nil {
		t.Fatalf("another project's lead revoked the device: %v", err)
	}

	page = postForm(t, c, srv.URL+"/console/devices/"+ids[1]+"/revoke", url.Values{"csrf": {csrf}}, http.StatusOK)
	if !strings.Contains(page, "revoked") {
		t.Fatalf("revoke page:\n%s", page)
	}
	if _, err := d.Sync(ctx, "", nil); err == nil {
		t.Fatal("a device revoked from the console still syncs")
	}
}

// TestConsoleRecordFilters: the records page lists only the projects the
// user may read, pages by id and filters by review state, device and date.
func TestConsoleRecordFilters(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{RequireAuth: true})
	a := srv.Auth()
	for _, u := range []string{"lena", "omar"} {
		must(t, a.AddUser(ctx, "t", u, u+"'s long password"))
	}
	must(t, a.CreateProject(ctx, "t", "camp"))
	must(t, a.CreateProject(ctx, "t", "other"))
	must(t, a.Grant(ctx, "t", "lena", "camp", "lead"))
	must(t, a.Grant(ctx, "t", "omar", "other", "lead"))
	xlsx, err := os.ReadFile(filepath.Join("..", "examples", "forms", "community-security.xlsx"))
	must(t, err)
	info, _, err := srv.Forms().Publish(ctx, xlsx, "", "camp", time.Now())
	must(t, err)
	const n = 70
	var ids []string
	for i := 0; i < n; i++ {
		id, err := srv.Replica().Create(ctx, info.Key(), fw("intro/camp", "north"))
		must(t, err)
		ids = append(ids, id.String())
	}
	c, csrf := consoleClient(t, srv, "lena", "lena's long password")
	postForm(t, c, srv.URL+"/console/records/"+ids[3]+"/review", url.Values{"csrf": {csrf}, "state": {"approved"}, "comment": {"ok"}}, http.StatusOK)

	rowRE := regexp.MustCompile(`href="/console/records/([0-9a-f-]{36})"`)
	nextRE := regexp.MustCompile(`id="next" href="([^"]+)"`)
	seen := map[string]bool{}
	for path, pages := "/console/records?form="+info.ID, 0; path != ""; pages++ {
		page := httpBody(t, c, http.MethodGet, srv.URL+path, "", nil, http.StatusOK)
		for _, m := range rowRE.FindAllStringSubmatch(page, -1) {
			if seen[m[1]] {
				t.Fatalf("record %s on two pages", m[1])
			}
			seen[m[1]] = true
		}
		path = ""
		if m := nextRE.FindStringSubmatch(page); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != n {
		t.Fatalf("paged through %d records, want %d", len(seen), n)
	}
	count := func(c *http.Client, query string) int {
		return len(rowRE.FindAllString(httpBody(t, c, http.MethodGet, srv.URL+"/console/records?"+query, "", nil, http.StatusOK), -1))
	}
	if got := count(c, "review=approved"); got != 1 {
		t.Fatalf("approved filter: %d rows", got)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	if got := count(c, "from="+today+"&to="+today); got != 50 {
		t.Fatalf("created today: %d rows on the first page, want 50", got)
	}
	if got := count(c, "from="+tomorrow); got != 0 {
		t.Fatalf("created from tomorrow: %d rows", got)
	}
	dev := srv.Replica().ID().String()[28:]
	if got := count(c, "device="+dev+"&review=received"); got != 50 {
		t.Fatalf("device filter: %d rows", got)
	}
	if got := count(c, "device=ffffffff0"); got != 0 {
		t.Fatalf("unknown device: %d rows", got)
	}
	for _, id := range ids[10:15] {
		rid, err := syncengine.ParseRecordID(id)
		must(t, err)
		must(t, srv.Replica().Set(ctx, rid, []syncengine.FieldWrite{{Name: syncengine.StatusField, Value: syncengine.TextValue("finalized")}}))
	}
	if got := count(c, "status=finalized"); got != 5 {
		t.Fatalf("finalized filter: %d rows", got)
	}
	code, _, err := a.NewEnrollmentCode(ctx, "lena", "camp", "north", time.Hour)
	must(t, err)
	d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "north"), fieldapp.Config{Server: srv.URL, Enroll: code, PIN: testPIN})
	must(t, err)
	defer d.Close()
	_, err = d.Replica().Create(ctx, info.Key(), fw("intro/camp", "west"))
	must(t, err)
	if _, err := d.Sync(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	if page := httpBody(t, c, http.MethodGet, srv.URL+"/console/records?team=north", "", nil, http.StatusOK); len(rowRE.FindAllString(page, -1)) != 1 || !strings.Contains(page, "<td>north</td>") {
		t.Fatalf("team filter:\n%s", page)
	}
	httpBody(t, c, http.MethodGet, srv.URL+"/console/records?status=sent", "", nil, http.StatusBadRequest)
	httpBody(t, c, http.MethodGet, srv.URL+"/console/records?from=yesterday", "", nil, http.StatusBadRequest)
	httpBody(t, c, http.MethodGet, srv.URL+"/console/records?review=maybe", "", nil, http.StatusBadRequest)

	oc, _ := consoleClient(t, srv, "omar", "omar's long password")
	if got := count(oc, ""); got != 0 {
		t.Fatalf("a lead of another project sees %d of camp's records", got)
	}
	httpBody(t, oc, http.MethodGet, srv.URL+"/console/records/"+ids[0], "", nil, http.StatusForbidden)
}

// TestConsoleRecordHistory: the record page lists every change with its
// device and time; answers to sensitive questions are withheld from an
// analyst, in the answers and in the history alike, and shown to a lead.
func TestConsoleRecordHistory(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{RequireAuth: true})
	a := srv.Auth()
	for _, u := range []string{"lena", "ana"} {
		must(t, a.AddUser(ctx, "t", u, u+"'s long password"))
	}
	must(t, a.CreateProject(ctx, "t", "camp"))
	must(t, a.Grant(ctx, "t", "lena", "camp", "lead"))
	must(t, a.Grant(ctx, "t", "ana", "camp", "analyst"))
	xlsx, err := os.ReadFile(filepath.Join("..", "examples", "forms", "community-security.xlsx"))
	must(t, err)
	info, _, err := srv.Forms().Publish(ctx, xlsx, "", "camp", time.Now())
	must(t, err)
	d := newDevice(t, srv.URL)
	id, err := d.Replica().Create(ctx, info.Key(), fw("intro/camp", "north", "gbv/gbv_risk", "SECRET-ANSWER"))
	must(t, err)
	must(t, d.Replica().Set(ctx, id, fw("intro/camp", "south")))
	// The device is not enrolled, so push its changes as the server's own
	// transport would: through the replica's protocol.
	if _, err := d.Replica().Sync(ctx, directRemote{srv.Replica()}, syncengine.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	must(t, srv.Replica().Set(ctx, id, fw("intro/camp", "east")))

	lead, _ := consoleClient(t, srv, "lena", "lena's long password")
	page := httpBody(t, lead, http.MethodGet, srv.URL+"/console/records/"+id.String(), "", nil, http.StatusOK)
	hist := page[strings.Index(page, `id="history"`):]
	rows := regexp.MustCompile(`<tr><td>\d{4}-\d\d-\d\d`).FindAllString(hist, -1)
	if len(rows) != 3 || !strings.Contains(hist, d.Replica().ID().String()[28:]) || !strings.Contains(hist, "(this server: console)") ||
		!strings.Contains(hist, "intro/camp = south") || !strings.Contains(hist, "SECRET-ANSWER") {
		t.Fatalf("lead's history (%d rows):\n%s", len(rows), hist)
	}
	an, _ := consoleClient(t, srv, "ana", "ana's long password")
	page = httpBody(t, an, http.MethodGet, srv.URL+"/console/records/"+id.String(), "", nil, http.StatusOK)
	if strings.Contains(page, "SECRET-ANSWER") || !strings.Contains(page, "withheld for your role") || !strings.Contains(page, "intro/camp = north") {
		t.Fatalf("analyst's record page:\n%s", page)
	}
}

type directRemote struct{ r *syncengine.Replica }

func (d directRemote) Push(ctx context.Context, p syncengine.Push) (syncengine.PushResult, error) {
	return d.r.Receive(ctx, p)
}
func (d directRemote) Pull(ctx context.Context, r syncengine.PullRequest) (syncengine.Page, error) {
	return d.r.Page(ctx, r)
}

// TestConsoleDeviceClockWarning: a device whose clock is ten minutes behind
// the server's is flagged on the devices page after its sync, with its
// last sync time; a device that never synced says so.
func TestConsoleDeviceClockWarning(t *testing.T) {
	ctx := context.Background()
	cfg := server.Config{DataDir: filepath.Join(t.TempDir(), "srv"), RequireAuth: true, Clock: func() time.Time { return time.Now().Add(10 * time.Minute) }}
	srv := startServer(t, cfg)
	a := srv.Auth()
	must(t, a.AddUser(ctx, "t", "lena", "lena's long password"))
	must(t, a.CreateProject(ctx, "t", "camp"))
	must(t, a.Grant(ctx, "t", "lena", "camp", "lead"))
	enroll := func(team string) *fieldapp.Device {
		code, _, err := a.NewEnrollmentCode(ctx, "lena", "camp", team, time.Hour)
		must(t, err)
		d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), team), fieldapp.Config{Server: srv.URL, Enroll: code, PIN: testPIN})
		must(t, err)
		t.Cleanup(func() { d.Close() })
		return d
	}
	d := enroll("north")
	enroll("south")
	if _, err := d.Sync(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	c, _ := consoleClient(t, srv, "lena", "lena's long password")
	page := httpBody(t, c, http.MethodGet, srv.URL+"/console/devices?project=camp", "", nil, http.StatusOK)
	rows := strings.Split(page, "<tr>")
	var north, south string
	for _, r := range rows {
		switch {
		case strings.Contains(r, "<td>north</td>"):
			north = r
		case strings.Contains(r, "<td>south</td>"):
			south = r
		}
	}
	if !strings.Contains(north, "behind by 10m0s") || !strings.Contains(north, "clockwarn") || strings.Contains(north, "never") {
		t.Fatalf("the skewed device's row:\n%s", north)
	}
	if !strings.Contains(south, "never") || strings.Contains(south, "clockwarn") {
		t.Fatalf("the device that never synced:\n%s", south)
	}
	// What the server saw is kept across a restart.
	srv.stop()
	srv = startServer(t, cfg)
	c, _ = consoleClient(t, srv, "lena", "lena's long password")
	if page := httpBody(t, c, http.MethodGet, srv.URL+"/console/devices?project=camp", "", nil, http.StatusOK); !strings.Contains(page, "behind by 10m0s") {
		t.Fatalf("device contacts lost in a restart:\n%s", page)
	}
}

// TestConsoleBulkRule: "for threats/safe_day keep the latest visit"
// resolves every conflict on that question, and only those; the devices
// get the resolutions at their next sync.
func TestConsoleBulkRule(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	must(t, srv.Auth().AddUser(ctx, "t", "lena", "lena's long password"))
	must(t, srv.Auth().CreateProject(ctx, "t", "camp"))
	must(t, srv.Auth().Grant(ctx, "t", "lena", "camp", "lead"))
	info, _, err := srv.Forms().Publish(ctx, sampleForm(t), "sample", "camp", srv.Replica().Now())
	must(t, err)
	a, b := newDevice(t, srv.URL), newDevice(t, srv.URL)
	var ids []syncengine.RecordID
	for range 3 {
		id, err := a.Replica().Create(ctx, info.Key(), fw("threats/safe_day", "safe", "household/hh_size", "2"))
		must(t, err)
		ids = append(ids, id)
	}
	mustSync(t, a)
	mustSync(t, b)
	for _, id := range ids {
		must(t, a.Replica().Set(ctx, id, fw("threats/safe_day", "very_safe", "household/hh_size", "3")))
	}
	time.Sleep(5 * time.Millisecond)
	for _, id := range ids {
		must(t, b.Replica().Set(ctx, id, fw("threats/safe_day", "unsafe", "household/hh_size", "4")))
	}
	mustSync(t, a)
	mustSync(t, b)
	mustSync(t, a)

	c, csrf := consoleClient(t, srv, "lena", "lena's long password")
	page := httpBody(t, c, http.MethodGet, srv.URL+"/console/records?conflicts=1&form="+info.ID, "", nil, http.StatusOK)
	if !strings.Contains(page, `id="bulk"`) {
		t.Fatalf("no bulk rule form for a lead:\n%s", page)
	}
	postForm(t, c, srv.URL+"/console/bulk-resolve", url.Values{"csrf": {csrf}, "form": {info.ID}, "question": {"threats/safe_day"}, "rule": {"latest"}}, http.StatusBadRequest)
	page = postForm(t, c, srv.URL+"/console/bulk-resolve", url.Values{"csrf": {csrf}, "form": {info.ID}, "question": {"threats/safe_day"},
		"rule": {"latest"}, "reason": {"the second visit corrects the first"}}, http.StatusOK)
	if !strings.Contains(page, "3 conflicts resolved") {
		t.Fatalf("bulk rule page:\n%s", page)
	}
	mustSync(t, a)
	mustSync(t, b)
	for _, d := range []*fieldapp.Device{a, b} {
		for _, id := range ids {
			rec, err := d.Replica().Record(ctx, id)
			must(t, err)
			reg := rec.Fields["threats/safe_day"]
			if e, conflict := reg.Current(); conflict || e.Value.String() != "unsafe" {
				t.Fatalf("threats/safe_day after the rule: %v (conflict %v)", e.Value, conflict)
			}
			if _, conflict := rec.Fields["household/hh_size"].Current(); !conflict {
				t.Fatal("the rule resolved another question too")
			}
		}
	}
}
