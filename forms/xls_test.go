package forms

import (
	"bytes"
	"context"
	"time"

	"github.com/tessera-survey/tessera/syncengine/memstore"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tessera-survey/tessera/internal/shared"
)

// TestReadXLSLikeXLSX (issue 15): pyxform's legacy .xls workbooks read as
// their .xlsx twins do (same sheets, same cell text), found by content:
// an .xls saved with an .xlsx name reads too.
func TestReadXLSLikeXLSX(t *testing.T) {
	dir := shared.Dir(t, "conformance/pyxform-workbooks/example_xls")
	xls, _ := filepath.Glob(filepath.Join(dir, "*.xls"))
	if len(xls) < 20 {
		t.Fatalf("%d .xls workbooks in %s", len(xls), dir)
	}
	twins := 0
	for _, p := range xls {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		wb, err := ReadWorkbook(b)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
			continue
		}
		if wb.Sheet("survey") == nil {
			t.Errorf("%s: no survey sheet among %v", filepath.Base(p), sheetNames(wb))
		}
		xb, err := os.ReadFile(strings.TrimSuffix(p, ".xls") + ".xlsx")
		if err != nil {
			continue
		}
		twin, err := ReadWorkbook(xb)
		if err != nil {
			t.Fatal(err)
		}
		twins++
		for _, s := range twin.Sheets {
			got := wb.Sheet(s.Name)
			if got == nil {
				t.Errorf("%s: sheet %q missing", filepath.Base(p), s.Name)
				continue
			}
			if a, b := trimRows(got.Rows), trimRows(s.Rows); !slices.EqualFunc(a, b, slices.Equal) {
				t.Errorf("%s sheet %s:\n xls  %q\n xlsx %q", filepath.Base(p), s.Name, a, b)
			}
		}
	}
	if twins < 4 {
		t.Fatalf("only %d .xls/.xlsx pairs compared", twins)
	}
}

func sheetNames(wb *Workbook) []string {
	var out []string
	for _, s := range wb.Sheets {
		out = append(out, s.Name)
	}
	return out
}

// trimRows drops trailing empty cells and rows (the two formats keep
// different amounts of them).
func trimRows(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		for len(r) > 0 && strings.TrimSpace(r[len(r)-1]) == "" {
			r = r[:len(r)-1]
		}
		out[i] = r
	}
	for len(out) > 0 && len(out[len(out)-1]) == 0 {
		out = out[:len(out)-1]
	}
	return out
}

// TestPublishXLS: a legacy .xls publishes, is kept as the .xlsx it reads
// as (devices take .xlsx), and publishing it again stores nothing new.
func TestPublishXLS(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(shared.Dir(t, "conformance/pyxform-workbooks/example_xls"), "calculate.xls"))
	if err != nil {
		t.Fatal(err)
	}
	one, err := XLSToXLSX(b)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 { // excelize writes sheets in map order: the bytes are made canonical
		two, _ := XLSToXLSX(b)
		if !bytes.Equal(one, two) || !bytes.HasPrefix(one, zipMagic) {
			t.Fatal("the .xlsx written for an .xls is not the same bytes each time")
		}
	}
	ctx := context.Background()
	reg := NewRegistry(memstore.New())
	info, created, err := reg.Publish(ctx, b, "calculate", "", time.Now())
	if err != nil || !created {
		t.Fatalf("publish .xls: %v %v", created, err)
	}
	if _, created, err := reg.Publish(ctx, b, "calculate", "", time.Now()); err != nil || created {
		t.Fatalf("publish the same .xls again: created %v, %v", created, err)
	}
	_, stored, err := reg.Get(ctx, info.ID, info.Version)
	if err != nil || !bytes.Equal(stored, one) {
		t.Fatalf("stored bytes: %v (%d bytes)", err, len(stored))
	}
}

// TestLegacyLoop: "begin loop over LIST" asks its questions once per
// choice, each time in a group named after it, with %(label)s replaced by
// the choice's label (pyxform's loop.xls).
func TestLegacyLoop(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(shared.Dir(t, "conformance/pyxform-workbooks/example_xls"), "loop.xls"))
	if err != nil {
		t.Fatal(err)
	}
	wb, err := ReadWorkbook(b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Import(wb, Options{DefaultID: "loop"})
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	labels := map[string]string{}
	f.Walk(func(q *Question) {
		if q.Kind == KGroup && q.Parent != nil && q.Parent.Name == "loop_toilet_types" {
			groups = append(groups, q.Name) // the loop stays a group of a group per choice
		}
		if q.Parent != nil && q.Parent.Kind == KGroup && q.Parent != f.Root && q.Kind != KGroup {
			labels[q.Path()] = q.Label.In("", "")
		}
	})
	if len(groups) < 2 {
		t.Fatalf("loop groups %v", groups)
	}
	for p, l := range labels {
		if strings.Contains(l, "%(label)s") {
			t.Errorf("%s: label %q still names the loop's placeholder", p, l)
		}
	}
	t.Logf("groups %v, labels %v", groups, labels)
}

// TestPyxformWorkbooks (issue 15): every workbook of pyxform's examples
// (.xlsx and .xls) reads, and imports with pyxform's verdict, except the
// disagreements listed with their reason (counted and printed).
func TestPyxformWorkbooks(t *testing.T) {
	dir := shared.Dir(t, "conformance/pyxform-workbooks/example_xls")
	invalid := map[string]bool{"bad_calc.xlsx": true, "unknown_question_type.xls": true} // pyxform's tests expect errors
	why := map[string]string{
		"attribute_columns_test.xlsx": "form id 'Spec test' has a space: form ids name files, tables and URLs here",
		"flat_xlsform_test.xlsx":      "form id 'Flat test' has a space: form ids name files, tables and URLs here",
		"xlsform_spec_test.xlsx":      "form id 'Spec test' has a space: form ids name files, tables and URLs here",
		"include.xls":                 "the legacy 'include' type (another workbook spliced in) is not supported",
		"include.xlsx":                "the legacy 'include' type (another workbook spliced in) is not supported",
		"include_json.xls":            "the legacy 'include' type (another workbook spliced in) is not supported",
		"include_json.xlsx":           "the legacy 'include' type (another workbook spliced in) is not supported",
		"repeat_date_test.xls":        "a note row without a name is refused (pyxform names it itself)",
		"survey_no_name.xlsx":         "a workbook whose only sheet is not named 'survey' is refused",
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*.xls*"))
	agree, disagree := 0, 0
	for _, p := range paths {
		name := filepath.Base(p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		wb, err := ReadWorkbook(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		_, err = Import(wb, Options{DefaultID: strings.TrimSuffix(name, filepath.Ext(name))})
		if (err == nil) != invalid[name] {
			agree++
			continue
		}
		disagree++
		if why[name] == "" {
			t.Errorf("%s: pyxform's verdict is %v, ours: %v", name, !invalid[name], err)
			continue
		}
		t.Logf("%s: disagreement: %s", name, why[name])
	}
	t.Logf("pyxform's example workbooks: %d, same verdict %d, disagreements %d (listed above)", len(paths), agree, disagree)
}
