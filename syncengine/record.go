package syncengine

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// DeletedField is the reserved register that marks a record deleted (true)
// or restored (false). Deleting is an ordinary write, so a delete concurrent
// with an edit is a conflict like any other and the edit is not lost.
const DeletedField = "$deleted"

// CreatedField is the reserved register a record created without answers
// gets, so that it exists (and syncs) from the start of an interview.
const CreatedField = "$created"

// StatusField is the reserved register holding a record's workflow status
// on the device: "draft" or "finalized".
const StatusField = "$status"

// ErasedField is the reserved register of an erasure on request: a change
// writing it (true, and nothing else) removes every answer of the record,
// and the record keeps no answer of any change applied to it afterwards or
// concurrently (an edit made offline before the erasure arrived), so no
// order of arrival brings the answers back. Ids, dots and the form name
// stay: what sync needs to stay correct. An erased record reads deleted.
const ErasedField = "$erased"

// AssignedField is the reserved register of a record's assignment for
// follow-up visits, written by a server (a project lead's decision) alone
// in its change. Its text names who the record is assigned to ("" for
// nobody; the server's use cases give it meaning): assignment syncs like
// any change, so hubs decide what their devices receive by the same rule.
const AssignedField = "$assigned"

// MaxAssigned bounds an assignment's text.
const MaxAssigned = 256

// Reserved reports whether name is a reserved field (hidden from views).
func Reserved(name string) bool { return strings.HasPrefix(name, "$") }

// HLC is a hybrid logical clock reading: milliseconds since the Unix epoch in
// the high 48 bits and a logical counter in the low 16.
type HLC uint64

// MakeHLC builds an HLC from milliseconds and a logical counter.
func MakeHLC(ms int64, logical uint16) HLC { return HLC(uint64(ms)<<16 | uint64(logical)) }

// Millis returns the wall-clock part of h.
func (h HLC) Millis() int64 { return int64(h >> 16) }

// Change is one write by one replica to one record: the unit of sync.
type Change struct {
	Record  RecordID
	Form    string
	Dot     Dot
	HLC     HLC
	Context DotSet // every write to the record the writer had seen
	Fields  []FieldWrite
}

// FieldWrite is one field written by a change.
type FieldWrite struct {
	Name  string
	Value Value
}

// Limits on what a change may carry; a change past them is invalid.
const (
	MaxFieldName    = 128
	MaxFormName     = 256
	MaxFieldsChange = 4096
	MaxTextValue    = 1 << 20
	MaxContext      = 1 << 16
)

// Validate checks the rules every change must satisfy before it is merged.
func (c *Change) Validate() error {
	if uuidVersion(c.Record) != 7 || uuidVariant(c.Record) != 2 {
		return fmt.Errorf("%w: record id %s is not a UUIDv7", ErrInvalid, c.Record)
	}
	if c.Dot.Replica.IsZero() || c.Dot.Counter == 0 {
		return fmt.Errorf("%w: record %s: dot %s has no replica or counter", ErrInvalid, c.Record, c.Dot)
	}
	if c.Form == "" || len(c.Form) > MaxFormName || !utf8.ValidString(c.Form) {
		return fmt.Errorf("%w: record %s: form name missing, too long or not UTF-8", ErrInvalid, c.Record)
	}
	if len(c.Fields) == 0 || len(c.Fields) > MaxFieldsChange {
		return fmt.Errorf("%w: record %s: a change writes 1 to %d fields, not %d", ErrInvalid, c.Record, MaxFieldsChange, len(c.Fields))
	}
	if len(c.Context) > MaxContext {
		return fmt.Errorf("%w: record %s: context of %d dots", ErrInvalid, c.Record, len(c.Context))
	}
	for i, d := range c.Context {
		if d.Replica.IsZero() || d.Counter == 0 {
			return fmt.Errorf("%w: record %s: context dot %d is empty", ErrInvalid, c.Record, i)
		}
		if i > 0 && c.Context[i-1].Compare(d) >= 0 {
			return fmt.Errorf("%w: record %s: context dots not sorted", ErrInvalid, c.Record)
		}
		if d == c.Dot {
			return fmt.Errorf("%w: record %s: a change cannot have seen itself", ErrInvalid, c.Record)
		}
	}
	// Duplicates: a change of a few dozen fields compares names pairwise
	// (no map to allocate for every change of a batch); larger ones use a
	// set.
	var seen map[string]bool
	if len(c.Fields) > 32 {
		seen = make(map[string]bool, len(c.Fields))
	}
	for i, f := range c.Fields {
		if Reserved(f.Name) {
			switch {
			case f.Name == StatusField:
				if f.Value.Kind != Text || (f.Value.Str != "draft" && f.Value.Str != "finalized") {
					return fmt.Errorf("%w: record %s: %s must be \"draft\" or \"finalized\"", ErrInvalid, c.Record, f.Name)
				}
			case f.Name == ErasedField:
				if f.Value.Kind != Bool || !f.Value.Bool || len(c.Fields) != 1 {
					return fmt.Errorf("%w: record %s: %s is written true, alone", ErrInvalid, c.Record, f.Name)
				}
			case f.Name == AssignedField:
				if f.Value.Kind != Text || len(f.Value.Str) > MaxAssigned || !utf8.ValidString(f.Value.Str) || len(c.Fields) != 1 {
					return fmt.Errorf("%w: record %s: %s is written as text of at most %d bytes, alone", ErrInvalid, c.Record, f.Name, MaxAssigned)
				}
			case f.Name != DeletedField && f.Name != CreatedField:
				return fmt.Errorf("%w: record %s: unknown reserved field %q", ErrInvalid, c.Record, f.Name)
			case f.Value.Kind != Bool:
				return fmt.Errorf("%w: record %s: %s must be a boolean", ErrInvalid, c.Record, f.Name)
			}
		} else if err := ValidateFieldName(f.Name); err != nil {
			return fmt.Errorf("record %s: %w", c.Record, err)
		}
		var dup bool
		if seen != nil {
			dup, seen[f.Name] = seen[f.Name], true
		} else {
			dup = slices.ContainsFunc(c.Fields[:i], func(g FieldWrite) bool { return g.Name == f.Name })
		}
		if dup {
			return fmt.Errorf("%w: record %s: field %q written twice", ErrInvalid, c.Record, f.Name)
		}
		if f.Value.Kind > Bool {
			return fmt.Errorf("%w: record %s: field %q has an unknown kind", ErrInvalid, c.Record, f.Name)
		}
		if f.Value.Kind == Text && (len(f.Value.Str) > MaxTextValue || !utf8.ValidString(f.Value.Str)) {
			return fmt.Errorf("%w: record %s: field %q text too long or not UTF-8", ErrInvalid, c.Record, f.Name)
		}
	}
	return nil
}

