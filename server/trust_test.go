package server_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/fieldapp"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

// trustServer is a server requiring sign-in with projects A and B, a lead
// and an analyst in each, and their RPC clients.
type trustServer struct {
	*testServer
	rpc map[string]*wire.Client // by user
}

func newTrustServer(t *testing.T) *trustServer {
	ctx := context.Background()
	srv := startServer(t, server.Config{RequireAuth: true})
	a := srv.Auth()
	ts := &trustServer{testServer: srv, rpc: map[string]*wire.Client{}}
	for _, p := range []string{"A", "B"} {
		must(t, a.CreateProject(ctx, "t", p))
		for _, role := range []auth.Role{auth.Lead, auth.Analyst} {
			u := strings.ToLower(p) + "-" + string(role)
			must(t, a.AddUser(ctx, "t", u, u+"'s long password"))
			must(t, a.Grant(ctx, "t", u, p, role))
			session, err := a.Login(ctx, u, u+"'s long password")
			must(t, err)
			cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Bearer "+session))
			must(t, err)
			ts.rpc[u] = cl
		}
	}
	return ts
}

// teamRecords sets the projects' devices to receive their whole team's
// records (the pull before minimisation), for tests of scope boundaries.
func teamRecords(t *testing.T, a *auth.Service, projects ...string) {
	t.Helper()
	for _, p := range projects {
		must(t, a.SetProjectPolicy(context.Background(), "t", p, auth.DevicePolicy{TeamRecords: true}))
	}
}

// enrolledDevice is a device enrolled in project (its records are
// stamped with it).
func (ts *trustServer) enrolledDevice(t *testing.T, project string) *fieldapp.Device {
	ctx := context.Background()
	code, _, err := ts.Auth().NewEnrollmentCode(ctx, "t", project, "", time.Hour)
	must(t, err)
	d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "dev"), fieldapp.Config{Server: ts.URL, Enroll: code, PIN: testPIN})
	must(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// startHub runs a camp-office hub of project A (all teams) that enrolls
// at upstream (central's URL, or a proxy in front of it) with a code
// minted at central.
func (ts *trustServer) startHub(t *testing.T, upstream string) *testServer {
	t.Helper()
	code, _, err := ts.Auth().NewHubCode(context.Background(), "t", "A", "", time.Hour)
	must(t, err)
	return startServer(t, server.Config{RequireAuth: true, Upstream: upstream, UpstreamEnroll: code, UpstreamInterval: time.Hour})
}

// exportText is everything an export sends the caller, as text.
func exportText(t *testing.T, cl *wire.Client, form string) (string, error) {
	stream, err := cl.Export().Export(context.Background(), &tesserav1.ExportRequest{FormId: form})
	must(t, err)
	var all strings.Builder
	for {
		m, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return all.String(), nil
		}
		if err != nil {
			return all.String(), err
		}
		all.WriteString(m.String())
	}
}

// TestFormIDBelongsToOneProject (issue 13, finding 1): a lead of B cannot
// publish A's form id (a new version in B would have let B export A's
// records and locked A's own lead and analyst out of their form).
func TestFormIDBelongsToOneProject(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	if _, err := ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: xlsxBytes(t, "shared_id", "1", "Q"), Project: "A"}); err != nil {
		t.Fatal(err)
	}
	_, err := ts.rpc["b-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: xlsxBytes(t, "shared_id", "2099.1", "Q"), Project: "B"})
	if connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("B published A's form id: %v", err)
	}
	if _, err := exportText(t, ts.rpc["a-analyst"], "shared_id"); err != nil {
		t.Fatalf("A's analyst cannot export A's form: %v", err)
	}
	if _, err := exportText(t, ts.rpc["b-analyst"], "shared_id"); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("B's analyst exports A's form: %v", err)
	}
}

// TestRecordsOfNoKnownProjectAreDenied (finding 5): a record of a form not
// published here, which no enrolled device pushed, was listed to every
// analyst of every project with nothing withheld; it is an admin's alone.
func TestRecordsOfNoKnownProjectAreDenied(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	id, err := ts.Replica().Create(ctx, "unpublished@1", fw("q", "MARKER-UNPUBLISHED"))
	must(t, err)
	for _, u := range []string{"a-analyst", "b-lead"} {
		c, _ := consoleClient(t, ts.testServer, u, u+"'s long password")
		if page := httpBody(t, c, http.MethodGet, ts.URL+"/console/records", "", nil, http.StatusOK); strings.Contains(page, id.String()) {
			t.Errorf("%s lists a record of no known project", u)
		}
		httpBody(t, c, http.MethodGet, ts.URL+"/console/records/"+id.String(), "", nil, http.StatusForbidden)
		if _, err := ts.rpc[u].Review().SetReview(ctx, &tesserav1.SetReviewRequest{Record: id.String(), State: "approved"}); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("%s reviews a record of no known project: %v", u, err)
		}
	}
}

