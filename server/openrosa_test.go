package server_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/xuri/excelize/v2"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/browsertest"
	"github.com/tessera-survey/tessera/internal/shared"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// householdForm is a small form with a repeat and a select_multiple.
func householdForm(t *testing.T, id, version string) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "survey")
	f.NewSheet("choices")
	f.NewSheet("settings")
	sheets := map[string][][]string{
		"survey": {{"type", "name", "label", "relevant"}, {"text", "head", "Head of household", ""}, {"integer", "size", "Size", ""},
			{"select_multiple needs", "needs", "Needs", ""}, {"begin repeat", "kids", "Children", ""}, {"text", "kid", "Name", ""},
			{"end repeat", "", "", ""}, {"begin group", "large", "Large household", "${size} > 10"}, {"text", "why", "Why so many?", ""},
			{"end group", "", "", ""}, {"image", "photo", "Door photo", ""}},
		"choices":  {{"list_name", "name", "label"}, {"needs", "food", "Food"}, {"needs", "water", "Water"}, {"needs", "shelter", "Shelter"}},
		"settings": {{"form_id", "version"}, {id, version}},
	}
	for sheet, rows := range sheets {
		for i, r := range rows {
			for j, v := range r {
				cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
				f.SetCellStr(sheet, cell, v)
			}
		}
	}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func instanceXML(form, version, instanceID, deprecatedID, head, size, needs string, kids ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0"?><data xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" id=%q version=%q>`, form, version)
	fmt.Fprintf(&b, "<head>%s</head><size>%s</size><needs>%s</needs>", head, size, needs)
	for _, k := range kids {
		fmt.Fprintf(&b, "<kids><kid>%s</kid></kids>", k)
	}
	b.WriteString("<meta><instanceID>" + instanceID + "</instanceID>")
	if deprecatedID != "" {
		b.WriteString("<deprecatedID>" + deprecatedID + "</deprecatedID>")
	}
	b.WriteString("</meta></data>")
	return []byte(b.String())
}

// submit POSTs an instance as Collect does (multipart, xml_submission_file).
func submit(t *testing.T, url string, xml []byte, extra ...string) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("xml_submission_file", "submission.xml")
	w.Write(xml)
	for _, name := range extra {
		w, _ := mw.CreateFormFile(name, name)
		w.Write([]byte("attachment bytes"))
	}
	mw.Close()
	req, _ := http.NewRequest("POST", url+"/submission?deviceID=collect:abc", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-OpenRosa-Version", "1.0")
	req.Header.Set("Date", "Wed, 2 Dec 2026 4:30:00 AM GMT+00:00") // Collect's odd format: never checked
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

var reDownload = regexp.MustCompile(`<downloadUrl>([^<]+)</downloadUrl>`)
var reHash = regexp.MustCompile(`<hash>md5:([0-9a-f]+)</hash>`)

// TestOpenRosaCollect (issue 17): a collecting device of project A lists
// only A's forms, downloads an XForm whose md5 is the listed hash, submits
// (HEAD first), re-sends harmlessly, is refused a different instance under
// the same instanceID, an unknown form, B's form; a bad and a revoked
// token get 403 with an OpenRosa message; an edit from Collect and an edit
// on a Tessera device to another answer both survive.
func TestOpenRosaCollect(t *testing.T) {
	ts := newTrustServer(t)
	teamRecords(t, ts.Auth(), "A", "B")
	ctx := context.Background()
	for _, p := range []string{"A", "B"} {
		id := "house_" + strings.ToLower(p)
		if _, err := ts.rpc[strings.ToLower(p)+"-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: householdForm(t, id, "1"), Project: p}); err != nil {
			t.Fatal(err)
		}
	}
	cd, err := ts.rpc["a-lead"].Admin().CreateCollectDevice(ctx, &tesserav1.CreateCollectDeviceRequest{Project: "A", Name: "Collect 1"})
	if err != nil {
		t.Fatal(err)
	}
	base := ts.URL + "/key/" + cd.Token

	res, list := get(t, base+"/formList?deviceID=collect:abc")
	if res.StatusCode != 200 || res.Header.Get("X-OpenRosa-Version") != "1.0" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/xml") ||
		!strings.Contains(list, `xmlns="http://openrosa.org/xforms/xformsList"`) || !strings.Contains(list, "<formID>house_a</formID>") || strings.Contains(list, "house_b") {
		t.Fatalf("formList: %d %v\n%s", res.StatusCode, res.Header, list)
	}
	dl, hash := reDownload.FindStringSubmatch(list), reHash.FindStringSubmatch(list)
	if dl == nil || hash == nil {
		t.Fatalf("formList without downloadUrl or hash:\n%s", list)
	}
	res, x := get(t, dl[1])
	sum := md5.Sum([]byte(x))
	if res.StatusCode != 200 || hex.EncodeToString(sum[:]) != hash[1] || !strings.Contains(x, `odk:client-editable="true"`) {
		t.Fatalf("the XForm: %d, md5 %x vs listed %s", res.StatusCode, sum, hash[1])
	}
	if _, again := get(t, dl[1]); again != x {
		t.Fatal("the XForm's bytes changed between downloads")
	}

	req, _ := http.NewRequest("HEAD", base+"/submission?deviceID=collect:abc", nil)
	hres, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hres.Body.Close()
	if hres.StatusCode != http.StatusNoContent || hres.Header.Get("X-OpenRosa-Accept-Content-Length") == "" || hres.Header.Get("X-OpenRosa-Version") != "1.0" {
		t.Fatalf("HEAD /submission: %d %v", hres.StatusCode, hres.Header)
	}

	first := instanceXML("house_a", "1", "uuid:0f5e4b2a-1111-4c3d-9e8f-000000000001", "", "Amina", "4", "food  water", "Ali", "Sara")
	if code, body := submit(t, base, first, "photo.jpg"); code != http.StatusCreated || !strings.Contains(body, "OpenRosaResponse") {
		t.Fatalf("submission: %d %s", code, body)
	}
	if code, body := submit(t, base, first); code != http.StatusCreated {
		t.Fatalf("the same submission again: %d %s", code, body)
	}
	other := instanceXML("house_a", "1", "uuid:0f5e4b2a-1111-4c3d-9e8f-000000000001", "", "Someone else", "4", "food")
	if code, body := submit(t, base, other); code != http.StatusConflict || !strings.Contains(body, "<message") {
		t.Fatalf("other XML under the same instanceID: %d %s", code, body)
	}
	if code, _ := submit(t, base, instanceXML("house_a", "9", "uuid:x-2", "", "A", "1", "")); code != http.StatusNotFound {
		t.Fatalf("an unknown version: %d", code)
	}
	if code, _ := submit(t, base, instanceXML("house_b", "1", "uuid:x-3", "", "A", "1", "")); code != http.StatusNotFound {
		t.Fatalf("another project's form: %d", code)
	}
	bad := []byte(strings.Replace(string(instanceXML("house_a", "1", "uuid:x-4", "", "A", "1", "")), "<size>", "<nope>1</nope><size>", 1))
	if code, _ := submit(t, base, bad); code != http.StatusBadRequest {
		t.Fatalf("an instance not of its form: %d", code)
	}
	if code, body := submit(t, ts.URL+"/key/nobody.nothing", first); code != http.StatusForbidden || !strings.Contains(body, "<message") {
		t.Fatalf("a bad token: %d %s", code, body)
	}
	// Bad input: nothing applied, a message.
	bomb := []byte(`<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><data id="house_a" version="1"><head>&b;</head><meta><instanceID>uuid:bomb</instanceID></meta></data>`)
	if code, body := submit(t, base, bomb); code != http.StatusBadRequest || !strings.Contains(body, "<message") {
		t.Fatalf("an entity bomb: %d %s", code, body)
	}
	deep := []byte(`<data id="house_a" version="1">` + strings.Repeat("<head>", 200) + strings.Repeat("</head>", 200) + `</data>`)
	if code, _ := submit(t, base, deep); code != http.StatusBadRequest {
		t.Fatalf("deep nesting: %d", code)
	}
	mreq, _ := http.NewRequest("POST", base+"/submission", strings.NewReader("--x\r\nnot a part"))
	mreq.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	mres, err := http.DefaultClient.Do(mreq)
	if err != nil {
		t.Fatal(err)
	}
	mres.Body.Close()
	if mres.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed multipart: %d", mres.StatusCode)
	}
	big := bytes.Repeat([]byte("x"), 11<<20)
	var bb bytes.Buffer
	mw := multipart.NewWriter(&bb)
	pw, _ := mw.CreateFormFile("xml_submission_file", "submission.xml")
	pw.Write(first)
	pw, _ = mw.CreateFormFile("huge.jpg", "huge.jpg")
	pw.Write(big)
	mw.Close()
	breq, _ := http.NewRequest("POST", base+"/submission", &bb)
	breq.Header.Set("Content-Type", mw.FormDataContentType())
	bres, err := http.DefaultClient.Do(breq)
	if err != nil {
		t.Fatal(err)
	}
	bbody, _ := io.ReadAll(bres.Body)
	bres.Body.Close()
	if bres.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(bbody), "OpenRosaResponse") {
		t.Fatalf("an attachment over the limit: %d %s", bres.StatusCode, bbody)
	}

	// The record, as a Tessera device of A sees it.
	d := ts.enrolledDevice(t, "A")
	mustSync(t, d)
	var rec *syncengine.Record
	must(t, d.Records(ctx, func(r *syncengine.Record) error {
		if strings.HasPrefix(r.Form, "house_a@") {
			rec = r
		}
		return nil
	}))
	if rec == nil {
		t.Fatal("the Collect submission did not reach a device of A")
	}
	v := rec.Values()
	kids := 0
	for k, val := range v {
		if strings.HasPrefix(k, "kids[") && strings.HasSuffix(k, "/kid") {
			kids++
			if s := val.String(); s != "Ali" && s != "Sara" {
				t.Errorf("%s = %s", k, s)
			}
		}
	}
	if v["head"].String() != "Amina" || v["size"] != syncengine.IntValue(4) || v["needs"].String() != "food water" || kids != 2 {
		t.Fatalf("the record: %v", v)
	}

	// An edit in Collect (size) while the device edits another answer (head).
	must(t, d.Set(ctx, rec.ID, []syncengine.FieldWrite{{Name: "head", Value: syncengine.TextValue("Amina B.")}}))
	mustSync(t, d)
	edit := instanceXML("house_a", "1", "uuid:0f5e4b2a-1111-4c3d-9e8f-000000000002", "uuid:0f5e4b2a-1111-4c3d-9e8f-000000000001",
		"Amina", "5", "food water", "Ali", "Sara")
	if code, body := submit(t, base, edit); code != http.StatusCreated {
		t.Fatalf("the edit: %d %s", code, body)
	}
	if code, _ := submit(t, base, instanceXML("house_a", "1", "uuid:e-3", "uuid:0f5e4b2a-1111-4c3d-9e8f-000000000001", "X", "1", "")); code != http.StatusConflict {
		t.Fatalf("an edit of a version already edited: %d", code)
	}
	srvRec, err := ts.Replica().Record(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sv := srvRec.Values(); sv["head"].String() != "Amina B." || sv["size"] != syncengine.IntValue(5) || len(srvRec.Conflicts()) != 0 {
		t.Fatalf("after both edits: %v, conflicts %v", sv, srvRec.Conflicts())
	}

	// The same answer changed in Collect and on the device: a conflict, kept.
	must(t, d.Set(ctx, rec.ID, []syncengine.FieldWrite{{Name: "size", Value: syncengine.IntValue(6)}}))
	mustSync(t, d)
	edit2 := instanceXML("house_a", "1", "uuid:0f5e4b2a-1111-4c3d-9e8f-000000000003", "uuid:0f5e4b2a-1111-4c3d-9e8f-000000000002",
		"Amina", "7", "food water", "Ali", "Sara")
	if code, body := submit(t, base, edit2); code != http.StatusCreated {
		t.Fatalf("the second edit: %d %s", code, body)
	}
	srvRec, err = ts.Replica().Record(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c := srvRec.Conflicts(); len(c) != 1 || c[0] != "size" || srvRec.Values()["head"].String() != "Amina B." {
		t.Fatalf("both changed size: conflicts %v, values %v", c, srvRec.Values())
	}

	// It exports like any record; once deleted, re-sending it is refused.
	if text, err := exportText(t, ts.rpc["a-analyst"], "house_a"); err != nil || !strings.Contains(text, "Amina B.") {
		t.Fatalf("export: %v\n%.500s", err, text)
	}
	must(t, ts.Replica().Delete(ctx, rec.ID))
	if code, body := submit(t, base, edit2); code != http.StatusConflict || !strings.Contains(body, "deleted") {
		t.Fatalf("re-sending a deleted record's submission: %d %s", code, body)
	}

	// Revoked: 403, never a 401 challenge.
	if _, err := ts.rpc["a-lead"].Admin().RevokeDevice(ctx, &tesserav1.RevokeDeviceRequest{DeviceId: cd.DeviceId}); err != nil {
		t.Fatal(err)
	}
	if res, body := get(t, base+"/formList"); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "revoked") || res.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("a revoked device's formList: %d %s", res.StatusCode, body)
	}
}

// TestODKEngineSubmits (issue 17): a client built on ODK's own form engine
// (@getodk/xforms-engine under jsdom, scripts/peers/odk-collect.mjs) reads
// Tessera's formList, downloads the XForm (md5 checked), answers it (two
// repeat instances, a select_multiple, a group its relevance skips, a
// photo), serializes the instance and submits it as Collect does (HEAD,
// then the same XML split over two POSTs, the photo in the last); the
// record is right on the server and on a Tessera device of the project, and
// the server holds the photo byte for byte.
func TestODKEngineSubmits(t *testing.T) {
	script := shared.Peer(t, "odk-collect.mjs", "@getodk/xforms-engine", "jsdom")
	ts := newTrustServer(t)
	teamRecords(t, ts.Auth(), "A") // a Tessera device of the team reads the submission
	ctx := context.Background()
	if _, err := ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: householdForm(t, "house_a", "1"), Project: "A"}); err != nil {
		t.Fatal(err)
	}
	cd, err := ts.rpc["a-lead"].Admin().CreateCollectDevice(ctx, &tesserav1.CreateCollectDeviceRequest{Project: "A"})
	if err != nil {
		t.Fatal(err)
	}
	answers := filepath.Join(t.TempDir(), "answers.json")
	photo := append([]byte("\xff\xd8\xff\xe0 door of the shelter "), bytes.Repeat([]byte{7, 1, 9}, 120_000)...)
	spec, _ := json.Marshal(map[string]any{
		"repeats": map[string]int{"/data/kids": 2},
		"answers": map[string]any{"/data/head": "Amina", "/data/size": "4", "/data/needs": []string{"food", "shelter"},
			"/data/kids[1]/kid": "Ali", "/data/kids[2]/kid": "Sara"},
		"files": map[string]any{"/data/photo": map[string]string{"name": "door.jpg", "type": "image/jpeg", "base64": base64.StdEncoding.EncodeToString(photo)}},
	})
	os.WriteFile(answers, spec, 0o600)
	res := runODKClient(t, script, ts.URL+"/key/"+cd.Token, answers)
	if fmt.Sprint(res.Statuses) != "[204 201 201]" || !strings.HasPrefix(res.InstanceID, "uuid:") || len(res.Attachments) != 1 {
		t.Fatalf("statuses %v, instanceID %q, attachments %v\n%s", res.Statuses, res.InstanceID, res.Attachments, res.XML)
	}
	d := ts.enrolledDevice(t, "A")
	mustSync(t, d)
	var got map[string]syncengine.Value
	n := 0
	must(t, d.Records(ctx, func(r *syncengine.Record) error {
		if strings.HasPrefix(r.Form, "house_a@") {
			got, n = r.Values(), n+1
		}
		return nil
	}))
	var kids []string
	for k, v := range got {
		if strings.HasPrefix(k, "kids[") && strings.HasSuffix(k, "/kid") {
			kids = append(kids, v.String())
		}
	}
	sort.Strings(kids)
	if n != 1 || got["head"].String() != "Amina" || got["size"] != syncengine.IntValue(4) || got["needs"].String() != "food shelter" ||
		strings.Join(kids, ",") != "Ali,Sara" || got["large/why"].Kind != syncengine.Null {
		t.Fatalf("%d records; the record: %v\nsubmitted:\n%s", n, got, res.XML)
	}
	// The engine's photo: named by its answer, held byte for byte.
	ref, err := media.ParseRef(got["photo"].String())
	if err != nil || ref.SHA256 == "" || ref.Size != int64(len(photo)) {
		t.Fatalf("the photo answer %q (%v): not a held file of %d bytes", got["photo"].String(), err, len(photo))
	}
	rd, err := ts.Service().Media().Open(ctx, ref.SHA256)
	must(t, err)
	held, err := io.ReadAll(rd)
	must(t, err)
	if !bytes.Equal(held, photo) {
		t.Fatalf("the server holds %d bytes, not the engine's photo", len(held))
	}

	// Edited in ODK's engine (size) while the Tessera device edits head.
	var id syncengine.RecordID
	must(t, d.Records(ctx, func(r *syncengine.Record) error { id = r.ID; return nil }))
	must(t, d.Set(ctx, id, []syncengine.FieldWrite{{Name: "head", Value: syncengine.TextValue("Amina Y.")}}))
	mustSync(t, d)
	editSpec, _ := json.Marshal(map[string]any{"edit": res.XML, "answers": map[string]any{"/data/size": "5"}})
	os.WriteFile(answers, editSpec, 0o600)
	ed := runODKClient(t, script, ts.URL+"/key/"+cd.Token, answers)
	if ed.DeprecatedID != res.InstanceID || ed.InstanceID == res.InstanceID || ed.Statuses[len(ed.Statuses)-1] != http.StatusCreated {
		t.Fatalf("the engine's edit: instanceID %q deprecatedID %q statuses %v\n%s", ed.InstanceID, ed.DeprecatedID, ed.Statuses, ed.XML)
	}
	mustSync(t, d)
	rec, err := d.Record(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if v := rec.Values(); v["head"].String() != "Amina Y." || v["size"] != syncengine.IntValue(5) || len(rec.Conflicts()) != 0 ||
		v["photo"] != got["photo"] {
		t.Fatalf("after both edits, on the device: %v, conflicts %v", v, rec.Conflicts())
	}
	if text, err := exportText(t, ts.rpc["a-analyst"], "house_a"); err != nil || !strings.Contains(text, "Amina Y.") {
		t.Fatalf("the export after both edits: %v\n%.500s", err, text)
	}
}

type odkResult struct {
	InstanceID   string   `json:"instanceID"`
	DeprecatedID string   `json:"deprecatedID"`
	XML          string   `json:"xml"`
	Statuses     []int    `json:"statuses"`
	Attachments  []string `json:"attachments"`
	Error        string   `json:"error"`
}

// runODKClient runs scripts/peers/odk-collect.mjs and reads its result.
func runODKClient(t *testing.T, script, base, answers string) odkResult {
	t.Helper()
	out, err := exec.Command("node", script, base, "house_a", answers).CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, out)
	}
	var res odkResult
	trimmed := bytes.TrimSpace(out)
	if err := json.Unmarshal(trimmed[bytes.LastIndexByte(trimmed, '\n')+1:], &res); err != nil || res.Error != "" {
		t.Fatalf("the client: %v %s\n%s", err, res.Error, out)
	}
	return res
}

// digestDo sends a request signed in by HTTP Digest, answering the
// server's challenge as Collect does (qop=auth).
func digestDo(t *testing.T, method, url, user, pass, contentType string, body []byte) (*http.Response, string) {
	t.Helper()
	do := func(authz string) *http.Response {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := do("")
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%s %s without credentials: %d, want a 401 challenge", method, url, res.StatusCode)
	}
	ch := res.Header.Get("WWW-Authenticate")
	nonce := regexp.MustCompile(`nonce="([^"]+)"`).FindStringSubmatch(ch)
	if nonce == nil || !strings.HasPrefix(ch, "Digest ") {
		t.Fatalf("challenge %q", ch)
	}
	h := func(s string) string { s2 := md5.Sum([]byte(s)); return hex.EncodeToString(s2[:]) }
	uri := url[strings.Index(url[len("http://"):], "/")+len("http://"):]
	ha1, ha2 := h(user+":Tessera:"+pass), h(method+":"+uri)
	resp := h(ha1 + ":" + nonce[1] + ":00000001:c0ffee:auth:" + ha2)
	res = do(fmt.Sprintf(`Digest username=%q, realm="Tessera", nonce=%q, uri=%q, qop=auth, nc=00000001, cnonce="c0ffee", response=%q`, user, nonce[1], uri, resp))
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestOpenRosaAccounts (issue 17): an enumerator account signs in to its
// project's OpenRosa URL by a Digest challenge (plain HTTP: Basic is not
// accepted there), lists and submits that project's forms; a wrong
// password is challenged again and repeated ones throttled; an account of
// another project is refused.
func TestOpenRosaAccounts(t *testing.T) {
	ts := newTrustServer(t)
	teamRecords(t, ts.Auth(), "A", "B")
	ctx := context.Background()
	for _, p := range []string{"A", "B"} {
		if _, err := ts.rpc[strings.ToLower(p)+"-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: householdForm(t, "house_"+strings.ToLower(p), "1"), Project: p}); err != nil {
			t.Fatal(err)
		}
	}
	a := ts.Auth()
	must(t, a.AddUser(ctx, "t", "amina", "amina's long password"))
	must(t, a.Grant(ctx, "t", "amina", "A", "enumerator"))
	base := ts.URL + "/projects/A"

	res, list := digestDo(t, "GET", base+"/formList", "amina", "amina's long password", "", nil)
	if res.StatusCode != 200 || !strings.Contains(list, "house_a") || strings.Contains(list, "house_b") || !strings.Contains(list, base+"/forms/house_a/1/form.xml") {
		t.Fatalf("formList by Digest: %d\n%s", res.StatusCode, list)
	}
	req, _ := http.NewRequest("GET", base+"/formList", nil)
	req.SetBasicAuth("amina", "amina's long password")
	bres, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bres.Body.Close()
	if bres.StatusCode != http.StatusUnauthorized || strings.Contains(bres.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("Basic over plain HTTP: %d %v", bres.StatusCode, bres.Header)
	}
	if res, _ := digestDo(t, "GET", ts.URL+"/projects/B/formList", "amina", "amina's long password", "", nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("another project's URL: %d", res.StatusCode)
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("xml_submission_file", "submission.xml")
	w.Write(instanceXML("house_a", "1", "uuid:acc-1", "", "Yusuf", "3", "water", "Lina"))
	mw.Close()
	res, out := digestDo(t, "POST", base+"/submission?deviceID=collect:kobo1", "amina", "amina's long password", mw.FormDataContentType(), body.Bytes())
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("submission by Digest: %d %s", res.StatusCode, out)
	}
	d := ts.enrolledDevice(t, "A")
	mustSync(t, d)
	found := false
	must(t, d.Records(ctx, func(r *syncengine.Record) error {
		found = found || r.Values()["head"].String() == "Yusuf"
		return nil
	}))
	if !found {
		t.Fatal("the account's submission did not reach a device of A")
	}
	b := ts.enrolledDevice(t, "B")
	mustSync(t, b)
	must(t, b.Records(ctx, func(r *syncengine.Record) error {
		if r.Values()["head"].String() == "Yusuf" {
			t.Error("B's device received A's submission")
		}
		return nil
	}))

	throttled := false
	for range 12 {
		res, _ := digestDo(t, "GET", base+"/formList", "amina", "a wrong password", "", nil)
		if res.StatusCode == http.StatusTooManyRequests {
			throttled = true
			break
		}
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a wrong password: %d", res.StatusCode)
		}
	}
	if !throttled {
		t.Fatal("repeated wrong passwords were not throttled")
	}
}

