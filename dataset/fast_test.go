package dataset

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

const fastForm = `
| survey |
|        | type                   | name  | label |
|        | text                   | t     | T     |
|        | integer                | n     | N     |
|        | decimal                | d     | D     |
|        | select_one yn          | one   | One   |
|        | select_multiple things | many  | Many  |
|        | geopoint               | where | Where |
|        | begin group            | g     | G     |
|        | text                   | inner | Inner |
|        | end group              |       |       |
| choices |
|         | list_name | name  | label |
|         | yn        | yes   | Yes   |
|         | yn        | no    | No    |
|         | things    | a     | A     |
|         | things    | b     | B     |
|         | things    | c     | C     |
| settings |
|          | form_id | version |
|          | fast    | 1       |
`

// formOf imports a form written as pyxform's markdown tables.
func formOf(t testing.TB, md string) *forms.Form {
	t.Helper()
	wb, err := forms.ReadMarkdown(md)
	if err != nil {
		t.Fatal(err)
	}
	f, err := forms.Import(wb, forms.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRowsFromStored: on random records (one to three devices, concurrent
// edits, statuses, deletes, answers of the wrong type, fields the form does
// not have), the fast path lays out exactly what Rows does, or declines.
func TestRowsFromStored(t *testing.T) {
	f := formOf(t, fastForm)
	rng := rand.New(rand.NewPCG(5, 7))
	reps := []syncengine.ReplicaID{syncengine.NewReplicaID(), syncengine.NewReplicaID(), syncengine.NewReplicaID()}
	fields := []string{"t", "n", "d", "one", "many", "where", "g/inner", "extra", syncengine.StatusField}
	value := func(name string) syncengine.Value {
		switch rng.IntN(8) {
		case 0:
			return syncengine.Value{}
		case 1:
			return syncengine.IntValue(rng.Int64N(100))
		case 2:
			return syncengine.DecimalValue(float64(rng.IntN(1000)) / 7)
		case 3:
			return syncengine.BoolValue(rng.IntN(2) == 0)
		}
		switch name {
		case "one":
			return syncengine.TextValue([]string{"yes", "no", "maybe"}[rng.IntN(3)])
		case "many":
			return syncengine.TextValue([]string{"a", "a c", "b c", "z"}[rng.IntN(4)])
		case "where":
			return syncengine.TextValue([]string{"1.5 2.5 3 4", "1 2", "x y"}[rng.IntN(3)])
		case syncengine.StatusField:
			return syncengine.TextValue([]string{"draft", "finalized"}[rng.IntN(2)])
		}
		return syncengine.TextValue([]string{"hello", "12", "3.25", "a, \"quoted\" one"}[rng.IntN(4)])
	}
	for _, labels := range []string{"", "English"} {
		l := NewLayout([]*forms.Form{f}, Options{Labels: labels})
		fast, slow := 0, 0
		hlc := syncengine.HLC(1 << 20)
		for range 400 {
			r := syncengine.EmptyRecord(syncengine.NewRecordID())
			counters := map[syncengine.ReplicaID]uint64{}
			var applied syncengine.DotSet
			for range 1 + rng.IntN(5) {
				rep := reps[rng.IntN(1+rng.IntN(3))]
				counters[rep]++
				hlc += syncengine.HLC(1 + rng.IntN(5000))
				ctx := applied
				if rng.IntN(4) == 0 && len(applied) > 0 {
					ctx = applied[:rng.IntN(len(applied))] // concurrent with what came after
				}
				var ws []syncengine.FieldWrite
				seen := map[string]bool{}
				for range 1 + rng.IntN(4) {
					name := fields[rng.IntN(len(fields))]
					if !seen[name] {
						seen[name] = true
						ws = append(ws, syncengine.FieldWrite{Name: name, Value: value(name)})
					}
				}
				if rng.IntN(30) == 0 {
					ws = append(ws, syncengine.FieldWrite{Name: syncengine.DeletedField, Value: syncengine.BoolValue(true)})
				}
				d := syncengine.Dot{Replica: rep, Counter: counters[rep]}
				r.Apply(&syncengine.Change{Record: r.ID, Form: "fast@1", Dot: d, HLC: hlc, Context: syncengine.NewDotSet(ctx...), Fields: ws})
				applied = applied.Add(d)
			}
			enc := syncengine.MarshalRecord(nil, r)
			rec, err := syncengine.UnmarshalRecord(r.ID, enc)
			if err != nil {
				t.Fatal(err)
			}
			review := []string{"", "approved"}[rng.IntN(2)]
			var want [][]syncengine.Value
			l.Rows(rec, Meta{Review: review}, func(row Row) { want = append(want, append([]syncengine.Value(nil), row.Cells...)) })
			var got [][]syncengine.Value
			handled, exported, err := l.RowsFromStored(r.ID, enc, Meta{Review: review}, func(form string) bool { return form == "fast@1" },
				func(row Row) { got = append(got, append([]syncengine.Value(nil), row.Cells...)) })
			if err != nil {
				t.Fatal(err)
			}
			if !handled {
				if len(rec.Conflicts()) == 0 && rec.Fields[syncengine.DeletedField] == nil {
					if reg := rec.Fields[syncengine.StatusField]; reg == nil || len(reg.Entries) < 2 {
						t.Fatalf("declined a plain record: %+v", rec)
					}
				}
				slow++
				continue
			}
			fast++
			if !exported || len(got) != 1 || len(want) != 1 {
				t.Fatalf("rows: fast %d (exported %v), full %d", len(got), exported, len(want))
			}
			for i := range want[0] {
				if !got[0][i].Equal(want[0][i]) || got[0][i].Kind != want[0][i].Kind {
					t.Fatalf("column %s: fast %#v, full %#v", l.Tables[0].Columns[i].Name, got[0][i], want[0][i])
				}
			}
			if handled, exported, _ := l.RowsFromStored(r.ID, enc, Meta{}, func(string) bool { return false }, func(Row) { t.Fatal("emitted a record of another form") }); !handled || exported {
				t.Fatal("a record of another form was not skipped")
			}
		}
		if fast < 100 || slow < 20 {
			t.Fatalf("labels %q: %d records on the fast path, %d on the full one: the test does not cover both", labels, fast, slow)
		}
		t.Logf("labels %q: %d fast, %d full", labels, fast, slow)
	}
}

func TestStamp(t *testing.T) {
	for _, ms := range []int64{1, 999, 1700000000123, 1798761599999, 253402300799999} {
		want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
		if got := stamp(syncengine.HLC(ms << 16)).Str; got != want {
			t.Fatalf("stamp(%d) = %q, want %q", ms, got, want)
		}
	}
}
