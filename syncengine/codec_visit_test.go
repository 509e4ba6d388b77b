package syncengine

import (
	"testing"
)

// A RecordVisitor sees what UnmarshalRecord builds: every field, its entries
// in stored order, the form, and the first applied dot.
func TestVisitRecord(t *testing.T) {
	a, b := NewReplicaID(), NewReplicaID()
	r := EmptyRecord(NewRecordID())
	r.Apply(&Change{Record: r.ID, Form: "f@1", Dot: Dot{a, 1}, HLC: 10, Fields: []FieldWrite{{Name: "q1", Value: TextValue("x")}, {Name: "q2", Value: IntValue(4)}}})
	r.Apply(&Change{Record: r.ID, Form: "f@1", Dot: Dot{b, 1}, HLC: 11, Fields: []FieldWrite{{Name: "q1", Value: TextValue("y")}}})
	r.Apply(&Change{Record: r.ID, Form: "f@1", Dot: Dot{a, 2}, HLC: 12, Context: NewDotSet(Dot{a, 1}), Fields: []FieldWrite{{Name: "q2", Value: DecimalValue(2.5)}}})
	enc := MarshalRecord(nil, r)
	want, err := UnmarshalRecord(r.ID, enc)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string][]Entry{}
	h, err := new(RecordVisitor).Visit(enc, func(name []byte, es []Entry) error {
		seen[string(name)] = append([]Entry(nil), es...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.Form != want.Form || h.FormHLC != want.FormHLC || h.FirstApplied != want.Applied[0] {
		t.Fatalf("header %+v, want form %s hlc %d first %v", h, want.Form, want.FormHLC, want.Applied[0])
	}
	if len(seen) != len(want.Fields) {
		t.Fatalf("fields %v, want %d", seen, len(want.Fields))
	}
	for name, reg := range want.Fields {
		es := seen[name]
		if len(es) != len(reg.Entries) {
			t.Fatalf("%s: %d entries, want %d", name, len(es), len(reg.Entries))
		}
		for i := range es {
			if es[i].Dot != reg.Entries[i].Dot || es[i].HLC != reg.Entries[i].HLC || !es[i].Value.Equal(reg.Entries[i].Value) {
				t.Fatalf("%s[%d] = %+v, want %+v", name, i, es[i], reg.Entries[i])
			}
		}
	}
	// Cut anywhere (a decimal's 8 bytes included: decoding one short
	// panicked before), both decoders refuse the record.
	for cut := range len(enc) {
		if _, err := new(RecordVisitor).Visit(enc[:cut], func([]byte, []Entry) error { return nil }); err == nil {
			t.Fatalf("a record cut at %d of %d bytes was accepted", cut, len(enc))
		}
		if _, err := UnmarshalRecord(r.ID, enc[:cut]); err == nil {
			t.Fatalf("UnmarshalRecord accepted a record cut at %d of %d bytes", cut, len(enc))
		}
	}
}