// TestWebFormsInBrowser (issue 17): ODK Web Forms (@getodk/web-forms, its
// Vue UI) in a real headless Chromium renders a form Tessera serves; an
// answer typed into it and submitted becomes a record. The page is served
// beside scripts/peers/node_modules, the OpenRosa URL proxied to the same
// origin as a browser client reaches its server.
func TestWebFormsInBrowser(t *testing.T) {
	peers := filepath.Dir(shared.Peer(t, "web-forms.html", "@getodk/web-forms", "vue"))
	ts := newTrustServer(t)
	teamRecords(t, ts.Auth(), "A") // a Tessera device of the team reads the submission
	ctx := context.Background()
	if _, err := ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: householdForm(t, "house_a", "1"), Project: "A"}); err != nil {
		t.Fatal(err)
	}
	cd, err := ts.rpc["a-lead"].Admin().CreateCollectDevice(ctx, &tesserav1.CreateCollectDeviceRequest{Project: "A"})
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(ts.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	mux := http.NewServeMux()
	mux.Handle("/key/", proxy)
	mux.Handle("/", http.FileServer(http.Dir(peers)))
	page := httptest.NewServer(mux)
	defer page.Close()
	key := "/key/" + cd.Token
	u := page.URL + "/web-forms.html?form=" + url.QueryEscape(key+"/forms/house_a/1/form.xml") + "&submit=" + url.QueryEscape(key+"/submission")

	bctx, cancel := browsertest.New(t, browsertest.Options{})
	defer cancel()
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	err = chromedp.Do(bctx,
		chromedp.Navigate(u),
		chromedp.WaitVisible(css(`input[type="text"]`)),
		chromedp.SendKeys(css(`input[type="text"]`), "Mariam"),
		chromedp.Click(chromedp.Search(`//button[contains(., "Send") or contains(., "Submit")]`)),
		orVoid(chromedp.Poll[bool](`document.getElementById('status').textContent.startsWith('submitted')`, chromedp.WithPollingTimeout(20*time.Second))),
	)
	var status string
	if err == nil {
		status, err = chromedp.Run(bctx, chromedp.Text(css(`#status`)))
	}
	browsertest.Screenshot(t, bctx, "web-forms")
	if err != nil || status != "submitted 201" {
		t.Fatalf("ODK Web Forms: %v, status %q", err, status)
	}
	d := ts.enrolledDevice(t, "A")
	mustSync(t, d)
	found := false
	must(t, d.Records(ctx, func(r *syncengine.Record) error {
		found = found || r.Values()["head"].String() == "Mariam"
		return nil
	}))
	if !found {
		t.Fatal("the answer typed into ODK Web Forms is not a record")
	}
}

func orVoid[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}
