package server_test

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/fieldapp"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

var trustSeeds = flag.Int("trust.seeds", 2, "worlds TestRandomWorldsKeepScopes draws (each ~3 s)")

// propRecord is a record planted in a random world, with its markers.
type propRecord struct {
	id            syncengine.RecordID
	project, team string
	form          string
	open, secret  string // markers (the secret one also prefixes its conflict values)
}

// propForm is a form id of a project, and whether any of its versions
// marks the secret question sensitive (then no analyst may get it).
type propForm struct {
	id, project string
	sensitive   bool
}

// propWho is a principal of a random world and the rule it must obey.
type propWho struct {
	name string
	// see reports whether the principal may receive a record's open and
	// its secret marker.
	see func(r propRecord) (open, secret bool)
	// owes is whether it must receive them (so the search can fail).
	owes    bool
	collect func() string
}

// TestRandomWorldsKeepScopes (issue 13, proof): worlds of random projects,
// teams, roles, forms (secret question sensitive in some versions, not in
// others), devices, records, conflicts and flags; every principal (admin,
// users with one or two roles, a user with none, anonymous, devices of
// each scope, a hub, a revoked device) collects what every channel sends
// it, and no marker reaches anyone outside the record's scope, no analyst
// a sensitive one. -trust.seeds N draws more worlds.
func TestRandomWorldsKeepScopes(t *testing.T) {
	for seed := range *trustSeeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { randomWorld(t, uint64(seed)) })
	}
}

