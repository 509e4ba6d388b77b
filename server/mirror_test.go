package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/tessera-survey/tessera/ctl"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// TestExportMirror: `export --mirror DIR` keeps a copy current across
// runs (edited, deleted and new records, repeat rows included), and after
// each run the copy equals a fresh full export, in CSV and in JSON lines.
func TestExportMirror(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	if _, _, err := srv.Forms().Publish(ctx, sampleForm(t), "sample", "", srv.Replica().Now()); err != nil {
		t.Fatal(err)
	}
	a := newDevice(t, srv.URL)
	key := "community_security@2026.11.1"
	r1, err := a.Replica().Create(ctx, key, fw("intro/consent", "yes", "household/hh_size", "2",
		"household/roster[m1]", "1", "household/roster[m1]/member_name", "Amina", "household/roster[m1]/age", "34",
		"household/roster[m2]", "2", "household/roster[m2]/member_name", "Yusuf", "household/roster[m2]/age", "9"))
	must(t, err)
	r2, err := a.Replica().Create(ctx, key, fw("intro/consent", "yes", "household/hh_size", "1"))
	must(t, err)
	mustSync(t, a)

	dir := t.TempDir()
	tables := []string{"community_security", "community_security_household_roster"}
	check := func(format, mirror string) {
		t.Helper()
		full := filepath.Join(dir, "full-"+format)
		os.RemoveAll(full)
		surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", format, "--out", full)
		for _, tb := range tables {
			got, want := readRows(t, filepath.Join(mirror, tb+"."+format)), readRows(t, filepath.Join(full, tb+"."+format))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s mirror of %s differs from a full export:\nmirror %v\nfull   %v", format, tb, got, want)
			}
		}
	}
	mirrors := map[string]string{"csv": filepath.Join(dir, "mirror-csv"), "jsonl": filepath.Join(dir, "mirror-jsonl")}
	for format, m := range mirrors {
		said := surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", format, "--mirror", m)
		if !strings.Contains(said, "full export, 2 records") {
			t.Fatalf("first mirror run said %q", said)
		}
		check(format, m)
	}

	must(t, a.Replica().Set(ctx, r1, fw("household/roster[m1]/member_name", "Amina K", "household/hh_size", "3")))
	must(t, a.Replica().Delete(ctx, r2))
	_, err = a.Replica().Create(ctx, key, fw("intro/consent", "yes", "household/hh_size", "5",
		"household/roster[x1]", "1", "household/roster[x1]/member_name", "Halima"))
	must(t, err)
	mustSync(t, a)
	for format, m := range mirrors {
		said := surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", format, "--mirror", m)
		if !strings.Contains(said, "3 records changed") {
			t.Fatalf("second mirror run said %q", said)
		}
		check(format, m)
		main := readRows(t, filepath.Join(m, "community_security."+format))
		if len(main) != 2 || main[r2.String()] != nil || main[r1.String()]["household/hh_size"] == nil {
			t.Fatalf("%s mirror after the edits: %v", format, main)
		}
		if said := surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", format, "--mirror", m); !strings.Contains(said, "0 records changed") {
			t.Fatalf("a run with nothing new said %q", said)
		}
		check(format, m)
	}

	// A review is not a change to the record, yet an approved-only mirror
	// must follow it both ways.
	tok, err := srv.Auth().NewSetupToken(ctx, "admin")
	must(t, err)
	session, _, err := srv.Auth().UseSetupToken(ctx, tok, "the admin's long password")
	must(t, err)
	env := map[string]string{"TESSERA_TOKEN": session}
	t.Setenv("TESSERA_TOKEN", session)
	ap := filepath.Join(dir, "approved")
	approvedRows := func() map[string]map[string]any {
		surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", "csv", "--approved-only", "--mirror", ap)
		return readRows(t, filepath.Join(ap, "community_security.csv"))
	}
	if got := approvedRows(); len(got) != 0 {
		t.Fatalf("approved-only mirror before any review: %v", got)
	}
	surveyctl(t, srv.URL, env, "review", r1.String(), "approved")
	if got := approvedRows(); len(got) != 1 || got[r1.String()] == nil {
		t.Fatalf("approved-only mirror after approving r1: %v", got)
	}
	surveyctl(t, srv.URL, env, "review", r1.String(), "has_issues", "--comment", "ages look wrong")
	if got := approvedRows(); len(got) != 0 {
		t.Fatalf("approved-only mirror after r1 lost its approval: %v", got)
	}

	var out, errb strings.Builder
	err = ctl.Main(ctx, []string{"--server", srv.URL, "export", "--form", "community_security", "--format", "jsonl", "--mirror", mirrors["csv"]}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "already mirrors") {
		t.Fatalf("a mirror run with another format: %v", err)
	}
	notes := filepath.Join(dir, "notes")
	must(t, os.MkdirAll(notes, 0o755))
	must(t, os.WriteFile(filepath.Join(notes, "plan.txt"), []byte("mine"), 0o644))
	err = ctl.Main(ctx, []string{"--server", srv.URL, "export", "--form", "community_security", "--format", "csv", "--mirror", notes}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "is not a mirror") {
		t.Fatalf("a mirror into a folder of other files: %v", err)
	}
	// What an interrupted first run leaves behind does not block the next.
	cut := filepath.Join(dir, "cut")
	must(t, os.MkdirAll(filepath.Join(cut, ".incoming"), 0o755))
	must(t, os.WriteFile(filepath.Join(cut, "community_security.csv"), []byte("half a file"), 0o644))
	surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", "csv", "--mirror", cut)
	check("csv", cut)
	// Parquet files are written whole: again when something changed, not
	// at all when nothing did.
	pq := filepath.Join(dir, "pq")
	pqFile := filepath.Join(pq, "community_security.parquet")
	if said := surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", "parquet", "--mirror", pq); !strings.Contains(said, "full export, 2 records") {
		t.Fatalf("first parquet mirror run said %q", said)
	}
	st1, err := os.Stat(pqFile)
	must(t, err)
	if said := surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", "parquet", "--mirror", pq); !strings.Contains(said, "0 records changed") {
		t.Fatalf("parquet mirror with nothing new said %q", said)
	}
	if st2, err := os.Stat(pqFile); err != nil || !st2.ModTime().Equal(st1.ModTime()) || st2.Size() != st1.Size() {
		t.Fatalf("an idle parquet mirror run rewrote the file (%v)", err)
	}
	_, err = a.Replica().Create(ctx, key, fw("intro/consent", "yes", "household/hh_size", "7"))
	must(t, err)
	mustSync(t, a)
	if said := surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", "parquet", "--mirror", pq); !strings.Contains(said, "1 records changed, files written again with 3 records") {
		t.Fatalf("parquet mirror after a new record said %q", said)
	}
	pf, err := os.Open(pqFile)
	must(t, err)
	defer pf.Close()
	fi, err := pf.Stat()
	must(t, err)
	if f, err := parquet.OpenFile(pf, fi.Size()); err != nil || f.NumRows() != 3 {
		t.Fatalf("parquet mirror after a new record: %v rows (%v), want 3", f, err)
	}
}