// TestEveryProjectFormKeepsRecordsInTheirScope (finding 6): a form
// published for every project collects records of A and B; A's analyst
// may not export them all, and A's lead may not review B's.
func TestEveryProjectFormKeepsRecordsInTheirScope(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	_, _, err := ts.Forms().Publish(ctx, xlsxRows(t, "common", "1", [][]string{{"type", "name", "label"}, {"text", "q", "Q"}}), "", "", time.Now())
	must(t, err)
	da, db := ts.enrolledDevice(t, "A"), ts.enrolledDevice(t, "B")
	mustSync(t, da)
	mustSync(t, db)
	ra, err := da.Replica().Create(ctx, "common", fw("q", "MARKER-A"))
	must(t, err)
	rb, err := db.Replica().Create(ctx, "common", fw("q", "MARKER-B"))
	must(t, err)
	mustSync(t, da)
	mustSync(t, db)
	text, err := exportText(t, ts.rpc["a-analyst"], "common")
	if connect.CodeOf(err) != connect.CodePermissionDenied || strings.Contains(text, "MARKER-B") {
		t.Fatalf("A's analyst exports a form of every project: %v (B's marker received: %v)", err, strings.Contains(text, "MARKER-B"))
	}
	if _, err := ts.rpc["a-lead"].Review().SetReview(ctx, &tesserav1.SetReviewRequest{Record: rb.String(), State: "rejected"}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("A's lead reviews B's record: %v", err)
	}
	if _, err := ts.rpc["a-lead"].Review().SetReview(ctx, &tesserav1.SetReviewRequest{Record: ra.String(), State: "approved"}); err != nil {
		t.Fatalf("A's lead cannot review A's record: %v", err)
	}
	c, _ := consoleClient(t, ts.testServer, "a-analyst", "a-analyst's long password")
	page := httpBody(t, c, http.MethodGet, ts.URL+"/console/records", "", nil, http.StatusOK)
	if !strings.Contains(page, ra.String()) || strings.Contains(page, rb.String()) {
		t.Fatalf("A's analyst's record list: A's record %v, B's record %v", strings.Contains(page, ra.String()), strings.Contains(page, rb.String()))
	}
}

// deviceClient enrolls a device of project and returns its RPC client.
func (ts *trustServer) deviceClient(t *testing.T, project string) *wire.Client {
	ctx := context.Background()
	code, _, err := ts.Auth().NewEnrollmentCode(ctx, "t", project, "", time.Hour)
	must(t, err)
	pub, priv, _ := ed25519.GenerateKey(nil)
	dev, secret, err := ts.Auth().Enroll(ctx, code, pub, ed25519.Sign(priv, []byte(auth.NormalizeCode(code))))
	must(t, err)
	cl, err := wire.Dial(ts.URL, nil, wire.WithAuthorization("Device "+auth.DeviceCredential(dev.ID, secret)))
	must(t, err)
	t.Cleanup(cl.Close)
	return cl
}

func change(rec syncengine.RecordID, form string, rep syncengine.ReplicaID, n uint64, kv ...string) syncengine.Change {
	return syncengine.Change{Record: rec, Form: form, Dot: syncengine.Dot{Replica: rep, Counter: n},
		HLC: syncengine.MakeHLC(time.Now().UnixMilli(), uint16(n)), Fields: fw(kv...)}
}

// TestDeviceCannotMoveARecordIntoAnotherProject (finding 7): a device of B
// created a record on an unknown form, then pushed to it again with A's
// form; every change's form is checked now.
func TestDeviceCannotMoveARecordIntoAnotherProject(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	if _, err := ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: xlsxBytes(t, "a_form", "1", "Q"), Project: "A"}); err != nil {
		t.Fatal(err)
	}
	b := ts.deviceClient(t, "B")
	me := syncengine.NewReplicaID()
	rec := syncengine.NewRecordID()
	if _, err := b.Push(ctx, syncengine.Push{From: me, Through: 1, Changes: []syncengine.Change{change(rec, "unknown@1", me, 1, "q1", "1")}}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Push(ctx, syncengine.Push{From: me, After: 1, Through: 2, Changes: []syncengine.Change{change(rec, "a_form@1", me, 2, "q1", "2")}})
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("B's device moved its record into A's form: %v", err)
	}
}