func randomWorld(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 13))
	srv := startServer(t, server.Config{RequireAuth: true})
	a := srv.Auth()
	admin, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Bearer "+adminSession(t, srv)))
	must(t, err)
	defer admin.Close()

	projects := []string{"P0", "P1", "P2"}[:2+rng.IntN(2)]
	teams := map[string][]string{}
	var forms []propForm
	for _, p := range projects {
		must(t, a.CreateProject(ctx, "t", p))
		teamRecords(t, a, p)
		teams[p] = []string{"", "T1", "T2"}[:1+rng.IntN(3)]
		for k := range 1 + rng.IntN(2) {
			f := propForm{id: fmt.Sprintf("f_%s_%d", strings.ToLower(p), k), project: p}
			for v := range 1 + rng.IntN(2) {
				sens := []string{"", "yes"}[rng.IntN(2)]
				f.sensitive = f.sensitive || sens == "yes"
				x := xlsxRows(t, f.id, fmt.Sprint(v+1), [][]string{{"type", "name", "label", "sensitive", "required"},
					{"text", "open", "Open", "", ""}, {"text", "secret", "Secret", sens, ""}, {"text", "req", "Req", "", "yes"}})
				if _, err := admin.Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: x, Project: p}); err != nil {
					t.Fatalf("publish %s v%d: %v", f.id, v+1, err)
				}
			}
			forms = append(forms, f)
		}
	}
	enroll := func(p, team string) *fieldapp.Device {
		code, _, err := a.NewEnrollmentCode(ctx, "t", p, team, time.Hour)
		must(t, err)
		d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "d"), fieldapp.Config{Server: srv.URL, Enroll: code, PIN: testPIN})
		must(t, err)
		t.Cleanup(func() { d.Close() })
		return d
	}

	// Records: each scope's two devices write, and fight over a secret.
	var recs []propRecord
	n := 0
	for _, p := range projects {
		var pforms []propForm
		for _, f := range forms {
			if f.project == p {
				pforms = append(pforms, f)
			}
		}
		for _, team := range teams[p] {
			d1, d2 := enroll(p, team), enroll(p, team)
			mustSync(t, d1)
			mustSync(t, d2)
			for range 1 + rng.IntN(2) {
				n++
				r := propRecord{project: p, team: team, form: pforms[rng.IntN(len(pforms))].id,
					open: fmt.Sprintf("OPEN%03dZ", n), secret: fmt.Sprintf("SECRET%03dZ", n)}
				fields := fw("open", r.open, "secret", r.secret)
				if rng.IntN(2) == 0 {
					fields = append(fields, fw(syncengine.StatusField, "finalized")...) // flagged: req unanswered
				}
				r.id, err = d1.Create(ctx, r.form, fields)
				must(t, err)
				recs = append(recs, r)
				mustSync(t, d1)
				if rng.IntN(2) == 0 {
					mustSync(t, d2)
					must(t, d1.Set(ctx, r.id, fw("secret", r.secret+"-ONE")))
					must(t, d2.Set(ctx, r.id, fw("secret", r.secret+"-TWO")))
					mustSync(t, d1)
					mustSync(t, d2)
				}
			}
		}
	}
	for _, r := range recs {
		must(t, srv.Check(ctx, r.id))
	}
	sensitive := map[string]bool{}
	for _, f := range forms {
		sensitive[f.id] = f.sensitive
	}

	var who []propWho
	// Users: one role each in a random project, one with two, one with none.
	roles := []auth.Role{auth.Lead, auth.Analyst, auth.Enumerator}
	users := map[string]map[string]auth.Role{"admin": nil, "nobody": {}}
	for i := range 4 {
		users[fmt.Sprint("user", i)] = map[string]auth.Role{projects[rng.IntN(len(projects))]: roles[rng.IntN(len(roles))]}
	}
	users["mixed"] = map[string]auth.Role{projects[0]: auth.Lead, projects[1]: auth.Analyst}
	for name, rs := range users {
		if name != "admin" {
			must(t, a.AddUser(ctx, "t", name, name+"'s long password"))
			for p, role := range rs {
				must(t, a.Grant(ctx, "t", name, p, role))
			}
		}
		w := propWho{name: name, collect: func() string { return propUserReceives(t, srv, name, forms, recs) }}
		switch {
		case name == "admin":
			w.see = func(propRecord) (bool, bool) { return true, true }
			w.owes = true
		default:
			w.see = func(r propRecord) (bool, bool) {
				switch rs[r.project] {
				case auth.Lead:
					return true, true
				case auth.Analyst:
					return true, !sensitive[r.form]
				}
				return false, false
			}
			w.owes = len(rs) == 1 && !rolesHave(rs, auth.Enumerator)
		}
		who = append(who, w)
	}
	who = append(who, propWho{name: "anonymous", see: func(propRecord) (bool, bool) { return false, false },
		collect: func() string { return propAnonymousReceives(t, srv, forms, recs) }})
	// Devices of every scope (fresh ones: what a new phone pulls), and a
	// device of team T1 where the project has teams.
	for _, p := range projects {
		for _, team := range teams[p] {
			d := enroll(p, team)
			who = append(who, propWho{name: "device " + p + "/" + team, owes: true,
				see: func(r propRecord) (bool, bool) {
					ok := r.project == p && (team == "" || r.team == team)
					return ok, ok
				},
				collect: func() string { return propDeviceReceives(t, d) }})
		}
	}
	revoked := enroll(projects[0], "")
	cred, err := revoked.Replica().Setting(ctx, "credential")
	must(t, err)
	id, _, _ := strings.Cut(cred, ":")
	must(t, a.SetDevice(ctx, "t", id, true, false))
	who = append(who, propWho{name: "revoked device", see: func(propRecord) (bool, bool) { return false, false },
		collect: func() string {
			if _, err := revoked.Sync(ctx, "", nil); err == nil {
				t.Error("a revoked device synced")
			}
			return propDeviceReceives(t, revoked)
		}})
	hp := projects[rng.IntN(len(projects))]
	hteam := teams[hp][rng.IntN(len(teams[hp]))]
	who = append(who, propWho{name: "hub " + hp + "/" + hteam, owes: true,
		see: func(r propRecord) (bool, bool) {
			ok := r.project == hp && (hteam == "" || r.team == hteam)
			return ok, ok
		},
		collect: func() string { return propHubReceives(t, srv, hp, hteam) }})

	for _, w := range who {
		text := w.collect()
		for _, r := range recs {
			open, secret := w.see(r)
			for _, m := range []struct {
				marker string
				may    bool
			}{{r.open, open}, {r.secret, secret}} {
				has := strings.Contains(text, m.marker)
				if has && !m.may {
					t.Errorf("seed %d: %s received %s (record of %s/%s, form %s, sensitive %v)", seed, w.name, m.marker, r.project, r.team, r.form, sensitive[r.form])
				}
				if !has && m.may && w.owes {
					t.Errorf("seed %d: %s did not receive its own %s (the search would not see a leak)", seed, w.name, m.marker)
				}
			}
		}
	}
}

func rolesHave(rs map[string]auth.Role, role auth.Role) bool {
	for _, r := range rs {
		if r == role {
			return true
		}
	}
	return false
}

