package ctl

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
)

// TestCSVLikeEncodingCSV: the export's CSV writer writes what encoding/csv
// writes for the same cells (quoting, doubled quotes, line breaks inside
// fields, leading spaces, numbers), and encoding/csv reads it back.
func TestCSVLikeEncodingCSV(t *testing.T) {
	texts := []string{"", "plain", "a,b", `say "hi"`, "two\nlines", "cr\rhere", " leading", "\tTab", "\u00a0nbsp", `\.`, `\.x`,
		"العربية", "日本語, ok", `"`, ",", "end "}
	var cells []cell
	for _, s := range texts {
		cells = append(cells, cell{kind: tesserav1.CellKind_CELL_KIND_TEXT, s: s})
	}
	cells = append(cells,
		cell{kind: tesserav1.CellKind_CELL_KIND_INT, i: -42}, cell{kind: tesserav1.CellKind_CELL_KIND_INT, i: 1 << 62},
		cell{kind: tesserav1.CellKind_CELL_KIND_DECIMAL, f: 3.25}, cell{kind: tesserav1.CellKind_CELL_KIND_DECIMAL, f: 1e21},
		cell{kind: tesserav1.CellKind_CELL_KIND_DECIMAL, f: -0.000001}, cell{kind: tesserav1.CellKind_CELL_KIND_BOOL, b: true},
		cell{kind: tesserav1.CellKind_CELL_KIND_BOOL}, cell{})
	var want bytes.Buffer
	w := csv.NewWriter(&want)
	rec := make([]string, len(cells))
	for i, c := range cells {
		rec[i] = cellText(c)
	}
	w.Write(rec)
	w.Flush()
	var got []byte
	for i, c := range cells {
		if i > 0 {
			got = append(got, ',')
		}
		got = appendCSVCell(got, c)
	}
	got = append(got, '\n')
	if string(got) != want.String() {
		t.Fatalf("got  %q\nwant %q", got, want.String())
	}
	back, err := csv.NewReader(bytes.NewReader(got)).Read()
	if err != nil || len(back) != len(rec) {
		t.Fatalf("read back: %v %v", back, err)
	}
	for i := range rec {
		if back[i] != rec[i] && !(rec[i] == "cr\rhere") { // encoding/csv reads a lone \r in a quoted field as \n
			t.Fatalf("field %d read back %q, want %q", i, back[i], rec[i])
		}
	}
}

// cellAny and cellText are the cells as Go values and as the text of a CSV
// field: what encoding/json and encoding/csv are given in the tests that
// hold the export's own writers to them.
func cellAny(c cell) any {
	switch c.kind {
	case tesserav1.CellKind_CELL_KIND_TEXT:
		return c.s
	case tesserav1.CellKind_CELL_KIND_INT:
		return c.i
	case tesserav1.CellKind_CELL_KIND_DECIMAL:
		return c.f
	case tesserav1.CellKind_CELL_KIND_BOOL:
		return c.b
	}
	return nil
}

func cellText(c cell) string {
	switch c.kind {
	case tesserav1.CellKind_CELL_KIND_TEXT:
		return c.s
	case tesserav1.CellKind_CELL_KIND_INT:
		return strconv.FormatInt(c.i, 10)
	case tesserav1.CellKind_CELL_KIND_DECIMAL:
		return strconv.FormatFloat(c.f, 'f', -1, 64)
	case tesserav1.CellKind_CELL_KIND_BOOL:
		if c.b {
			return "1"
		}
		return "0"
	}
	return ""
}

// TestCSVNeutralisesFormulas: text cells a spreadsheet would run get a
// leading ' (OWASP's CSV injection advice); numbers and other text are as
// answered; --raw-csv writes every cell as answered.
func TestCSVNeutralisesFormulas(t *testing.T) {
	text := func(s string) cell { return cell{kind: tesserav1.CellKind_CELL_KIND_TEXT, s: s} }
	row := []cell{text(`=HYPERLINK("http://evil","x")`), text("+1"), text("-2"), text("@SUM(A1)"), text("\tx"), text("\rx"),
		text("plain"), text(""), {kind: tesserav1.CellKind_CELL_KIND_INT, i: -5}}
	table := &tesserav1.ExportTable{Name: "t"}
	for range row {
		table.Columns = append(table.Columns, &tesserav1.ExportColumn{Name: "c"})
	}
	for _, raw := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "t.csv")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w, err := newCSVWriter(f, table, raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.write(row); err != nil {
			t.Fatal(err)
		}
		if err := w.close(); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil || len(recs) != 2 {
			t.Fatalf("raw %v: %v %q", raw, err, b)
		}
		got := recs[1]
		for i, c := range row[:6] {
			want := "'" + c.s
			if raw {
				want = c.s
			}
			if i >= 4 { // csv.Reader drops a lone \r of a field: compare the rest
				want = strings.ReplaceAll(want, "\r", "")
				got[i] = strings.ReplaceAll(got[i], "\r", "")
			}
			if got[i] != want {
				t.Errorf("raw %v: cell %d = %q, want %q", raw, i, got[i], want)
			}
		}
		if got[6] != "plain" || got[7] != "" || got[8] != "-5" {
			t.Errorf("raw %v: other cells changed: %q", raw, got[6:])
		}
	}
}

// TestTableNamesStayInTheFolder: a table name from the server that is a
// path is refused; nothing is written outside the folder asked for.
func TestTableNamesStayInTheFolder(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "out")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../evil", "a/b", `a\b`, "", "c:x"} {
		if w, err := newTableWriter(outFormat{name: "csv"}, dir, &tesserav1.ExportTable{Name: name}); err == nil {
			w.close()
			t.Errorf("table %q accepted", name)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "evil.csv")); err == nil {
		t.Fatal("a file was written outside the export folder")
	}
	w, err := newTableWriter(outFormat{name: "csv"}, dir, &tesserav1.ExportTable{Name: "community_security"})
	if err != nil {
		t.Fatal(err)
	}
	w.close()
	if st, err := os.Stat(filepath.Join(dir, "community_security.csv")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the table file: %v %v (want mode 0600)", st.Mode(), err)
	}
}