// ValidateFieldName checks a user field name: 1 to 128 bytes of UTF-8 with
// no spaces, control characters or "=", not starting with "$" (reserved).
func ValidateFieldName(name string) error {
	if name == "" || len(name) > MaxFieldName || !utf8.ValidString(name) {
		return fmt.Errorf("%w: field name %q must be 1 to %d bytes of UTF-8", ErrInvalid, name, MaxFieldName)
	}
	if strings.HasPrefix(name, "$") {
		return fmt.Errorf("%w: field name %q: names starting with $ are reserved", ErrInvalid, name)
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == '=' || r == 0x7f }) {
		return fmt.Errorf("%w: field name %q has a space, control character or '='", ErrInvalid, name)
	}
	return nil
}

func uuidVersion(id RecordID) byte { return id[6] >> 4 }
func uuidVariant(id RecordID) byte { return id[8] >> 6 }

// Entry is one live value of a register with the write that produced it.
type Entry struct {
	Dot   Dot
	HLC   HLC
	Value Value
}

// after orders entries for display: the provisional value of a conflict is
// the one with the highest HLC, then the highest replica id, then counter.
func (e Entry) after(o Entry) bool {
	if e.HLC != o.HLC {
		return e.HLC > o.HLC
	}
	if c := bytes.Compare(e.Dot.Replica[:], o.Dot.Replica[:]); c != 0 {
		return c > 0
	}
	return e.Dot.Counter > o.Dot.Counter
}

// Register is the state of one field: its live values (more than one means
// a conflict) and every dot known to be superseded or present for it.
type Register struct {
	Entries []Entry // sorted by dot
	Seen    DotSet
}

// apply merges one write into the register. It is the join of the register
// with the delta ({e}, ctx ∪ {e.Dot}): values the writer had seen go, values
// it had not seen stay, and e itself stays unless an applied write saw it.
func (r *Register) apply(e Entry, ctx DotSet) {
	if len(r.Entries) == 0 && len(r.Seen) == 0 {
		// A first write (the common case by far): nothing to supersede.
		r.Entries = append(r.Entries, e)
		r.Seen = ctx.Add(e.Dot)
		return
	}
	keep := r.Entries[:0]
	for _, x := range r.Entries {
		if !ctx.Contains(x.Dot) {
			keep = append(keep, x)
		}
	}
	r.Entries = keep
	if !r.Seen.Contains(e.Dot) {
		i, _ := slices.BinarySearchFunc(r.Entries, e.Dot, func(x Entry, d Dot) int { return x.Dot.Compare(d) })
		r.Entries = slices.Insert(r.Entries, i, e)
	}
	r.Seen = r.Seen.Union(ctx).Add(e.Dot)
}