// TestDeviceCannotPushOtherReplicasWrites (finding 8): a device's
// credential speaks for one replica; it may not relay, claim a teammate's
// replica, or the server's.
func TestDeviceCannotPushOtherReplicasWrites(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	mate, evil := ts.deviceClient(t, "A"), ts.deviceClient(t, "A")
	mateRep, evilRep := syncengine.NewReplicaID(), syncengine.NewReplicaID()
	rec := syncengine.NewRecordID()
	if _, err := mate.Push(ctx, syncengine.Push{From: mateRep, Through: 1, Changes: []syncengine.Change{change(rec, "f@1", mateRep, 1, "q", "real")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := evil.Push(ctx, syncengine.Push{From: evilRep, Through: 1, Changes: []syncengine.Change{change(syncengine.NewRecordID(), "f@1", evilRep, 1, "q", "own")}}); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]syncengine.Push{
		"a relay of the teammate's dots": {From: evilRep, After: 1, Through: 2, Relay: true,
			Changes: []syncengine.Change{change(rec, "f@1", mateRep, 5, "q", "forged")}},
		"the teammate's replica": {From: mateRep, After: 1, Through: 2,
			Changes: []syncengine.Change{change(rec, "f@1", mateRep, 6, "q", "forged")}},
		"the server's replica": {From: ts.Replica().ID(), Through: 1,
			Changes: []syncengine.Change{change(rec, "f@1", ts.Replica().ID(), 1<<40, "q", "forged")}},
	} {
		if _, err := evil.Push(ctx, p); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("%s: %v", name, err)
		}
	}
	got, err := ts.Replica().Record(ctx, rec)
	must(t, err)
	if cur, _ := got.Fields["q"].Current(); cur.Value.String() != "real" {
		t.Fatalf("the teammate's answer became %q", cur.Value.String())
	}
}

// TestOpenServerAnswersLoopbackNamesOnly (finding 14): an open server (no
// sign-in) once answered any Host header, so a DNS-rebinding page could
// read every answer; a server requiring sign-in serves any name.
func TestOpenServerAnswersLoopbackNamesOnly(t *testing.T) {
	get := func(url, host string) int {
		req, err := http.NewRequest(http.MethodGet, url+"/healthz", nil)
		must(t, err)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	open := startServer(t, server.Config{})
	for host, want := range map[string]int{"rebind.example": http.StatusMisdirectedRequest, "rebind.example:80": http.StatusMisdirectedRequest,
		"localhost:1": http.StatusOK, "127.0.0.1": http.StatusOK, "[::1]:8080": http.StatusOK} {
		if got := get(open.URL, host); got != want {
			t.Errorf("open server, Host %s: %d, want %d", host, got, want)
		}
	}
	closed := startServer(t, server.Config{RequireAuth: true})
	if got := get(closed.URL, "surveys.example.org"); got != http.StatusOK {
		t.Errorf("a server requiring sign-in refused its name: %d", got)
	}
}

// TestServerDataPrivateAndViewsAudited (finding 14): the store's folder is
// the owner's alone, and a console record view is in the audit trail.
func TestServerDataPrivateAndViewsAudited(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	if st, err := os.Stat(ts.Dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data folder: %v %v, want 0700", st.Mode().Perm(), err)
	}
	_, _, err := ts.Forms().Publish(ctx, xlsxRows(t, "seen", "1", [][]string{{"type", "name", "label"}, {"text", "q", "Q"}}), "", "A", time.Now())
	must(t, err)
	id, err := ts.Replica().Create(ctx, "seen@1", fw("q", "x"))
	must(t, err)
	c, _ := consoleClient(t, ts.testServer, "a-analyst", "a-analyst's long password")
	httpBody(t, c, http.MethodGet, ts.URL+"/console/records/"+id.String(), "", nil, http.StatusOK)
	entries, _, _, err := ts.Auth().AuditTrail(ctx, 0, 0)
	must(t, err)
	for _, e := range entries {
		if e.Action == "record-view" && e.Actor == "a-analyst" && e.Detail == id.String() {
			return
		}
	}
	t.Fatal("the record view is not in the audit trail")
}

// TestSecureCookiesBehindTLSProxy (finding 14): behind a proxy that
// terminates TLS, the console's cookies are marked Secure.
func TestSecureCookiesBehindTLSProxy(t *testing.T) {
	for _, secure := range []bool{false, true} {
		srv := startServer(t, server.Config{SecureCookies: secure})
		resp, err := http.Get(srv.URL + "/console/login")
		must(t, err)
		resp.Body.Close()
		cs := resp.Cookies()
		if len(cs) == 0 || cs[0].Secure != secure {
			t.Fatalf("SecureCookies %v: cookies %v", secure, cs)
		}
	}
}

// TestEnrolledHubRelaysWithinItsScope (the hub as a principal): a hub
// enrolled with a hub code syncs with a central that requires sign-in (it
// could not sign in at all before), its devices' records reach central in
// the hub's project, central's leads of that project see them and those of
// another do not, the hub receives only its project's records, and its
// credential cannot push into another project's record.
func TestEnrolledHubRelaysWithinItsScope(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	code, _, err := ts.Auth().NewHubCode(ctx, "t", "A", "", time.Hour)
	must(t, err)
	hub := startServer(t, server.Config{Upstream: ts.URL, UpstreamEnroll: code, UpstreamInterval: time.Hour})
	// A record of B at central: the hub must not receive it.
	db := ts.enrolledDevice(t, "B")
	rb, err := db.Create(ctx, "b_form@1", fw("q", "MARKER-B"))
	must(t, err)
	mustSync(t, db)

	dev := newDevice(t, hub.URL) // a device of the camp office, on the hub
	ra, err := dev.Create(ctx, "camp_form@1", fw("q", "MARKER-A"))
	must(t, err)
	mustSync(t, dev)
	must(t, hub.SyncUpstream(ctx))
	if _, err := ts.Replica().Record(ctx, ra); err != nil {
		t.Fatalf("the hub's record did not reach central: %v", err)
	}
	if _, err := hub.Replica().Record(ctx, rb); err == nil {
		t.Fatal("the hub received another project's record")
	}
	c, _ := consoleClient(t, ts.testServer, "a-analyst", "a-analyst's long password")
	httpBody(t, c, http.MethodGet, ts.URL+"/console/records/"+ra.String(), "", nil, http.StatusOK)
	cb, _ := consoleClient(t, ts.testServer, "b-analyst", "b-analyst's long password")
	httpBody(t, cb, http.MethodGet, ts.URL+"/console/records/"+ra.String(), "", nil, http.StatusForbidden)

	// A restart keeps the credential (the code was single use).
	hub.stop()
	again := startServer(t, server.Config{DataDir: hub.Dir, Upstream: ts.URL, UpstreamEnroll: code, UpstreamInterval: time.Hour})
	must(t, again.SyncUpstream(ctx))

	// The hub's credential relaying into B's record is refused.
	cl, err := wire.Dial(ts.URL, nil, wire.WithAuthorization("Device "+hubCredential(t, again)))
	must(t, err)
	defer cl.Close()
	other := syncengine.NewReplicaID()
	_, err = cl.Push(ctx, syncengine.Push{From: again.Replica().ID(), After: 0, Through: 1, Relay: true,
		Changes: []syncengine.Change{change(rb, "b_form@1", other, 1, "q", "forged")}})
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("the hub relayed into another project's record: %v", err)
	}
}

// hubCredential is the credential a hub keeps for its upstream.
func hubCredential(t *testing.T, hub *testServer) string {
	t.Helper()
	var b []byte
	must(t, hub.Replica().Store().View(context.Background(), func(tx syncengine.ReadTx) (err error) { b, err = tx.Meta("hub.credential"); return }))
	var e struct{ Credential string }
	must(t, json.Unmarshal(b, &e))
	return e.Credential
}

// TestMirrorDropsSensitiveRowsAfterRoleDrops (finding 14): a JSON Lines
// mirror a lead made holds sensitive answers; once the lead is an analyst,
// the next run rebuilds it without them (rows were kept before, only
// changed records rewritten).
func TestMirrorDropsSensitiveRowsAfterRoleDrops(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	if _, err := ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: markerForm(t, "mirrored"), Project: "A"}); err != nil {
		t.Fatal(err)
	}
	d := ts.enrolledDevice(t, "A")
	mustSync(t, d)
	_, err := d.Create(ctx, "mirrored", fw("open", "OPEN-M", "secret", "SECRET-M"))
	must(t, err)
	mustSync(t, d)
	must(t, ts.Auth().AddUser(ctx, "t", "lea", "lea's long password"))
	must(t, ts.Auth().Grant(ctx, "t", "lea", "A", auth.Lead))
	session, err := ts.Auth().Login(ctx, "lea", "lea's long password")
	must(t, err)
	env := map[string]string{"TESSERA_TOKEN": session}
	dir := filepath.Join(t.TempDir(), "mirror")
	read := func() string {
		b, err := os.ReadFile(filepath.Join(dir, "mirrored.jsonl"))
		must(t, err)
		return string(b)
	}
	surveyctl(t, ts.URL, env, "export", "--form", "mirrored", "--format", "jsonl", "--mirror", dir)
	if !strings.Contains(read(), "SECRET-M") {
		t.Fatal("the lead's mirror lacks the sensitive answer (the test would not see it go)")
	}
	must(t, ts.Auth().Grant(ctx, "t", "lea", "A", auth.Analyst))
	surveyctl(t, ts.URL, env, "export", "--form", "mirrored", "--format", "jsonl", "--mirror", dir)
	if got := read(); strings.Contains(got, "SECRET-M") || !strings.Contains(got, "OPEN-M") {
		t.Fatalf("the mirror after the role dropped:\n%s", got)
	}
}

