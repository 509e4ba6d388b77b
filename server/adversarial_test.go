package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/tessera-survey/tessera/ctl"
	"github.com/tessera-survey/tessera/fieldapp"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/syncengine"
)

// markerForm is a form of project p with an open and a sensitive question
// (and a required one left unanswered, so finalized records are flagged).
func markerForm(t *testing.T, id string) []byte {
	return xlsxRows(t, id, "1", [][]string{{"type", "name", "label", "sensitive", "required"},
		{"text", "open", "Open", "", ""}, {"text", "secret", "Secret", "yes", ""}, {"text", "req", "Req", "", "yes"}})
}

// received is everything one principal got back, as text.
type received struct{ strings.Builder }

func (r *received) add(v any) { fmt.Fprintf(&r.Builder, "%v\n", v) }

// TestNobodyReceivesOutsideTheirScope plays every principal against every
// way records leave the server (RPCs, console pages, exports, flags,
// history and conflicts on the record page, pulls) with markers planted in
// open and sensitive answers of projects A and B, and searches every byte
// each principal receives: nobody gets a marker of another project, no
// analyst a sensitive one, and (so the test can fail) each gets its own.
func TestNobodyReceivesOutsideTheirScope(t *testing.T) {
	ts := newTrustServer(t)
	teamRecords(t, ts.Auth(), "A", "B")
	ctx := context.Background()
	must(t, ts.Auth().AddUser(ctx, "t", "nobody", "nobody's long password"))
	devices := map[string][]*fieldapp.Device{}
	records := map[string]syncengine.RecordID{}
	for _, p := range []string{"A", "B"} {
		form := "form_" + strings.ToLower(p)
		if _, err := ts.rpc[strings.ToLower(p)+"-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: markerForm(t, form), Project: p}); err != nil {
			t.Fatal(err)
		}
		d1, d2 := ts.enrolledDevice(t, p), ts.enrolledDevice(t, p)
		devices[p] = []*fieldapp.Device{d1, d2}
		mustSync(t, d1)
		mustSync(t, d2)
		id, err := d1.Create(ctx, form, fw("open", "OPEN-"+p, "secret", "SECRET-"+p, syncengine.StatusField, "finalized"))
		must(t, err)
		records[p] = id
		mustSync(t, d1)
		mustSync(t, d2)
		// A conflict on the sensitive answer: both values are markers.
		must(t, d1.Set(ctx, id, fw("secret", "SECRET-"+p+"-ONE")))
		must(t, d2.Set(ctx, id, fw("secret", "SECRET-"+p+"-TWO")))
		mustSync(t, d1)
		mustSync(t, d2)
		mustSync(t, d1)
		must(t, ts.Check(ctx, id))
	}
	users := []string{"a-lead", "a-analyst", "b-lead", "b-analyst"}
	got := map[string]*received{}
	for _, u := range users {
		got[u] = userReceives(t, ts, u, records)
	}
	for _, p := range []string{"A", "B"} {
		got["device-"+p] = deviceReceives(t, ts, p)
	}
	got["no role"] = userReceives(t, ts, "nobody", records)
	got["anonymous"] = anonymousReceives(t, ts, records)

	for who, r := range got {
		text := r.String()
		own := ""
		if strings.HasPrefix(who, "a-") || who == "device-A" {
			own = "A"
		} else if strings.HasPrefix(who, "b-") || who == "device-B" {
			own = "B"
		}
		for _, p := range []string{"A", "B"} {
			for _, m := range []string{"OPEN-" + p, "SECRET-" + p} {
				mayHave := p == own && (strings.HasPrefix(m, "OPEN") || !strings.HasSuffix(who, "-analyst"))
				if strings.Contains(text, m) && !mayHave {
					t.Errorf("%s received %s", who, m)
				}
				if !strings.Contains(text, m) && mayHave {
					t.Errorf("%s did not receive its own %s (the search would not see a leak)", who, m)
				}
			}
		}
	}
}

