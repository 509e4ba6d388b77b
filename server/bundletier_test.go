package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/fieldapp"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

// linkProxy forwards TCP to target while up; down, it refuses every
// connection and drops those open (a camp's uplink gone).
type linkProxy struct {
	ln    net.Listener
	up    atomic.Bool
	mu    sync.Mutex
	conns []net.Conn
}

func newLinkProxy(t *testing.T, target string) *linkProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &linkProxy{ln: ln}
	p.up.Store(true)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !p.up.Load() {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.set(false) })
	return p
}

func (p *linkProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *linkProxy) set(up bool) {
	p.up.Store(up)
	if !up {
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
		p.mu.Unlock()
	}
}

// TestBundleThreeTiers (issue 18): sign-in required everywhere and the
// hub's uplink cut. Devices enrolled at the hub interview and sync to the
// hub; one is revoked at the hub; central revokes a device of its own that
// syncs through the hub. A bundle carries the camp's data to central and
// central's answer back: central holds every record once, the hub gets
// central's record, and central's revocation reaches the hub while the
// link is still down. Then the link returns: network sync goes on without
// duplicates, and every record is on each device of the project.
func TestBundleThreeTiers(t *testing.T) {
	ctx := context.Background()
	central := newTrustServer(t)
	teamRecords(t, central.Auth(), "A")
	link := newLinkProxy(t, strings.TrimPrefix(central.URL, "http://"))
	hub := central.startHub(t, link.URL())
	must(t, hub.SyncUpstream(ctx)) // the first link: the hub learns central's bundle keys
	hubID := ""
	all, err := central.Auth().Devices(ctx, "A")
	must(t, err)
	for _, dv := range all {
		if dv.Hub {
			hubID = dv.ID
		}
	}
	hubLead, err := wire.Dial(hub.URL, nil, wire.WithAuthorization("Bearer "+adminSession(t, hub)))
	must(t, err)
	defer hubLead.Close()
	enroll := func(name, at, code string) *fieldapp.Device {
		d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), name), fieldapp.Config{Server: at, Enroll: code, PIN: testPIN})
		must(t, err)
		t.Cleanup(func() { d.Close() })
		return d
	}
	hubCodeFor := func() string {
		res, err := hubLead.Admin().CreateEnrollmentCode(ctx, &tesserav1.CreateEnrollmentCodeRequest{Project: "A"})
		must(t, err)
		return res.Code
	}
	centralCode, _, err := central.Auth().NewEnrollmentCode(ctx, "t", "A", "", time.Hour)
	must(t, err)
	through := enroll("through", hub.URL, centralCode) // enrolled at central, syncs through the hub
	must(t, hub.SyncUpstream(ctx))
	mustSync(t, through)
	atCentral := central.enrolledDevice(t, "A")
	mustSync(t, atCentral)

	link.set(false) // the uplink is gone from here on
	if err := hub.SyncUpstream(ctx); err == nil {
		t.Fatal("the hub synced upstream with the link down")
	}
	d1, d2 := enroll("d1", hub.URL, hubCodeFor()), enroll("d2", hub.URL, hubCodeFor())
	writes := 0
	var recs []syncengine.RecordID
	for i, d := range []*fieldapp.Device{d1, d2, d1} {
		id, err := d.Create(ctx, "camp@1", fw("q", "MARKER-camp-"+string(rune('a'+i))))
		must(t, err)
		recs = append(recs, id)
		writes++
		mustSync(t, d)
	}
	c1, err := atCentral.Create(ctx, "camp@1", fw("q", "MARKER-central"))
	must(t, err)
	writes++
	mustSync(t, atCentral)
	// Revoked at the hub: d2. Revoked at central: the device that syncs
	// through the hub.
	list, err := hubLead.Admin().ListDevices(ctx, &tesserav1.ListDevicesRequest{Project: "A"})
	must(t, err)
	d2ID := deviceOf(t, d2)
	for _, dv := range list.Devices {
		if dv.Id == d2ID {
			_, err := hubLead.Admin().RevokeDevice(ctx, &tesserav1.RevokeDeviceRequest{DeviceId: dv.Id})
			must(t, err)
		}
	}
	if _, err := d2.Sync(ctx, "", nil); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("d2 synced at the hub after its revocation there: %v", err)
	}
	must(t, central.Auth().SetDevice(ctx, "t", deviceOf(t, through), true, false))
	mustSync(t, through) // the hub has not heard of it yet

	// The camp lead's view at the hub: changes wait to go up, central has
	// not heard of the hub since the link went down.
	cc, _ := consoleClient(t, hub, "admin", "the admin's long password")
	page := httpBody(t, cc, http.MethodGet, hub.URL+"/console/devices?project=A", "", nil, http.StatusOK)
	if !regexp.MustCompile(`id="hub-waiting">[1-9][0-9]* changes, the oldest made`).MatchString(page) || !strings.Contains(page, "the last attempt failed") {
		t.Fatalf("the hub's view before the bundle:\n%s", page)
	}

	// By file: the hub's bundle to central, central's reply back.
	exp, err := hubLead.Sync().ExportUpstreamBundle(ctx, &tesserav1.ExportUpstreamBundleRequest{})
	must(t, err)
	if len(exp.Parts) != 1 || exp.Changes < 3 {
		t.Fatalf("the hub's bundle: %d parts, %d changes", len(exp.Parts), exp.Changes)
	}
	if _, err := central.rpc["b-lead"].Sync().ImportBundle(ctx, &tesserav1.ImportBundleRequest{Bundle: exp.Parts[0]}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("another project's lead imported the hub's bundle: %v", err)
	}
	imp, err := central.rpc["a-lead"].Sync().ImportBundle(ctx, &tesserav1.ImportBundleRequest{Bundle: exp.Parts[0]})
	must(t, err)
	if imp.Applied < 3 {
		t.Fatalf("central applied %d of the camp's changes", imp.Applied)
	}
	for _, id := range recs {
		if _, err := central.Replica().Record(ctx, id); err != nil {
			t.Fatalf("record %s not at central: %v", id, err)
		}
	}
	back, err := hubLead.Sync().ImportUpstreamReply(ctx, &tesserav1.ImportUpstreamReplyRequest{Reply: imp.Reply})
	must(t, err)
	if back.Pending != 0 || back.Devices == 0 {
		t.Fatalf("the reply at the hub: %+v", back)
	}
	if _, err := hub.Replica().Record(ctx, c1); err != nil {
		t.Fatalf("central's record did not reach the hub by file: %v", err)
	}
	if _, err := through.Sync(ctx, "", nil); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("central's revocation did not reach the hub by file: %v", err)
	}
	if again, err := hubLead.Sync().ImportUpstreamReply(ctx, &tesserav1.ImportUpstreamReplyRequest{Reply: imp.Reply}); err != nil || again.Applied != 0 {
		t.Fatalf("the same reply again: %+v %v", again, err)
	}
	mustSync(t, d1)
	page = httpBody(t, cc, http.MethodGet, hub.URL+"/console/devices?project=A", "", nil, http.StatusOK)
	if !strings.Contains(page, `id="hub-waiting">0 changes<`) || !regexp.MustCompile(`id="hub-seen">[^<]*\(0 min ago\)`).MatchString(page) {
		t.Fatalf("the hub's view after the reply:\n%s", page)
	}
	// At central, the hub's last contact says it came by bundle.
	ac, _ := consoleClient(t, central.testServer, "a-lead", "a-lead's long password")
	if page := httpBody(t, ac, http.MethodGet, central.URL+"/console/devices?project=A", "", nil, http.StatusOK); !strings.Contains(page, "(by bundle)") {
		t.Fatalf("central's device list does not say the hub came by bundle:\n%s", page)
	}

	// The link returns.
	link.set(true)
	must(t, hub.SyncUpstream(ctx))
	mustSync(t, d1)
	mustSync(t, atCentral)
	var head uint64
	central.Replica().Store().View(ctx, func(tx syncengine.ReadTx) (err error) { head, err = tx.Head(); return })
	if head != uint64(writes) {
		t.Fatalf("central's log holds %d changes for %d writes", head, writes)
	}
	want := []string{"MARKER-camp-a", "MARKER-camp-b", "MARKER-camp-c", "MARKER-central"}
	for name, d := range map[string]*fieldapp.Device{"d1": d1, "central device": atCentral} {
		if got := markers(t, d); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s holds %v, want %v", name, got, want)
		}
	}

	// What the hub did alone reached central: its devices are listed there
	// (enrolled via the hub), the one it revoked is revoked there.
	atC := map[string]bool{}
	devs, err := central.Auth().Devices(ctx, "A")
	must(t, err)
	for _, dv := range devs {
		if dv.Via != "" {
			atC[dv.ID] = dv.Revoked
		}
	}
	if revoked, ok := atC[deviceOf(t, d1)]; !ok || revoked {
		t.Fatalf("d1, enrolled at the hub, at central: known %v revoked %v", ok, revoked)
	}
	if revoked, ok := atC[d2ID]; !ok || !revoked {
		t.Fatalf("d2, revoked at the hub, at central: known %v revoked %v", ok, revoked)
	}
	// The hub's device moves to another hub of the project.
	code2, _, err := central.Auth().NewHubCode(ctx, "t", "A", "", time.Hour)
	must(t, err)
	hub2 := startServer(t, server.Config{RequireAuth: true, Upstream: central.URL, UpstreamEnroll: code2, UpstreamInterval: time.Hour})
	must(t, hub2.SyncUpstream(ctx))
	if _, err := d1.Sync(ctx, hub2.URL, nil); err != nil {
		t.Fatalf("d1 moved to another hub: %v", err)
	}
	if _, err := d2.Sync(ctx, hub2.URL, nil); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("d2, revoked at its hub, synced at another: %v", err)
	}
	// Central revokes a device the hub enrolled: the hub refuses it.
	must(t, central.Auth().SetDevice(ctx, "t", deviceOf(t, d1), true, false))
	must(t, hub.SyncUpstream(ctx))
	if _, err := d1.Sync(ctx, hub.URL, nil); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("central's revocation of a hub-enrolled device did not reach its hub: %v", err)
	}

	// The hub is stolen: central revokes it. Its relays are refused, by
	// network and by file, and its devices carry on at the other hub.
	exp, err = hubLead.Sync().ExportUpstreamBundle(ctx, &tesserav1.ExportUpstreamBundleRequest{})
	must(t, err)
	must(t, central.Auth().SetDevice(ctx, "t", hubID, true, false))
	if err := hub.SyncUpstream(ctx); err == nil {
		t.Fatal("a revoked hub synced with central")
	}
	if _, err := central.rpc["a-lead"].Sync().ImportBundle(ctx, &tesserav1.ImportBundleRequest{Bundle: exp.Parts[0]}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("central imported a revoked hub's bundle: %v", err)
	}
	d3 := enroll("d3", hub.URL, hubCodeFor())
	if _, err := d3.Create(ctx, "camp@1", fw("q", "MARKER-after-theft")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, d3)
	must(t, hub2.SyncUpstream(ctx))
	if _, err := d3.Sync(ctx, hub2.URL, nil); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("a device enrolled by the stolen hub after its revocation synced at another hub: %v", err)
	}
}

// deviceOf is a device's id at its server.
func deviceOf(t *testing.T, d *fieldapp.Device) string {
	t.Helper()
	id, err := d.DeviceID(context.Background())
	must(t, err)
	return id
}
