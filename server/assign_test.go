package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/fieldapp"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/residue"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// TestDevicesReceiveOwnAndAssigned (issue 19, minimisation): a device
// receives its own interviews and what a lead assigned to it or its
// team, never the rest of its team's history; sensitive answers of a
// record it did not create only with a follow-up assignment to it.
// Markers planted in an open and a sensitive answer are searched in every
// version of each device's store (read with its key).
func TestDevicesReceiveOwnAndAssigned(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	if _, err := ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: markerForm(t, "visit"), Project: "A"}); err != nil {
		t.Fatal(err)
	}
	a := ts.Auth()
	device := func(team string) (*fieldapp.Device, string) {
		code, _, err := a.NewEnrollmentCode(ctx, "t", "A", team, time.Hour)
		must(t, err)
		d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "dev"), fieldapp.Config{Server: ts.URL, Enroll: code, PIN: testPIN})
		must(t, err)
		t.Cleanup(func() { d.Close() })
		id, err := d.DeviceID(ctx)
		must(t, err)
		return d, id
	}
	author, _ := device("north")
	mate, mateID := device("north")
	other, _ := device("south")
	holds := func(d *fieldapp.Device, marker string) bool {
		t.Helper()
		return residue.Versions(t, d.Replica().Store().(*badgerstore.Store).DB(), marker) > 0
	}
	// Answers one at a time, as the interview screen writes them.
	rec, err := author.Create(ctx, "visit", fw("open", "OPEN-R"))
	must(t, err)
	must(t, author.Set(ctx, rec, fw("secret", "SECRET-R")))
	must(t, author.Set(ctx, rec, []syncengine.FieldWrite{{Name: syncengine.StatusField, Value: syncengine.TextValue("finalized")}}))
	unassigned, err := author.Create(ctx, "visit", fw("open", "OPEN-U", "secret", "SECRET-U"))
	must(t, err)
	mustSync(t, author)
	for _, d := range []*fieldapp.Device{mate, other} {
		mustSync(t, d)
	}
	for _, m := range []string{"OPEN-R", "SECRET-R", "OPEN-U", "SECRET-U"} {
		if holds(mate, m) || holds(other, m) {
			t.Fatalf("before any assignment a teammate holds %s", m)
		}
	}

	session, err := a.Login(ctx, "a-lead", "a-lead's long password")
	must(t, err)
	lead := map[string]string{"TESSERA_TOKEN": session}
	assign := func(args ...string) bool {
		t.Helper()
		var out struct {
			Changed bool `json:"changed"`
		}
		said := surveyctl(t, ts.URL, lead, append(append([]string{"record", "assign", rec.String()}, args...), "--json")...)
		if err := json.Unmarshal([]byte(said), &out); err != nil {
			t.Fatalf("surveyctl record assign said %q: %v", said, err)
		}
		return out.Changed
	}
	if !assign("--team", "north") || assign("--team", "north") {
		t.Fatal("assigning to team north: changed, then unchanged, expected")
	}
	mustSync(t, mate)
	mustSync(t, other)
	if !holds(mate, "OPEN-R") || holds(mate, "SECRET-R") {
		t.Fatalf("assigned to its team, the teammate holds the open answer %v and the sensitive one %v (want true, false)",
			holds(mate, "OPEN-R"), holds(mate, "SECRET-R"))
	}
	if holds(other, "OPEN-R") || holds(mate, "OPEN-U") || holds(mate, "SECRET-U") {
		t.Fatal("a device of another team, or an unassigned record, reached a device")
	}

	// A follow-up on the teammate's device brings the sensitive answer.
	assign("--device", mateID, "--follow-up")
	mustSync(t, mate)
	if !holds(mate, "SECRET-R") {
		t.Fatal("after a follow-up assignment the device lacks the sensitive answer")
	}
	got, err := mate.Replica().Record(ctx, rec)
	must(t, err)
	if v := got.Values(); v["open"].Str != "OPEN-R" || v["secret"].Str != "SECRET-R" {
		t.Fatalf("the follow-up device holds %v", v)
	}
	// Its follow-up edit merges and reaches the author.
	must(t, mate.Set(ctx, rec, fw("open", "OPEN-R2")))
	mustSync(t, mate)
	mustSync(t, author)
	got, err = author.Replica().Record(ctx, rec)
	must(t, err)
	if v := got.Values(); v["open"].Str != "OPEN-R2" || len(got.Conflicts()) > 0 {
		t.Fatalf("the author holds %v after the follow-up", v)
	}

	// A device may not assign, not even itself.
	if _, err := ts.rpc["a-analyst"].Review().AssignRecord(ctx, &tesserav1.AssignRecordRequest{Record: unassigned.String(), Team: "north"}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("an analyst assigning: %v", err)
	}
	if _, err := ts.rpc["b-lead"].Review().AssignRecord(ctx, &tesserav1.AssignRecordRequest{Record: unassigned.String(), Team: "north"}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a lead of another project assigning: %v", err)
	}
	if _, err := ts.rpc["a-lead"].Review().AssignRecord(ctx, &tesserav1.AssignRecordRequest{Record: unassigned.String(), Team: "south"}); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("assigning a north record to team south: %v", err)
	}
	// Unassigned, the device keeps what it received; an erasure still
	// reaches it.
	assign("--none")
	if _, err := ts.rpc["a-lead"].Review().EraseRecord(ctx, &tesserav1.EraseRecordRequest{Record: rec.String(), Reason: "asked"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, mate)
	for _, m := range []string{"OPEN-R", "OPEN-R2", "SECRET-R"} {
		if holds(mate, m) {
			t.Errorf("after the erasure the follow-up device still holds %s", m)
		}
	}

	// A project that keeps team-wide pulls sends the whole team's records.
	teamRecords(t, a, "A")
	fresh, _ := device("north")
	mustSync(t, fresh)
	if !holds(fresh, "OPEN-U") || !holds(fresh, "SECRET-U") {
		t.Fatal("with team_records a new device of the team lacks the team's record")
	}

	// A device cannot assign a record, not even to itself.
	must(t, author.Set(ctx, unassigned, []syncengine.FieldWrite{{Name: syncengine.AssignedField, Value: syncengine.TextValue("team:north")}}))
	if _, err := author.Sync(ctx, "", nil); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a device pushing an assignment: %v", err)
	}
}

