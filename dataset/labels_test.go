package dataset

import (
	"testing"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

const labelsForm = `
| survey |
|        | type                   | name | label::English (en) | label::Français (fr) |
|        | select_one yn          | q    | Q                   | Q                    |
|        | select_multiple things | m    | M                   | M                    |
|        | text                   | t    | T                   | T                    |
|        | integer                | n    | N                   | N                    |
| choices |
|         | list_name | name | label::English (en) | label::Français (fr) |
|         | yn        | yes  | Yes                 | Oui                  |
|         | yn        | no   | No                  | Non                  |
|         | things    | a    | A                   | Ah                   |
|         | things    | b    | B                   | Bé                   |
| settings |
|          | form_id | version |
|          | lab     | 1       |
`

// TestLabels: with labels in a language, choice answers are written as
// their labels (select_multiple: each, space-separated) and nothing else
// changes: the 0/1 column per choice, a text answer that happens to be a
// choice name, numbers. Without, the names. The fast path and the full
// path agree.
func TestLabels(t *testing.T) {
	f := formOf(t, labelsForm)
	r := syncengine.EmptyRecord(syncengine.NewRecordID())
	r.Apply(&syncengine.Change{Record: r.ID, Form: "lab@1", Dot: syncengine.Dot{Replica: syncengine.NewReplicaID(), Counter: 1}, HLC: 1 << 40,
		Fields: []syncengine.FieldWrite{{Name: "q", Value: syncengine.TextValue("yes")}, {Name: "m", Value: syncengine.TextValue("a b")},
			{Name: "t", Value: syncengine.TextValue("yes")}, {Name: "n", Value: syncengine.IntValue(7)}}})
	enc := syncengine.MarshalRecord(nil, r)
	for _, tc := range []struct {
		labels string
		want   map[string]string
	}{
		{"", map[string]string{"q": "yes", "m": "a b", "m/a": "1", "m/b": "1", "t": "yes", "n": "7"}},
		{"Français (fr)", map[string]string{"q": "Oui", "m": "Ah Bé", "m/a": "1", "m/b": "1", "t": "yes", "n": "7"}},
	} {
		l := NewLayout([]*forms.Form{f}, Options{Labels: tc.labels})
		check := func(path string, row Row) {
			for i, c := range l.Tables[0].Columns {
				if w, ok := tc.want[c.Name]; ok && row.Cells[i].String() != w {
					t.Errorf("labels %q, %s path: %s = %q, want %q", tc.labels, path, c.Name, row.Cells[i].String(), w)
				}
			}
		}
		handled, _, err := l.RowsFromStored(r.ID, enc, Meta{}, func(string) bool { return true }, func(row Row) { check("fast", row) })
		if err != nil || !handled {
			t.Fatalf("fast path: handled %v, %v", handled, err)
		}
		l.Rows(r, Meta{}, func(row Row) { check("full", row) })
	}
}
