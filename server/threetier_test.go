package server_test

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/fieldapp"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/syncengine"
)

// tierDevice is a device of the three-tier test: where it syncs, and the
// marker its record carries.
type tierDevice struct {
	*fieldapp.Device
	name, team, via string
	rec             syncengine.RecordID
}

// TestThreeTiers (issue 13, "the hub is a principal too"): central and a
// camp-office hub both require sign-in. Devices enrolled at central (one
// syncing directly, one through the hub), devices enrolled at the hub with
// the hub's codes, and a device that enrolls through the hub with a code
// minted at central, in two teams of project A, and a device of B. Every
// record reaches exactly the devices of its team, wherever it was written;
// its scope travels with it both ways; forged relays are refused; a
// revocation at central reaches the hub.
func TestThreeTiers(t *testing.T) {
	ctx := context.Background()
	central := newTrustServer(t)
	teamRecords(t, central.Auth(), "A")
	hub := central.startHub(t, central.URL)
	hubAdmin, err := wire.Dial(hub.URL, nil, wire.WithAuthorization("Bearer "+adminSession(t, hub)))
	must(t, err)
	defer hubAdmin.Close()

	atCentral := func(team string) string {
		code, _, err := central.Auth().NewEnrollmentCode(ctx, "t", "A", team, time.Hour)
		must(t, err)
		return code
	}
	atHub := func(project, team string) (string, error) {
		res, err := hubAdmin.Admin().CreateEnrollmentCode(ctx, &tesserav1.CreateEnrollmentCodeRequest{Project: project, Team: team})
		return res.GetCode(), err
	}
	enroll := func(name, server, code string) *fieldapp.Device {
		d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), name), fieldapp.Config{Server: server, Enroll: code, PIN: testPIN})
		if err != nil {
			t.Fatalf("%s enrolls at %s: %v", name, server, err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	// The hub enrolls devices of its own scope only, and no hubs.
	if _, err := atHub("B", ""); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("the hub minted a code for another project: %v", err)
	}
	if _, err := hubAdmin.Admin().CreateEnrollmentCode(ctx, &tesserav1.CreateEnrollmentCodeRequest{Project: "A", Hub: true}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("the hub minted a hub code: %v", err)
	}
	hubT1, err := atHub("A", "T1")
	must(t, err)
	hubT2, err := atHub("A", "T2")
	must(t, err)

	devs := []*tierDevice{
		{Device: enroll("central-t1", central.URL, atCentral("T1")), name: "central-t1", team: "T1", via: hub.URL},
		{Device: enroll("central-t2", central.URL, atCentral("T2")), name: "central-t2", team: "T2", via: central.URL},
		{Device: enroll("hub-t1", hub.URL, hubT1), name: "hub-t1", team: "T1", via: hub.URL},
		{Device: enroll("hub-t2", hub.URL, hubT2), name: "hub-t2", team: "T2", via: hub.URL},
		// A code minted at central, spent at the hub (forwarded upstream).
		{Device: enroll("through-hub-t1", hub.URL, atCentral("T1")), name: "through-hub-t1", team: "T1", via: hub.URL},
		{Device: central.enrolledDevice(t, "B"), name: "b", team: "B", via: central.URL},
	}
	for _, d := range devs {
		d.rec, err = d.Create(ctx, "camp_form@1", fw("q", "MARKER-"+d.name))
		must(t, err)
	}
	// The central device syncing through the hub signs in there only once
	// the hub has its copy of central's devices.
	if _, err := devs[0].Sync(ctx, hub.URL, nil); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("a device the hub has not heard of synced there: %v", err)
	}
	round := func() {
		t.Helper()
		must(t, hub.SyncUpstream(ctx))
		for _, d := range devs {
			if _, err := d.Sync(ctx, d.via, nil); err != nil {
				t.Fatalf("%s syncs with %s: %v", d.name, d.via, err)
			}
		}
	}
	for range 3 {
		round()
	}
	for _, d := range devs {
		got := markers(t, d.Device)
		var want []string
		for _, o := range devs {
			if o.team == d.team {
				want = append(want, "MARKER-"+o.name)
			}
		}
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s (team %s) holds %v, want %v", d.name, d.team, got, want)
		}
	}
	// Scopes travelled: the hub's T1 record is T1 at central, and central's
	// T2 record is T2 at the hub.
	for _, c := range []struct {
		srv  *testServer
		rec  syncengine.RecordID
		want string
	}{{central.testServer, devs[2].rec, "A\x00T1"}, {central.testServer, devs[3].rec, "A\x00T2"}, {hub, devs[1].rec, "A\x00T2"}, {hub, devs[0].rec, "A\x00T1"}} {
		var got []byte
		must(t, c.srv.Replica().Store().View(ctx, func(tx syncengine.ReadTx) (err error) { got, err = tx.Meta("scope/" + c.rec.String()); return }))
		if !strings.HasPrefix(string(got)+"\x00", c.want+"\x00") {
			t.Errorf("record %s stamped %q at %s, want %q", c.rec, got, c.srv.URL, c.want)
		}
	}

	forgedRelays(t, central, hub, devs[5])

	// A revocation at central reaches the hub at its next sync.
	cred, err := devs[0].Replica().Setting(ctx, "credential")
	must(t, err)
	id, _, _ := strings.Cut(cred, ":")
	must(t, central.Auth().SetDevice(ctx, "t", id, true, false))
	must(t, hub.SyncUpstream(ctx))
	if _, err := devs[0].Sync(ctx, hub.URL, nil); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a device revoked at central synced at the hub: %v", err)
	}
	// A wipe asked at central is done through the hub, and central hears of it.
	through := devs[4]
	cred, err = through.Replica().Setting(ctx, "credential")
	must(t, err)
	id, _, _ = strings.Cut(cred, ":")
	must(t, central.Auth().SetDevice(ctx, "t", id, false, true))
	must(t, hub.SyncUpstream(ctx))
	res, err := through.Sync(ctx, hub.URL, nil)
	if err != nil || !res.Wiped {
		t.Fatalf("the wipe through the hub: %+v, %v", res, err)
	}
	must(t, hub.SyncUpstream(ctx))
	d, err := central.Auth().GetDevice(ctx, id)
	must(t, err)
	if d.Wiped == 0 || !d.Revoked {
		t.Fatalf("central did not hear of the wipe done at the hub: %+v", d)
	}
}

