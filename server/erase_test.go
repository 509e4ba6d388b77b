package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/dgraph-io/badger/v4"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/fieldapp"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/residue"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// TestErasureEverywhere (issue 19's proof): central and a camp hub, a
// device at each. A record with a photo, edited three times, is erased at
// central with surveyctl by a lead of its project, after a device at the
// hub edited it offline. After syncing everything, reading every version
// each Badger store keeps (all versions, values in the value log) on
// central, the hub and both devices finds none of its answers or its
// file; central's and the hub's files on disk hold none of those bytes;
// the offline edit brought nothing back; the audit trail verifies and
// says who erased the record and why, never what it held; leads of other
// projects, analysts and devices may not erase.
func TestErasureEverywhere(t *testing.T) {
	ctx := context.Background()
	central := newTrustServer(t)
	teamRecords(t, central.Auth(), "A")
	hub := central.startHub(t, central.URL)
	code, _, err := hub.Auth().NewEnrollmentCode(ctx, "t", "A", "", time.Hour)
	must(t, err)
	atHub, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "at-hub"), fieldapp.Config{Server: hub.URL, Enroll: code, PIN: testPIN})
	must(t, err)
	t.Cleanup(func() { atHub.Close() })
	atCentral := central.enrolledDevice(t, "A")

	text := func(s string) []syncengine.FieldWrite {
		return fw("story", s)
	}
	id, err := atCentral.Create(ctx, "camp_form@1", text("MARKER-first"))
	must(t, err)
	photo := bytes.Repeat([]byte("MARKER-photo "), 10_000) // 130 KB: in the server's value log
	w, err := atCentral.Attach(ctx, id, "shelter.jpg", bytes.NewReader(photo))
	must(t, err)
	w.Name = "photo"
	must(t, atCentral.Set(ctx, id, []syncengine.FieldWrite{w}))
	for _, s := range []string{"MARKER-second", "MARKER-third"} {
		must(t, atCentral.Set(ctx, id, text(s)))
	}
	keep, err := atCentral.Create(ctx, "camp_form@1", text("KEPT-answer"))
	must(t, err)
	round := func() {
		t.Helper()
		for range 2 {
			must(t, hub.SyncUpstream(ctx))
			for _, d := range []*fieldapp.Device{atCentral, atHub} {
				if _, err := d.Sync(ctx, "", nil); err != nil {
					t.Fatalf("sync: %v", err)
				}
			}
		}
	}
	round()
	if got := markers(t, atHub); len(got) != 1 {
		t.Fatalf("the hub's device holds %v before the erasure", got)
	}
	must(t, atHub.Set(ctx, id, text("MARKER-offline"))) // not synced before the erasure

	// Who may erase.
	lead := central.rpc["a-lead"]
	for who, want := range map[string]connect.Code{"b-lead": connect.CodePermissionDenied, "a-analyst": connect.CodePermissionDenied} {
		_, err := central.rpc[who].Review().EraseRecord(ctx, &tesserav1.EraseRecordRequest{Record: id.String(), Reason: "asked"})
		if c := connect.CodeOf(err); c != want && c != connect.CodeNotFound {
			t.Errorf("%s erasing: %v, want %v", who, err, want)
		}
	}
	if _, err := lead.Review().EraseRecord(ctx, &tesserav1.EraseRecordRequest{Record: id.String()}); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("an erasure without a reason: %v", err)
	}
	// A device erasing on its own: the server refuses the push whole.
	rogue := central.enrolledDevice(t, "A")
	mustSync(t, rogue)
	must(t, rogue.Replica().Erase(ctx, keep))
	if _, err := rogue.Sync(ctx, "", nil); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("a device pushed an erasure: %v", err)
	}
	session, err := central.Auth().Login(ctx, "a-lead", "a-lead's long password")
	must(t, err)
	env := map[string]string{"TESSERA_TOKEN": session}
	said := surveyctl(t, central.URL, env, "record", "erase", id.String(), "--reason", "the respondent asked", "--json")
	var out struct {
		Erased  bool `json:"erased"`
		Already bool `json:"already_erased"`
	}
	if err := json.Unmarshal([]byte(said), &out); err != nil || !out.Erased || out.Already {
		t.Fatalf("surveyctl record erase said %q (%v)", said, err)
	}
	if said := surveyctl(t, central.URL, env, "record", "erase", id.String(), "--reason", "again"); !strings.Contains(said, "already erased") {
		t.Fatalf("erasing twice said %q", said)
	}
	round()
	round()

	stores := map[string]*badgerstore.Store{}
	for name, r := range map[string]*syncengine.Replica{"central": central.Replica(), "hub": hub.Replica(),
		"device at central": atCentral.Replica(), "device at hub": atHub.Replica()} {
		rec, err := r.Record(ctx, id)
		must(t, err)
		if !rec.Erased() || len(rec.FieldNames()) != 0 {
			t.Errorf("%s holds %v after the erasure", name, rec.Values())
		}
		if k, err := r.Record(ctx, keep); err != nil || k.Values()["story"].Str != "KEPT-answer" {
			t.Errorf("%s lost the record kept: %v %v", name, k, err)
		}
		stores[name] = r.Store().(*badgerstore.Store)
	}
	sum := w.Value.Str
	for name, s := range stores {
		if n := residue.Versions(t, s.DB(), "MARKER"); n > 0 {
			t.Errorf("%s: %d versions in its store hold the erased answers", name, n)
		}
		if residue.Versions(t, s.DB(), "KEPT-answer") == 0 {
			t.Errorf("%s: the scan found not even the answer kept", name)
		}
	}
	for _, d := range []*fieldapp.Device{atCentral, atHub} {
		if ms := filesNamed(t, d.Replica().Store().(*badgerstore.Store).DB()); len(ms) > 0 {
			t.Errorf("a device still holds files %v (%s)", ms, sum)
		}
	}
	// The servers' stores are not encrypted here: their bytes on disk can
	// be searched (devices' stores are; their every version was read above).
	for name, dir := range map[string]string{"central": central.Dir, "hub": hub.Dir} {
		for _, f := range residue.Files(t, dir, "MARKER") {
			t.Errorf("%s: %s holds erased bytes", name, f)
		}
	}
	entries, head, _, err := central.Auth().AuditTrail(ctx, 0, 0)
	must(t, err)
	must(t, auth.VerifyTrail(entries, head.Seq, head.Hash))
	erased := 0
	for _, e := range entries {
		if strings.Contains(e.Detail, "MARKER") {
			t.Errorf("the audit trail holds an answer: %+v", e)
		}
		if e.Action == "record-erased" && strings.Contains(e.Detail, id.String()) {
			erased++
			if e.Actor != "a-lead" || !strings.Contains(e.Detail, "the respondent asked") {
				t.Errorf("the erasure's audit entry: %+v", e)
			}
		}
	}
	if erased != 1 {
		t.Errorf("%d audit entries of the erasure, want 1", erased)
	}
}

