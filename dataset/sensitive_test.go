package dataset

import (
	"strings"
	"testing"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

const sensitiveForm = `
| survey |
|        | type     | name   | label | sensitive |
|        | text     | open   | Open  |           |
|        | text     | secret | GBV   | yes       |
|        | begin repeat | people | People |      |
|        | text     | hidden | H     | yes       |
|        | end repeat |      |       |           |
| settings |
|          | form_id | version |
|          | sens    | 1       |
`

// TestConflictValuesWithholdSensitive: the concurrent values of a
// sensitive answer (in the main table or a repeat) stay out of
// _conflict_values when sensitive answers are not for the export; those of
// other answers go, and a lead's export has both.
func TestConflictValuesWithholdSensitive(t *testing.T) {
	f := formOf(t, sensitiveForm)
	r := syncengine.EmptyRecord(syncengine.NewRecordID())
	a, b := syncengine.NewReplicaID(), syncengine.NewReplicaID()
	for i, rep := range []syncengine.ReplicaID{a, b} {
		tag := []string{"A", "B"}[i]
		r.Apply(&syncengine.Change{Record: r.ID, Form: "sens@1", Dot: syncengine.Dot{Replica: rep, Counter: 1}, HLC: syncengine.HLC(1<<40 + i),
			Fields: []syncengine.FieldWrite{{Name: "open", Value: syncengine.TextValue("OPEN-" + tag)},
				{Name: "secret", Value: syncengine.TextValue("SECRET-" + tag)},
				{Name: "people[p1]", Value: syncengine.IntValue(1)},
				{Name: "people[p1]/hidden", Value: syncengine.TextValue("HIDDEN-" + tag)}}})
	}
	for _, sensitive := range []bool{false, true} {
		l := NewLayout([]*forms.Form{f}, Options{Sensitive: sensitive})
		var all strings.Builder
		l.Rows(r, Meta{}, func(row Row) {
			for _, c := range row.Cells {
				all.WriteString(c.String() + "|")
			}
		})
		got := all.String()
		if !strings.Contains(got, "OPEN-A") || !strings.Contains(got, "OPEN-B") {
			t.Fatalf("sensitive %v: the open answer's conflict is missing: %s", sensitive, got)
		}
		for _, m := range []string{"SECRET-A", "SECRET-B", "HIDDEN-A", "HIDDEN-B"} {
			if strings.Contains(got, m) != sensitive {
				t.Errorf("sensitive %v: marker %s present %v: %s", sensitive, m, !sensitive, got)
			}
		}
	}
}

// TestSensitiveInOneVersionWithheldFromAll (issue 13, finding 3): when one
// version marks a question sensitive and another does not, the answers of
// the version that marks it do not go out through the other's column (the
// question is withheld from every record: when in doubt, withhold).
func TestSensitiveInOneVersionWithheldFromAll(t *testing.T) {
	marks := formOf(t, strings.Replace(sensitiveForm, "| sens    | 1       |", "| sens    | 2       |", 1))
	plain := formOf(t, strings.NewReplacer("| yes       |", "|           |").Replace(sensitiveForm))
	r := syncengine.EmptyRecord(syncengine.NewRecordID())
	r.Apply(&syncengine.Change{Record: r.ID, Form: "sens@2", Dot: syncengine.Dot{Replica: syncengine.NewReplicaID(), Counter: 1}, HLC: 1 << 40,
		Fields: []syncengine.FieldWrite{{Name: "secret", Value: syncengine.TextValue("MARKER-V2")}, {Name: "open", Value: syncengine.TextValue("OPEN")}}})
	enc := syncengine.MarshalRecord(nil, r)
	for _, order := range [][]*forms.Form{{marks, plain}, {plain, marks}} {
		l := NewLayout(order, Options{})
		var all strings.Builder
		collect := func(row Row) {
			for _, c := range row.Cells {
				all.WriteString(c.String() + "|")
			}
		}
		l.Rows(r, Meta{}, collect)
		l.RowsFromStored(r.ID, enc, Meta{}, func(string) bool { return true }, collect)
		for _, tb := range l.Tables {
			for _, c := range tb.Columns {
				if c.Name == "secret" {
					t.Errorf("versions %s, %s: the secret column is exported", order[0].Version, order[1].Version)
				}
			}
		}
		if strings.Contains(all.String(), "MARKER-V2") || !strings.Contains(all.String(), "OPEN") {
			t.Errorf("versions %s, %s: %s", order[0].Version, order[1].Version, all.String())
		}
	}
}
