package syncengine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// The storage encoding of records and log entries, shared by every Store.
// It is a compact, versioned binary form: stores hold millions of these and
// read one on every merge, so it avoids reflection and maps of maps.

// Version 2 writes a set of dots grouped by replica, each group's counters
// as increasing deltas (a record's dots and a change's context are mostly
// one device's, whose counters grow by a few at a time: 2 or 3 bytes a
// dot instead of 17 to 19), and a register's seen set as runs of indexes
// into the record's applied set plus the dots outside it (a register has
// seen nearly every write of its record: a few bytes instead of one or
// two per write). A device edited 100,000 times stored more dots than
// answers. Version 1 is still read.
const codecVersion = 2

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) dot(d Dot)        { e.b = append(e.b, d.Replica[:]...); e.uvarint(d.Counter) }

// dots writes s (sorted): its size, then per replica the replica, how many
// of its dots follow, and their counters as deltas.
func (e *encoder) dots(s DotSet) {
	e.uvarint(uint64(len(s)))
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && s[j].Replica == s[i].Replica {
			j++
		}
		e.b = append(e.b, s[i].Replica[:]...)
		e.uvarint(uint64(j - i))
		prev := uint64(0)
		for _, d := range s[i:j] {
			e.uvarint(d.Counter - prev)
			prev = d.Counter
		}
		i = j
	}
}

// refSet writes s (sorted) against applied (sorted): how many of its dots
// are in applied, those as runs of indexes (gap from the previous run's
// end, length), then the others as a set.
func (e *encoder) refSet(applied, s DotSet) {
	in, runs := 0, 0
	for i, j, last := 0, 0, -2; i < len(s); i++ {
		for j < len(applied) && applied[j].Compare(s[i]) < 0 {
			j++
		}
		if j < len(applied) && applied[j] == s[i] {
			in++
			if j != last+1 {
				runs++
			}
			last = j
			j++
		}
	}
	e.uvarint(uint64(in))
	e.uvarint(uint64(runs))
	var extra DotSet
	start, prevEnd, length := -1, 0, 0
	for i, j := 0, 0; i < len(s); i++ {
		for j < len(applied) && applied[j].Compare(s[i]) < 0 {
			j++
		}
		if j < len(applied) && applied[j] == s[i] {
			if start >= 0 && j == start+length {
				length++
			} else {
				if start >= 0 {
					e.uvarint(uint64(start - prevEnd))
					e.uvarint(uint64(length))
					prevEnd = start + length
				}
				start, length = j, 1
			}
			j++
			continue
		}
		extra = append(extra, s[i])
	}
	if start >= 0 {
		e.uvarint(uint64(start - prevEnd))
		e.uvarint(uint64(length))
	}
	e.dots(extra)
}

func (e *encoder) value(v Value) {
	e.b = append(e.b, byte(v.Kind))
	switch v.Kind {
	case Text:
		e.str(v.Str)
	case Int:
		e.b = binary.AppendVarint(e.b, v.Int)
	case Decimal:
		e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v.Num))
	case Bool:
		if v.Bool {
			e.b = append(e.b, 1)
		} else {
			e.b = append(e.b, 0)
		}
	}
}

type decoder struct {
	b   []byte
	v   byte // the encoding's version
	err error
	// texts, when set, keeps strings made lately (RecordVisitor's).
	texts *[256]string
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrCorrupt
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	// Most numbers in a record (lengths, counts, dot references) fit in a
	// byte: read those without the general loop.
	if len(d.b) > 0 && d.b[0] < 0x80 {
		v := d.b[0]
		d.b = d.b[1:]
		return uint64(v)
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	b := d.bytes(d.uvarint())
	if d.texts == nil || len(b) == 0 {
		return string(b)
	}
	// A string made lately for the same bytes, found by a cheap hash: a
	// choice answered in many records becomes one string rather than one
	// allocation per record. A collision only costs an allocation.
	h := (uint(len(b))*31 + uint(b[0])*7 + uint(b[len(b)-1])) % uint(len(d.texts))
	if s := d.texts[h]; s == string(b) {
		return s
	}
	s := string(b)
	if len(b) <= 64 {
		d.texts[h] = s
	}
	return s
}

func (d *decoder) dot() Dot {
	var x Dot
	copy(x.Replica[:], d.bytes(16))
	x.Counter = d.uvarint()
	return x
}

// count reads a length and checks it against what is left, so corrupt input
// cannot make us allocate without bound.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min+1) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) dots() DotSet {
	if d.v < 2 {
		n := d.count(17)
		if n == 0 {
			return nil
		}
		s := make(DotSet, n)
		for i := range s {
			s[i] = d.dot()
		}
		return s
	}
	n := d.count(1)
	if n == 0 {
		return nil
	}
	return d.dotsInto(make(DotSet, 0, n), n)
}

