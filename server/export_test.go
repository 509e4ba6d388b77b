package server_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/tessera-survey/tessera/ctl"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, h := range rows[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func surveyctl(t *testing.T, url string, env map[string]string, args ...string) string {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb strings.Builder
	if err := ctl.Main(context.Background(), append([]string{"--server", url}, args...), &out, &errb); err != nil {
		t.Fatalf("surveyctl %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// TestExport: records with a repeat, a select_multiple, a location and a
// conflict come out of every format as the server holds them, read back
// with independent readers (encoding/csv, a JSON decoder, parquet-go's
// reader); incremental exports, approved-only and sensitive columns work.
func TestExport(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	if _, _, err := srv.Forms().Publish(ctx, sampleForm(t), "sample", "", srv.Replica().Now()); err != nil {
		t.Fatal(err)
	}
	a, b := newDevice(t, srv.URL), newDevice(t, srv.URL)
	key := "community_security@2026.11.1"
	r1, err := a.Replica().Create(ctx, key, fw("intro/consent", "yes", "household/hh_size", "2", "household/location", "12.5 -3.25 100 5",
		"household/roster[m1]", "1", "household/roster[m1]/member_name", "Amina", "household/roster[m1]/age", "34",
		"household/roster[m2]", "2", "household/roster[m2]/member_name", "Yusuf, \"Jr\"", "household/roster[m2]/age", "9",
		"threats/threats_faced", "theft other", "threats/safe_day", "safe", "gbv/gbv_risk", "agree"))
	must(t, err)
	r2, err := b.Replica().Create(ctx, key, fw("intro/consent", "yes", "household/hh_size", "1", "threats/safe_day", "unsafe"))
	must(t, err)
	mustSync(t, a)
	mustSync(t, b)
	must(t, a.Replica().Set(ctx, r1, fw("threats/safe_day", "very_safe")))
	must(t, b.Replica().Set(ctx, r1, fw("threats/safe_day", "unsafe")))
	mustSync(t, a)
	mustSync(t, b)
	mustSync(t, a)

	dir := t.TempDir()
	export := func(format string, extra ...string) (string, string) {
		out := filepath.Join(dir, format+strings.Join(extra, ""))
		s := surveyctl(t, srv.URL, nil, append([]string{"export", "--form", "community_security", "--format", format, "--out", out}, extra...)...)
		return out, s
	}
	out, said := export("csv")
	cursor := regexp.MustCompile(`cursor (c\d+)`).FindStringSubmatch(said)
	if cursor == nil || !strings.Contains(said, "exported 2 records") {
		t.Fatalf("export said %q", said)
	}
	main := readCSV(t, filepath.Join(out, "community_security.csv"))
	roster := readCSV(t, filepath.Join(out, "community_security_household_roster.csv"))
	if len(main) != 2 || len(roster) != 2 {
		t.Fatalf("%d main rows, %d roster rows", len(main), len(roster))
	}
	byID := map[string]map[string]string{}
	for _, m := range main {
		byID[m["_id"]] = m
	}
	m1 := byID[r1.String()]
	if m1["household/hh_size"] != "2" || m1["threats/threats_faced"] != "theft other" || m1["threats/threats_faced/theft"] != "1" ||
		m1["threats/threats_faced/eviction"] != "0" || m1["household/location-Latitude"] != "12.5" || m1["household/location-Accuracy"] != "5" {
		t.Fatalf("main row of r1: %v", m1)
	}
	if m1["_conflict"] != "1" || !strings.Contains(m1["_conflict_values"], "very_safe") || !strings.Contains(m1["_conflict_values"], "unsafe") {
		t.Fatalf("conflict columns: %q %q", m1["_conflict"], m1["_conflict_values"])
	}
	if byID[r2.String()]["_conflict"] != "0" {
		t.Fatal("r2 flagged as in conflict")
	}
	if _, ok := m1["gbv/gbv_risk"]; ok {
		t.Fatal("a sensitive question was exported to an anonymous caller")
	}
	if roster[0]["_parent_id"] != r1.String() || roster[0]["member_name"] != "Amina" || roster[1]["member_name"] != `Yusuf, "Jr"` || roster[1]["_index"] != "2" {
		t.Fatalf("roster rows: %v", roster)
	}
	// Choice labels in French: answers become labels, the rest stays.
	out, _ = export("csv", "--labels", "Français (fr)")
	var fr map[string]string
	for _, m := range readCSV(t, filepath.Join(out, "community_security.csv")) {
		if m["_id"] == r1.String() {
			fr = m
		}
	}
	if fr["intro/consent"] != "Oui" || fr["threats/threats_faced"] != "Vol Autre" || fr["threats/threats_faced/theft"] != "1" || fr["household/hh_size"] != "2" {
		t.Fatalf("main row of r1 with French labels: %v", fr)
	}

	// JSON lines.
	out, _ = export("jsonl")
	f, err := os.Open(filepath.Join(out, "community_security.jsonl"))
	must(t, err)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var m map[string]any
		must(t, json.Unmarshal(sc.Bytes(), &m))
		if m["_id"] == r1.String() && (m["household/hh_size"] != float64(2) || m["_conflict"] != true) {
			t.Fatalf("jsonl row: %v", m)
		}
		n++
	}
	f.Close()
	if n != 2 {
		t.Fatalf("%d jsonl rows", n)
	}

	// Parquet, read back typed.
	out, _ = export("parquet")
	pf, err := os.Open(filepath.Join(out, "community_security.parquet"))
	must(t, err)
	defer pf.Close()
	pr := parquet.NewReader(pf)
	var rows []map[string]any
	for {
		m := map[string]any{}
		if err := pr.Read(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, m)
	}
	if len(rows) != 2 {
		t.Fatalf("%d parquet rows", len(rows))
	}
	for _, r := range rows {
		if r["_id"] == r1.String() && (r["household/hh_size"] != int64(2) || r["household/location-Latitude"] != 12.5) {
			t.Fatalf("parquet row: %#v", r)
		}
	}

	// GeoJSON: one feature, the record with a location.
	out, _ = export("geojson")
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Type     string `json:"type"`
			Geometry struct {
				Type        string    `json:"type"`
				Coordinates []float64 `json:"coordinates"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	b2, err := os.ReadFile(filepath.Join(out, "community_security.geojson"))
	must(t, err)
	must(t, json.Unmarshal(b2, &fc))
	if fc.Type != "FeatureCollection" || len(fc.Features) != 1 || fc.Features[0].Type != "Feature" || fc.Features[0].Geometry.Type != "Point" ||
		len(fc.Features[0].Geometry.Coordinates) != 2 || fc.Features[0].Geometry.Coordinates[0] != -3.25 || fc.Features[0].Geometry.Coordinates[1] != 12.5 ||
		fc.Features[0].Properties["_id"] != r1.String() || fc.Features[0].Properties["household/location-Latitude"] != 12.5 {
		t.Fatalf("geojson: %+v", fc)
	}

	// Incremental: only what changed after the cursor.
	must(t, b.Replica().Set(ctx, r2, fw("household/hh_size", "3")))
	mustSync(t, b)
	out, said = export("csv", "--since", cursor[1])
	if inc := readCSV(t, filepath.Join(out, "community_security.csv")); len(inc) != 1 || inc[0]["household/hh_size"] != "3" {
		t.Fatalf("incremental export: %v (%s)", inc, said)
	}

	// Approved only, and sensitive columns for an admin.
	tok, err := srv.Auth().NewSetupToken(ctx, "admin")
	must(t, err)
	session, _, err := srv.Auth().UseSetupToken(ctx, tok, "the admin's long password")
	must(t, err)
	env := map[string]string{"TESSERA_TOKEN": session}
	surveyctl(t, srv.URL, env, "review", r1.String(), "approved", "--comment", "checked by phone")
	out = filepath.Join(dir, "approved")
	surveyctl(t, srv.URL, env, "export", "--form", "community_security", "--format", "csv", "--out", out, "--approved-only")
	ap := readCSV(t, filepath.Join(out, "community_security.csv"))
	if len(ap) != 1 || ap[0]["_id"] != r1.String() || ap[0]["_review"] != "approved" || ap[0]["gbv/gbv_risk"] != "agree" {
		t.Fatalf("approved-only export for an admin: %v", ap)
	}
	entries, _, _, _ := srv.Auth().AuditTrail(ctx, 0, 0)
	exports := 0
	for _, e := range entries {
		if e.Action == "export" {
			exports++
		}
	}
	if exports < 5 {
		t.Fatalf("%d exports audited", exports)
	}
	_ = syncengine.Value{}
}