// markers are the answers of every record a device holds, sorted.
func markers(t *testing.T, d *fieldapp.Device) []string {
	t.Helper()
	var out []string
	for _, v := range snapshot(t, d.Replica()) {
		for _, f := range v.Fields {
			if s := f.Value.String(); strings.Contains(s, "MARKER-") {
				out = append(out, strings.Trim(s, `"`))
			}
		}
	}
	sort.Strings(out)
	return out
}

// forgedRelays: a hub's device relaying, the hub relaying another
// device's writes from outside its scope, or scoping a record outside its
// own: each refused whole.
func forgedRelays(t *testing.T, central *trustServer, hub *testServer, b *tierDevice) {
	ctx := context.Background()
	cl, err := wire.Dial(central.URL, nil, wire.WithAuthorization("Device "+hubCredential(t, hub)))
	must(t, err)
	defer cl.Close()
	from := hub.Replica().ID()
	rec := syncengine.NewRecordID()
	if _, err := cl.Push(ctx, syncengine.Push{From: from, Through: 1, Relay: true,
		Changes: []syncengine.Change{change(rec, "camp_form@1", b.Replica().ID(), 99, "q", "forged")}}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("the hub relayed a write of project B's device: %v", err)
	}
	cl.SetScopeHooks(wire.ScopeHooks{Out: func(context.Context, []syncengine.Change) ([]wire.Scope, error) {
		return []wire.Scope{{Record: rec, Project: "B"}}, nil
	}})
	if _, err := cl.Push(ctx, syncengine.Push{From: from, Through: 1, Relay: true,
		Changes: []syncengine.Change{change(rec, "camp_form@1", syncengine.NewReplicaID(), 1, "q", "forged")}}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("the hub stamped a record into project B: %v", err)
	}
	if _, err := central.Replica().Record(ctx, rec); err == nil {
		t.Error("a forged relay reached central")
	}
}