// dotsInto appends the n dots of a version 2 set to s, checking they come
// sorted (a set is sorted and has no repeats).
func (d *decoder) dotsInto(s DotSet, n int) DotSet {
	var prev ReplicaID
	for left := n; left > 0 && d.err == nil; {
		var rep ReplicaID
		copy(rep[:], d.bytes(16))
		k := d.count(1)
		if k == 0 || k > left || (len(s) > 0 && bytes.Compare(prev[:], rep[:]) >= 0) {
			d.fail()
			break
		}
		c := uint64(0)
		for range k {
			delta := d.uvarint()
			if delta == 0 {
				d.fail()
				break
			}
			c += delta
			s = append(s, Dot{Replica: rep, Counter: c})
		}
		prev, left = rep, left-k
	}
	return s
}

// skipDots reads past a set (a RecordVisitor does not need it).
func (d *decoder) skipDots() {
	if d.v < 2 {
		for range d.count(17) {
			d.dot()
		}
		return
	}
	for left := d.count(1); left > 0 && d.err == nil; {
		d.bytes(16)
		k := d.count(1)
		if k == 0 || k > left {
			d.fail()
			return
		}
		for range k {
			d.uvarint()
		}
		left -= k
	}
}

// refSetInto appends a seen set (or a record's deletes) to s: version 1
// wrote each dot as a ref, version 2 as runs of indexes into applied and
// the dots outside it.
func (d *decoder) refSetInto(s DotSet, applied DotSet) DotSet {
	if d.v < 2 {
		for range d.count(1) {
			s = append(s, d.ref(applied))
		}
		return s
	}
	in := d.uvarint() // runs are short: bounded by applied, not by what is left
	if in > uint64(len(applied)) {
		d.fail()
		return s
	}
	runs := d.count(2)
	start := len(s)
	at, got := 0, 0
	for range runs {
		at += int(d.uvarint())
		k := int(d.uvarint())
		if k == 0 || at+k > len(applied) || uint64(got+k) > in {
			d.fail()
			return s
		}
		s = append(s, applied[at:at+k]...)
		at += k
		got += k
	}
	if uint64(got) != in {
		d.fail()
		return s
	}
	n := d.count(1)
	if n == 0 {
		return s
	}
	extra := d.dotsInto(make(DotSet, 0, n), n)
	// Both halves are sorted: merge the extras in.
	merged := make(DotSet, 0, len(s)-start+len(extra))
	merged = append(merged, s[start:]...)
	return append(s[:start], DotSet(merged).Union(extra)...)
}

// skipRefSet reads past a seen set.
func (d *decoder) skipRefSet(applied DotSet) {
	if d.v < 2 {
		for range d.count(1) {
			d.ref(applied)
		}
		return
	}
	d.uvarint()
	for range d.count(2) {
		d.uvarint()
		d.uvarint()
	}
	d.skipDots()
}

// ref reads a dot written as its index in applied (1-based), or in full
// after a 0.
func (d *decoder) ref(applied DotSet) Dot {
	i := d.uvarint()
	if i == 0 {
		return d.dot()
	}
	if i > uint64(len(applied)) {
		d.fail()
		return Dot{}
	}
	return applied[i-1]
}

func (d *decoder) value() Value {
	var v Value
	d.valueInto(&v)
	return v
}

