package ctl

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
)

// TestRowsOfPackedTexts: a batch with its texts packed reads as the same
// rows as the batch with a string per text, and a packed batch whose
// lengths do not fit its data, cut a character in two or carry invalid
// UTF-8 is refused rather than written.
func TestRowsOfPackedTexts(t *testing.T) {
	texts := []string{"oui", "", "日本語", "a,b", "العربية", "x"}
	const ncols = 3
	loose := &tesserav1.ExportRows{Count: 3}
	for i, s := range texts {
		loose.Kinds = append(loose.Kinds, tesserav1.CellKind_CELL_KIND_TEXT)
		loose.Texts = append(loose.Texts, s)
		if i%2 == 1 {
			loose.Kinds = append(loose.Kinds, tesserav1.CellKind_CELL_KIND_INT)
			loose.Ints = append(loose.Ints, int64(i))
		}
	}
	packed := &tesserav1.ExportRows{Count: loose.Count, Kinds: loose.Kinds, Ints: loose.Ints}
	for _, s := range texts {
		packed.TextData = append(packed.TextData, s...)
		packed.TextLens = append(packed.TextLens, uint32(len(s)))
	}
	read := func(b *tesserav1.ExportRows) ([]string, error) {
		var out []string
		err := rowsOf(b, ncols, func(row []cell) error {
			for _, c := range row {
				out = append(out, fmt.Sprintf("%v:%s", c.kind, cellText(c)))
			}
			return nil
		})
		return out, err
	}
	want, err := read(loose)
	if err != nil {
		t.Fatal(err)
	}
	got, err := read(packed)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || len(got) != 9 {
		t.Fatalf("packed rows %q, want %q", got, want)
	}
	bad := func(name string, change func(b *tesserav1.ExportRows)) {
		b := &tesserav1.ExportRows{Count: packed.Count, Kinds: packed.Kinds, Ints: packed.Ints,
			TextData: slices.Clone(packed.TextData), TextLens: slices.Clone(packed.TextLens)}
		change(b)
		if _, err := read(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	bad("length past the data", func(b *tesserav1.ExportRows) { b.TextLens[5] = 9 })
	bad("data left over", func(b *tesserav1.ExportRows) { b.TextData = append(b.TextData, 'z') })
	bad("a character cut in two", func(b *tesserav1.ExportRows) { b.TextLens[2], b.TextLens[3] = 4, 5 })
	bad("invalid UTF-8", func(b *tesserav1.ExportRows) { b.TextData[0] = 0xff })
	bad("a length short", func(b *tesserav1.ExportRows) { b.TextLens = b.TextLens[:5] })
}

// TestAppendDecimal: the CSV writer's decimals are strconv's shortest 'f'
// form, for the short decimals it formats itself and for everything else.
func TestAppendDecimal(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, -0.5, 0.05, 0.1, 0.2, 0.3, 0.1 + 0.2, 12.3, 12.05, 99.99, 1e12 + 0.5,
		9999999999999.99, 1e13, -1e13, 1e15, 1e21, 1e22, 123456789.12, 5e-324, math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN(),
		1.005, 2.675, 0.015, 1.0 / 3, 4503599627370496.5, 9007199254740993, 0.125, 0.001}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		switch r.IntN(4) {
		case 0:
			vals = append(vals, float64(r.IntN(2_000_000)-1_000_000)/100)
		case 1:
			vals = append(vals, float64(r.IntN(20000)-10000)/10)
		case 2:
			vals = append(vals, (r.Float64()-0.5)*math.Pow(10, float64(r.IntN(30)-10)))
		default:
			vals = append(vals, math.Float64frombits(r.Uint64()))
		}
	}
	for _, f := range vals {
		if got, want := string(appendDecimal([]byte("x"), f)), "x"+strconv.FormatFloat(f, 'f', -1, 64); got != want {
			t.Fatalf("appendDecimal(%v) = %q, want %q", f, got, want)
		}
	}
}

// TestJSONValueLikeEncodingJSON: the JSON Lines writer writes each value
// byte for byte as encoding/json does (strings with every kind of escape,
// numbers of every size), and a row reads back as the same object.
func TestJSONValueLikeEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "Z", " ", "\"", "\\", "/", "<", ">", "&", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f",
		"é", "日本", "العربية", "\u2028", "\u2029", "\xff", "\xe6\x97", "😀"}
	var cells []cell
	for range 20000 {
		var sb strings.Builder
		for range r.IntN(12) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		cells = append(cells, cell{kind: tesserav1.CellKind_CELL_KIND_TEXT, s: sb.String()})
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -2.5, 0.1 + 0.2, 1e-6, 9.99e-7, 1e-7, 1.5e-300, 1e20, 1e21, 123456789e15, -1e21, 5e-324, math.MaxFloat64} {
		cells = append(cells, cell{kind: tesserav1.CellKind_CELL_KIND_DECIMAL, f: f})
	}
	for range 20000 {
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		cells = append(cells, cell{kind: tesserav1.CellKind_CELL_KIND_DECIMAL, f: f},
			cell{kind: tesserav1.CellKind_CELL_KIND_DECIMAL, f: float64(r.IntN(100000)) / 100})
	}
	cells = append(cells, cell{kind: tesserav1.CellKind_CELL_KIND_INT, i: math.MinInt64}, cell{kind: tesserav1.CellKind_CELL_KIND_INT, i: 42},
		cell{kind: tesserav1.CellKind_CELL_KIND_BOOL, b: true}, cell{kind: tesserav1.CellKind_CELL_KIND_BOOL}, cell{})
	for _, c := range cells {
		want, err := json.Marshal(cellAny(c))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONValue(nil, c); string(got) != string(want) {
			t.Fatalf("%+v: %s, want %s", c, got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := appendJSONValue(nil, cell{kind: tesserav1.CellKind_CELL_KIND_DECIMAL, f: f}); string(got) != "null" {
			t.Fatalf("%v: %s, want null", f, got)
		}
	}
	// A row: keys in column order (names escaped too), read back as the
	// object encoding/json makes of it.
	tbl := &tesserav1.ExportTable{}
	for i := range cells[:60] {
		tbl.Columns = append(tbl.Columns, &tesserav1.ExportColumn{Name: fmt.Sprintf("q<%d>\"x\"", i)})
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "t.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	w := newJSONLWriter(f, tbl)
	row := append(cells[:20:20], cells[len(cells)-40:]...)
	if err := w.write(row); err != nil {
		t.Fatal(err)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	line, _ := os.ReadFile(filepath.Join(dir, "t.jsonl"))
	m := map[string]any{}
	for i, c := range row {
		m[tbl.Columns[i].Name] = cellAny(c)
	}
	wantLine, _ := json.Marshal(m)
	var got, want map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	json.Unmarshal(wantLine, &want)
	if !reflect.DeepEqual(got, want) || line[len(line)-1] != '\n' || !strings.HasPrefix(string(line), `{"q\u003c0\u003e\"x\"":`) {
		t.Fatalf("row %s, want the object %s", line, wantLine)
	}
}