// TestOlderDevicesGetNoAssignments: a device from before assignments
// refuses a change with a reserved field it does not know; it is sent none,
// but still the record an assignment gives it.
func TestOlderDevicesGetNoAssignments(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	a := ts.Auth()
	author := ts.enrolledDevice(t, "A")
	rec, err := author.Create(ctx, "visit", fw("open", "OPEN-O"))
	must(t, err)
	mustSync(t, author)
	code, _, err := a.NewEnrollmentCode(ctx, "t", "A", "", time.Hour)
	must(t, err)
	pub, priv, _ := ed25519.GenerateKey(nil)
	dev, secret, err := a.Enroll(ctx, code, pub, ed25519.Sign(priv, []byte(auth.NormalizeCode(code))))
	must(t, err)
	hc := &http.Client{Transport: withHeader{"Authorization", "Device " + auth.DeviceCredential(dev.ID, secret)}}
	c := client(ts.URL, hc)
	if _, err := ts.rpc["a-lead"].Review().AssignRecord(ctx, &tesserav1.AssignRecordRequest{Record: rec.String(), Device: dev.ID}); err != nil {
		t.Fatal(err)
	}
	for _, newer := range []bool{false, true} {
		page, err := c.Pull(ctx, &tesserav1.PullRequest{Replica: make16(9), Assignments: newer, Erasures: true})
		must(t, err)
		var open, assigned bool
		for _, ch := range page.Changes {
			got, err := wire.ChangeFrom(ch)
			must(t, err)
			if got.Record != rec {
				t.Fatalf("assignments %v: sent record %s", newer, got.Record)
			}
			open = open || bytes.Contains([]byte(got.Fields[0].Value.Str), []byte("OPEN-O"))
			assigned = assigned || got.Assigns()
		}
		if !open || assigned != newer {
			t.Fatalf("assignments %v: the answer sent %v, the assignment sent %v", newer, open, assigned)
		}
	}
}