// readRows reads a CSV or JSON lines table into rows by _id, values as
// text, so the two formats compare the same way.
func readRows(t *testing.T, path string) map[string]map[string]any {
	t.Helper()
	rows := map[string]map[string]any{}
	if strings.HasSuffix(path, ".csv") {
		for _, r := range readCSV(t, path) {
			m := map[string]any{}
			for k, v := range r {
				if v != "" {
					m[k] = v
				}
			}
			if rows[r["_id"]] != nil {
				t.Fatalf("%s: two rows with _id %s", path, r["_id"])
			}
			rows[r["_id"]] = m
		}
		return rows
	}
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		must(t, json.Unmarshal(sc.Bytes(), &m))
		for k, v := range m {
			if v == nil {
				delete(m, k)
			}
		}
		if rows[m["_id"].(string)] != nil {
			t.Fatalf("%s: two rows with _id %s", path, m["_id"])
		}
		rows[m["_id"].(string)] = m
	}
	must(t, sc.Err())
	return rows
}

// TestExportApprovedAmongMany: a full approved-only export reads review
// states by walking them alongside the records; with reviews scattered
// over many records (approved, then some withdrawn) it finds exactly the
// approved ones.
func TestExportApprovedAmongMany(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	if _, _, err := srv.Forms().Publish(ctx, sampleForm(t), "sample", "", srv.Replica().Now()); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 120 {
		id, err := srv.Replica().Create(ctx, "community_security@2026.11.1", fw("household/hh_size", fmt.Sprint(i)))
		must(t, err)
		ids = append(ids, id.String())
	}
	tok, err := srv.Auth().NewSetupToken(ctx, "admin")
	must(t, err)
	session, _, err := srv.Auth().UseSetupToken(ctx, tok, "the admin's long password")
	must(t, err)
	t.Setenv("TESSERA_TOKEN", session)
	want := map[string]bool{}
	for i, id := range ids {
		switch {
		case i%7 == 3:
			surveyctl(t, srv.URL, nil, "review", id, "approved")
			want[id] = true
		case i%11 == 5:
			surveyctl(t, srv.URL, nil, "review", id, "approved")
			surveyctl(t, srv.URL, nil, "review", id, "rejected")
		case i%13 == 0:
			surveyctl(t, srv.URL, nil, "review", id, "has_issues")
		}
	}
	out := filepath.Join(t.TempDir(), "approved")
	surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", "csv", "--approved-only", "--out", out)
	got := readRows(t, filepath.Join(out, "community_security.csv"))
	if len(got) != len(want) {
		t.Fatalf("%d approved rows, want %d", len(got), len(want))
	}
	for id, row := range got {
		if !want[id] || row["_review"] != "approved" {
			t.Fatalf("row %s (review %v) should not be in an approved-only export", id, row["_review"])
		}
	}
	all := filepath.Join(t.TempDir(), "all")
	surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", "csv", "--out", all)
	rows := readRows(t, filepath.Join(all, "community_security.csv"))
	for i, id := range ids {
		if i%13 == 0 && i%7 != 3 && i%11 != 5 && rows[id]["_review"] != "has_issues" {
			t.Fatalf("record %d: review %v, want has_issues", i, rows[id]["_review"])
		}
	}
}