// valueInto reads a value into *v (all of it: v may hold an older one).
func (d *decoder) valueInto(v *Value) {
	*v = Value{Kind: Kind(d.byte())}
	switch v.Kind {
	case Null:
	case Text:
		v.Str = d.str()
	case Int:
		x, n := binary.Varint(d.b)
		if n <= 0 {
			d.fail()
			break
		}
		d.b = d.b[n:]
		v.Int = x
	case Decimal:
		if b := d.bytes(8); b != nil {
			v.Num = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
	case Bool:
		v.Bool = d.byte() == 1
	default:
		d.fail()
	}
}

// MarshalRecord appends the storage encoding of r to b. Dots of the record's
// Applied set, which nearly every other dot of the record is, are written as
// their index in it: a record of 22 fields shrinks to less than half.
func MarshalRecord(b []byte, r *Record) []byte {
	if b == nil {
		b = make([]byte, 0, 64+48*len(r.Fields))
	}
	e := encoder{b: b}
	e.b = append(e.b, codecVersion)
	e.str(r.Form)
	e.uvarint(uint64(r.FormHLC))
	e.dots(r.Applied)
	ref := func(d Dot) {
		if len(r.Applied) > 0 && r.Applied[0] == d {
			e.uvarint(1) // most records were written once
			return
		}
		if i, ok := slices.BinarySearchFunc(r.Applied, d, Dot.Compare); ok {
			e.uvarint(uint64(i) + 1)
			return
		}
		e.uvarint(0)
		e.dot(d)
	}
	ref(r.FormDot)
	e.refSet(r.Applied, r.Deletes)
	e.uvarint(uint64(len(r.Fields)))
	for name, f := range r.Fields {
		e.str(name)
		e.refSet(r.Applied, f.Seen)
		e.uvarint(uint64(len(f.Entries)))
		for _, x := range f.Entries {
			ref(x.Dot)
			e.uvarint(uint64(x.HLC))
			e.value(x.Value)
		}
	}
	return e.b
}

// MarshalNewRecord encodes, as MarshalRecord would (fields in c's order),
// the record that applying c to an empty record gives, without building
// it: most changes a server or a fresh device merges create their record,
// and building the record's field map only to encode it took a third of
// the merge. c must be valid (Change.Validate: no field written twice, c's
// own dot not in its context).
func MarshalNewRecord(b []byte, c *Change) []byte {
	e := encoder{b: b}
	if e.b == nil {
		e.b = make([]byte, 0, 64+48*len(c.Fields))
	}
	e.b = append(e.b, codecVersion)
	e.str(c.Form)
	e.uvarint(uint64(c.HLC))
	applied := DotSet{c.Dot}
	e.dots(applied) // c's dot alone
	e.uvarint(1)    // the form's dot: Applied[0]
	// Dots outside Applied (all of the context's) are written in full.
	deleted := false
	for _, f := range c.Fields {
		deleted = deleted || (f.Name == DeletedField && f.Value.Bool)
	}
	if deleted { // Deletes: the context of the delete write
		e.refSet(applied, c.Context)
	} else {
		e.refSet(applied, nil)
	}
	// Each register has seen the context and c itself: Applied[0] and the
	// context, the same for every field, encoded once.
	seen := encoder{b: []byte{1, 1, 0, 1}} // one dot in applied: one run, from 0, of 1
	seen.dots(c.Context)
	e.uvarint(uint64(len(c.Fields)))
	for _, f := range c.Fields {
		e.str(f.Name)
		e.b = append(e.b, seen.b...)
		e.uvarint(1) // one entry, written by c
		e.uvarint(1)
		e.uvarint(uint64(c.HLC))
		e.value(f.Value)
	}
	return e.b
}

// UnmarshalRecord decodes a record stored by MarshalRecord.
func UnmarshalRecord(id RecordID, b []byte) (*Record, error) {
	d := decoder{b: b}
	if d.v = d.byte(); d.v != codecVersion && d.v != 1 {
		return nil, fmt.Errorf("record %s: %w: encoding version %d", id, ErrCorrupt, d.v)
	}
	r := EmptyRecord(id)
	r.Form = d.str()
	r.FormHLC = HLC(d.uvarint())
	r.Applied = d.dots()
	ref := func() Dot { return d.ref(r.Applied) }
	r.FormDot = ref()
	if del := d.refSetInto(nil, r.Applied); len(del) > 0 {
		r.Deletes = del
	}
	n := d.count(3)
	// One allocation each for the registers, their seen sets and their
	// entries (slices capped, so a later write to one register never
	// grows into its neighbour's memory): a record is decoded on every
	// merge and every export row.
	r.Fields = make(map[string]*Register, n)
	regs := make([]Register, n)
	seen := make(DotSet, 0, n)
	entries := make([]Entry, 0, n)
	for i := range n {
		name := d.str()
		f := &regs[i]
		start := len(seen)
		seen = d.refSetInto(seen, r.Applied)
		if len(seen) > start {
			f.Seen = seen[start:len(seen):len(seen)]
		}
		m := d.count(3)
		start = len(entries)
		for range m {
			entries = append(entries, Entry{Dot: ref(), HLC: HLC(d.uvarint()), Value: d.value()})
		}
		if m > 0 {
			f.Entries = entries[start:len(entries):len(entries)]
		}
		r.Fields[name] = f
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, fmt.Errorf("record %s: %w", id, ErrCorrupt)
	}
	return r, nil
}

// Origin says where a logged change came from, which decides where it is
// sent next: a replica pushes upstream everything that did not come from
// upstream.
type Origin uint8

const (
	Local      Origin = iota // written on this replica
	Downstream               // pushed to this replica by a device (or a hub below it)
	Upstream                 // pulled from this replica's upstream server
)

// LogEntry is one change in a replica's local log.
type LogEntry struct {
	Seq    uint64
	Origin Origin
	Change Change
	// Ref: the change's context is stored by reference to a set of its
	// record kept beside the log (a device's compacted log, see
	// CompactLog); Change.Context is empty until Resolve fills it.
	Ref *ContextRef
}

// ContextRef is a context stored against a base set of its record.
type ContextRef struct {
	Base uint64 // names the base: metaContextBase + record + "/" + Base
	raw  []byte // the context as a refSet against the base
}

// versionRef is the encoding of a log entry whose context is by reference.
const versionRef = 3

// MarshalLogEntryRef is MarshalLogEntry with c's context written against
// base, the set stored under base id for c's record.
func MarshalLogEntryRef(b []byte, origin Origin, c *Change, id uint64, base DotSet) []byte {
	return marshalLogEntry(b, versionRef, origin, c, func(e *encoder) {
		e.uvarint(id)
		e.refSet(base, c.Context)
	})
}

// MarshalLogEntry appends the storage encoding of a log entry (without its
// sequence number, which is the key) to b.
func MarshalLogEntry(b []byte, origin Origin, c *Change) []byte {
	return marshalLogEntry(b, codecVersion, origin, c, func(e *encoder) { e.dots(c.Context) })
}

// marshalLogEntry writes an entry of version v, its context by ctx.
func marshalLogEntry(b []byte, v byte, origin Origin, c *Change, ctx func(*encoder)) []byte {
	e := encoder{b: b}
	e.b = append(e.b, v, byte(origin))
	e.b = append(e.b, c.Record[:]...)
	e.str(c.Form)
	e.dot(c.Dot)
	e.uvarint(uint64(c.HLC))
	ctx(&e)
	e.uvarint(uint64(len(c.Fields)))
	for _, f := range c.Fields {
		e.str(f.Name)
		e.value(f.Value)
	}
	return e.b
}

// UnmarshalLogEntry decodes a log entry stored by MarshalLogEntry.
func UnmarshalLogEntry(seq uint64, b []byte) (LogEntry, error) {
	d := decoder{b: b}
	if d.v = d.byte(); d.v != codecVersion && d.v != 1 && d.v != versionRef {
		return LogEntry{}, fmt.Errorf("log entry %d: %w: encoding version %d", seq, ErrCorrupt, d.v)
	}
	le := LogEntry{Seq: seq, Origin: Origin(d.byte())}
	c := &le.Change
	copy(c.Record[:], d.bytes(16))
	c.Form = d.str()
	c.Dot = d.dot()
	c.HLC = HLC(d.uvarint())
	if d.v == versionRef {
		le.Ref = &ContextRef{Base: d.uvarint()}
		start := d.b
		d.v = codecVersion
		d.skipRefSet(nil)
		le.Ref.raw = start[:len(start)-len(d.b)]
	} else {
		c.Context = d.dots()
	}
	n := d.count(2)
	if n > 0 {
		c.Fields = make([]FieldWrite, n)
	}
	for i := range c.Fields {
		c.Fields[i] = FieldWrite{Name: d.str(), Value: d.value()}
	}
	if d.err != nil || len(d.b) != 0 {
		return LogEntry{}, fmt.Errorf("log entry %d: %w", seq, ErrCorrupt)
	}
	return le, nil
}

// DecodeLogEntry decodes a stored log entry, or only what the scan
// options' hints say is enough (see ScanOption).
func DecodeLogEntry(seq uint64, b []byte, o ScanOption) (LogEntry, error) {
	if !o.Skip.IsZero() || o.Records != nil {
		d := decoder{b: b}
		if v := d.byte(); v == codecVersion || v == 1 || v == versionRef {
			origin := Origin(d.byte())
			var id RecordID
			copy(id[:], d.bytes(16))
			if d.err == nil && o.Records != nil && !o.Records(id) {
				return LogEntry{Seq: seq, Origin: origin, Change: Change{Record: id}}, nil
			}
			d.bytes(d.uvarint())
			dot := d.dot()
			if d.err == nil && !o.Skip.IsZero() && dot.Replica == o.Skip {
				return LogEntry{Seq: seq, Origin: origin, Change: Change{Dot: dot}}, nil
			}
		}
	}
	return UnmarshalLogEntry(seq, b)
}

// OptionOf returns the hints scan options give (none if none).
func OptionOf(opts []ScanOption) ScanOption {
	if len(opts) == 0 {
		return ScanOption{}
	}
	return opts[0]
}

// RecordHeader is what a RecordVisitor reports of a stored record besides
// its fields.
type RecordHeader struct {
	Form    string
	FormHLC HLC
	// FirstApplied is the record's first applied dot (zero if none).
	FirstApplied Dot
}

// A RecordVisitor reads stored records without building them, keeping its
// buffers from one record to the next (a bulk reader's per-record
// allocations are most of what the garbage collector sees of it).
type RecordVisitor struct {
	applied DotSet
	entries []Entry
	texts   [256]string
}

// Visit reads the record stored as b: fn sees each field's name (valid
// only during the call) and its entries (a buffer reused for the next
// field). Bulk readers (exports, the console's filters) use it to skip the
// registers, dot sets and field map a Record holds; the checks are those
// of UnmarshalRecord, and an error from fn stops the visit.
func (v *RecordVisitor) Visit(b []byte, fn func(name []byte, entries []Entry) error) (RecordHeader, error) {
	d := decoder{b: b, texts: &v.texts}
	var h RecordHeader
	if d.v = d.byte(); d.v != codecVersion && d.v != 1 {
		return h, fmt.Errorf("%w: encoding version %d", ErrCorrupt, d.v)
	}
	h.Form = d.str()
	h.FormHLC = HLC(d.uvarint())
	applied := v.applied[:0]
	if d.v < 2 {
		for range d.count(17) {
			applied = append(applied, d.dot())
		}
	} else {
		applied = d.dotsInto(applied, d.count(1))
	}
	v.applied = applied
	if len(applied) > 0 {
		h.FirstApplied = applied[0]
	}
	d.ref(applied)        // the form's dot
	d.skipRefSet(applied) // deletes
	n := d.count(3)
	for range n {
		name := d.bytes(d.uvarint())
		d.skipRefSet(applied) // seen
		m := d.count(3)
		if cap(v.entries) < m {
			v.entries = make([]Entry, m)
		}
		entries := v.entries[:m]
		for k := range entries {
			e := &entries[k]
			e.Dot = d.ref(applied)
			e.HLC = HLC(d.uvarint())
			d.valueInto(&e.Value)
		}
		if d.err != nil {
			break
		}
		if err := fn(name, entries); err != nil {
			return h, err
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return h, ErrCorrupt
	}
	return h, nil
}
