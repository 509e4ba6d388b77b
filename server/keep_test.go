package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/fieldapp"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/residue"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// TestDeleteAfterSendAndRetention (issue 19's proof): a lead sets
// delete-after-send with surveyctl. After the device's next sync, its
// store (read with its key, every version) holds none of the finalized
// interview's answers or its photo, while the draft stays; the server
// holds everything. An edit made at the server merges into what the
// device kept and brings back only what it wrote; the device's own
// follow-up edit merges at the server without a conflict. The device
// list says what the device holds. Then a 30-day retention, a month
// later by the server's clock, takes the sent draft off the device too,
// never off the server.
func TestDeleteAfterSendAndRetention(t *testing.T) {
	ctx := context.Background()
	var shift atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	srv := startServer(t, server.Config{RequireAuth: true, Clock: clock})
	a := srv.Auth()
	must(t, a.CreateProject(ctx, "t", "A"))
	must(t, a.AddUser(ctx, "t", "lead", "lead's long password"))
	must(t, a.Grant(ctx, "t", "lead", "A", "lead"))
	session, err := a.Login(ctx, "lead", "lead's long password")
	must(t, err)
	env := map[string]string{"TESSERA_TOKEN": session}
	policy := func(args ...string) (out struct {
		Project string `json:"project"`
		DAS     bool   `json:"delete_after_send"`
		Days    int    `json:"retention_days"`
	}) {
		t.Helper()
		said := surveyctl(t, srv.URL, env, append(append([]string{"project", "policy", "A"}, args...), "--json")...)
		if err := json.Unmarshal([]byte(said), &out); err != nil {
			t.Fatalf("surveyctl project policy said %q: %v", said, err)
		}
		return out
	}
	if got := policy(); got.DAS || got.Days != 0 || got.Project != "A" {
		t.Fatalf("a new project's policy: %+v", got)
	}
	if got := policy("--delete-after-send"); !got.DAS || got.Days != 0 {
		t.Fatalf("after --delete-after-send: %+v", got)
	}

	code, _, err := a.NewEnrollmentCode(ctx, "t", "A", "", time.Hour)
	must(t, err)
	d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "dev"), fieldapp.Config{Server: srv.URL, Enroll: code, PIN: testPIN})
	must(t, err)
	t.Cleanup(func() { d.Close() })
	db := d.Replica().Store().(*badgerstore.Store).DB()

	sent, err := d.Create(ctx, "camp_form@1", fw("story", "MARKER-story", "place", "MARKER-place"))
	must(t, err)
	photo := bytes.Repeat([]byte("MARKER-photo "), 10_000)
	w, err := d.Attach(ctx, sent, "shelter.jpg", bytes.NewReader(photo))
	must(t, err)
	w.Name = "photo"
	must(t, d.Set(ctx, sent, []syncengine.FieldWrite{w}))
	must(t, d.Set(ctx, sent, []syncengine.FieldWrite{{Name: syncengine.StatusField, Value: syncengine.TextValue("finalized")}}))
	draft, err := d.Create(ctx, "camp_form@1", fw("story", "DRAFT-story"))
	must(t, err)

	res := mustSync(t, d)
	if res.Kept == nil || res.Kept.Removed != 1 || res.Kept.Holding != 1 {
		t.Fatalf("the sync kept %+v", res.Kept)
	}
	if n := residue.Versions(t, db, "MARKER"); n > 0 {
		t.Errorf("%d versions of the device store still hold the sent interview", n)
	}
	if fs := filesNamed(t, db); len(fs) > 0 {
		t.Errorf("the device still holds files %v", fs)
	}
	if residue.Versions(t, db, "DRAFT-story") == 0 {
		t.Errorf("the draft left the device")
	}
	rec, err := srv.Replica().Record(ctx, sent)
	must(t, err)
	if v := rec.Values(); v["story"].Str != "MARKER-story" || v["photo"].Str != w.Value.Str {
		t.Fatalf("the server holds %v", v)
	}
	if list, _, err := d.Interviews(ctx, syncengine.RecordID{}, 10); err != nil || len(list) != 1 || list[0].ID != draft.String() {
		t.Fatalf("the device lists %+v (%v)", list, err)
	}

	// An edit at the server merges into what the device kept.
	must(t, srv.Replica().Set(ctx, sent, fw("note", "visit again")))
	mustSync(t, d)
	rec, err = d.Replica().Record(ctx, sent)
	must(t, err)
	if v := rec.Values(); len(v) != 1 || v["note"].Str != "visit again" {
		t.Fatalf("after the server's edit the device holds %v", v)
	}
	must(t, d.Set(ctx, sent, fw("place", "moved")))
	res = mustSync(t, d)
	rec, err = srv.Replica().Record(ctx, sent)
	must(t, err)
	if v := rec.Values(); v["story"].Str != "MARKER-story" || v["place"].Str != "moved" || v["note"].Str != "visit again" || len(rec.Conflicts()) > 0 {
		t.Fatalf("after the device's follow-up the server holds %v (conflicts %v)", v, rec.Conflicts())
	}
	if res.Kept == nil || res.Kept.Removed != 1 {
		t.Errorf("the follow-up, sent, stayed on the device: %+v", res.Kept)
	}
	devs, err := srvLead(t, srv, session).Admin().ListDevices(ctx, &tesserav1.ListDevicesRequest{Project: "A"})
	must(t, err)
	if len(devs.Devices) != 1 || devs.Devices[0].HoldsRecords != 1 || devs.Devices[0].RemovedRecords != 1 || devs.Devices[0].HoldingsAt == 0 {
		t.Fatalf("the device list says %v", devs.Devices)
	}

	// Retention, a month later by the server's clock.
	if got := policy("--delete-after-send=false", "--retention-days", "30"); got.DAS || got.Days != 30 {
		t.Fatalf("after retention: %+v", got)
	}
	if _, err := srvLead(t, srv, session).Admin().SetProjectPolicy(ctx, &tesserav1.SetProjectPolicyRequest{Project: "A",
		Policy: &tesserav1.DevicePolicy{RetentionDays: 100000}}); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a retention of 100,000 days: %v", err)
	}
	shift.Store(int64(31 * 24 * time.Hour)) // the lead's session ends with it
	res = mustSync(t, d)
	if res.Kept == nil || res.Kept.Removed != 1 || res.Kept.Holding != 0 {
		t.Fatalf("retention kept %+v", res.Kept)
	}
	if n := residue.Versions(t, db, "DRAFT-story"); n > 0 {
		t.Errorf("%d versions of the device store hold the aged draft", n)
	}
	if rec, err := srv.Replica().Record(ctx, draft); err != nil || rec.Values()["story"].Str != "DRAFT-story" {
		t.Fatalf("retention reached the server: %v %v", rec, err)
	}
}