// filesNamed lists the media files (complete manifests) a store holds.
func filesNamed(t *testing.T, db *badger.DB) []string {
	t.Helper()
	var out []string
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if k := string(it.Item().Key()); strings.Contains(k, "media.file/") {
				out = append(out, k)
			}
		}
		return nil
	})
	must(t, err)
	return out
}

// TestConsoleErase: the record page offers the erasure to a lead of the
// record's project only; it asks for a reason and a confirmation, and
// the page then shows the record erased with none of its answers, and an
// analyst's mirror of the form drops its rows (the repeat's too) at its
// next run.
func TestConsoleErase(t *testing.T) {
	ctx := context.Background()
	ts := newTrustServer(t)
	if _, _, err := ts.Forms().Publish(ctx, sampleForm(t), "sample", "A", ts.Replica().Now()); err != nil {
		t.Fatal(err)
	}
	d := ts.enrolledDevice(t, "A")
	key := "community_security@2026.11.1"
	id, err := d.Create(ctx, key, fw("intro/consent", "yes", "household/hh_size", "2",
		"household/roster[m1]", "1", "household/roster[m1]/member_name", "MARKER-console"))
	must(t, err)
	kept, err := d.Create(ctx, key, fw("intro/consent", "yes", "household/hh_size", "1"))
	must(t, err)
	mustSync(t, d)
	// An analyst's mirror of the form: it drops the record at its next run.
	session, err := ts.Auth().Login(ctx, "a-analyst", "a-analyst's long password")
	must(t, err)
	mirror := filepath.Join(t.TempDir(), "mirror")
	mirrorRun := func() map[string]map[string]any {
		surveyctl(t, ts.URL, map[string]string{"TESSERA_TOKEN": session}, "export", "--form", "community_security", "--format", "csv", "--mirror", mirror)
		return readRows(t, filepath.Join(mirror, "community_security.csv"))
	}
	if rows := mirrorRun(); rows[id.String()] == nil || rows[kept.String()] == nil {
		t.Fatalf("the mirror before the erasure: %v", rows)
	}
	page := "/console/records/" + id.String()
	analyst, _ := consoleClient(t, ts.testServer, "a-analyst", "a-analyst's long password")
	if body := httpBody(t, analyst, http.MethodGet, ts.URL+page, "", nil, http.StatusOK); strings.Contains(body, `id="erase"`) {
		t.Fatal("an analyst is offered the erasure")
	}
	other, otherCSRF := consoleClient(t, ts.testServer, "b-lead", "b-lead's long password")
	resp, err := other.PostForm(ts.URL+page+"/erase", url.Values{"csrf": {otherCSRF}, "reason": {"x"}, "confirm": {"yes"}})
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a lead of another project erasing: status %d", resp.StatusCode)
	}
	lead, csrf := consoleClient(t, ts.testServer, "a-lead", "a-lead's long password")
	if body := httpBody(t, lead, http.MethodGet, ts.URL+page, "", nil, http.StatusOK); !strings.Contains(body, `id="erase"`) {
		t.Fatal("the lead is not offered the erasure")
	}
	body := postForm(t, lead, ts.URL+page+"/erase", url.Values{"csrf": {csrf}, "reason": {"asked"}}, http.StatusBadRequest)
	if !strings.Contains(body, "Nothing was erased") {
		t.Fatalf("an erasure without confirmation: %s", body)
	}
	body = postForm(t, lead, ts.URL+page+"/erase", url.Values{"csrf": {csrf}, "confirm": {"yes"}}, http.StatusBadRequest)
	if !strings.Contains(body, "Give a reason") {
		t.Fatalf("an erasure without a reason: %s", body)
	}
	if rec, err := ts.Replica().Record(ctx, id); err != nil || rec.Erased() {
		t.Fatalf("refused erasures erased the record: %v", err)
	}
	body = postForm(t, lead, ts.URL+page+"/erase", url.Values{"csrf": {csrf}, "reason": {"the respondent asked"}, "confirm": {"yes"}}, http.StatusOK)
	if !strings.Contains(body, `id="erased"`) || strings.Contains(body, "MARKER") || strings.Contains(body, `id="erase"`) {
		t.Fatalf("the page after the erasure:\n%s", body)
	}
	if rows := mirrorRun(); rows[id.String()] != nil || rows[kept.String()] == nil {
		t.Fatalf("the mirror after the erasure: %v", rows)
	}
	for _, f := range residue.Files(t, mirror, "MARKER") {
		t.Errorf("the mirror's %s still holds the erased answers", f)
	}
}

