package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

func sampleXLSX(t *testing.T) []byte {
	xlsx, err := os.ReadFile(filepath.Join("..", "examples", "forms", "community-security.xlsx"))
	must(t, err)
	return xlsx
}

// adminSession signs the admin in (setup token) and returns its session.
func adminSession(t *testing.T, srv *testServer) string {
	ctx := context.Background()
	tok, err := srv.Auth().NewSetupToken(ctx, "admin")
	must(t, err)
	session, _, err := srv.Auth().UseSetupToken(ctx, tok, "the admin's long password")
	must(t, err)
	return session
}

func consoleUpload(t *testing.T, c *http.Client, srv *testServer, csrf, project string, xlsx []byte, want int) string {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	must(t, mw.WriteField("csrf", csrf))
	must(t, mw.WriteField("project", project))
	fw, err := mw.CreateFormFile("xlsx", "form.xlsx")
	must(t, err)
	fw.Write(xlsx)
	must(t, mw.Close())
	return httpBody(t, c, http.MethodPost, srv.URL+"/console/forms", mw.FormDataContentType(), &buf, want)
}

// TestPublishToUnknownProjectRefusedEverywhere: the console once published
// for a project that does not exist, while the RPC refused it.
func TestPublishToUnknownProjectRefusedEverywhere(t *testing.T) {
	srv := startServer(t, server.Config{RequireAuth: true})
	session := adminSession(t, srv)
	c, csrf := consoleClient(t, srv, "admin", "the admin's long password")
	page := consoleUpload(t, c, srv, csrf, "nowhere", sampleXLSX(t), http.StatusNotFound)
	if !strings.Contains(page, "check the project") {
		t.Fatalf("console publish to an unknown project:\n%s", page)
	}
	cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Bearer "+session))
	must(t, err)
	_, err = cl.Forms().PublishForm(context.Background(), &tesserav1.PublishFormRequest{Xlsx: sampleXLSX(t), Project: "nowhere"})
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("RPC publish to an unknown project: %v", err)
	}
	if all, _ := srv.Forms().List(context.Background()); len(all) != 0 {
		t.Fatalf("a form was stored: %v", all)
	}
}

// conflictOn makes a record whose answer to field two devices changed
// concurrently, on an open server.
func conflictOn(t *testing.T, srv *testServer, form, field string) syncengine.RecordID {
	ctx := context.Background()
	a, b := newDevice(t, srv.URL), newDevice(t, srv.URL)
	id, err := a.Replica().Create(ctx, form, fw(field, "first"))
	must(t, err)
	mustSync(t, a)
	mustSync(t, b)
	must(t, a.Replica().Set(ctx, id, fw(field, "from a")))
	must(t, b.Replica().Set(ctx, id, fw(field, "from b")))
	mustSync(t, a)
	mustSync(t, b)
	return id
}

// firstOfKind is the path of the form's first question of kind k.
func firstOfKind(t *testing.T, f *forms.Form, k forms.Kind) string {
	var path string
	f.Walk(func(q *forms.Question) {
		if path == "" && q.Kind == k && q.Repeat() == nil {
			path = q.Path()
		}
	})
	if path == "" {
		t.Fatalf("no %s question", k)
	}
	return path
}

// TestConsoleCorrectionTypedByQuestion: "12" entered for a text question
// stays text (the console once stored it as an integer), and for an
// integer question becomes one, as on the device.
func TestConsoleCorrectionTypedByQuestion(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	adminSession(t, srv)
	info, _, err := srv.Forms().Publish(ctx, sampleXLSX(t), "", "", time.Now())
	must(t, err)
	f, err := srv.Forms().Form(ctx, info.Key())
	must(t, err)
	c, csrf := consoleClient(t, srv, "admin", "the admin's long password")
	for _, tc := range []struct {
		kind forms.Kind
		want syncengine.Value
	}{{forms.KText, syncengine.TextValue("12")}, {forms.KInteger, syncengine.IntValue(12)}} {
		field := firstOfKind(t, f, tc.kind)
		id := conflictOn(t, srv, info.Key(), field)
		postForm(t, c, srv.URL+"/console/records/"+id.String()+"/resolve", url.Values{"csrf": {csrf}, "field": {field},
			"custom": {"12"}, "reason": {"checked with the respondent"}}, http.StatusOK)
		rec, err := srv.Replica().Record(ctx, id)
		must(t, err)
		cur, conflict := rec.Fields[field].Current()
		if conflict || !cur.Value.Equal(tc.want) {
			t.Fatalf("%s question %s corrected to %#v (conflict %v), want %#v", tc.kind, field, cur.Value, conflict, tc.want)
		}
	}
}

