package survey

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
)

// TestRecordFilterMayMatch: the record list's pre-check on stored bytes never
// rejects a record the full filter keeps (form, conflicts only, status,
// creation dates, creating device), on random records with concurrent
// writes, writes at the same instant, statuses in conflict, deletes and
// deletes in conflict; and it does reject some, or it would be no use.
func TestRecordFilterMayMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	forms := []string{"a@1", "a@2", "b@1", "ab@1"}
	replicas := []syncengine.ReplicaID{syncengine.NewReplicaID(), syncengine.NewReplicaID()}
	var filters []RecordFilter
	for _, form := range []string{"", "a", "b"} {
		for _, conflicts := range []bool{false, true} {
			for _, status := range []string{"", "draft", "finalized"} {
				filters = append(filters, RecordFilter{Form: form, ConflictsOnly: conflicts, Status: status})
			}
		}
	}
	// Creation dates (days 0-3 of the records' times) and devices.
	const day = 24 * 3600 * 1000
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	at := func(d int64) int64 {
		if d < 0 {
			return 0 // no bound
		}
		return base + d*day
	}
	for _, w := range [][2]int64{{0, 1}, {1, 2}, {2, -1}, {-1, 3}, {-1, -1}} {
		f := RecordFilter{from: at(w[0]), to: at(w[1])}
		for _, dev := range []string{"", replicas[0].String()[:8], replicas[1].String()[30:], "zz"} {
			f.Device = dev
			filters = append(filters, f)
		}
	}
	rejected := 0
	var v syncengine.RecordVisitor
	for range 3000 {
		rec := syncengine.EmptyRecord(syncengine.NewRecordID())
		form := forms[r.IntN(len(forms))]
		var seen syncengine.DotSet
		counters := map[syncengine.ReplicaID]uint64{}
		for range 1 + r.IntN(4) {
			rep := replicas[r.IntN(2)]
			counters[rep]++
			// Times within four days; some writes at the same instant.
			when := syncengine.MakeHLC(base+int64(r.IntN(4))*day+[]int64{0, 1, 2, day - 1}[r.IntN(4)], uint16(r.IntN(2)))
			ch := syncengine.Change{Record: rec.ID, Form: form, Dot: syncengine.Dot{Replica: rep, Counter: counters[rep]}, HLC: when}
			if r.IntN(2) == 0 {
				ch.Context = append(syncengine.DotSet(nil), seen...) // saw everything: no conflict
			}
			if r.IntN(2) == 0 {
				ch.Fields = append(ch.Fields, syncengine.FieldWrite{Name: "q1", Value: syncengine.IntValue(int64(r.IntN(3)))})
			}
			if r.IntN(3) == 0 {
				ch.Fields = append(ch.Fields, syncengine.FieldWrite{Name: syncengine.StatusField, Value: syncengine.TextValue([]string{"draft", "finalized"}[r.IntN(2)])})
			}
			if r.IntN(5) == 0 {
				ch.Fields = append(ch.Fields, syncengine.FieldWrite{Name: syncengine.DeletedField, Value: syncengine.BoolValue(r.IntN(2) == 0)})
			}
			if len(ch.Fields) == 0 {
				ch.Fields = append(ch.Fields, syncengine.FieldWrite{Name: "q2", Value: syncengine.TextValue("x")})
			}
			rec.Apply(&ch)
			seen = seen.Add(ch.Dot)
		}
		b := syncengine.MarshalRecord(nil, rec)
		for _, f := range filters {
			sum := summaryOf(rec)
			full := f.matches(&sum)
			may := f.mayMatch(&v, b)
			if full && !may {
				t.Fatalf("filter %+v rejects a record it keeps: %+v", f, rec)
			}
			if !may {
				rejected++
			}
		}
	}
	if rejected == 0 {
		t.Fatal("the pre-check never rejected anything")
	}
	t.Logf("pre-check rejections: %d of %d", rejected, 3000*len(filters))
}