// Current returns the provisional value (zero Entry if none) and whether the
// register is in conflict.
func (r *Register) Current() (Entry, bool) {
	if len(r.Entries) == 0 {
		return Entry{}, false
	}
	best := r.Entries[0]
	for _, e := range r.Entries[1:] {
		if e.after(best) {
			best = e
		}
	}
	return best, len(r.Entries) > 1
}

// Sorted returns the live entries, provisional value first.
func (r *Register) Sorted() []Entry {
	out := slices.Clone(r.Entries)
	slices.SortFunc(out, func(a, b Entry) int {
		if a.after(b) {
			return -1
		}
		if b.after(a) {
			return 1
		}
		return 0
	})
	return out
}

// Record is the merged state of one record on one replica.
type Record struct {
	ID      RecordID
	Form    string
	FormHLC HLC // the form name is last-writer-wins on (HLC, dot)
	FormDot Dot
	Applied DotSet               // every change applied to this record
	Deletes DotSet               // union of the contexts of delete writes
	Fields  map[string]*Register // includes DeletedField when ever written
}

// EmptyRecord returns the empty state of record id.
func EmptyRecord(id RecordID) *Record {
	return &Record{ID: id, Fields: map[string]*Register{}}
}

// Apply merges c into r and reports whether anything changed (false for a
// change already applied). Apply is deterministic and pure; applying the same
// set of changes in any order, any number of times, gives the same state.
func (r *Record) Apply(c *Change) bool {
	if r.Applied.Contains(c.Dot) {
		return false
	}
	r.Applied = r.Applied.Add(c.Dot)
	if len(r.Fields) == 0 {
		r.Fields = make(map[string]*Register, len(c.Fields))
	}
	if r.Form == "" || c.HLC > r.FormHLC || (c.HLC == r.FormHLC && c.Dot.Compare(r.FormDot) > 0) {
		r.Form, r.FormHLC, r.FormDot = c.Form, c.HLC, c.Dot
	}
	erasing := c.Erases()
	if !erasing && r.Erased() {
		return true // the dot is known; the answers are not kept
	}
	if erasing {
		for name := range r.Fields {
			if name != ErasedField {
				delete(r.Fields, name)
			}
		}
		r.Deletes = nil
	}
	// Registers created by this change share two allocations; slices are
	// capped so that a later write to one register never grows into its
	// neighbour's memory.
	var fresh []Register
	var freshEntries []Entry
	var seen DotSet
	for _, f := range c.Fields {
		reg := r.Fields[f.Name]
		e := Entry{Dot: c.Dot, HLC: c.HLC, Value: f.Value}
		if reg == nil {
			if fresh == nil {
				fresh = make([]Register, len(c.Fields))
				freshEntries = make([]Entry, len(c.Fields))
				seen = c.Context.Add(c.Dot)
			}
			reg = &fresh[0]
			fresh = fresh[1:]
			freshEntries[0] = e
			reg.Entries, reg.Seen = freshEntries[:1:1], seen
			freshEntries = freshEntries[1:]
			r.Fields[f.Name] = reg
		} else {
			reg.apply(e, c.Context)
		}
		if f.Name == DeletedField && f.Value.Bool {
			r.Deletes = r.Deletes.Union(c.Context)
		}
	}
	return true
}

// Erases reports whether c is an erasure (see ErasedField).
func (c *Change) Erases() bool {
	return len(c.Fields) == 1 && c.Fields[0].Name == ErasedField
}

// Assignment is who follows a record up, as its AssignedField holds it: a
// team, or one device, which with FollowUp also receives the record's
// sensitive answers. The zero value assigns nobody.
type Assignment struct {
	Team     string `json:"team,omitempty"`
	Device   string `json:"device,omitempty"`
	FollowUp bool   `json:"follow_up,omitempty"`
}

// Text is the register's value for a.
func (a Assignment) Text() string {
	switch {
	case a.Device != "" && a.FollowUp:
		return "followup:" + a.Device
	case a.Device != "":
		return "device:" + a.Device
	case a.Team != "":
		return "team:" + a.Team
	}
	return ""
}

// ParseAssignment reads an assignment register's text; text it does not
// know (a newer server's) assigns nobody.
func ParseAssignment(s string) Assignment {
	kind, who, _ := strings.Cut(s, ":")
	switch kind {
	case "followup":
		return Assignment{Device: who, FollowUp: true}
	case "device":
		return Assignment{Device: who}
	case "team":
		return Assignment{Team: who}
	}
	return Assignment{}
}