// propUserReceives is everything a user gets from the RPCs (forms, flags,
// exports of every form through the RPC and as surveyctl writes them in
// every format and a mirror, a pull, the audit trail) and every console page.
func propUserReceives(t *testing.T, srv *testServer, user string, forms []propForm, recs []propRecord) string {
	ctx := context.Background()
	var out strings.Builder
	add := func(v any) { fmt.Fprintf(&out, "%v\n", v) }
	pass := user + "'s long password"
	if user == "admin" {
		pass = "the admin's long password"
	}
	session, err := srv.Auth().Login(ctx, user, pass)
	must(t, err)
	cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Bearer "+session))
	must(t, err)
	defer cl.Close()
	if res, err := cl.Forms().ListForms(ctx, &tesserav1.ListFormsRequest{}); err == nil {
		add(res)
	}
	if res, err := cl.Forms().ListFlags(ctx, &tesserav1.ListFlagsRequest{}); err == nil {
		add(res)
	}
	if res, err := cl.Admin().AuditTrail(ctx, &tesserav1.AuditTrailRequest{}); err == nil {
		add(res)
	}
	ids := make([]string, len(forms))
	for i, f := range forms {
		text, _ := exportText(t, cl, f.id)
		add(text)
		ids[i] = f.id
	}
	add(filesReceived(t, srv.URL, session, ids))
	add(pullAll(t, cl))
	if user == "nobody" {
		return out.String()
	}
	c, _ := consoleClient(t, srv, user, pass)
	pages := []string{"/console/", "/console/records", "/console/records?conflicts=1", "/console/records?flagged=1", "/console/forms", "/console/devices"}
	for _, r := range recs {
		pages = append(pages, "/console/records/"+r.id.String())
	}
	for _, p := range pages {
		resp, err := c.Get(srv.URL + p)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		add(string(b))
	}
	return out.String()
}

// pullAll pulls every page a client may, as text ("" when refused).
func pullAll(t *testing.T, cl *wire.Client) string {
	var out strings.Builder
	req := syncengine.PullRequest{For: syncengine.NewReplicaID()}
	for {
		page, err := cl.Pull(context.Background(), req)
		if err != nil {
			return out.String()
		}
		fmt.Fprintf(&out, "%v\n", page)
		if !page.More {
			return out.String()
		}
		req.Cursor, req.CursorDot = page.Cursor, page.CursorDot
	}
}

func propAnonymousReceives(t *testing.T, srv *testServer, forms []propForm, recs []propRecord) string {
	ctx := context.Background()
	var out strings.Builder
	cl, err := wire.Dial(srv.URL, nil)
	must(t, err)
	defer cl.Close()
	if res, err := cl.Forms().ListForms(ctx, &tesserav1.ListFormsRequest{}); err == nil {
		fmt.Fprintln(&out, res)
	}
	for _, f := range forms {
		text, _ := exportText(t, cl, f.id)
		out.WriteString(text)
	}
	out.WriteString(pullAll(t, cl))
	for _, r := range recs {
		resp, err := http.Get(srv.URL + "/console/records/" + r.id.String())
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out.Write(b)
	}
	return out.String()
}

// propDeviceReceives syncs a device and returns every value it holds.
func propDeviceReceives(t *testing.T, d *fieldapp.Device) string {
	ctx := context.Background()
	var out strings.Builder
	if res, err := d.Sync(ctx, "", nil); err == nil {
		fmt.Fprintf(&out, "%+v\n", res)
	}
	err := d.Records(ctx, func(rec *syncengine.Record) error {
		for name, reg := range rec.Fields {
			for _, e := range reg.Entries {
				fmt.Fprintf(&out, "%s=%s\n", name, e.Value)
			}
		}
		return nil
	})
	must(t, err)
	return out.String()
}

// propHubReceives enrolls a hub of project/team and returns every page,
// scope and device copy it pulls.
func propHubReceives(t *testing.T, srv *testServer, project, team string) string {
	ctx := context.Background()
	a := srv.Auth()
	code, _, err := a.NewHubCode(ctx, "t", project, team, time.Hour)
	must(t, err)
	pub, priv, _ := ed25519.GenerateKey(nil)
	d, secret, err := a.Enroll(ctx, code, pub, ed25519.Sign(priv, []byte(auth.NormalizeCode(code))))
	must(t, err)
	cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Device "+auth.DeviceCredential(d.ID, secret)))
	must(t, err)
	defer cl.Close()
	var out strings.Builder
	cl.SetScopeHooks(wire.ScopeHooks{In: func(_ context.Context, ss []wire.Scope) error {
		fmt.Fprintf(&out, "%v\n", ss)
		return nil
	}})
	out.WriteString(pullAll(t, cl))
	res, err := cl.Auth().HubDevices(ctx, &tesserav1.HubDevicesRequest{})
	must(t, err)
	fmt.Fprintln(&out, res)
	return out.String()
}