// TestSignedInUsersDoNotRelay (finding 8): relaying is for enrolled hubs;
// an admin's session may push a replica's own writes only.
func TestSignedInUsersDoNotRelay(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	session := adminSession(t, ts.testServer)
	cl, err := wire.Dial(ts.URL, nil, wire.WithAuthorization("Bearer "+session))
	must(t, err)
	defer cl.Close()
	me, other := syncengine.NewReplicaID(), syncengine.NewReplicaID()
	rec := syncengine.NewRecordID()
	if _, err := cl.Push(ctx, syncengine.Push{From: me, Through: 1, Relay: true, Changes: []syncengine.Change{change(rec, "f@1", other, 1, "q", "x")}}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("an admin session relayed: %v", err)
	}
	if _, err := cl.Push(ctx, syncengine.Push{From: me, Through: 1, Changes: []syncengine.Change{change(rec, "f@1", me, 1, "q", "x")}}); err != nil {
		t.Fatalf("an admin session pushing its own writes: %v", err)
	}
}

// clockedReplica is a device replica whose clock says when, enrolled in
// project A and speaking to ts with its own credential.
func clockedReplica(t *testing.T, ts *trustServer, when time.Time) (*syncengine.Replica, *wire.Client) {
	ctx := context.Background()
	st := memstore.New()
	must(t, syncengine.Init(ctx, st, syncengine.NewReplicaID()))
	rep, err := syncengine.Open(ctx, st, syncengine.Options{Clock: func() time.Time { return when }})
	must(t, err)
	code, _, err := ts.Auth().NewEnrollmentCode(ctx, "t", "A", "", time.Hour)
	must(t, err)
	pub, priv, _ := ed25519.GenerateKey(nil)
	d, secret, err := ts.Auth().Enroll(ctx, code, pub, ed25519.Sign(priv, []byte(auth.NormalizeCode(code))))
	must(t, err)
	cl, err := wire.Dial(ts.URL, nil, wire.WithAuthorization("Device "+auth.DeviceCredential(d.ID, secret)))
	must(t, err)
	t.Cleanup(cl.Close)
	return rep, cl
}

