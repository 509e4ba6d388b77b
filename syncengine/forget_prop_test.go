package syncengine

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestForgetNeverResurrects: a replica forgets a record part way through
// receiving its changes (in any order, some twice). Afterwards it never
// holds a value written by a change it had applied before forgetting, and
// every value it holds is one the replica that forgot nothing holds too:
// a late change that was superseded before the forgetting does not come
// back as the record's answer.
func TestForgetNeverResurrects(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 4).Draw(t, "replicas")
		reps := make([]*simReplica, n)
		for i := range reps {
			reps[i] = &simReplica{id: replicaID(i), records: map[RecordID]*Record{}}
		}
		id := NewRecordID()
		var all []Change
		for range rapid.IntRange(1, 30).Draw(t, "writes") {
			r := reps[rapid.IntRange(0, n-1).Draw(t, "who")]
			if len(all) > 0 && rapid.Bool().Draw(t, "learn") {
				r.apply(all[rapid.IntRange(0, len(all)-1).Draw(t, "seen")])
				continue
			}
			name := rapid.SampledFrom([]string{"q1", "q2", "q3"}).Draw(t, "field")
			all = append(all, r.write(id, []FieldWrite{{Name: name, Value: IntValue(int64(len(all)))}}))
		}
		order := rapid.Permutation(all).Draw(t, "order")
		cut := rapid.IntRange(0, len(order)).Draw(t, "forget at")
		f, g := EmptyRecord(id), EmptyRecord(id)
		for i := range order {
			f.Apply(&order[i])
			g.Apply(&order[i])
			if i+1 == cut {
				forgetAnswers(f)
			}
		}
		before := DotSet(nil)
		for _, c := range order[:cut] {
			before = before.Add(c.Dot)
		}
		for _, c := range rapid.SliceOfN(rapid.SampledFrom(order), 0, 5).Draw(t, "again") {
			f.Apply(&c)
		}
		for name, reg := range f.Fields {
			for _, e := range reg.Entries {
				if before.Contains(e.Dot) {
					t.Fatalf("%s: a value written before the forgetting came back (%v)", name, e.Dot)
				}
				if gr := g.Fields[name]; gr == nil || !slices.ContainsFunc(gr.Entries, func(x Entry) bool { return x.Dot == e.Dot }) {
					t.Fatalf("%s: holds %v, which the full replica has superseded", name, e.Dot)
				}
			}
		}
	})
}