// TestReviewRulesOnce: both adapters refuse a state outside the list with
// the same rule, and accept every state of it.
func TestReviewRulesOnce(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{RequireAuth: true})
	session := adminSession(t, srv)
	id, err := srv.Replica().Create(ctx, "f@1", fw("q", "x"))
	must(t, err)
	c, csrf := consoleClient(t, srv, "admin", "the admin's long password")
	cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Bearer "+session))
	must(t, err)
	page := postForm(t, c, srv.URL+"/console/records/"+id.String()+"/review", url.Values{"csrf": {csrf}, "state": {"done"}}, http.StatusBadRequest)
	if !strings.Contains(page, "Choose a review state") {
		t.Fatalf("console review with a bad state:\n%s", page)
	}
	if _, err := cl.Review().SetReview(ctx, &tesserav1.SetReviewRequest{Record: id.String(), State: "done"}); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("RPC review with a bad state: %v", err)
	}
	postForm(t, c, srv.URL+"/console/records/"+id.String()+"/review", url.Values{"csrf": {csrf}, "state": {"has_issues"}}, http.StatusOK)
	if _, err := cl.Review().SetReview(ctx, &tesserav1.SetReviewRequest{Record: id.String(), State: "approved"}); err != nil {
		t.Fatal(err)
	}
	page = httpBody(t, c, http.MethodGet, srv.URL+"/console/records/"+id.String(), "", nil, http.StatusOK)
	if !strings.Contains(page, `<strong id="review">approved</strong>`) || !strings.Contains(page, `<option value="has_issues">has issues</option>`) {
		t.Fatalf("record page after reviews:\n%s", page)
	}
}

// failingStore fails writes of the audit trail (when failAudit is set) and
// reads of record scopes (while failScopes > 0).
type failingStore struct {
	syncengine.Store
	failAudit  atomic.Bool
	failScopes atomic.Int32
}

var errInjected = errors.New("injected store failure")

func (s *failingStore) Update(ctx context.Context, fn func(syncengine.Tx) error) error {
	return s.Store.Update(ctx, func(tx syncengine.Tx) error { return fn(failingTx{tx, s}) })
}

func (s *failingStore) View(ctx context.Context, fn func(syncengine.ReadTx) error) error {
	return s.Store.View(ctx, func(tx syncengine.ReadTx) error { return fn(failingReadTx{tx, s}) })
}

type failingTx struct {
	syncengine.Tx
	s *failingStore
}

func (t failingTx) SetMeta(key string, v []byte) error {
	if t.s.failAudit.Load() && strings.HasPrefix(key, "audit") {
		return errInjected
	}
	return t.Tx.SetMeta(key, v)
}

func (t failingTx) Meta(key string) ([]byte, error) { return scopeRead(t.s, key, t.Tx.Meta) }

type failingReadTx struct {
	syncengine.ReadTx
	s *failingStore
}

func (t failingReadTx) Meta(key string) ([]byte, error) { return scopeRead(t.s, key, t.ReadTx.Meta) }

func scopeRead(s *failingStore, key string, read func(string) ([]byte, error)) ([]byte, error) {
	if strings.HasPrefix(key, "scope/") && s.failScopes.Add(-1) >= 0 {
		return nil, errInjected
	}
	return read(key)
}

func openFailing(t *testing.T) *failingStore {
	st, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), Profile: badgerstore.Server})
	must(t, err)
	return &failingStore{Store: st}
}