// TestDeviceClocksBoundedAtReceipt (finding 14): a device dated years
// ahead no longer wins a conflict's provisional value, and one dated 1970
// no longer dates its records 1970. Their writes are kept (nothing is
// refused: the push goes through), written again with the server's clock;
// the conflict stays, and every replica converges on the same state.
func TestDeviceClocksBoundedAtReceipt(t *testing.T) {
	ts := newTrustServer(t)
	teamRecords(t, ts.Auth(), "A")
	ctx := context.Background()
	honest := ts.enrolledDevice(t, "A")
	future, fcl := clockedReplica(t, ts, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC))
	id, err := honest.Create(ctx, "clock_form@1", fw("q", "first"))
	must(t, err)
	mustSync(t, honest)
	if _, err := future.Sync(ctx, fcl, syncengine.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	// Concurrent answers: the far-future device's first, the honest one's
	// later in real time.
	must(t, future.Set(ctx, id, fw("q", "FROM-2300")))
	if _, err := future.Sync(ctx, fcl, syncengine.SyncOptions{}); err != nil {
		t.Fatalf("the push of a device with a wrong clock: %v", err)
	}
	time.Sleep(5 * time.Millisecond)
	must(t, honest.Set(ctx, id, fw("q", "HONEST")))
	mustSync(t, honest)
	rec, err := ts.Replica().Record(ctx, id)
	must(t, err)
	cur, _ := rec.Fields["q"].Current()
	if len(rec.Fields["q"].Entries) != 2 || cur.Value.String() != "HONEST" {
		t.Fatalf("the conflict at the server: %+v (provisional %v)", rec.Fields["q"].Entries, cur.Value)
	}
	limit := time.Now().Add(time.Hour).UnixMilli()
	for _, e := range rec.Fields["q"].Entries {
		if e.HLC.Millis() > limit {
			t.Errorf("a write dated %v is still current", time.UnixMilli(e.HLC.Millis()))
		}
	}
	// Both devices converge on the server's state.
	if _, err := future.Sync(ctx, fcl, syncengine.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, honest)
	want := fmt.Sprint(snapshot(t, ts.Replica())[id.String()])
	for name, r := range map[string]*syncengine.Replica{"future": future, "honest": honest.Replica()} {
		if got := fmt.Sprint(snapshot(t, r)[id.String()]); got != want {
			t.Errorf("%s device holds %s, the server %s", name, got, want)
		}
	}

	// A device dated 1970: its record is dated when the server got it.
	past, pcl := clockedReplica(t, ts, time.Unix(0, 0))
	old, err := past.Create(ctx, "clock_form@1", fw("q", "FROM-1970"))
	must(t, err)
	before := time.Now()
	if _, err := past.Sync(ctx, pcl, syncengine.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err = ts.Replica().Record(ctx, old)
	must(t, err)
	for name, reg := range rec.Fields {
		for _, e := range reg.Entries {
			if e.HLC.Millis() < before.Add(-time.Minute).UnixMilli() {
				t.Errorf("%s is dated %v", name, time.UnixMilli(e.HLC.Millis()).UTC())
			}
		}
	}
	if v, _ := rec.Fields["q"].Current(); v.Value.String() != "FROM-1970" {
		t.Fatalf("the answer of the 1970 device: %v", v.Value)
	}
}

// TestHubDevicesWithinScope: a hub's copy of central's devices holds only
// the devices of its project and team, never hubs, and no secret.
func TestHubDevicesWithinScope(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	enroll := func(project, team string, hub bool) (string, string) {
		mint := ts.Auth().NewEnrollmentCode
		if hub {
			mint = ts.Auth().NewHubCode
		}
		code, _, err := mint(ctx, "t", project, team, time.Hour)
		must(t, err)
		pub, priv, _ := ed25519.GenerateKey(nil)
		d, secret, err := ts.Auth().Enroll(ctx, code, pub, ed25519.Sign(priv, []byte(auth.NormalizeCode(code))))
		must(t, err)
		return d.ID, secret
	}
	hubID, hubSecret := enroll("A", "T1", true)
	mine, mySecret := enroll("A", "T1", false)
	other, _ := enroll("A", "T2", false)
	otherProject, _ := enroll("B", "", false)
	otherHub, _ := enroll("A", "T1", true)
	cl, err := wire.Dial(ts.URL, nil, wire.WithAuthorization("Device "+auth.DeviceCredential(hubID, hubSecret)))
	must(t, err)
	defer cl.Close()
	res, err := cl.Auth().HubDevices(ctx, &tesserav1.HubDevicesRequest{})
	must(t, err)
	text := res.String()
	if len(res.Devices) != 1 || res.Devices[0].Id != mine || strings.Contains(text, mySecret) {
		t.Fatalf("the hub's copy: %s", text)
	}
	for _, id := range []string{other, otherProject, otherHub, hubID} {
		if strings.Contains(text, id) {
			t.Fatalf("the hub received device %s outside its scope: %s", id, text)
		}
	}
}
