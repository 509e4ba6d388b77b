package dataset

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// benchLayout is the export benchmark's form (30 questions: integers,
// texts, decimals) and one of its records as stored.
func benchLayout(b *testing.B) (*Layout, syncengine.RecordID, []byte) {
	var md strings.Builder
	md.WriteString("| survey |\n| | type | name | label |\n")
	for k := range 30 {
		fmt.Fprintf(&md, "| | %s | q%02d | Q%d |\n", []string{"integer", "text", "decimal"}[k%3], k, k)
	}
	md.WriteString("| settings |\n| | form_id | version |\n| | bench | 1 |\n")
	f := formOf(b, md.String())
	r := syncengine.EmptyRecord(syncengine.NewRecordID())
	var ws []syncengine.FieldWrite
	for k := range 30 {
		var v syncengine.Value
		switch k % 3 {
		case 0:
			v = syncengine.IntValue(int64(k * 7 % 97))
		case 1:
			v = syncengine.TextValue([]string{"yes", "no", "unsure", "often", "never"}[k%5])
		default:
			v = syncengine.DecimalValue(float64(k) / 10)
		}
		ws = append(ws, syncengine.FieldWrite{Name: fmt.Sprintf("q%02d", k), Value: v})
	}
	r.Apply(&syncengine.Change{Record: r.ID, Form: "bench@1", Dot: syncengine.Dot{Replica: syncengine.NewReplicaID(), Counter: 1}, HLC: 1 << 40, Fields: ws})
	return NewLayout([]*forms.Form{f}, Options{}), r.ID, syncengine.MarshalRecord(nil, r)
}

func BenchmarkRowsFromStored(b *testing.B) {
	l, id, enc := benchLayout(b)
	match := func(string) bool { return true }
	b.ReportAllocs()
	for b.Loop() {
		l.RowsFromStored(id, enc, Meta{}, match, func(Row) {})
	}
}

func BenchmarkRows(b *testing.B) {
	l, id, enc := benchLayout(b)
	b.ReportAllocs()
	for b.Loop() {
		rec, _ := syncengine.UnmarshalRecord(id, enc)
		l.Rows(rec, Meta{}, func(Row) {})
	}
}
