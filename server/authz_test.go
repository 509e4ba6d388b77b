package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/tessera-survey/tessera/auth"
	_ "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/server"
)

// caller is one principal of the matrix.
type caller struct {
	name   string
	header string
}

// call makes a Connect JSON call and reports whether the authorization
// layer refused it (as opposed to the call failing on its input).
func call(t *testing.T, url, procedure, header, body string) (denied bool, code string) {
	t.Helper()
	switch procedure {
	case "/tessera.v1.ExportService/Export", "/tessera.v1.MediaService/GetMedia", "/tessera.v1.MediaService/ListMedia":
		return callStream(t, url, procedure, header, body)
	}
	req, _ := http.NewRequest("POST", url+procedure, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		return false, "ok"
	}
	var e struct{ Code, Message string }
	json.Unmarshal(b, &e)
	refused := (e.Code == "unauthenticated" || e.Code == "permission_denied") &&
		!strings.Contains(e.Message, "wrong user name or password") && !strings.Contains(e.Message, "enrollment code")
	return refused, e.Code + ": " + e.Message
}

// callStream is call for a server-streaming procedure (Connect's enveloped
// protocol: the verdict comes in the end-of-stream message).
func callStream(t *testing.T, url, procedure, header, body string) (bool, string) {
	t.Helper()
	msg := []byte(body)
	env := append([]byte{0, byte(len(msg) >> 24), byte(len(msg) >> 16), byte(len(msg) >> 8), byte(len(msg))}, msg...)
	req, _ := http.NewRequest("POST", url+procedure, bytes.NewReader(env))
	req.Header.Set("Content-Type", "application/connect+json")
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for len(b) >= 5 {
		flags, n := b[0], int(b[1])<<24|int(b[2])<<16|int(b[3])<<8|int(b[4])
		if len(b) < 5+n {
			break
		}
		if flags&2 != 0 {
			var end struct {
				Error *struct{ Code, Message string } `json:"error"`
			}
			json.Unmarshal(b[5:5+n], &end)
			if end.Error == nil {
				return false, "ok"
			}
			refused := end.Error.Code == "unauthenticated" || end.Error.Code == "permission_denied"
			return refused, end.Error.Code + ": " + end.Error.Message
		}
		b = b[5+n:]
	}
	return false, "no end of stream"
}