// TestAuditFailureFailsTheAction: with the audit trail unwritable, a
// publish, a review, a resolution and an export fail, through the RPC and
// the console alike, and none of them is half done.
func TestAuditFailureFailsTheAction(t *testing.T) {
	ctx := context.Background()
	st := openFailing(t)
	srv := startServer(t, server.Config{Store: st})
	session := adminSession(t, srv)
	info, _, err := srv.Forms().Publish(ctx, sampleXLSX(t), "", "", time.Now())
	must(t, err)
	f, err := srv.Forms().Form(ctx, info.Key())
	must(t, err)
	field := firstOfKind(t, f, forms.KText)
	id := conflictOn(t, srv, info.Key(), field)
	c, csrf := consoleClient(t, srv, "admin", "the admin's long password")
	cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Bearer "+session))
	must(t, err)
	st.failAudit.Store(true)

	// A new version of the form: refused by both, stored by neither.
	if _, err := cl.Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: otherVersion(t), Project: ""}); connect.CodeOf(err) != connect.CodeInternal {
		t.Fatalf("RPC publish with the audit failing: %v", err)
	}
	consoleUpload(t, c, srv, csrf, "", otherVersion(t), http.StatusInternalServerError)
	if all, _ := srv.Forms().List(ctx); len(all) != 1 {
		t.Fatalf("forms after failed publishes: %v", all)
	}
	// A review: refused, not saved.
	if _, err := cl.Review().SetReview(ctx, &tesserav1.SetReviewRequest{Record: id.String(), State: "approved"}); connect.CodeOf(err) != connect.CodeInternal {
		t.Fatalf("RPC review with the audit failing: %v", err)
	}
	postForm(t, c, srv.URL+"/console/records/"+id.String()+"/review", url.Values{"csrf": {csrf}, "state": {"rejected"}}, http.StatusInternalServerError)
	// A resolution: refused, the conflict still there.
	page := postForm(t, c, srv.URL+"/console/records/"+id.String()+"/resolve", url.Values{"csrf": {csrf}, "field": {field},
		"pick": {"0"}, "reason": {"checked"}}, http.StatusInternalServerError)
	if strings.Contains(page, errInjected.Error()) {
		t.Fatalf("the console showed the store's error text:\n%s", page)
	}
	// An export: refused before any row.
	stream, err := cl.Export().Export(ctx, &tesserav1.ExportRequest{FormId: info.ID})
	must(t, err)
	rows := 0
	for {
		m, err := stream.Receive()
		if err != nil {
			if connect.CodeOf(err) != connect.CodeInternal || rows != 0 {
				t.Fatalf("export with the audit failing: %v after %d row batches", err, rows)
			}
			break
		}
		if m.GetRows() != nil || m.GetEnd() != nil {
			rows++
		}
	}

	st.failAudit.Store(false)
	rec, err := srv.Replica().Record(ctx, id)
	must(t, err)
	if _, conflict := rec.Fields[field].Current(); !conflict {
		t.Fatal("a resolution whose audit failed was applied")
	}
	page = httpBody(t, c, http.MethodGet, srv.URL+"/console/records/"+id.String(), "", nil, http.StatusOK)
	if !strings.Contains(page, `<strong id="review">received</strong>`) {
		t.Fatal("a review whose audit failed was saved")
	}
	if _, err := cl.Review().SetReview(ctx, &tesserav1.SetReviewRequest{Record: id.String(), State: "approved"}); err != nil {
		t.Fatalf("review once the audit works again: %v", err)
	}
}

// TestPullScopeReadErrorFailsThePull: an enrolled device's pull whose scope
// check hits a store error fails, and the next pull still delivers the
// record (once the cursor passed a change, it was never sent).
func TestPullScopeReadErrorFailsThePull(t *testing.T) {
	ctx := context.Background()
	st := openFailing(t)
	srv := startServer(t, server.Config{Store: st})
	a := srv.Auth()
	must(t, a.CreateProject(ctx, "t", "camp"))
	teamRecords(t, a, "camp")
	enroll := func() *wire.Client {
		code, _, err := a.NewEnrollmentCode(ctx, "t", "camp", "", time.Hour)
		must(t, err)
		pub, priv, _ := ed25519.GenerateKey(nil)
		dev, secret, err := a.Enroll(ctx, code, pub, ed25519.Sign(priv, []byte(auth.NormalizeCode(code))))
		must(t, err)
		cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Device "+auth.DeviceCredential(dev.ID, secret)))
		must(t, err)
		return cl
	}
	pusher, puller := enroll(), enroll()
	from, to := syncengine.NewReplicaID(), syncengine.NewReplicaID()
	ch := syncengine.Change{Record: syncengine.NewRecordID(), Form: "f@1", Dot: syncengine.Dot{Replica: from, Counter: 1},
		HLC: syncengine.MakeHLC(time.Now().UnixMilli(), 0), Fields: fw("q", "x")}
	if _, err := pusher.Push(ctx, syncengine.Push{From: from, Through: 1, Changes: []syncengine.Change{ch}}); err != nil {
		t.Fatal(err)
	}
	st.failScopes.Store(1)
	if _, err := puller.Pull(ctx, syncengine.PullRequest{For: to}); connect.CodeOf(err) != connect.CodeInternal {
		t.Fatalf("pull with the scope read failing: %v", err)
	}
	page, err := puller.Pull(ctx, syncengine.PullRequest{For: to})
	must(t, err)
	if len(page.Changes) != 1 || page.Changes[0].Record != ch.Record {
		t.Fatalf("the next pull delivered %d changes, want the record's", len(page.Changes))
	}
}