// Names reports whether a assigns the record to device or its team.
func (a Assignment) Names(device, team string) bool {
	return (a.Device != "" && a.Device == device) || (a.Team != "" && a.Team == team)
}

// String describes a for people (audit trail, console, CLI).
func (a Assignment) String() string {
	switch {
	case a.Device != "" && a.FollowUp:
		return "device " + a.Device + " for a follow-up (sensitive answers included)"
	case a.Device != "":
		return "device " + a.Device
	case a.Team != "":
		return "team " + a.Team
	}
	return "nobody"
}

// Assigns reports whether c writes a record's assignment (see
// AssignedField).
func (c *Change) Assigns() bool {
	return len(c.Fields) == 1 && c.Fields[0].Name == AssignedField
}

// WroteBy reports whether the record applied a write of replica rep.
func (r *Record) WroteBy(rep ReplicaID) bool {
	for _, d := range r.Applied {
		if d.Replica == rep {
			return true
		}
	}
	return false
}

// Assigned returns the record's provisional assignment ("" if none).
func (r *Record) Assigned() string {
	if reg := r.Fields[AssignedField]; reg != nil {
		if e, _ := reg.Current(); e.Value.Kind == Text {
			return e.Value.Str
		}
	}
	return ""
}

// Erased reports whether the record was erased on request.
func (r *Record) Erased() bool {
	reg := r.Fields[ErasedField]
	return reg != nil && len(reg.Entries) > 0
}

// Deleted reports whether the record's provisional state is deleted (an
// erased record is).
func (r *Record) Deleted() bool {
	if r.Erased() {
		return true
	}
	reg := r.Fields[DeletedField]
	if reg == nil {
		return false
	}
	e, _ := reg.Current()
	return e.Value.Kind == Bool && e.Value.Bool
}

// DeleteConflict reports whether a delete is concurrent with a restore or
// with an edit the deleter had not seen.
func (r *Record) DeleteConflict() bool {
	reg := r.Fields[DeletedField]
	if reg == nil {
		return false
	}
	if _, conflict := reg.Current(); conflict {
		return true
	}
	if !r.Deleted() {
		return false
	}
	for name, f := range r.Fields {
		if Reserved(name) {
			continue
		}
		for _, e := range f.Entries {
			if !r.Deletes.Contains(e.Dot) {
				return true
			}
		}
	}
	return false
}

// Status returns the record's provisional status ("draft" when unset).
func (r *Record) Status() string {
	if reg := r.Fields[StatusField]; reg != nil {
		if e, _ := reg.Current(); e.Value.Kind == Text {
			return e.Value.Str
		}
	}
	return "draft"
}

// Values returns the provisional value of every user field.
func (r *Record) Values() map[string]Value {
	out := make(map[string]Value, len(r.Fields))
	for name, f := range r.Fields {
		if Reserved(name) || len(f.Entries) == 0 {
			continue
		}
		e, _ := f.Current()
		out[name] = e.Value
	}
	return out
}

// Conflicts returns the names of user fields in conflict, sorted.
func (r *Record) Conflicts() []string {
	var out []string
	for name, f := range r.Fields {
		if !Reserved(name) && len(f.Entries) > 1 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// FieldNames returns the user field names with a value, sorted.
func (r *Record) FieldNames() []string {
	out := make([]string, 0, len(r.Fields))
	for name, f := range r.Fields {
		if !Reserved(name) && len(f.Entries) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Equal reports whether two record states are identical, ignoring the order
// of map iteration. Replicas that applied the same changes are Equal.
func (r *Record) Equal(o *Record) bool {
	if r.ID != o.ID || r.Form != o.Form || r.FormHLC != o.FormHLC || r.FormDot != o.FormDot ||
		!slices.Equal(r.Applied, o.Applied) || !slices.Equal(r.Deletes, o.Deletes) || len(r.Fields) != len(o.Fields) {
		return false
	}
	for name, f := range r.Fields {
		g := o.Fields[name]
		if g == nil || !slices.Equal(f.Seen, g.Seen) || !slices.EqualFunc(f.Entries, g.Entries, func(a, b Entry) bool {
			return a.Dot == b.Dot && a.HLC == b.HLC && a.Value.Equal(b.Value)
		}) {
			return false
		}
	}
	return true
}

func compareRecordIDs(a, b RecordID) int { return cmp.Compare(string(a[:]), string(b[:])) }

// ShortID is how people see an id (a record's, a device's): "…" and the
// last 8 hex digits. Ids are UUIDv7s, whose first digits are a timestamp
// shared by everything made in the same minute; the tail is random.
func ShortID(id string) string {
	if len(id) < 8 {
		return id
	}
	return "…" + id[len(id)-8:]
}