// TestAuthorizationMatrix calls every RPC of the API as every kind of caller,
// on its own project and on another, and checks each verdict against the
// table below. A new RPC without a row fails the test.
func TestAuthorizationMatrix(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{RequireAuth: true})
	a := srv.Auth()
	must(t, a.CreateProject(ctx, "t", "own"))
	must(t, a.CreateProject(ctx, "t", "other"))
	session := func(name string, role auth.Role, admin bool) string {
		if admin {
			tok, err := a.NewSetupToken(ctx, "admin")
			must(t, err)
			s, _, err := a.UseSetupToken(ctx, tok, "the admin's long password")
			must(t, err)
			return "Bearer " + s
		}
		must(t, a.AddUser(ctx, "t", name, "a long password here"))
		must(t, a.Grant(ctx, "t", name, "own", role))
		s, err := a.Login(ctx, name, "a long password here")
		must(t, err)
		return "Bearer " + s
	}
	enroll := func(project string) (auth.Device, string) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		code, _, err := a.NewEnrollmentCode(ctx, "t", project, "", time.Hour)
		must(t, err)
		d, secret, err := a.Enroll(ctx, code, pub, ed25519.Sign(priv, []byte(auth.NormalizeCode(code))))
		must(t, err)
		return d, "Device " + auth.DeviceCredential(d.ID, secret)
	}
	_, devOwn := enroll("own")
	pub, priv, _ := ed25519.GenerateKey(nil)
	hubCode, _, err := a.NewHubCode(ctx, "t", "own", "", time.Hour)
	must(t, err)
	hubDev, hubSecret, err := a.Enroll(ctx, hubCode, pub, ed25519.Sign(priv, []byte(auth.NormalizeCode(hubCode))))
	must(t, err)
	hubOwn := "Device " + auth.DeviceCredential(hubDev.ID, hubSecret)
	revokedDev, devRevoked := enroll("own")
	must(t, a.SetDevice(ctx, "t", revokedDev.ID, true, false))
	targetOwn, _ := enroll("own")
	targetOther, _ := enroll("other")
	must(t, a.AddUser(ctx, "t", "victim", "a long password here"))

	callers := []caller{
		{"anonymous", ""},
		{"admin", session("", "", true)},
		{"lead", session("lena", auth.Lead, false)},
		{"analyst", session("ana", auth.Analyst, false)},
		{"enumerator", session("enu", auth.Enumerator, false)},
		{"device", devOwn},
		{"hub", hubOwn},
		{"revoked-device", devRevoked},
		{"forged", "Bearer not-a-session"},
	}
	// allowed lists the callers the table lets through; "lead@own" means a
	// lead only on the lead's own project.
	type row struct {
		body    func(project string) string
		allowed string
		scoped  bool // the body names a project: run on own and other
	}
	n := 0
	uniq := func() int { n++; return n }
	rows := map[string]row{
		"/tessera.v1.AuthService/Login":          {body: func(string) string { return `{"user":"nobody","password":"x"}` }, allowed: "*"},
		"/tessera.v1.AuthService/Setup":          {body: func(string) string { return `{"setupToken":"bogus","password":"0123456789"}` }, allowed: "*"},
		"/tessera.v1.AuthService/Enroll":         {body: func(string) string { return `{"code":"AAAAA-AAAAA"}` }, allowed: "*"},
		"/tessera.v1.AuthService/Logout":         {body: func(string) string { return `{}` }, allowed: "admin lead analyst enumerator"},
		"/tessera.v1.AuthService/Whoami":         {body: func(string) string { return `{}` }, allowed: "admin lead analyst enumerator device hub"},
		"/tessera.v1.AuthService/ReportWiped":    {body: func(string) string { return `{}` }, allowed: "device hub"},
		"/tessera.v1.AuthService/HubDevices":     {body: func(string) string { return `{}` }, allowed: "hub"},
		"/tessera.v1.AuthService/ReportHoldings": {body: func(string) string { return `{"records":1}` }, allowed: "device hub"},
		"/tessera.v1.AdminService/SetProjectPolicy": {body: func(p string) string {
			return fmt.Sprintf(`{"project":%q,"policy":{"retentionDays":30}}`, p)
		}, allowed: "admin lead@own", scoped: true},
		"/tessera.v1.AdminService/GetProjectPolicy": {body: func(p string) string { return fmt.Sprintf(`{"project":%q}`, p) }, allowed: "admin lead@own", scoped: true},
		"/tessera.v1.SyncService/Push":              {body: func(string) string { return `{}` }, allowed: "admin device hub"},
		"/tessera.v1.SyncService/Pull":              {body: func(string) string { return `{}` }, allowed: "admin device hub"},
		"/tessera.v1.SyncService/BundleKeys":        {body: func(string) string { return `{}` }, allowed: "admin lead analyst enumerator device hub"},
		"/tessera.v1.SyncService/ImportBundle":      {body: func(string) string { return `{"bundle":""}` }, allowed: "admin lead"},
		// Not a hub here: leads pass the table and get FailedPrecondition.
		"/tessera.v1.SyncService/ExportUpstreamBundle": {body: func(string) string { return `{}` }, allowed: "admin lead"},
		"/tessera.v1.SyncService/ImportUpstreamReply":  {body: func(string) string { return `{}` }, allowed: "admin lead"},
		"/tessera.v1.FormService/PublishForm":          {body: func(p string) string { return fmt.Sprintf(`{"project":%q}`, p) }, allowed: "admin lead@own", scoped: true},
		"/tessera.v1.FormService/ListForms":            {body: func(string) string { return `{}` }, allowed: "admin lead analyst enumerator device hub"},
		"/tessera.v1.FormService/GetForm":              {body: func(string) string { return `{}` }, allowed: "admin lead analyst enumerator device hub"},
		"/tessera.v1.FormService/GetXForm":             {body: func(string) string { return `{}` }, allowed: "admin lead analyst enumerator device hub"},
		"/tessera.v1.FormService/ListFlags":            {body: func(string) string { return `{}` }, allowed: "admin lead analyst"},
		"/tessera.v1.AdminService/CreateProject":       {body: func(string) string { return fmt.Sprintf(`{"name":"p%d"}`, uniq()) }, allowed: "admin"},
		"/tessera.v1.AdminService/AddUser": {body: func(string) string {
			return fmt.Sprintf(`{"name":"u%d","password":"a long password here"}`, uniq())
		}, allowed: "admin"},
		"/tessera.v1.ExportService/Export":    {body: func(string) string { return `{"formId":"nothing"}` }, allowed: "admin lead analyst"},
		"/tessera.v1.ReviewService/SetReview": {body: func(string) string { return `{"record":"bad"}` }, allowed: "admin lead"},
		// The record's project is checked in the use case (TestErasureEverywhere).
		"/tessera.v1.ReviewService/EraseRecord":  {body: func(string) string { return `{"record":"bad","reason":"x"}` }, allowed: "admin lead"},
		"/tessera.v1.ReviewService/AssignRecord": {body: func(string) string { return `{"record":"bad","team":"t"}` }, allowed: "admin lead"},
		"/tessera.v1.MediaService/StartUpload":   {body: func(string) string { return `{"record":"bad"}` }, allowed: "admin lead device hub"},
		"/tessera.v1.MediaService/PutChunk":      {body: func(string) string { return `{"record":"bad"}` }, allowed: "admin lead device hub"},
		"/tessera.v1.MediaService/GetMedia":      {body: func(string) string { return `{"record":"bad"}` }, allowed: "admin lead analyst device hub"},
		"/tessera.v1.MediaService/ListMedia":     {body: func(string) string { return `{"formId":"nothing"}` }, allowed: "admin lead analyst"},
		"/tessera.v1.AdminService/AuditTrail":    {body: func(string) string { return `{}` }, allowed: "admin"},
		"/tessera.v1.AdminService/Grant": {body: func(p string) string {
			return fmt.Sprintf(`{"user":"victim","project":%q,"role":"enumerator"}`, p)
		}, allowed: "admin lead@own", scoped: true},
		"/tessera.v1.AdminService/RevokeRole": {body: func(p string) string {
			return fmt.Sprintf(`{"user":"victim","project":%q}`, p)
		}, allowed: "admin lead@own", scoped: true},
		"/tessera.v1.AdminService/SetUserDisabled":      {body: func(string) string { return `{"user":"victim","disabled":false}` }, allowed: "admin"},
		"/tessera.v1.AdminService/CreateEnrollmentCode": {body: func(p string) string { return fmt.Sprintf(`{"project":%q}`, p) }, allowed: "admin lead@own", scoped: true},
		"/tessera.v1.AdminService/CreateCollectDevice":  {body: func(p string) string { return fmt.Sprintf(`{"project":%q}`, p) }, allowed: "admin lead@own", scoped: true},
		"/tessera.v1.AdminService/ListDevices":          {body: func(p string) string { return fmt.Sprintf(`{"project":%q}`, p) }, allowed: "admin lead@own", scoped: true},
		"/tessera.v1.AdminService/RevokeDevice": {body: func(p string) string {
			return fmt.Sprintf(`{"deviceId":%q}`, map[string]string{"own": targetOwn.ID, "other": targetOther.ID}[p])
		}, allowed: "admin lead@own", scoped: true},
		"/tessera.v1.AdminService/WipeDevice": {body: func(p string) string {
			return fmt.Sprintf(`{"deviceId":%q}`, map[string]string{"own": targetOwn.ID, "other": targetOther.ID}[p])
		}, allowed: "admin lead@own", scoped: true},
	}

	// Every RPC of the API must have a row.
	protoregistry.GlobalFiles.RangeFilesByPackage("tessera.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				proc := fmt.Sprintf("/%s/%s", svc.FullName(), svc.Methods().Get(j).Name())
				if _, ok := rows[proc]; !ok {
					t.Errorf("%s has no row in the authorization matrix", proc)
				}
			}
		}
		return true
	})

	// Calls that end the caller's own session or enrollment go last.
	procs := make([]string, 0, len(rows))
	for proc := range rows {
		procs = append(procs, proc)
	}
	sort.Slice(procs, func(i, j int) bool {
		last := map[string]int{"/tessera.v1.AuthService/Logout": 1, "/tessera.v1.AuthService/ReportWiped": 2}
		if last[procs[i]] != last[procs[j]] {
			return last[procs[i]] < last[procs[j]]
		}
		return procs[i] < procs[j]
	})
	checked := 0
	for _, proc := range procs {
		r := rows[proc]
		projects := []string{""}
		if r.scoped {
			projects = []string{"own", "other"}
		}
		for _, proj := range projects {
			for _, c := range callers {
				want := r.allowed == "*" ||
					strings.Contains(" "+r.allowed+" ", " "+c.name+" ") ||
					(proj == "own" && strings.Contains(r.allowed, c.name+"@own"))
				denied, got := call(t, srv.URL, proc, c.header, r.body(proj))
				if denied == want {
					t.Errorf("%s on %q as %s: allowed=%v, want %v (%s)", proc, proj, c.name, !denied, want, got)
				}
				checked++
			}
		}
	}
	t.Logf("%d combinations checked", checked)
}

// TestOpenServerStillGuardsAdministration: a loopback server without
// --require-auth lets anonymous devices sync (the sync core's contract) but
// never lets anyone administer without signing in.
func TestOpenServerStillGuardsAdministration(t *testing.T) {
	srv := startServer(t, server.Config{})
	if denied, got := call(t, srv.URL, "/tessera.v1.SyncService/Pull", "", `{}`); denied {
		t.Fatalf("anonymous pull refused on an open server: %s", got)
	}
	for _, proc := range []string{"/tessera.v1.AdminService/CreateProject", "/tessera.v1.AdminService/AuditTrail", "/tessera.v1.AdminService/ListDevices"} {
		if denied, got := call(t, srv.URL, proc, "", `{"name":"x","project":"x"}`); !denied {
			t.Fatalf("%s allowed anonymously: %s", proc, got)
		}
	}
}