// TestExportClientGoesAway: a client that stops reading mid-export frees
// the server's pipeline (reader, layout and sender goroutines), and the
// next export runs whole.
func TestExportClientGoesAway(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	if _, _, err := srv.Forms().Publish(ctx, sampleForm(t), "sample", "", srv.Replica().Now()); err != nil {
		t.Fatal(err)
	}
	recs := make([]syncengine.NewRecord, 20000)
	for i := range recs {
		recs[i] = syncengine.NewRecord{Form: "community_security@2026.11.1", Fields: fw("household/hh_size", fmt.Sprint(i), "intro/consent", "yes")}
	}
	_, err := srv.Replica().CreateMany(ctx, recs)
	must(t, err)
	base := runtime.NumGoroutine()
	for range 3 {
		cl, err := wire.Dial(srv.URL, nil)
		must(t, err)
		cctx, cancel := context.WithCancel(ctx)
		stream, err := cl.Export().Export(cctx, &tesserav1.ExportRequest{FormId: "community_security"})
		must(t, err)
		if _, err := stream.Receive(); err != nil { // the schema
			t.Fatal(err)
		}
		if _, err := stream.Receive(); err != nil { // a first batch
			t.Fatal(err)
		}
		cancel()
		stream.Close()
		cl.Close()
	}
	waitFor(t, "the abandoned exports to end", func() bool { return runtime.NumGoroutine() <= base+4 })
	out := filepath.Join(t.TempDir(), "all")
	said := surveyctl(t, srv.URL, nil, "export", "--form", "community_security", "--format", "csv", "--out", out)
	if !strings.Contains(said, "exported 20000 records") {
		t.Fatalf("export after abandoned ones said %q", said)
	}
}

