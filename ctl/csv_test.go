package ctl

import (
	"bytes"
	"encoding/csv"
	"strconv"
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