type withHeader struct{ k, v string }

func (h withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.k, h.v)
	return http.DefaultTransport.RoundTrip(r)
}

// TestHubDevicesReceiveAssigned: a hub receives the assignments its
// upstream's leads make and applies the same rule to its devices: a
// record made at central reaches a device behind the hub only once it is
// assigned to that device's team, earlier changes included, and without
// its sensitive answers.
func TestHubDevicesReceiveAssigned(t *testing.T) {
	ctx := context.Background()
	central := newTrustServer(t)
	if _, err := central.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: markerForm(t, "visit"), Project: "A"}); err != nil {
		t.Fatal(err)
	}
	code, _, err := central.Auth().NewEnrollmentCode(ctx, "t", "A", "north", time.Hour)
	must(t, err)
	author, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "author"), fieldapp.Config{Server: central.URL, Enroll: code, PIN: testPIN})
	must(t, err)
	t.Cleanup(func() { author.Close() })
	rec, err := author.Create(ctx, "visit", fw("open", "OPEN-H"))
	must(t, err)
	must(t, author.Set(ctx, rec, fw("secret", "SECRET-H")))
	mustSync(t, author)

	hub := central.startHub(t, central.URL)
	must(t, hub.SyncUpstream(ctx))
	code, _, err = hub.Auth().NewEnrollmentCode(ctx, "t", "A", "north", time.Hour)
	must(t, err)
	d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "at-hub"), fieldapp.Config{Server: hub.URL, Enroll: code, PIN: testPIN})
	must(t, err)
	t.Cleanup(func() { d.Close() })
	mustSync(t, d)
	db := d.Replica().Store().(*badgerstore.Store).DB()
	if residue.Versions(t, db, "OPEN-H") > 0 {
		t.Fatal("before the assignment the hub's device holds the record")
	}
	if _, err := central.rpc["a-lead"].Review().AssignRecord(ctx, &tesserav1.AssignRecordRequest{Record: rec.String(), Team: "north"}); err != nil {
		t.Fatal(err)
	}
	must(t, hub.SyncUpstream(ctx))
	if got, err := hub.Replica().Record(ctx, rec); err != nil || got.Assigned() != "team:north" {
		t.Fatalf("the hub holds the assignment %v (%v)", got, err)
	}
	mustSync(t, d)
	if residue.Versions(t, db, "OPEN-H") == 0 || residue.Versions(t, db, "SECRET-H") > 0 {
		t.Fatalf("assigned to its team, the hub's device holds the open answer %v, the sensitive one %v (want true, false)",
			residue.Versions(t, db, "OPEN-H") > 0, residue.Versions(t, db, "SECRET-H") > 0)
	}
}