// TestExportFastPath: a form without repeats is exported through the fast
// path (records laid out from their stored bytes); records of another
// form, deleted records and review filters are handled as on the full
// path, and a record in conflict (which goes back to the full path) keeps
// its conflict columns.
func TestExportFastPath(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	if _, _, err := srv.Forms().Publish(ctx, xlsxBytes(t, "flat", "1", "Q1"), "", "", srv.Replica().Now()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	var ids []syncengine.RecordID
	for i := range 50 {
		id, err := srv.Replica().Create(ctx, "flat@1", fw("q1", fmt.Sprint(i)))
		must(t, err)
		ids = append(ids, id)
		want[id.String()] = fmt.Sprint(i)
	}
	for i := range 5 {
		_, err := srv.Replica().Create(ctx, "other@1", fw("q1", fmt.Sprint(i)))
		must(t, err)
	}
	must(t, srv.Replica().Delete(ctx, ids[7]))
	delete(want, ids[7].String())
	a, b := newDevice(t, srv.URL), newDevice(t, srv.URL)
	cid, err := a.Replica().Create(ctx, "flat@1", fw("q1", "100"))
	must(t, err)
	mustSync(t, a)
	mustSync(t, b)
	must(t, a.Replica().Set(ctx, cid, fw("q1", "101")))
	must(t, b.Replica().Set(ctx, cid, fw("q1", "102")))
	mustSync(t, a)
	mustSync(t, b)

	out := filepath.Join(t.TempDir(), "all")
	surveyctl(t, srv.URL, nil, "export", "--form", "flat", "--format", "csv", "--out", out)
	rows := readRows(t, filepath.Join(out, "flat.csv"))
	if len(rows) != len(want)+1 {
		t.Fatalf("%d rows, want %d", len(rows), len(want)+1)
	}
	for id, q1 := range want {
		r := rows[id]
		if r == nil || r["q1"] != q1 || r["_status"] != "draft" || r["_review"] != "received" || r["_conflict"] != "0" || r["_form_version"] != "1" {
			t.Fatalf("row %s = %v, want q1 %s", id, r, q1)
		}
	}
	if r := rows[cid.String()]; r == nil || r["_conflict"] != "1" || !strings.Contains(fmt.Sprint(r["_conflict_values"]), "101") ||
		!strings.Contains(fmt.Sprint(r["_conflict_values"]), "102") {
		t.Fatalf("conflict row %v", r)
	}

	tok, err := srv.Auth().NewSetupToken(ctx, "admin")
	must(t, err)
	session, _, err := srv.Auth().UseSetupToken(ctx, tok, "the admin's long password")
	must(t, err)
	t.Setenv("TESSERA_TOKEN", session)
	surveyctl(t, srv.URL, nil, "review", ids[3].String(), "approved")
	approved := filepath.Join(t.TempDir(), "approved")
	surveyctl(t, srv.URL, nil, "export", "--form", "flat", "--format", "jsonl", "--approved-only", "--out", approved)
	got := readRows(t, filepath.Join(approved, "flat.jsonl"))
	if len(got) != 1 || got[ids[3].String()] == nil || got[ids[3].String()]["_review"] != "approved" {
		t.Fatalf("approved-only export: %v", got)
	}
}

// TestExportTextsPackedOrNot: a client that asks for packed texts gets the
// same texts, in the same order, as an older client that gets a string
// per text cell.
func TestExportTextsPackedOrNot(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	if _, _, err := srv.Forms().Publish(ctx, sampleForm(t), "sample", "", srv.Replica().Now()); err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{"Ana María", "日本語", "", "a,\"b\"", "العربية"} {
		_, err := srv.Replica().Create(ctx, "community_security@2026.11.1", fw("household/hh_size", fmt.Sprint(i), "intro/consent", "yes", "coexistence/comment", s))
		must(t, err)
	}
	texts := func(packed bool) []string {
		cl, err := wire.Dial(srv.URL, nil)
		must(t, err)
		defer cl.Close()
		stream, err := cl.Export().Export(ctx, &tesserav1.ExportRequest{FormId: "community_security", PackedTexts: packed})
		must(t, err)
		defer stream.Close()
		var out []string
		for {
			m, err := stream.Receive()
			if errors.Is(err, io.EOF) {
				return out
			}
			must(t, err)
			r := m.GetRows()
			if r == nil || r.Table != 0 {
				continue
			}
			if packed != (len(r.TextLens) > 0) || packed == (len(r.Texts) > 0) {
				t.Fatalf("packed %v: %d lengths, %d strings", packed, len(r.TextLens), len(r.Texts))
			}
			data := r.TextData
			for _, n := range r.TextLens {
				out, data = append(out, string(data[:n])), data[n:]
			}
			out = append(out, r.Texts...)
		}
	}
	old, packed := texts(false), texts(true)
	if !slices.Equal(old, packed) || !slices.Contains(packed, "日本語") || !slices.Contains(packed, "a,\"b\"") {
		t.Fatalf("packed texts %q, strings %q", packed, old)
	}
}

// corruptingStore hands one record's stored bytes to scans cut in half, as
// a damaged disk would.
type corruptingStore struct {
	syncengine.Store
	bad int // the bad record's place in a raw scan, from 1
}

func (s corruptingStore) View(ctx context.Context, fn func(syncengine.ReadTx) error) error {
	return s.Store.View(ctx, func(tx syncengine.ReadTx) error { return fn(corruptingTx{tx, s.bad}) })
}

type corruptingTx struct {
	syncengine.ReadTx
	bad int
}

func (t corruptingTx) ScanRecordBytes(from syncengine.RecordID, fn func(syncengine.RecordID, []byte) error) error {
	n := 0
	return t.ReadTx.(syncengine.RawRecordScanner).ScanRecordBytes(from, func(id syncengine.RecordID, b []byte) error {
		if n++; n == t.bad {
			b = b[:len(b)/2]
		}
		return fn(id, b)
	})
}

// TestExportCorruptRecord: a record the layout workers cannot read fails
// the export with an internal error (not its text) rather than a file
// missing it, and the pipeline's goroutines all end.
func TestExportCorruptRecord(t *testing.T) {
	ctx := context.Background()
	st, err := badgerstore.Open(badgerstore.Options{Dir: filepath.Join(t.TempDir(), "s"), Profile: badgerstore.Server})
	must(t, err)
	srv := startServer(t, server.Config{Store: corruptingStore{st, 7000}, DataDir: t.TempDir()})
	if _, _, err := srv.Forms().Publish(ctx, xlsxBytes(t, "flat", "1", "Q1"), "", "", srv.Replica().Now()); err != nil {
		t.Fatal(err)
	}
	recs := make([]syncengine.NewRecord, 10000)
	for i := range recs {
		recs[i] = syncengine.NewRecord{Form: "flat@1", Fields: fw("q1", fmt.Sprint(i))}
	}
	_, err = srv.Replica().CreateMany(ctx, recs)
	must(t, err)
	base := runtime.NumGoroutine()
	var out, errb strings.Builder
	err = ctl.Main(ctx, []string{"--server", srv.URL, "export", "--form", "flat", "--format", "csv", "--out", filepath.Join(t.TempDir(), "o")}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "internal") || strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("export of a store with a corrupt record: %v (%s)", err, out.String())
	}
	waitFor(t, "the export's goroutines to end", func() bool { return runtime.NumGoroutine() <= base+4 })
}