// srvLead is a client signed in with session.
func srvLead(t *testing.T, srv *testServer, session string) *wire.Client {
	t.Helper()
	cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Bearer "+session))
	must(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestHubPassesDevicePolicy: a hub's devices follow the policy set at
// central (the hub keeps the one its upstream sent and passes it on), and
// the hub refuses to set one of its own.
func TestHubPassesDevicePolicy(t *testing.T) {
	ctx := context.Background()
	central := newTrustServer(t)
	must(t, central.Auth().SetProjectPolicy(ctx, "t", "A", auth.DevicePolicy{DeleteAfterSend: true}))
	hub := central.startHub(t, central.URL)
	must(t, hub.SyncUpstream(ctx))
	code, _, err := hub.Auth().NewEnrollmentCode(ctx, "t", "A", "", time.Hour)
	must(t, err)
	d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "at-hub"), fieldapp.Config{Server: hub.URL, Enroll: code, PIN: testPIN})
	must(t, err)
	t.Cleanup(func() { d.Close() })
	id, err := d.Create(ctx, "camp_form@1", fw("story", "MARKER-at-hub"))
	must(t, err)
	must(t, d.Set(ctx, id, []syncengine.FieldWrite{{Name: syncengine.StatusField, Value: syncengine.TextValue("finalized")}}))
	res := mustSync(t, d)
	if res.Kept == nil || res.Kept.Removed != 1 {
		t.Fatalf("the hub's device kept %+v", res.Kept)
	}
	if n := residue.Versions(t, d.Replica().Store().(*badgerstore.Store).DB(), "MARKER"); n > 0 {
		t.Errorf("%d versions of the device store hold the sent answer", n)
	}
	if rec, err := hub.Replica().Record(ctx, id); err != nil || rec.Values()["story"].Str != "MARKER-at-hub" {
		t.Fatalf("the hub holds %v (%v)", rec, err)
	}
	must(t, hub.Auth().AddUser(ctx, "t", "camp-lead", "camp-lead's long password"))
	must(t, hub.Auth().Grant(ctx, "t", "camp-lead", "A", "lead"))
	lead, err := hub.Auth().Login(ctx, "camp-lead", "camp-lead's long password")
	must(t, err)
	_, err = srvLead(t, hub, lead).Admin().SetProjectPolicy(ctx, &tesserav1.SetProjectPolicyRequest{Project: "A", Policy: &tesserav1.DevicePolicy{}})
	if connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Errorf("a hub set its own policy: %v", err)
	}
}