// TestAssignedBackAfterSend (issue 19's proof): with delete-after-send, a
// sent interview leaves its device; assigned back to that device for a
// follow-up, its answers return (its history is sent again) and stay
// while the assignment lasts; closed, they leave again. A teammate that
// only read the record by a team assignment lets it go once unassigned.
func TestAssignedBackAfterSend(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	if _, err := ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: markerForm(t, "visit"), Project: "A"}); err != nil {
		t.Fatal(err)
	}
	a := ts.Auth()
	must(t, a.SetProjectPolicy(ctx, "t", "A", auth.DevicePolicy{DeleteAfterSend: true}))
	author, mate := ts.enrolledDevice(t, "A"), ts.enrolledDevice(t, "A")
	authorID, err := author.DeviceID(ctx)
	must(t, err)
	holds := func(d *fieldapp.Device, marker string) bool {
		t.Helper()
		return residue.Versions(t, d.Replica().Store().(*badgerstore.Store).DB(), marker) > 0
	}
	rec, err := author.Create(ctx, "visit", fw("open", "OPEN-B"))
	must(t, err)
	must(t, author.Set(ctx, rec, fw("secret", "SECRET-B")))
	must(t, author.Set(ctx, rec, []syncengine.FieldWrite{{Name: syncengine.StatusField, Value: syncengine.TextValue("finalized")}}))
	mustSync(t, author)
	if holds(author, "OPEN-B") || holds(author, "SECRET-B") {
		t.Fatal("delete-after-send left the sent answers on the device")
	}
	assign := func(to *tesserav1.AssignRecordRequest) {
		t.Helper()
		to.Record = rec.String()
		if _, err := ts.rpc["a-lead"].Review().AssignRecord(ctx, to); err != nil {
			t.Fatal(err)
		}
	}
	assign(&tesserav1.AssignRecordRequest{Device: authorID, FollowUp: true})
	mustSync(t, author)
	got, err := author.Replica().Record(ctx, rec)
	must(t, err)
	if v := got.Values(); v["open"].Str != "OPEN-B" || v["secret"].Str != "SECRET-B" {
		t.Fatalf("assigned back for a follow-up, the device holds %v", v)
	}
	must(t, author.Set(ctx, rec, fw("open", "OPEN-B2")))
	mustSync(t, author)
	if got, err = author.Replica().Record(ctx, rec); err != nil || got.Values()["open"].Str != "OPEN-B2" {
		t.Fatalf("during the follow-up the device lost the record: %v (%v)", got, err)
	}
	assign(&tesserav1.AssignRecordRequest{Team: ""}) // closed
	mustSync(t, author)
	if holds(author, "OPEN-B2") || holds(author, "SECRET-B") {
		t.Fatal("the follow-up closed, the answers stayed on the device")
	}
	srvRec, err := ts.Replica().Record(ctx, rec)
	must(t, err)
	if v := srvRec.Values(); v["open"].Str != "OPEN-B2" || v["secret"].Str != "SECRET-B" || len(srvRec.Conflicts()) > 0 {
		t.Fatalf("the server holds %v", v)
	}

	assign(&tesserav1.AssignRecordRequest{Device: mustID(t, mate)})
	mustSync(t, mate)
	if !holds(mate, "OPEN-B2") {
		t.Fatal("assigned, the teammate lacks the record")
	}
	assign(&tesserav1.AssignRecordRequest{})
	res := mustSync(t, mate)
	if holds(mate, "OPEN-B2") || res.Kept == nil || res.Kept.Removed != 1 {
		t.Fatalf("unassigned, the teammate still holds the record (kept %+v)", res.Kept)
	}
}

func mustID(t *testing.T, d *fieldapp.Device) string {
	t.Helper()
	id, err := d.DeviceID(context.Background())
	must(t, err)
	return id
}

