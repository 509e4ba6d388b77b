package ctl

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
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
