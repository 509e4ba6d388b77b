package syncengine

import (
	"encoding/binary"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// genRecord draws a record whose sets are made the way merges make them:
// dots of a few replicas, seen sets mostly inside the applied set, some
// dots outside it.
func genRecord(t *rapid.T) *Record {
	reps := []ReplicaID{{1}, {2}, {0xfe}}
	dot := func(label string) Dot {
		return Dot{Replica: rapid.SampledFrom(reps).Draw(t, label+" replica"), Counter: rapid.Uint64Range(1, 1<<40).Draw(t, label+" counter")}
	}
	set := func(label string, max int) DotSet {
		var ds []Dot
		for range rapid.IntRange(0, max).Draw(t, label) {
			ds = append(ds, dot(label))
		}
		return NewDotSet(ds...)
	}
	r := EmptyRecord(NewRecordID())
	r.Form = rapid.StringMatching(`[a-z]{1,8}@1`).Draw(t, "form")
	r.FormHLC = HLC(rapid.Uint64Range(0, 1<<60).Draw(t, "form hlc"))
	r.Applied = set("applied", 30)
	pick := func(label string) DotSet {
		var ds []Dot
		for _, d := range r.Applied {
			if rapid.IntRange(0, 9).Draw(t, label) > 1 {
				ds = append(ds, d)
			}
		}
		return NewDotSet(ds...).Union(set(label+" outside", 3))
	}
	if len(r.Applied) > 0 {
		r.FormDot = rapid.SampledFrom(r.Applied).Draw(t, "form dot")
	}
	if d := pick("deletes"); len(d) > 0 {
		r.Deletes = d
	}
	for i := range rapid.IntRange(0, 5).Draw(t, "fields") {
		reg := &Register{}
		if s := pick("seen"); len(s) > 0 {
			reg.Seen = s
		}
		for _, d := range reg.Seen {
			if rapid.IntRange(0, 5).Draw(t, "live") == 0 {
				reg.Entries = append(reg.Entries, Entry{Dot: d, HLC: HLC(rapid.Uint64().Draw(t, "hlc")), Value: IntValue(int64(i))})
			}
		}
		r.Fields[string(rune('a'+i))] = reg
	}
	return r
}

// TestRecordCodecRoundTrip: every record decodes to itself, and a change's
// context in a log entry too.
func TestRecordCodecRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := genRecord(t)
		got, err := UnmarshalRecord(r.ID, MarshalRecord(nil, r))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(r) {
			t.Fatalf("decoded %+v, want %+v", got, r)
		}
		var v RecordVisitor
		if _, err := v.Visit(MarshalRecord(nil, r), func([]byte, []Entry) error { return nil }); err != nil {
			t.Fatalf("visit: %v", err)
		}
		c := Change{Record: r.ID, Form: "f@1", Dot: Dot{Replica: ReplicaID{9}, Counter: 1}, Context: r.Applied,
			Fields: []FieldWrite{{Name: "q", Value: IntValue(1)}}}
		e, err := UnmarshalLogEntry(1, MarshalLogEntry(nil, Local, &c))
		if err != nil || !slices.Equal(e.Change.Context, c.Context) {
			t.Fatalf("log entry context %v (%v), want %v", e.Change.Context, err, c.Context)
		}
	})
}

// marshalV1 is the version 1 encoding (every dot in full, seen sets as
// one ref per dot), kept to test that stores written before still read.
func marshalV1(r *Record) []byte {
	e := encoder{}
	e.b = append(e.b, 1)
	e.str(r.Form)
	e.uvarint(uint64(r.FormHLC))
	e.uvarint(uint64(len(r.Applied)))
	for _, d := range r.Applied {
		e.dot(d)
	}
	ref := func(d Dot) {
		if i, ok := slices.BinarySearchFunc(r.Applied, d, Dot.Compare); ok {
			e.uvarint(uint64(i) + 1)
			return
		}
		e.uvarint(0)
		e.dot(d)
	}
	refs := func(s DotSet) {
		e.uvarint(uint64(len(s)))
		for _, d := range s {
			ref(d)
		}
	}
	ref(r.FormDot)
	refs(r.Deletes)
	e.uvarint(uint64(len(r.Fields)))
	for name, f := range r.Fields {
		e.str(name)
		refs(f.Seen)
		e.uvarint(uint64(len(f.Entries)))
		for _, x := range f.Entries {
			ref(x.Dot)
			e.uvarint(uint64(x.HLC))
			e.value(x.Value)
		}
	}
	return e.b
}

// TestCodecReadsVersion1: records and log entries a store wrote in
// version 1 decode to what they held.
func TestCodecReadsVersion1(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := genRecord(t)
		got, err := UnmarshalRecord(r.ID, marshalV1(r))
		if err != nil || !got.Equal(r) {
			t.Fatalf("version 1 record: %v", err)
		}
		var v RecordVisitor
		if _, err := v.Visit(marshalV1(r), func([]byte, []Entry) error { return nil }); err != nil {
			t.Fatalf("visit version 1: %v", err)
		}
		// A version 1 log entry: origin, record, form, dot, hlc, context
		// in full, fields.
		b := []byte{1, byte(Upstream)}
		b = append(b, r.ID[:]...)
		b = append(b, 3, 'f', '@', '1')
		b = append(b, make([]byte, 16)...)
		b[len(b)-16] = 9
		b = binary.AppendUvarint(b, 1)
		b = binary.AppendUvarint(b, 77)
		b = binary.AppendUvarint(b, uint64(len(r.Applied)))
		for _, d := range r.Applied {
			b = append(b, d.Replica[:]...)
			b = binary.AppendUvarint(b, d.Counter)
		}
		b = append(b, 1, 1, 'q', byte(Int))
		b = binary.AppendVarint(b, 5)
		e, err := UnmarshalLogEntry(3, b)
		if err != nil || !slices.Equal(e.Change.Context, r.Applied) || e.Change.HLC != 77 || e.Origin != Upstream {
			t.Fatalf("version 1 log entry: %+v %v", e, err)
		}
	})
}