// userReceives collects what a signed-in user gets from every channel.
func userReceives(t *testing.T, ts *trustServer, user string, records map[string]syncengine.RecordID) *received {
	ctx := context.Background()
	r := &received{}
	session, err := ts.Auth().Login(ctx, user, user+"'s long password")
	must(t, err)
	cl, err := wire.Dial(ts.URL, nil, wire.WithAuthorization("Bearer "+session))
	must(t, err)
	defer cl.Close()
	if res, err := cl.Forms().ListForms(ctx, &tesserav1.ListFormsRequest{}); err == nil {
		r.add(res)
	}
	if res, err := cl.Forms().ListFlags(ctx, &tesserav1.ListFlagsRequest{}); err == nil {
		r.add(res)
	}
	for _, form := range []string{"form_a", "form_b"} {
		text, _ := exportText(t, cl, form)
		r.add(text)
	}
	pull, err := cl.Pull(ctx, syncengine.PullRequest{For: syncengine.NewReplicaID()})
	if err == nil {
		r.add(pull)
	}
	r.add(filesReceived(t, ts.URL, session, []string{"form_a", "form_b"}))
	if user == "nobody" { // no role anywhere: the console refuses the sign-in's home page
		return r
	}
	c, _ := consoleClient(t, ts.testServer, user, user+"'s long password")
	pages := []string{"/console/", "/console/records", "/console/records?conflicts=1", "/console/forms"}
	for _, id := range records {
		pages = append(pages, "/console/records/"+id.String())
	}
	for _, p := range pages {
		resp, err := c.Get(ts.URL + p)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.add(string(b))
	}
	return r
}

// deviceReceives pulls everything a fresh replica of a device of project
// would, through that device's credential.
func deviceReceives(t *testing.T, ts *trustServer, project string) *received {
	ctx := context.Background()
	r := &received{}
	d := ts.enrolledDevice(t, project)
	res, err := d.Sync(ctx, "", nil)
	must(t, err)
	r.add(res)
	err = d.Records(ctx, func(rec *syncengine.Record) error {
		for name, reg := range rec.Fields {
			for _, e := range reg.Entries {
				r.add(name + "=" + e.Value.String())
			}
		}
		return nil
	})
	must(t, err)
	return r
}

// anonymousReceives collects what a caller with no credential gets.
func anonymousReceives(t *testing.T, ts *trustServer, records map[string]syncengine.RecordID) *received {
	ctx := context.Background()
	r := &received{}
	cl, err := wire.Dial(ts.URL, nil)
	must(t, err)
	defer cl.Close()
	if res, err := cl.Forms().ListForms(ctx, &tesserav1.ListFormsRequest{}); err == nil {
		r.add(res)
	}
	for _, form := range []string{"form_a", "form_b"} {
		text, _ := exportText(t, cl, form)
		r.add(text)
	}
	if page, err := cl.Pull(ctx, syncengine.PullRequest{For: syncengine.NewReplicaID()}); err == nil {
		r.add(page)
	}
	for _, id := range records {
		resp, err := http.Get(ts.URL + "/console/records/" + id.String())
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.add(string(b))
	}
	return r
}

// filesReceived is every byte surveyctl writes for a session: each form in
// every export format, and a mirror.
func filesReceived(t *testing.T, url, session string, forms []string) string {
	var out strings.Builder
	t.Setenv("TESSERA_TOKEN", session)
	for _, form := range forms {
		for _, format := range []string{"csv", "jsonl", "parquet", "geojson"} {
			dir := filepath.Join(t.TempDir(), format)
			var stdout, stderr strings.Builder
			err := ctl.Main(context.Background(), []string{"--server", url, "export", "--form", form, "--format", format, "--out", dir}, &stdout, &stderr)
			out.WriteString(stdout.String() + stderr.String())
			if err != nil {
				continue
			}
			out.WriteString(readTree(t, dir))
		}
		dir := filepath.Join(t.TempDir(), "mirror")
		var stdout, stderr strings.Builder
		if ctl.Main(context.Background(), []string{"--server", url, "export", "--form", form, "--format", "jsonl", "--mirror", dir}, &stdout, &stderr) == nil {
			out.WriteString(readTree(t, dir))
		}
	}
	return out.String()
}

// readTree is the text of every file under dir (parquet files as the rows
// a reader decodes).
func readTree(t *testing.T, dir string) string {
	var out strings.Builder
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".parquet") {
			out.WriteString(parquetText(t, p))
			return nil
		}
		b, err := os.ReadFile(p)
		out.Write(b)
		return err
	}))
	return out.String()
}

// parquetText is every row of a Parquet file, decoded (its pages are
// compressed: raw bytes would hide a marker).
func parquetText(t *testing.T, path string) string {
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	pr := parquet.NewReader(f)
	var out strings.Builder
	for {
		m := map[string]any{}
		if err := pr.Read(&m); errors.Is(err, io.EOF) {
			return out.String()
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		fmt.Fprintf(&out, "%v\n", m)
	}
}