// otherVersion is a small form not published yet.
func otherVersion(t *testing.T) []byte { return xlsxBytes(t, "household", "2", "Household size") }

// TestFlagMessagesWithholdSensitiveAnswers: a validation message may quote
// the answer; for a sensitive question an analyst gets it withheld (over
// the RPC and on the console's record page), a lead in full.
func TestFlagMessagesWithholdSensitiveAnswers(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{RequireAuth: true})
	a := srv.Auth()
	must(t, a.CreateProject(ctx, "t", "camp"))
	for u, role := range map[string]auth.Role{"lena": auth.Lead, "ana": auth.Analyst} {
		must(t, a.AddUser(ctx, "t", u, u+"'s long password"))
		must(t, a.Grant(ctx, "t", u, "camp", role))
	}
	info, _, err := srv.Forms().Publish(ctx, sampleXLSX(t), "", "camp", time.Now())
	must(t, err)
	id, err := srv.Replica().Create(ctx, info.Key(), fw("intro/consent", "yes", "gbv/gbv_private", "yes", "gbv/gbv_risk", "MARKER-FLAG", syncengine.StatusField, "finalized"))
	must(t, err)
	must(t, srv.Check(ctx, id))
	for _, tc := range []struct {
		user  string
		wants bool
	}{{"ana", false}, {"lena", true}} {
		session, err := a.Login(ctx, tc.user, tc.user+"'s long password")
		must(t, err)
		cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Bearer "+session))
		must(t, err)
		res, err := cl.Forms().ListFlags(ctx, &tesserav1.ListFlagsRequest{})
		must(t, err)
		if len(res.Records) != 1 {
			t.Fatalf("%s sees %d flagged records, want 1", tc.user, len(res.Records))
		}
		got := false
		for _, v := range res.Records[0].Violations {
			got = got || strings.Contains(v.Message, "MARKER-FLAG")
		}
		if got != tc.wants {
			t.Logf("%s: %v", tc.user, res.Records[0].Violations)
			t.Errorf("%s: a flag message quotes the sensitive answer: %v, want %v", tc.user, got, tc.wants)
		}
		c, _ := consoleClient(t, srv, tc.user, tc.user+"'s long password")
		page := httpBody(t, c, http.MethodGet, srv.URL+"/console/records/"+id.String(), "", nil, http.StatusOK)
		if strings.Contains(page, "MARKER-FLAG") != tc.wants {
			t.Errorf("%s: the record page shows the sensitive answer: %v, want %v", tc.user, !tc.wants, tc.wants)
		}
	}
	// An analyst of another project sees none of camp's flags.
	must(t, a.CreateProject(ctx, "t", "other"))
	must(t, a.AddUser(ctx, "t", "otto", "otto's long password"))
	must(t, a.Grant(ctx, "t", "otto", "other", auth.Analyst))
	session, err := a.Login(ctx, "otto", "otto's long password")
	must(t, err)
	cl, err := wire.Dial(srv.URL, nil, wire.WithAuthorization("Bearer "+session))
	must(t, err)
	if res, err := cl.Forms().ListFlags(ctx, &tesserav1.ListFlagsRequest{}); err != nil || len(res.Records) != 0 {
		t.Fatalf("an analyst of another project lists %d flagged records (%v)", len(res.GetRecords()), err)
	}
}
