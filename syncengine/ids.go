package syncengine

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// ReplicaID identifies one install of Tessera (a device store, a hub or a
// server). Every install gets a fresh one.
type ReplicaID [16]byte

// RecordID identifies a record: a UUIDv7, so ids sort by creation time.
type RecordID [16]byte

// NewReplicaID returns a fresh random replica id.
func NewReplicaID() ReplicaID { return ReplicaID(uuid.Must(uuid.NewV7())) }

// NewRecordID returns a fresh UUIDv7 record id.
func NewRecordID() RecordID { return RecordID(uuid.Must(uuid.NewV7())) }

func (r ReplicaID) String() string { return uuid.UUID(r).String() }
func (r RecordID) String() string  { return uuid.UUID(r).String() }

// IsZeroID reports whether id is the zero record id.
func (id RecordID) IsZeroID() bool { return id == RecordID{} }

// IsZero reports whether r is the zero id, which no replica may use.
func (r ReplicaID) IsZero() bool { return r == ReplicaID{} }

// ParseRecordID parses the textual form of a record id.
func ParseRecordID(s string) (RecordID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return RecordID{}, fmt.Errorf("%w: %q is not a UUID", ErrInvalid, s)
	}
	return RecordID(u), nil
}

// ParseReplicaID parses the textual form of a replica id.
func ParseReplicaID(s string) (ReplicaID, error) {
	u, err := uuid.Parse(s)
	if err != nil || u == uuid.Nil {
		return ReplicaID{}, fmt.Errorf("%w: %q is not a replica id", ErrInvalid, s)
	}
	return ReplicaID(u), nil
}

// Dot names one write: its replica and that replica's counter.
type Dot struct {
	Replica ReplicaID
	Counter uint64
}

func (d Dot) String() string { return fmt.Sprintf("%s:%d", d.Replica, d.Counter) }

// IsZero reports whether d is the zero dot (no write).
func (d Dot) IsZero() bool { return d == Dot{} }

// Compare orders dots by replica, then counter.
func (d Dot) Compare(o Dot) int {
	if c := bytes.Compare(d.Replica[:], o.Replica[:]); c != 0 {
		return c
	}
	switch {
	case d.Counter < o.Counter:
		return -1
	case d.Counter > o.Counter:
		return 1
	}
	return 0
}

// DotSet is a set of dots kept sorted. Records are edited a handful of times,
// so a sorted slice beats a map in memory and speed.
type DotSet []Dot

// Contains reports whether d is in s.
func (s DotSet) Contains(d Dot) bool {
	_, ok := slices.BinarySearchFunc(s, d, Dot.Compare)
	return ok
}

// Add returns s with d added. It never writes to s's memory (sets are
// shared between registers and changes), so adding allocates.
func (s DotSet) Add(d Dot) DotSet {
	i, ok := slices.BinarySearchFunc(s, d, Dot.Compare)
	if ok {
		return s
	}
	out := make(DotSet, len(s)+1)
	copy(out, s[:i])
	out[i] = d
	copy(out[i+1:], s[i:])
	return out
}

// Covers reports whether every dot of o is in s.
func (s DotSet) Covers(o DotSet) bool {
	if len(o) > len(s) {
		return false
	}
	i := 0
	for _, d := range o {
		for i < len(s) && s[i].Compare(d) < 0 {
			i++
		}
		if i == len(s) || s[i] != d {
			return false
		}
		i++
	}
	return true
}

// Union returns s with every dot of o added.
func (s DotSet) Union(o DotSet) DotSet {
	if len(o) == 0 {
		return s
	}
	if len(s) == 0 {
		return slices.Clone(o)
	}
	out := make(DotSet, 0, len(s)+len(o))
	i, j := 0, 0
	for i < len(s) && j < len(o) {
		switch c := s[i].Compare(o[j]); {
		case c < 0:
			out = append(out, s[i])
			i++
		case c > 0:
			out = append(out, o[j])
			j++
		default:
			out = append(out, s[i])
			i++
			j++
		}
	}
	out = append(out, s[i:]...)
	return append(out, o[j:]...)
}

// NewDotSet returns the set of the given dots, sorted and without repeats.
func NewDotSet(dots ...Dot) DotSet {
	s := slices.Clone(DotSet(dots))
	slices.SortFunc(s, Dot.Compare)
	return slices.Compact(s)
}
