package server_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

// TestScopedSync: a device sees only its project's forms and its team's
// records, and a push touching another project's record is refused whole.
func TestScopedSync(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{RequireAuth: true})
	a := srv.Auth()
	must(t, a.CreateProject(ctx, "t", "alpha"))
	must(t, a.CreateProject(ctx, "t", "beta"))
	teamRecords(t, a, "alpha", "beta")
	enroll := func(project, team string) *fieldapp.Device {
		code, _, err := a.NewEnrollmentCode(ctx, "t", project, team, time.Hour)
		must(t, err)
		d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "d"), fieldapp.Config{Server: srv.URL, Enroll: code, PIN: testPIN})
		must(t, err)
		t.Cleanup(func() { d.Close() })
		return d
	}
	north, south, whole, beta := enroll("alpha", "north"), enroll("alpha", "south"), enroll("alpha", ""), enroll("beta", "")

	// Forms: alpha's form reaches alpha's devices only.
	if _, _, err := srv.Forms().Publish(ctx, sampleForm(t), "sample", "alpha", time.Now()); err != nil {
		t.Fatal(err)
	}

	rn, err := north.Replica().Create(ctx, "household", fw("team", "north"))
	must(t, err)
	rs, err := south.Replica().Create(ctx, "household", fw("team", "south"))
	must(t, err)
	rb, err := beta.Replica().Create(ctx, "household", fw("team", "beta"))
	must(t, err)
	for range 2 {
		for _, d := range []*fieldapp.Device{north, south, whole, beta} {
			mustSync(t, d)
		}
	}
	has := func(d *fieldapp.Device, id syncengine.RecordID) bool {
		_, err := d.Replica().Record(ctx, id)
		return err == nil
	}
	checks := []struct {
		name string
		d    *fieldapp.Device
		id   syncengine.RecordID
		want bool
	}{
		{"north sees south", north, rs, false}, {"south sees north", south, rn, false},
		{"alpha (no team) sees north", whole, rn, true}, {"alpha (no team) sees south", whole, rs, true},
		{"alpha sees beta", whole, rb, false}, {"beta sees north", beta, rn, false},
	}
	for _, c := range checks {
		if has(c.d, c.id) != c.want {
			t.Errorf("%s: %v, want %v", c.name, !c.want, c.want)
		}
	}
	if fs, _ := beta.Forms().List(ctx); len(fs) != 0 {
		t.Errorf("beta's device received alpha's form: %v", fs)
	}
	if fs, _ := north.Forms().List(ctx); len(fs) != 1 {
		t.Errorf("alpha's device did not receive alpha's form: %v", fs)
	}

	// A beta device pushing a change to alpha's record is refused whole.
	pub, priv, _ := ed25519.GenerateKey(nil)
	code, _, _ := a.NewEnrollmentCode(ctx, "t", "beta", "", time.Hour)
	dev, secret, err := a.Enroll(ctx, code, pub, ed25519.Sign(priv, []byte(auth.NormalizeCode(code))))
	must(t, err)
	cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Device "+auth.DeviceCredential(dev.ID, secret)))
	must(t, err)
	defer cl.Close()
	me := syncengine.NewReplicaID()
	own := syncengine.Change{Record: syncengine.NewRecordID(), Form: "household", Dot: syncengine.Dot{Replica: me, Counter: 1}, HLC: 1,
		Fields: []syncengine.FieldWrite{{Name: "x", Value: syncengine.IntValue(1)}}}
	evil := syncengine.Change{Record: rn, Form: "household", Dot: syncengine.Dot{Replica: me, Counter: 2}, HLC: 2,
		Fields: []syncengine.FieldWrite{{Name: "team", Value: syncengine.TextValue("hijacked")}}}
	head := logLen(t, srv.Replica())
	_, err = cl.Push(ctx, syncengine.Push{From: me, Through: 2, Changes: []syncengine.Change{own, evil}})
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodePermissionDenied {
		t.Fatalf("push into another project's record: %v", err)
	}
	if logLen(t, srv.Replica()) != head {
		t.Fatal("part of a refused batch was applied")
	}
}