// TestOlderDevicesPullErasuresAsDeletes: a device from before erasures
// refuses a change with a reserved field it does not know, and would
// stop syncing; the server sends it a delete in the erasure's place, and
// the erasure itself to a client that says it merges them.
func TestOlderDevicesPullErasuresAsDeletes(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	d := newDevice(t, srv.URL)
	id, err := d.Create(ctx, "household", fw("story", "MARKER"))
	must(t, err)
	mustSync(t, d)
	must(t, srv.Replica().Erase(ctx, id))
	c := client(srv.URL, http.DefaultClient)
	for _, newer := range []bool{false, true} {
		page, err := c.Pull(ctx, &tesserav1.PullRequest{Replica: make16(9), Erasures: newer})
		must(t, err)
		var last *tesserav1.Change
		for _, ch := range page.Changes {
			if bytes.Equal(ch.Record, id[:]) {
				last = ch
			}
		}
		if last == nil {
			t.Fatalf("erasures %v: the record's changes were not sent", newer)
		}
		got, err := wire.ChangeFrom(last)
		must(t, err)
		want := syncengine.DeletedField
		if newer {
			want = syncengine.ErasedField
		}
		if len(got.Fields) != 1 || got.Fields[0].Name != want || !got.Fields[0].Value.Bool {
			t.Fatalf("erasures %v: the erasure was sent as %+v", newer, got.Fields)
		}
		if err := got.Validate(); err != nil {
			t.Fatal(err)
		}
	}
}