// TestConsolePolicy: a lead sets the device policy on the console's
// devices page; a lead of another project may not; the page then shows it.
func TestConsolePolicy(t *testing.T) {
	ts := newTrustServer(t)
	lead, csrf := consoleClient(t, ts.testServer, "a-lead", "a-lead's long password")
	body := postForm(t, lead, ts.URL+"/console/devices/policy", url.Values{"csrf": {csrf}, "project": {"A"},
		"delete_after_send": {"on"}, "retention_days": {"90"}}, http.StatusOK)
	if !strings.Contains(body, "delete finalized interviews once sent; sent records older than 90 days") {
		t.Fatalf("the page after saving:\n%s", body)
	}
	pol, err := ts.Server.Auth().Project(context.Background(), "A")
	must(t, err)
	if pol.Policy != (auth.DevicePolicy{DeleteAfterSend: true, RetentionDays: 90}) {
		t.Fatalf("saved %+v", pol.Policy)
	}
	postForm(t, lead, ts.URL+"/console/devices/policy", url.Values{"csrf": {csrf}, "project": {"A"}, "retention_days": {"many"}}, http.StatusBadRequest)
	other, ocsrf := consoleClient(t, ts.testServer, "b-lead", "b-lead's long password")
	postForm(t, other, ts.URL+"/console/devices/policy", url.Values{"csrf": {ocsrf}, "project": {"A"}}, http.StatusForbidden)
	if pol, _ := ts.Server.Auth().Project(context.Background(), "A"); !pol.Policy.DeleteAfterSend {
		t.Fatalf("another project's lead changed the policy: %+v", pol.Policy)
	}
}

// TestDeleteAfterSendBySyncByFile: a camp without uplink follows the same
// policy: once the server's reply to a device's bundle says the finalized
// interview is held, its answers leave the device's store.
func TestDeleteAfterSendBySyncByFile(t *testing.T) {
	ctx := context.Background()
	ts := newTrustServer(t)
	must(t, ts.Auth().SetProjectPolicy(ctx, "t", "A", auth.DevicePolicy{DeleteAfterSend: true}))
	d := ts.enrolledDevice(t, "A")
	mustSync(t, d) // learns the server's bundle keys
	id, err := d.Create(ctx, "household@1", fw("story", "FILE-MARKER"))
	must(t, err)
	must(t, d.Set(ctx, id, []syncengine.FieldWrite{{Name: syncengine.StatusField, Value: syncengine.TextValue("finalized")}}))
	res, err := importBundle(t, ts, "a-lead", onePart(t, d))
	must(t, err)
	db := d.Replica().Store().(*badgerstore.Store).DB()
	if residue.Versions(t, db, "FILE-MARKER") == 0 {
		t.Fatal("the answer left the device before the reply came back")
	}
	got, err := d.ImportReply(ctx, res.Reply)
	must(t, err)
	if got.Kept == nil || got.Kept.Removed != 1 {
		t.Fatalf("the reply kept %+v", got.Kept)
	}
	if n := residue.Versions(t, db, "FILE-MARKER"); n > 0 {
		t.Errorf("%d versions of the device store still hold the sent answer", n)
	}
	if rec, err := ts.Replica().Record(ctx, id); err != nil || rec.Values()["story"].Str != "FILE-MARKER" {
		t.Fatalf("the server holds %v (%v)", rec, err)
	}
}
