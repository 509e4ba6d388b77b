package syncengine

import "testing"

// writesFinalized is the status of the record a change creates, as
// Record.Status reads it from the built record.
func TestWritesFinalizedOracle(t *testing.T) {
	for _, status := range []*Value{nil, {Kind: Text, Str: "finalized"}, {Kind: Text, Str: "draft"}} {
		c := Change{Record: NewRecordID(), Form: "f@1", HLC: 5, Dot: Dot{Replica: ReplicaID{1}, Counter: 1},
			Fields: []FieldWrite{{Name: "q", Value: IntValue(1)}}}
		if status != nil {
			c.Fields = append(c.Fields, FieldWrite{Name: StatusField, Value: *status})
		}
		rec := EmptyRecord(c.Record)
		rec.Apply(&c)
		if got, want := writesFinalized(&c), rec.Status() == "finalized"; got != want {
			t.Errorf("status %v: writesFinalized %v, the record says %v", status, got, want)
		}
	}
}
