package syncengine

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// The storage encoding of records and log entries, shared by every Store.
// It is a compact, versioned binary form: stores hold millions of these and
// read one on every merge, so it avoids reflection and maps of maps.

const codecVersion = 1

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) dot(d Dot)        { e.b = append(e.b, d.Replica[:]...); e.uvarint(d.Counter) }
func (e *encoder) dots(s DotSet) {
	e.uvarint(uint64(len(s)))
	for _, d := range s {
		e.dot(d)
	}
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
	e.uvarint(1) // Applied: c's dot alone
	e.dot(c.Dot)
	e.uvarint(1) // the form's dot: Applied[0]
	// Dots outside Applied (all of the context's) are written in full.
	deleted := false
	for _, f := range c.Fields {
		deleted = deleted || (f.Name == DeletedField && f.Value.Bool)
	}
	if deleted { // Deletes: the context of the delete write
		e.uvarint(uint64(len(c.Context)))
		for _, d := range c.Context {
			e.uvarint(0)
			e.dot(d)
		}
	} else {
		e.uvarint(0)
	}
	// Each register has seen the context and c itself, in dot order: the
	// same refs for every field, encoded once.
	var seen encoder
	seen.uvarint(uint64(len(c.Context) + 1))
	own := false
	for _, d := range c.Context {
		if !own && d.Compare(c.Dot) > 0 {
			seen.uvarint(1)
			own = true
		}
		seen.uvarint(0)
		seen.dot(d)
	}
	if !own {
		seen.uvarint(1)
	}
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
	if v := d.byte(); v != codecVersion {
		return nil, fmt.Errorf("record %s: %w: encoding version %d", id, ErrCorrupt, v)
	}
	r := EmptyRecord(id)
	r.Form = d.str()
	r.FormHLC = HLC(d.uvarint())
	r.Applied = d.dots()
	ref := func() Dot { return d.ref(r.Applied) }
	refs := func() DotSet {
		n := d.count(1)
		if n == 0 {
			return nil
		}
		s := make(DotSet, n)
		for i := range s {
			s[i] = ref()
		}
		return s
	}
	r.FormDot = ref()
	r.Deletes = refs()
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
		k := d.count(1)
		start := len(seen)
		for range k {
			seen = append(seen, ref())
		}
		if k > 0 {
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
}

// MarshalLogEntry appends the storage encoding of a log entry (without its
// sequence number, which is the key) to b.
func MarshalLogEntry(b []byte, origin Origin, c *Change) []byte {
	e := encoder{b: b}
	e.b = append(e.b, codecVersion, byte(origin))
	e.b = append(e.b, c.Record[:]...)
	e.str(c.Form)
	e.dot(c.Dot)
	e.uvarint(uint64(c.HLC))
	e.dots(c.Context)
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
	if v := d.byte(); v != codecVersion {
		return LogEntry{}, fmt.Errorf("log entry %d: %w: encoding version %d", seq, ErrCorrupt, v)
	}
	le := LogEntry{Seq: seq, Origin: Origin(d.byte())}
	c := &le.Change
	copy(c.Record[:], d.bytes(16))
	c.Form = d.str()
	c.Dot = d.dot()
	c.HLC = HLC(d.uvarint())
	c.Context = d.dots()
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

// DecodeLogEntry decodes a stored log entry, or only its origin and dot
// when the entry was written by skip (see ScanOption).
func DecodeLogEntry(seq uint64, b []byte, skip ReplicaID) (LogEntry, error) {
	if !skip.IsZero() {
		d := decoder{b: b}
		if d.byte() == codecVersion {
			origin := Origin(d.byte())
			d.bytes(16)
			d.bytes(d.uvarint())
			dot := d.dot()
			if d.err == nil && dot.Replica == skip {
				return LogEntry{Seq: seq, Origin: origin, Change: Change{Dot: dot}}, nil
			}
		}
	}
	return UnmarshalLogEntry(seq, b)
}

// SkipOf returns the replica to skip named by scan options (zero if none).
func SkipOf(opts []ScanOption) ReplicaID {
	if len(opts) == 0 {
		return ReplicaID{}
	}
	return opts[0].Skip
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
	if ver := d.byte(); ver != codecVersion {
		return h, fmt.Errorf("%w: encoding version %d", ErrCorrupt, ver)
	}
	h.Form = d.str()
	h.FormHLC = HLC(d.uvarint())
	applied := v.applied[:0]
	for range d.count(17) {
		applied = append(applied, d.dot())
	}
	v.applied = applied
	if len(applied) > 0 {
		h.FirstApplied = applied[0]
	}
	d.ref(applied) // the form's dot
	for range d.count(1) {
		d.ref(applied) // deletes
	}
	n := d.count(3)
	for range n {
		name := d.bytes(d.uvarint())
		for range d.count(1) {
			d.ref(applied) // seen
		}
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