// TestConsoleAssign: a lead assigns a record on its console page; an
// analyst is not offered the form, a lead of another project is refused,
// a team outside the record's is refused with the console's message, and
// the assignment is audited.
func TestConsoleAssign(t *testing.T) {
	ctx := context.Background()
	ts := newTrustServer(t)
	code, _, err := ts.Auth().NewEnrollmentCode(ctx, "t", "A", "north", time.Hour)
	must(t, err)
	d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "dev"), fieldapp.Config{Server: ts.URL, Enroll: code, PIN: testPIN})
	must(t, err)
	t.Cleanup(func() { d.Close() })
	id, err := d.Create(ctx, "household@1", fw("story", "x"))
	must(t, err)
	mustSync(t, d)
	page := "/console/records/" + id.String()
	analyst, _ := consoleClient(t, ts.testServer, "a-analyst", "a-analyst's long password")
	if body := httpBody(t, analyst, http.MethodGet, ts.URL+page, "", nil, http.StatusOK); strings.Contains(body, `id="assign"`) {
		t.Fatal("an analyst is offered the assignment")
	}
	other, otherCSRF := consoleClient(t, ts.testServer, "b-lead", "b-lead's long password")
	resp, err := other.PostForm(ts.URL+page+"/assign", url.Values{"csrf": {otherCSRF}, "team": {"north"}})
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a lead of another project assigning: status %d", resp.StatusCode)
	}
	lead, csrf := consoleClient(t, ts.testServer, "a-lead", "a-lead's long password")
	if body := postForm(t, lead, ts.URL+page+"/assign", url.Values{"csrf": {csrf}, "team": {"south"}}, http.StatusBadRequest); !strings.Contains(body, "one team, or to one device") {
		t.Fatalf("assigning to a team outside the record's: %s", body)
	}
	body := postForm(t, lead, ts.URL+page+"/assign", url.Values{"csrf": {csrf}, "team": {"north"}}, http.StatusOK)
	if !strings.Contains(body, "Assigned to team north") {
		t.Fatalf("the page after assigning:\n%s", body)
	}
	if rec, err := ts.Replica().Record(ctx, id); err != nil || rec.Assigned() != "team:north" {
		t.Fatalf("the record's assignment: %v (%v)", rec, err)
	}
	entries, _, _, err := ts.Auth().AuditTrail(ctx, 0, 0)
	must(t, err)
	found := false
	for _, e := range entries {
		found = found || (e.Action == "record-assigned" && e.Actor == "a-lead" && strings.Contains(e.Detail, "team north"))
	}
	if !found {
		t.Fatal("the assignment is not in the audit trail")
	}
}

// TestDeviceReadsMediaOfWhatItReceives: a teammate cannot fetch a file of
// a record it was not sent, even knowing its hash; once the record is
// assigned to its team it can.
func TestDeviceReadsMediaOfWhatItReceives(t *testing.T) {
	ctx := context.Background()
	ts := newTrustServer(t)
	author := ts.enrolledDevice(t, "A")
	id, err := author.Create(ctx, "household@1", fw("story", "x"))
	must(t, err)
	w, err := author.Attach(ctx, id, "shelter.jpg", bytes.NewReader(bytes.Repeat([]byte("PHOTO "), 1000)))
	must(t, err)
	w.Name = "photo"
	must(t, author.Set(ctx, id, []syncengine.FieldWrite{w}))
	mustSync(t, author)
	ref, err := media.ParseRef(w.Value.Str)
	must(t, err)
	sha, err := hex.DecodeString(ref.SHA256)
	must(t, err)

	code, _, err := ts.Auth().NewEnrollmentCode(ctx, "t", "A", "", time.Hour)
	must(t, err)
	pub, priv, _ := ed25519.GenerateKey(nil)
	dev, secret, err := ts.Auth().Enroll(ctx, code, pub, ed25519.Sign(priv, []byte(auth.NormalizeCode(code))))
	must(t, err)
	cl, err := wire.Dial(ts.URL, nil, wire.WithAuthorization("Device "+auth.DeviceCredential(dev.ID, secret)))
	must(t, err)
	defer cl.Close()
	fetch := func() error {
		stream, err := cl.Media().GetMedia(ctx, &tesserav1.GetMediaRequest{Record: id.String(), Sha256: sha})
		if err != nil {
			return err
		}
		for {
			if _, err := stream.Receive(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	if err := fetch(); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a teammate fetching a file of a record it was not sent: %v", err)
	}
	if _, err := ts.rpc["a-lead"].Review().AssignRecord(ctx, &tesserav1.AssignRecordRequest{Record: id.String(), Device: dev.ID}); err != nil {
		t.Fatal(err)
	}
	if err := fetch(); err != nil {
		t.Fatalf("the assigned device fetching the file: %v", err)
	}
}
