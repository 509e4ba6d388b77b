package ui_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/fieldapp/ui"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/xuri/excelize/v2"
)

// uiClient is a browser without a browser: cookies, the CSRF token of the
// last page, no redirects followed.
type uiClient struct {
	t       *testing.T
	base    string
	c       *http.Client
	csrf    string
	session string // the unlocked session's path, from the unlock's redirect
}

var sessionRE = regexp.MustCompile(`^/s/[^/]+`)

func newUIClient(t *testing.T, base string) *uiClient {
	jar, _ := cookiejar.New(nil)
	return &uiClient{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (u *uiClient) do(method, path string, form url.Values) (int, string, http.Header) {
	u.t.Helper()
	var body io.Reader
	if form != nil {
		if u.csrf != "" && form.Get("csrf") == "" {
			form.Set("csrf", u.csrf)
		}
		body = strings.NewReader(form.Encode())
	}
	full := u.base + path
	if u.session != "" && path != "/unlock" && !strings.HasPrefix(path, "/static/") && !strings.HasPrefix(path, "/s/") {
		full = u.base + u.session + path
	}
	req, err := http.NewRequest(method, full, body)
	if err != nil {
		u.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := u.c.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if loc := res.Header.Get("Location"); res.StatusCode == http.StatusSeeOther && path == "/unlock" {
		u.session = sessionRE.FindString(loc)
	}
	if loc := res.Header.Get("Location"); u.session != "" && strings.HasPrefix(loc, u.session+"/") {
		res.Header.Set("Location", strings.TrimPrefix(loc, u.session)) // tests name pages by their path in the session
	}
	if m := csrfRE.FindSubmatch(b); m != nil {
		u.csrf = string(m[1])
	}
	return res.StatusCode, string(b), res.Header
}

func (u *uiClient) get(path string) string {
	u.t.Helper()
	code, body, _ := u.do("GET", path, nil)
	if code != http.StatusOK {
		u.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

func (u *uiClient) post(path string, form url.Values, want int) (string, http.Header) {
	u.t.Helper()
	code, body, h := u.do("POST", path, form)
	if code != want {
		u.t.Fatalf("POST %s: %d, want %d: %.500s", path, code, want, body)
	}
	return body, h
}

func (u *uiClient) answer(id, field, value string) fieldapp.State {
	u.t.Helper()
	body, _ := u.post("/interview/"+id+"/answer", url.Values{"field": {field}, "value": {value}}, http.StatusOK)
	var st fieldapp.State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		u.t.Fatalf("answer %s: %v in %s", field, err, body)
	}
	return st
}

func (u *uiClient) sync() ui.SyncStatus {
	u.t.Helper()
	u.get("/sync")
	u.post("/sync", url.Values{}, http.StatusSeeOther)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, body, _ := u.do("GET", "/sync/status", nil)
		var st ui.SyncStatus
		json.Unmarshal([]byte(body), &st)
		if !st.Running && st.Result != nil {
			if st.Error != "" {
				u.t.Fatalf("sync: %s", st.Error)
			}
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	u.t.Fatal("sync did not end")
	return ui.SyncStatus{}
}

// TestUIConflictOnDevice: two devices answer the same question offline;
// the device UI shows the question in conflict with both answers, in the
// list too; settling it needs the PIN again; the settled answer reaches the
// server. Also: Arabic is laid out right to left, a stale form token and a
// foreign Host are refused.
func TestUIConflictOnDevice(t *testing.T) {
	ctx := context.Background()
	srv, serverURL := startServer(t)
	_, base, _ := startUI(t, serverURL)
	u := newUIClient(t, base)

	if body := u.get("/"); !strings.Contains(body, `id="unlock-form"`) {
		t.Fatalf("locked UI shows: %.300s", body)
	}
	if code, _, _ := u.do("GET", "/interviews", nil); code != http.StatusOK {
		t.Fatalf("locked /interviews: %d", code)
	}
	u.post("/unlock", url.Values{"pin": {pin}}, http.StatusSeeOther)
	u.get("/forms")
	_, h := u.post("/interviews", url.Values{"form": {"community_security"}}, http.StatusSeeOther)
	id := strings.TrimPrefix(h.Get("Location"), "/interview/")
	u.answer(id, "intro/consent", "yes")
	if st := u.answer(id, "threats/safe_day", "safe"); !st.Relevant["threats/safe_day"] {
		t.Fatalf("state after answers: %+v", st)
	}
	u.sync()

	// Device B edits the same answer offline.
	b, err := fieldapp.Init(ctx, t.TempDir()+"/b", fieldapp.Config{Server: serverURL, PIN: "b-pin-9"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Sync(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	rid := syncengine.RecordID(uuid.MustParse(id))
	if err := b.Replica().Set(ctx, rid, []syncengine.FieldWrite{{Name: "threats/safe_day", Value: syncengine.TextValue("unsafe")}}); err != nil {
		t.Fatal(err)
	}
	u.get("/interview/" + id)
	u.answer(id, "threats/safe_day", "very_safe")
	if _, err := b.Sync(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	u.sync()

	page := u.get("/interview/" + id)
	for _, want := range []string{"Two devices answered differently", "Unsafe", "Very safe", `id="resolve-threats/safe_day"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("interview page lacks %q", want)
		}
	}
	if list := u.get("/interviews"); !strings.Contains(list, "in conflict") {
		t.Fatal("the list does not show the conflict")
	}
	// Which index is "unsafe"? The resolve form lists values in View order.
	d := fieldapp.View(mustRecord(t, srv.Replica(), rid))
	idx := -1
	for i, c := range d.Fields["threats/safe_day"].Conflicts {
		if c.Value.Str == "unsafe" {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("server conflicts: %+v", d.Fields["threats/safe_day"])
	}
	form := url.Values{"field": {"threats/safe_day"}, "choice": {string(rune('0' + idx))}, "pin": {"wrong-pin"}}
	u.post("/interview/"+id+"/resolve", form, http.StatusForbidden)
	u.get("/interview/" + id)
	form.Set("pin", pin)
	form.Del("csrf")
	u.post("/interview/"+id+"/resolve", form, http.StatusSeeOther)
	if page := u.get("/interview/" + id); strings.Contains(page, "Two devices answered differently") {
		t.Fatal("still in conflict after settling")
	}
	u.sync()
	rec := mustRecord(t, srv.Replica(), rid)
	if v := rec.Values()["threats/safe_day"]; v.Str != "unsafe" || len(rec.Conflicts()) != 0 {
		t.Fatalf("server after settling: %v, conflicts %v", v, rec.Conflicts())
	}

	// Arabic: right to left, the form's Arabic labels.
	u.post("/language", url.Values{"lang": {"العربية (ar)"}}, http.StatusSeeOther)
	if page := u.get("/interview/" + id); !strings.Contains(page, `dir="rtl"`) || !strings.Contains(page, "هل توافق على المشاركة؟") ||
		!strings.Contains(page, ">مسح<") || !strings.Contains(page, "حفظ المسودة") {
		t.Fatal("Arabic interview is not right to left with Arabic labels and buttons")
	}
	u.post("/language", url.Values{"lang": {"Klingon"}}, http.StatusBadRequest)

	// A form from another page (no token) and a foreign Host are refused.
	u.post("/interview/"+id+"/answer", url.Values{"field": {"intro/consent"}, "value": {"no"}, "csrf": {"forged"}}, http.StatusForbidden)
	req, _ := http.NewRequest("GET", base+"/", nil)
	req.Host = "evil.example:80"
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("foreign Host: %v %v", res.StatusCode, err)
	}
}

func mustRecord(t *testing.T, r *syncengine.Replica, id syncengine.RecordID) *syncengine.Record {
	t.Helper()
	rec, err := r.Record(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestUIIdleLock: after the idle time the store is closed and the UI shows
// the unlock screen again; the PIN opens it.
func TestUIIdleLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	d, err := fieldapp.Init(context.Background(), dir, fieldapp.Config{PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	web, err := ui.NewUI(dir, ui.UIOptions{IdleLock: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	srv := httptest.NewServer(web)
	defer srv.Close()
	u := newUIClient(t, srv.URL)
	u.post("/unlock", url.Values{"pin": {pin}}, http.StatusSeeOther)
	if body := u.get("/interviews"); !strings.Contains(body, `id="interviews"`) {
		t.Fatal("not unlocked")
	}
	web.IdleCheck(time.Now().Add(30 * time.Second))
	if body := u.get("/interviews"); !strings.Contains(body, `id="interviews"`) {
		t.Fatal("locked before the idle time")
	}
	web.IdleCheck(time.Now().Add(2 * time.Minute))
	if body := u.get("/interviews"); !strings.Contains(body, `id="unlock-form"`) {
		t.Fatal("still unlocked after the idle time")
	}
	// The store is really closed: another process could open it now.
	if d, err := fieldapp.Open(context.Background(), dir, pin); err != nil {
		t.Fatalf("store still held after the idle lock: %v", err)
	} else {
		d.Close()
	}
}

// TestUIWipe: a device the lead flagged for wipe sends everything at its
// next sync from the UI, then its store is gone and the UI says so.
func TestUIWipe(t *testing.T) {
	ctx := context.Background()
	srv, err := server.New(ctx, server.Config{DataDir: filepath.Join(t.TempDir(), "server"), RequireAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	defer srv.Close()
	a := srv.Auth()
	if err := a.CreateProject(ctx, "lead", "camp"); err != nil {
		t.Fatal(err)
	}
	code, _, err := a.NewEnrollmentCode(ctx, "lead", "camp", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dev")
	d, err := fieldapp.Init(ctx, dir, fieldapp.Config{Server: hs.URL, Enroll: code, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	id, err := d.Replica().Create(ctx, "household", []syncengine.FieldWrite{{Name: "q1", Value: syncengine.TextValue("kept")}})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	devs, err := a.Devices(ctx, "camp")
	if err != nil || len(devs) != 1 {
		t.Fatalf("devices: %v %v", devs, err)
	}
	if err := a.SetDevice(ctx, "lead", devs[0].ID, false, true); err != nil {
		t.Fatal(err)
	}

	web, err := ui.NewUI(dir, ui.UIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	us := httptest.NewServer(web)
	defer us.Close()
	u := newUIClient(t, us.URL)
	u.post("/unlock", url.Values{"pin": {pin}}, http.StatusSeeOther)
	u.get("/sync")
	u.post("/sync", url.Values{}, http.StatusSeeOther)
	var st ui.SyncStatus
	for deadline := time.Now().Add(30 * time.Second); !st.Locked && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, body, _ := u.do("GET", "/sync/status", nil)
		json.Unmarshal([]byte(body), &st)
	}
	if !st.Locked || !st.Wiped {
		t.Fatalf("sync of a device flagged for wipe: status %+v", st)
	}
	if _, err := srv.Replica().Record(ctx, id); err != nil {
		t.Fatalf("the device's record did not reach the server before the wipe: %v", err)
	}
	if fieldapp.Exists(dir) {
		t.Fatal("the store is still there")
	}
	if body := u.get("/"); !strings.Contains(body, `id="wiped"`) {
		t.Fatalf("the UI does not say the device was wiped: %.400s", body)
	}
	if code, _, _ := u.do("GET", "/interviews", nil); code != http.StatusOK {
		t.Fatalf("after the wipe /interviews answers %d", code)
	}
}

// TestUISessionCookieStaysOnItsPath (issue 13, finding 14): browsers send a
// host's cookies to every port of it, so a session cookie with Path=/
// reached any server on another port of 127.0.0.1 the browser was led to
// (another app on the phone). The session now lives under a random path of
// its own, which its cookie is limited to and which only the unlocking
// browser learns.
func TestUISessionCookieStaysOnItsPath(t *testing.T) {
	_, serverURL := startServer(t)
	_, base, _ := startUI(t, serverURL)
	u := newUIClient(t, base)
	_, h := u.post("/unlock", url.Values{"pin": {pin}}, http.StatusSeeOther)
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "tessera_device" {
			cookie = c
		}
	}
	if cookie == nil || u.session == "" || cookie.Path != u.session+"/" {
		t.Fatalf("session cookie %+v, session path %q", cookie, u.session)
	}
	u.get("/forms") // the session works under its path

	// Another server on 127.0.0.1, another port: the same cookie jar (it
	// keeps cookies per host, not per port, as browsers do) sends it nothing.
	got := make(chan string, 1)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Cookie")
	}))
	defer other.Close()
	for _, p := range []string{"/", "/forms", "/s/guess/forms"} {
		res, err := u.c.Get(other.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if c := <-got; strings.Contains(c, "tessera_device") {
			t.Fatalf("the session cookie went to %s%s: %q", other.URL, p, c)
		}
	}
	// Nor does the session path leak to a caller without it.
	anon := newUIClient(t, base)
	for _, p := range []string{"/", "/forms", "/interviews", "/s/guess/forms"} {
		code, body, _ := anon.do("GET", p, nil)
		if strings.Contains(body, strings.TrimPrefix(u.session, "/s/")) || !strings.Contains(body, `id="unlock-form"`) {
			t.Fatalf("GET %s without the session: %d %.300s", p, code, body)
		}
	}
}

// TestUIRank (issue 15): a rank question shows each choice with a
// position; a plain form post stores the choices in the order given.
func TestUIRank(t *testing.T) {
	srv, serverURL := startServer(t)
	f := excelize.NewFile()
	f.SetSheetName("Sheet1", "survey")
	for i, r := range [][]string{{"type", "name", "label"}, {"rank pri", "pri", "Priorities"}} {
		f.SetSheetRow("survey", fmt.Sprintf("A%d", i+1), &r)
	}
	f.NewSheet("choices")
	for i, r := range [][]string{{"list_name", "name", "label"}, {"pri", "food", "Food"}, {"pri", "water", "Water"}, {"pri", "shelter", "Shelter"}} {
		f.SetSheetRow("choices", fmt.Sprintf("A%d", i+1), &r)
	}
	f.NewSheet("settings")
	f.SetSheetRow("settings", "A1", &[]string{"form_id", "version"})
	f.SetSheetRow("settings", "A2", &[]string{"ranks", "1"})
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Forms().Publish(context.Background(), buf.Bytes(), "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	_, base, _ := startUI(t, serverURL)
	u := newUIClient(t, base)
	u.post("/unlock", url.Values{"pin": {pin}}, http.StatusSeeOther)
	u.sync()
	_, h := u.post("/interviews", url.Values{"form": {"ranks"}}, http.StatusSeeOther)
	id := strings.TrimPrefix(h.Get("Location"), "/interview/")
	page := u.get("/interview/" + id)
	if n := strings.Count(page, `data-rank=`); n != 3 {
		t.Fatalf("%d rank selects on the page", n)
	}
	u.post("/interview/"+id+"/save", url.Values{"_f": {"pri"}, "pri#rank#water": {"1"}, "pri#rank#food": {"2"}, "pri#rank#shelter": {""}}, http.StatusSeeOther)
	page = u.get("/interview/" + id)
	for _, want := range []string{`data-rank="water"><option value=""></option><option value="1" selected>`, `data-rank="food"><option value=""></option><option value="1">1</option><option value="2" selected>`} {
		if !strings.Contains(page, want) {
			t.Fatalf("the ranks after saving: want %s in\n%.3000s", want, page)
		}
	}
}

// TestMetadataFilledAsCollectFills (issue 15): a new interview gets its
// start time, date and device id; what a browser cannot know (phone
// number, SIM serial, subscriber id, email, user name) is recorded as
// unavailable (written empty), never invented.
func TestMetadataFilledAsCollectFills(t *testing.T) {
	srv, serverURL := startServer(t)
	f := excelize.NewFile()
	f.SetSheetName("Sheet1", "survey")
	rows := [][]string{{"type", "name", "label"}, {"start", "started", ""}, {"today", "day", ""}, {"deviceid", "dev", ""},
		{"phonenumber", "phone", ""}, {"simserial", "sim", ""}, {"subscriberid", "sub", ""}, {"email", "mail", ""},
		{"username", "user", ""}, {"text", "q", "Q"}}
	for i, r := range rows {
		f.SetSheetRow("survey", fmt.Sprintf("A%d", i+1), &r)
	}
	f.NewSheet("settings")
	f.SetSheetRow("settings", "A1", &[]string{"form_id", "version"})
	f.SetSheetRow("settings", "A2", &[]string{"meta", "1"})
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Forms().Publish(context.Background(), buf.Bytes(), "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dev, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "dev"), fieldapp.Config{Server: serverURL, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := dev.Sync(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	rid, err := dev.NewInterview(ctx, "meta")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dev.Replica().Record(ctx, rid)
	if err != nil {
		t.Fatal(err)
	}
	v := rec.Values()
	if v["started"].Kind == syncengine.Null || v["day"].String() != time.Now().Format(time.DateOnly) || !strings.HasPrefix(v["dev"].String(), "tessera:") {
		t.Fatalf("filled: %v", v)
	}
	for _, q := range []string{"phone", "sim", "sub", "mail", "user"} {
		if x, ok := v[q]; !ok || x.Kind != syncengine.Text || x.Str != "" {
			t.Errorf("%s: %v (%v), want recorded empty", q, x, ok)
		}
	}
	if vs, err := dev.Finalize(ctx, rid, ""); err != nil || len(vs) != 0 {
		t.Fatalf("finalize with metadata recorded empty: %v %v", vs, err)
	}
}

// TestAuditLogKept (issue 15): a form with an audit question keeps ODK's
// audit log (audit.csv's events) in the interview: the form's start, each
// answer changed (old and new values with track-changes), constraint
// errors, the end screen, save and finalize; it syncs with the record.
func TestAuditLogKept(t *testing.T) {
	srv, serverURL := startServer(t)
	f := excelize.NewFile()
	f.SetSheetName("Sheet1", "survey")
	rows := [][]string{{"type", "name", "label", "required", "parameters"}, {"audit", "audit", "", "", "track-changes=true"},
		{"integer", "age", "Age", "yes", ""}, {"text", "name", "Name", "", ""}}
	for i, r := range rows {
		f.SetSheetRow("survey", fmt.Sprintf("A%d", i+1), &r)
	}
	f.NewSheet("settings")
	f.SetSheetRow("settings", "A1", &[]string{"form_id", "version"})
	f.SetSheetRow("settings", "A2", &[]string{"audited", "1"})
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Forms().Publish(context.Background(), buf.Bytes(), "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dev, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "dev"), fieldapp.Config{Server: serverURL, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := dev.Sync(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	id, err := dev.NewInterview(ctx, "audited")
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dev.Answer(ctx, id, "name", "Amina"); err != nil { // as the screen saves it
		t.Fatal(err)
	}
	if vs, err := dev.Finalize(ctx, id, ""); err != nil || len(vs) != 1 {
		t.Fatalf("finalize without the required age: %v %v", vs, err)
	}
	must(dev.Set(ctx, id, []syncengine.FieldWrite{{Name: "age", Value: syncengine.IntValue(31)}}))
	must(dev.Set(ctx, id, []syncengine.FieldWrite{{Name: "age", Value: syncengine.IntValue(32)}}))
	if vs, err := dev.Finalize(ctx, id, ""); err != nil || len(vs) != 0 {
		t.Fatalf("finalize: %v %v", vs, err)
	}
	if _, err := dev.Sync(ctx, "", nil); err != nil {
		t.Fatal(err)
	}
	rec, err := srv.Replica().Record(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	log := rec.Values()["audit"].String()
	r := csv.NewReader(strings.NewReader(log))
	lines, err := r.ReadAll()
	if err != nil {
		t.Fatalf("the audit log is not CSV: %v\n%s", err, log)
	}
	var got []string
	for _, l := range lines[1:] {
		got = append(got, strings.Join([]string{l[0], l[1], l[4], l[5]}, "|"))
	}
	want := []string{"form start|||", "question|/data/name||Amina", "constraint error|/data/age||",
		"question|/data/age||31", "question|/data/age|31|32", "end screen|||", "form save|||", "form finalize|||"}
	if strings.Join(lines[0], ",") != "event,node,start,end,old-value,new-value" || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit log on the server:\n%s", log)
	}
}

// TestUIExternalAndFileChoices (issue 15): a select_one_external offers
// the external_choices sheet's list, narrowed by its choice filter on
// that sheet's own columns; a select_one_from_file of an XML attachment
// offers the file's items; a barcode has its camera button (shown by the
// script only where the browser has a barcode detector).
func TestUIExternalAndFileChoices(t *testing.T) {
	srv, serverURL := startServer(t)
	f := excelize.NewFile()
	f.SetSheetName("Sheet1", "survey")
	for i, r := range [][]string{{"type", "name", "label", "choice_filter"},
		{"select_one states", "state", "State", ""},
		{"select_one_external cities", "city", "City", "state=${state}"},
		{"select_one_from_file camps.xml", "camp", "Camp", ""},
		{"barcode", "tag", "Tag", ""}} {
		f.SetSheetRow("survey", fmt.Sprintf("A%d", i+1), &r)
	}
	f.NewSheet("choices")
	for i, r := range [][]string{{"list_name", "name", "label"}, {"states", "north", "North"}, {"states", "south", "South"}} {
		f.SetSheetRow("choices", fmt.Sprintf("A%d", i+1), &r)
	}
	f.NewSheet("external_choices")
	for i, r := range [][]string{{"list_name", "name", "label", "state"}, {"cities", "gulu", "Gulu", "north"},
		{"cities", "kitgum", "Kitgum", "north"}, {"cities", "mbarara", "Mbarara", "south"}} {
		f.SetSheetRow("external_choices", fmt.Sprintf("A%d", i+1), &r)
	}
	f.NewSheet("settings")
	f.SetSheetRow("settings", "A1", &[]string{"form_id", "version"})
	f.SetSheetRow("settings", "A2", &[]string{"ext", "1"})
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	camps := `<root><item><name>camp_a</name><label>Camp A</label></item><item><name>camp_b</name><label>Camp B</label></item></root>`
	if _, _, err := srv.Forms().PublishWith(context.Background(), buf.Bytes(), []forms.File{{Name: "camps.xml", Data: []byte(camps)}},
		"", "", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	_, base, _ := startUI(t, serverURL)
	u := newUIClient(t, base)
	u.post("/unlock", url.Values{"pin": {pin}}, http.StatusSeeOther)
	u.sync()
	_, h := u.post("/interviews", url.Values{"form": {"ext"}}, http.StatusSeeOther)
	id := strings.TrimPrefix(h.Get("Location"), "/interview/")
	page := u.get("/interview/" + id)
	if strings.Contains(page, "cannot be answered") {
		t.Fatalf("a question is still unsupported:\n%.3000s", page)
	}
	for _, want := range []string{`data-choice="gulu"`, `data-choice="mbarara"`, `data-choice="camp_b"`, `data-scan="tag"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("want %s on the page:\n%.4000s", want, page)
		}
	}
	u.post("/interview/"+id+"/save", url.Values{"_f": {"state", "camp"}, "state": {"south"}, "camp": {"camp_b"}}, http.StatusSeeOther)
	page = u.get("/interview/" + id)
	for _, c := range []struct {
		name   string
		hidden bool
	}{{"gulu", true}, {"kitgum", true}, {"mbarara", false}} {
		re := regexp.MustCompile(`<label class="choice"( hidden)? data-choice="` + c.name + `"`)
		m := re.FindStringSubmatch(page)
		if m == nil || (m[1] != "") != c.hidden {
			t.Errorf("city %s: hidden=%v wanted, page has %q", c.name, c.hidden, m)
		}
	}
	if !regexp.MustCompile(`value="camp_b" data-field="camp" checked`).MatchString(page) {
		t.Errorf("the XML file's choice was not kept")
	}
	u.post("/interview/"+id+"/save", url.Values{"_f": {"city"}, "city": {"gulu"}}, http.StatusSeeOther)
	u.post("/interview/"+id+"/save", url.Values{"_f": {"city"}, "city": {"mbarara"}}, http.StatusSeeOther)
	if !regexp.MustCompile(`value="mbarara" data-field="city" checked`).MatchString(u.get("/interview/" + id)) {
		t.Errorf("the external choice was not kept")
	}
}

// TestUILabelMedia (issues 15, 16): a question's label image and audio,
// attachments of the form brought by the media transfer, show on the
// interview page in the interview's language and are served from the
// device's store; another name is not found.
func TestUILabelMedia(t *testing.T) {
	srv, serverURL := startServer(t)
	f := excelize.NewFile()
	f.SetSheetName("Sheet1", "survey")
	for i, r := range [][]string{{"type", "name", "label", "media::image", "media::audio"},
		{"text", "where", "Where do you sleep?", "shelter.png", "where.m4a"}} {
		f.SetSheetRow("survey", fmt.Sprintf("A%d", i+1), &r)
	}
	f.NewSheet("settings")
	f.SetSheetRow("settings", "A1", &[]string{"form_id", "version"})
	f.SetSheetRow("settings", "A2", &[]string{"pictures", "1"})
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	png := append([]byte("\x89PNG\r\n\x1a\nLABEL-IMAGE"), bytes.Repeat([]byte{7}, 300<<10)...)
	if _, _, err := srv.Forms().PublishWith(context.Background(), buf.Bytes(), []forms.File{{Name: "shelter.png", Data: png},
		{Name: "where.m4a", Data: []byte("AUDIO")}}, "", "", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	_, base, _ := startUI(t, serverURL)
	u := newUIClient(t, base)
	u.post("/unlock", url.Values{"pin": {pin}}, http.StatusSeeOther)
	u.sync()
	_, h := u.post("/interviews", url.Values{"form": {"pictures"}}, http.StatusSeeOther)
	id := strings.TrimPrefix(h.Get("Location"), "/interview/")
	page := u.get("/interview/" + id)
	for _, want := range []string{`<img class="preview" src="interview/` + id + `/label/shelter.png"`, `src="interview/` + id + `/label/where.m4a"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("want %s on the page:\n%.3000s", want, page)
		}
	}
	if got := u.get("/interview/" + id + "/label/shelter.png"); got != string(png) {
		t.Fatalf("the label image served: %d bytes, want %d", len(got), len(png))
	}
	if code, _, _ := u.do("GET", "/interview/"+id+"/label/other.png", nil); code != http.StatusNotFound {
		t.Fatalf("a file the form does not have: %d", code)
	}
}
