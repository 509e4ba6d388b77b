package syncengine

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// simReplica is a replica reduced to its merge state, for property tests of
// the pure merge: no store, clock or network.
type simReplica struct {
	id      ReplicaID
	counter uint64
	hlc     HLC
	records map[RecordID]*Record
	inbox   []Change // delivered later, in any order, maybe twice
}

func (s *simReplica) apply(c Change) {
	rec := s.records[c.Record]
	if rec == nil {
		rec = EmptyRecord(c.Record)
		s.records[c.Record] = rec
	}
	rec.Apply(&c)
	s.hlc = max(s.hlc, c.HLC)
}

func (s *simReplica) write(id RecordID, fields []FieldWrite) Change {
	s.counter++
	s.hlc++
	ctx := DotSet(nil)
	if rec := s.records[id]; rec != nil {
		ctx = slices.Clone(rec.Applied)
	}
	c := Change{Record: id, Form: "f", Dot: Dot{s.id, s.counter}, HLC: s.hlc, Context: ctx, Fields: fields}
	s.apply(c)
	return c
}

func replicaID(i int) ReplicaID { return ReplicaID{0x10, byte(i + 1)} }

// TestMergeConverges: whatever order, duplication or loss-then-retry the
// changes of several replicas are delivered in, every replica ends with the
// same state.
func TestMergeConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(3, 5).Draw(t, "replicas")
		reps := make([]*simReplica, n)
		for i := range reps {
			reps[i] = &simReplica{id: replicaID(i), records: map[RecordID]*Record{}}
		}
		ids := []RecordID{NewRecordID(), NewRecordID(), NewRecordID()}
		fields := []string{"q1", "q2", "q3", DeletedField}
		var all []Change
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for range steps {
			r := reps[rapid.IntRange(0, n-1).Draw(t, "who")]
			if len(r.inbox) > 0 && rapid.Bool().Draw(t, "deliver") {
				// Deliver a random pending change; sometimes keep it
				// queued too (a duplicate), sometimes it was "lost" and
				// stays queued for a retry.
				i := rapid.IntRange(0, len(r.inbox)-1).Draw(t, "which")
				c := r.inbox[i]
				r.apply(c)
				if !rapid.Bool().Draw(t, "duplicate") {
					r.inbox = slices.Delete(r.inbox, i, i+1)
				}
				continue
			}
			id := ids[rapid.IntRange(0, len(ids)-1).Draw(t, "record")]
			nf := rapid.IntRange(1, 3).Draw(t, "nfields")
			var ws []FieldWrite
			if rapid.IntRange(0, 9).Draw(t, "erase") == 0 {
				ws = []FieldWrite{{Name: ErasedField, Value: BoolValue(true)}}
				nf = 0
			}
			for _, name := range rapid.Permutation(fields).Draw(t, "fields")[:nf] {
				v := IntValue(int64(rapid.IntRange(0, 3).Draw(t, "v")))
				if name == DeletedField {
					v = BoolValue(rapid.Bool().Draw(t, "del"))
				}
				ws = append(ws, FieldWrite{Name: name, Value: v})
			}
			c := r.write(id, ws)
			all = append(all, c)
			for _, o := range reps {
				if o != r {
					o.inbox = append(o.inbox, c)
				}
			}
		}
		// Retry everything at the end: each replica receives every change
		// (again), in its own random order.
		for i, r := range reps {
			order := rapid.Permutation(all).Draw(t, fmt.Sprintf("final%d", i))
			for _, c := range order {
				r.apply(c)
			}
		}
		for _, id := range ids {
			a := reps[0].records[id]
			if a != nil && a.Erased() && len(a.FieldNames()) > 0 {
				t.Fatalf("erased record %s keeps answers %v", id, a.FieldNames())
			}
			for _, r := range reps[1:] {
				b := r.records[id]
				if (a == nil) != (b == nil) || (a != nil && !a.Equal(b)) {
					t.Fatalf("record %s diverged between %s and %s:\n%+v\n%+v", id, reps[0].id, r.id, a, b)
				}
			}
		}
	})
}

// TestErasureWinsOverUnseenEdits: an edit made offline before an erasure
// arrived keeps no answer, whichever reaches a replica first.
func TestErasureWinsOverUnseenEdits(t *testing.T) {
	a, b := &simReplica{id: replicaID(0), records: map[RecordID]*Record{}}, &simReplica{id: replicaID(1), records: map[RecordID]*Record{}}
	id := NewRecordID()
	first := a.write(id, []FieldWrite{{Name: "q", Value: TextValue("MARKER")}})
	b.apply(first)
	offline := b.write(id, []FieldWrite{{Name: "q", Value: TextValue("MARKER-offline")}, {Name: DeletedField, Value: BoolValue(false)}})
	erase := a.write(id, []FieldWrite{{Name: ErasedField, Value: BoolValue(true)}})
	a.apply(offline)
	b.apply(erase)
	for _, r := range []*simReplica{a, b} {
		rec := r.records[id]
		if !rec.Erased() || !rec.Deleted() || len(rec.FieldNames()) != 0 || len(rec.Fields) != 1 {
			t.Fatalf("replica %s after the erasure: %+v", r.id, rec)
		}
		if !rec.Applied.Contains(offline.Dot) || !rec.Applied.Contains(erase.Dot) {
			t.Fatalf("replica %s forgot a dot: %v", r.id, rec.Applied)
		}
	}
	if !a.records[id].Equal(b.records[id]) {
		t.Fatal("replicas diverged")
	}
	bad := erase
	bad.Fields = append(bad.Fields, FieldWrite{Name: "q", Value: TextValue("x")})
	if err := bad.Validate(); err == nil {
		t.Fatal("an erasure that also writes an answer was accepted")
	}
}

// TestSequentialEditsNeverConflict: when every write is delivered everywhere
// before the next one is made, no field is ever in conflict, whoever writes.
func TestSequentialEditsNeverConflict(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(3, 5).Draw(t, "replicas")
		reps := make([]*simReplica, n)
		for i := range reps {
			reps[i] = &simReplica{id: replicaID(i), records: map[RecordID]*Record{}}
		}
		id := NewRecordID()
		for range rapid.IntRange(1, 40).Draw(t, "steps") {
			r := reps[rapid.IntRange(0, n-1).Draw(t, "who")]
			name := rapid.SampledFrom([]string{"q1", "q2", DeletedField}).Draw(t, "field")
			v := IntValue(int64(rapid.IntRange(0, 9).Draw(t, "v")))
			if name == DeletedField {
				v = BoolValue(rapid.Bool().Draw(t, "del"))
			}
			c := r.write(id, []FieldWrite{{Name: name, Value: v}})
			for _, o := range reps {
				if o != r {
					o.apply(c)
				}
			}
			for _, o := range reps {
				rec := o.records[id]
				if cs := rec.Conflicts(); len(cs) > 0 {
					t.Fatalf("sequential edits produced a conflict on %v", cs)
				}
				if reg := rec.Fields[DeletedField]; reg != nil && len(reg.Entries) > 1 {
					t.Fatalf("sequential delete/restore produced a conflict")
				}
				got, _ := rec.Fields[name].Current()
				if !got.Value.Equal(v) {
					t.Fatalf("replica %s: %s = %v, want the last write %v", o.id, name, got.Value, v)
				}
			}
		}
	})
}

func TestCodecRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := &simReplica{id: replicaID(0), records: map[RecordID]*Record{}}
		b := &simReplica{id: replicaID(1), records: map[RecordID]*Record{}}
		id := NewRecordID()
		var cs []Change
		for range rapid.IntRange(1, 10).Draw(t, "n") {
			r := a
			if rapid.Bool().Draw(t, "b") {
				r = b
			}
			v := rapid.SampledFrom([]Value{{}, TextValue("héllo"), IntValue(-7), DecimalValue(2.5), BoolValue(true)}).Draw(t, "v")
			cs = append(cs, r.write(id, []FieldWrite{{Name: rapid.SampledFrom([]string{"x", "y"}).Draw(t, "f"), Value: v}}))
		}
		for _, c := range cs {
			a.apply(c)
		}
		rec := a.records[id]
		got, err := UnmarshalRecord(id, MarshalRecord(nil, rec))
		if err != nil || !got.Equal(rec) {
			t.Fatalf("record round trip: %v\n%+v\n%+v", err, rec, got)
		}
		for i, c := range cs {
			e, err := UnmarshalLogEntry(uint64(i+1), MarshalLogEntry(nil, Upstream, &c))
			if err != nil || e.Origin != Upstream || e.Change.Dot != c.Dot || !slices.Equal(e.Change.Context, c.Context) ||
				e.Change.Fields[0].Name != c.Fields[0].Name || !e.Change.Fields[0].Value.Equal(c.Fields[0].Value) {
				t.Fatalf("log entry round trip: %v %+v %+v", err, c, e)
			}
		}
	})
}

func FuzzUnmarshal(f *testing.F) {
	s := &simReplica{id: replicaID(0), records: map[RecordID]*Record{}}
	id := NewRecordID()
	c := s.write(id, []FieldWrite{{Name: "q", Value: TextValue("a")}})
	f.Add(MarshalRecord(nil, s.records[id]))
	f.Add(MarshalLogEntry(nil, Local, &c))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = UnmarshalRecord(id, b)
		_, _ = UnmarshalLogEntry(1, b)
	})
}
