package syncengine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Meta keys a replica keeps in its store.
const (
	metaReplica      = "replica"
	metaCounter      = "counter"
	metaHLC          = "hlc"
	metaPushAck      = "push.ack"     // our log position up to which nothing awaits a push
	metaPushServer   = "push.server"  // our log position the upstream last acknowledged
	metaRelayThrough = "push.relay"   // resend every entry up to here, whatever its origin
	metaPullCursor   = "pull.cursor"  // upstream log position applied through
	metaPullDot      = "pull.dot"     // the upstream's dot at that position
	metaPeerPrefix   = "peer.pushed/" // + replica id: its log position we hold
	metaSettingsPref = "setting/"     // free-form settings of the application
)

// Replica is one running replica over a Store: it makes local writes, serves
// pushes and pulls (as a server) and syncs with an upstream (as a client).
// It is safe for concurrent use.
type Replica struct {
	store Store
	id    ReplicaID
	clock func() time.Time

	mu      sync.Mutex // serializes local writes; guards counter and hlc
	counter uint64
	hlc     HLC

	// purgeDue: an erasure was applied; its store versions are dropped
	// after the commit (finishErasures).
	purgeDue atomic.Bool
	// forgot: some record was forgotten here (Forget), so merges check
	// for answers to take back (rehydrate).
	forgot atomic.Bool

	finalized func([]RecordID)
	resolved  func(Tx, []Resolution) error
	history   bool
	erasing   func(Tx, map[RecordID][]Value) ([]string, error)

	sigMu sync.Mutex
	sig   chan struct{} // closed when a push was merged (server side)

	group grouper // concurrent pushes merged in one transaction
}

// Options configure a Replica.
type Options struct {
	// Clock returns the wall-clock time; time.Now when nil. Tests and
	// simulations pass their own.
	Clock func() time.Time
	// Finalized, when set, is called after a transaction that merged
	// changes from elsewhere commits, with the records it changed whose
	// provisional status is then "finalized" (a server re-checks them).
	Finalized func(ids []RecordID)
	// Resolved, when set, is called inside a merge transaction with the
	// conflicts its changes settle (a server audits them there, so the
	// audit entry and the merge commit together); an error fails the merge.
	Resolved func(tx Tx, rs []Resolution) error
	// History keeps an index from each record to its log entries, so
	// History can list who changed a record, what and when without
	// scanning the log. It costs one small key per change; a server
	// turns it on for its console.
	History bool
	// Erasing, when set, is called inside the transaction that erases
	// records (see ErasedField) with every value each of them held, in its
	// registers and in its log entries, so the caller can drop what it
	// keeps beside them (the files the answers name, flags, copies of
	// submissions). It returns the meta keys it deleted: their older
	// versions are purged from the store with the record's.
	Erasing func(tx Tx, held map[RecordID][]Value) ([]string, error)
}

// Resolution is a conflict settled by a change: the field held several
// concurrent values, and the change had seen them all.
type Resolution struct {
	Record RecordID
	Field  string
	By     Dot
	Values int // how many concurrent values it replaced
}

// Init gives an empty store its replica id. It fails with ErrExists if the
// store already has one: a replica id must never be reused or replaced.
func Init(ctx context.Context, s Store, id ReplicaID) error {
	if id.IsZero() {
		return fmt.Errorf("init: %w: zero replica id", ErrInvalid)
	}
	return s.Update(ctx, func(tx Tx) error {
		if _, err := tx.Meta(metaReplica); err == nil {
			return fmt.Errorf("init: %w: store has a replica id", ErrExists)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		return tx.SetMeta(metaReplica, id[:])
	})
}

// Open loads the replica kept in s; s must have been initialized with Init.
func Open(ctx context.Context, s Store, opts Options) (*Replica, error) {
	r := &Replica{store: s, clock: opts.Clock, finalized: opts.Finalized, resolved: opts.Resolved, history: opts.History, erasing: opts.Erasing}
	if r.clock == nil {
		r.clock = time.Now
	}
	err := s.View(ctx, func(tx ReadTx) error {
		b, err := tx.Meta(metaReplica)
		if errors.Is(err, ErrNotFound) {
			return ErrNotInitialized
		}
		if err != nil {
			return err
		}
		if len(b) != 16 {
			return fmt.Errorf("replica id: %w", ErrCorrupt)
		}
		copy(r.id[:], b)
		if r.counter, err = metaUint(tx, metaCounter); err != nil {
			return err
		}
		h, err := metaUint(tx, metaHLC)
		r.hlc = HLC(h)
		if err != nil {
			return err
		}
		err = tx.ScanMeta(metaForgot, func(string, []byte) error {
			r.forgot.Store(true)
			return ErrStop
		})
		if errors.Is(err, ErrStop) {
			err = nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open replica: %w", err)
	}
	r.purgeDue.Store(true) // an erasure a crash interrupted
	if err := r.finishErasures(ctx); err != nil {
		return nil, fmt.Errorf("open replica: %w", err)
	}
	return r, nil
}

// ID returns the replica's id.
func (r *Replica) ID() ReplicaID { return r.id }

// Store returns the replica's store.
func (r *Replica) Store() Store { return r.store }

// Now returns the replica's wall clock.
func (r *Replica) Now() time.Time { return r.clock() }

func metaUint(tx ReadTx, key string) (uint64, error) {
	b, err := tx.Meta(key)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("meta %s: %w", key, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(b), nil
}

func setMetaUint(tx Tx, key string, v uint64) error {
	return tx.SetMeta(key, binary.BigEndian.AppendUint64(nil, v))
}

func metaDot(tx ReadTx, key string) (Dot, error) {
	b, err := tx.Meta(key)
	if errors.Is(err, ErrNotFound) {
		return Dot{}, nil
	}
	if err != nil {
		return Dot{}, err
	}
	if len(b) != 24 {
		return Dot{}, fmt.Errorf("meta %s: %w", key, ErrCorrupt)
	}
	var d Dot
	copy(d.Replica[:], b)
	d.Counter = binary.BigEndian.Uint64(b[16:])
	return d, nil
}

func setMetaDot(tx Tx, key string, d Dot) error {
	return tx.SetMeta(key, binary.BigEndian.AppendUint64(append([]byte(nil), d.Replica[:]...), d.Counter))
}

// Setting returns an application setting kept in the store ("" if unset).
func (r *Replica) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := r.store.View(ctx, func(tx ReadTx) error {
		b, err := tx.Meta(metaSettingsPref + name)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		v = string(b)
		return err
	})
	return v, err
}

// SetSetting stores an application setting.
func (r *Replica) SetSetting(ctx context.Context, name, value string) error {
	return r.store.Update(ctx, func(tx Tx) error { return tx.SetMeta(metaSettingsPref+name, []byte(value)) })
}

// maxSkew bounds how far a remote clock may pull our HLC ahead of our own
// wall clock, so one device with a wrong date cannot win every conflict's
// provisional display for years.
const maxSkew = time.Hour

// tick returns the HLC for a local write. r.mu must be held.
func (r *Replica) tick() HLC {
	now := MakeHLC(r.clock().UnixMilli(), 0)
	if now > r.hlc {
		r.hlc = now
	} else {
		r.hlc++
	}
	return r.hlc
}

// observe folds a received HLC into ours. r.mu must be held.
func (r *Replica) observe(h HLC) {
	limit := MakeHLC(r.clock().Add(maxSkew).UnixMilli(), 0)
	if h > r.hlc && h <= limit {
		r.hlc = h
	}
}

// NewRecord is a record to create: its form and first answers.
type NewRecord struct {
	Form   string
	Fields []FieldWrite
}

// Create creates one record and returns its id.
func (r *Replica) Create(ctx context.Context, form string, fields []FieldWrite) (RecordID, error) {
	ids, err := r.CreateMany(ctx, []NewRecord{{Form: form, Fields: fields}})
	if err != nil {
		return RecordID{}, err
	}
	return ids[0], nil
}

// CreateMany creates records in one transaction and returns their ids.
func (r *Replica) CreateMany(ctx context.Context, recs []NewRecord) ([]RecordID, error) {
	ids := make([]RecordID, len(recs))
	for i := range ids {
		ids[i] = NewRecordID()
	}
	err := r.localUpdate(ctx, func(tx Tx) error {
		for i, nr := range recs {
			fields := nr.Fields
			if len(fields) == 0 {
				fields = []FieldWrite{{Name: CreatedField, Value: BoolValue(true)}}
			}
			if err := r.write(tx, EmptyRecord(ids[i]), nr.Form, fields); err != nil {
				return fmt.Errorf("create record %d: %w", i+1, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// Set writes fields of an existing, not deleted record.
func (r *Replica) Set(ctx context.Context, id RecordID, fields []FieldWrite) error {
	return r.edit(ctx, id, func(rec *Record) ([]FieldWrite, error) {
		if rec.Deleted() {
			return nil, fmt.Errorf("set %s: %w", id, ErrDeleted)
		}
		return fields, nil
	})
}

// Delete marks a record deleted. Its answers are kept, so a concurrent edit
// shows as a conflict instead of vanishing.
func (r *Replica) Delete(ctx context.Context, id RecordID) error {
	return r.edit(ctx, id, func(rec *Record) ([]FieldWrite, error) {
		if rec.Deleted() && !rec.DeleteConflict() {
			return nil, fmt.Errorf("delete %s: %w", id, ErrDeleted)
		}
		return []FieldWrite{{Name: DeletedField, Value: BoolValue(true)}}, nil
	})
}

// Resolve settles conflicting fields with the given values. Each field must
// be in conflict; the write has seen every concurrent value, so it replaces
// them all wherever it syncs.
func (r *Replica) Resolve(ctx context.Context, id RecordID, fields []FieldWrite) error {
	return r.edit(ctx, id, func(rec *Record) ([]FieldWrite, error) {
		for _, f := range fields {
			reg := rec.Fields[f.Name]
			if reg == nil || len(reg.Entries) < 2 {
				return nil, fmt.Errorf("resolve %s: field %q: %w", id, f.Name, ErrNoConflict)
			}
		}
		return fields, nil
	})
}

// ResolveDelete settles a delete conflict: keep restores the record with
// every answer it has, otherwise the delete is confirmed.
func (r *Replica) ResolveDelete(ctx context.Context, id RecordID, keep bool) error {
	return r.edit(ctx, id, func(rec *Record) ([]FieldWrite, error) {
		if !rec.DeleteConflict() {
			return nil, fmt.Errorf("resolve %s: %w on delete", id, ErrNoConflict)
		}
		return []FieldWrite{{Name: DeletedField, Value: BoolValue(!keep)}}, nil
	})
}

// edit reads a record, lets decide choose the fields to write, and writes.
func (r *Replica) edit(ctx context.Context, id RecordID, decide func(*Record) ([]FieldWrite, error)) error {
	return r.Edit(ctx, id, func(_ Tx, rec *Record) ([]FieldWrite, error) { return decide(rec) })
}

// Edit is a local write decided on the record as stored: decide reads it
// inside the write's transaction and chooses the fields to write; it may
// write metadata of its own in tx (an audit entry), which commits with the
// change or not at all.
func (r *Replica) Edit(ctx context.Context, id RecordID, decide func(tx Tx, rec *Record) ([]FieldWrite, error)) error {
	return r.localUpdate(ctx, func(tx Tx) error {
		rec, err := tx.Record(id)
		if err != nil {
			return fmt.Errorf("record %s: %w", id, err)
		}
		fields, err := decide(tx, rec)
		if err != nil {
			return err
		}
		if len(fields) == 0 {
			return fmt.Errorf("record %s: %w: no fields to write", id, ErrInvalid)
		}
		return r.write(tx, rec, rec.Form, fields)
	})
}

// localUpdate runs a transaction of local writes, persisting the counter and
// clock with them so no dot is ever reused after a crash.
func (r *Replica) localUpdate(ctx context.Context, fn func(Tx) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.store.Update(ctx, func(tx Tx) error {
		// Several server processes may share one store (and so one replica
		// id): take the counter from the store, inside the transaction that
		// will persist it, so no dot is ever issued twice.
		stored, err := metaUint(tx, metaCounter)
		if err != nil {
			return err
		}
		r.counter = max(r.counter, stored)
		h, err := metaUint(tx, metaHLC)
		if err != nil {
			return err
		}
		r.hlc = max(r.hlc, HLC(h))
		if err := fn(tx); err != nil {
			return err
		}
		if err := setMetaUint(tx, metaCounter, r.counter); err != nil {
			return err
		}
		return setMetaUint(tx, metaHLC, uint64(r.hlc))
	})
	if err != nil {
		return err
	}
	return r.finishErasures(ctx)
}

// write makes one local change to rec. r.mu must be held.
func (r *Replica) write(tx Tx, rec *Record, form string, fields []FieldWrite) error {
	for _, f := range fields {
		if !Reserved(f.Name) {
			if err := ValidateFieldName(f.Name); err != nil {
				return err
			}
		}
	}
	r.counter++
	c := Change{
		Record:  rec.ID,
		Form:    form,
		Dot:     Dot{Replica: r.id, Counter: r.counter},
		HLC:     r.tick(),
		Context: slices.Clone(rec.Applied),
		Fields:  fields,
	}
	if err := c.Validate(); err != nil {
		return err
	}
	var held map[RecordID][]Value
	if c.Erases() {
		held = map[RecordID][]Value{rec.ID: heldValues(nil, rec)}
	}
	edit := len(rec.Applied) > 0
	rec.Apply(&c)
	if err := tx.PutRecord(rec); err != nil {
		return err
	}
	if err := r.appendLog(tx, Local, &c); err != nil {
		return err
	}
	if edit {
		if err := r.markEdited(tx, rec.ID); err != nil {
			return err
		}
	}
	if c.Erases() {
		return r.eraseLogged(tx, []RecordID{rec.ID}, held)
	}
	return nil
}

const metaHistory = "hist/"

func historyKey(id RecordID, seq uint64) string {
	b := make([]byte, 0, len(metaHistory)+36+1+16)
	b = append(b, metaHistory...)
	b = append(b, id.String()...)
	b = append(b, '/')
	h := strconv.AppendUint(nil, seq, 16)
	for range 16 - len(h) {
		b = append(b, '0')
	}
	return string(append(b, h...))
}

// appendLog logs c and, with History on, indexes it under its record.
func (r *Replica) appendLog(tx Tx, origin Origin, c *Change) error {
	seq, err := tx.Append(origin, c)
	if err != nil || !r.history {
		return err
	}
	return tx.SetMeta(historyKey(c.Record, seq), []byte{1})
}

// History returns the logged changes to record id, oldest first: each
// with its device (the dot's replica), time and fields. It needs the
// History option; changes logged before it was on are not listed.
func (r *Replica) History(ctx context.Context, id RecordID) ([]LogEntry, error) {
	var out []LogEntry
	err := r.store.View(ctx, func(tx ReadTx) error {
		return HistoryIn(tx, id, func(e LogEntry) error {
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", id, err)
	}
	return out, nil
}

// HistoryIn is History inside a transaction: fn sees each logged change
// to record id, oldest first, until it returns an error.
func HistoryIn(tx ReadTx, id RecordID, fn func(LogEntry) error) error {
	prefix := metaHistory + id.String() + "/"
	return tx.ScanMeta(prefix, func(key string, _ []byte) error {
		seq, err := strconv.ParseUint(strings.TrimPrefix(key, prefix), 16, 64)
		if err != nil {
			return fmt.Errorf("history key %q: %w", key, ErrCorrupt)
		}
		e, err := tx.LogEntry(seq)
		if err == nil {
			err = Resolve(tx, &e)
		}
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// Record returns the current state of one record.
func (r *Replica) Record(ctx context.Context, id RecordID) (*Record, error) {
	var rec *Record
	err := r.store.View(ctx, func(tx ReadTx) error {
		var err error
		rec, err = tx.Record(id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	return rec, nil
}

// Records calls fn for every record in id order.
func (r *Replica) Records(ctx context.Context, fn func(*Record) error) error {
	return r.store.View(ctx, func(tx ReadTx) error {
		err := tx.ScanRecords(RecordID{}, fn)
		if errors.Is(err, ErrStop) {
			return nil
		}
		return err
	})
}

// notify reports the finalized records a committed transaction changed.
func (r *Replica) notify(m merged) {
	if r.finalized != nil {
		var ids []RecordID
		for _, rec := range m.recs {
			if rec.Status() == "finalized" {
				ids = append(ids, rec.ID)
			}
		}
		ids = append(ids, m.finalized...)
		if len(ids) > 0 {
			r.finalized(ids)
		}
	}
}

// settle hands the conflicts a merge settled to the Resolved hook, inside
// the merge's transaction.
func (r *Replica) settle(tx Tx, rs []Resolution) error {
	if r.resolved == nil || len(rs) == 0 {
		return nil
	}
	return r.resolved(tx, rs)
}

// resolutions lists the conflicts c settles in rec (before it is applied).
func resolutions(rec *Record, c *Change) []Resolution {
	var out []Resolution
	for _, f := range c.Fields {
		reg := rec.Fields[f.Name]
		if reg == nil || len(reg.Entries) < 2 {
			continue
		}
		all := true
		for _, e := range reg.Entries {
			all = all && c.Context.Contains(e.Dot)
		}
		if all {
			out = append(out, Resolution{Record: rec.ID, Field: f.Name, By: c.Dot, Values: len(reg.Entries)})
		}
	}
	return out
}

// merged is what a batch changed: the records it built, and the ids of
// records it created straight as bytes (MarshalNewRecord) whose status is
// finalized.
type merged struct {
	recs      []*Record
	finalized []RecordID
}

// staged is a record a batch touches: decoded, or as new bytes only.
type staged struct {
	rec       *Record
	raw       []byte
	dirty     bool
	finalized bool // raw's status is finalized (known only when a hook wants it)
	forgot    *forgotten
	edited    bool // in applyAll's edited list
}

// applyAll merges changes that arrived from elsewhere into the store within
// tx, logging the ones that were new. It returns how many were new what
// they changed and the conflicts they settled.
func (r *Replica) applyAll(tx Tx, origin Origin, changes []Change) (int, merged, []Resolution, error) {
	// Several changes of one batch may touch the same record: keep the
	// state instead of reading it back from the transaction.
	cache := make(map[RecordID]*staged, len(changes))
	dirty := make([]RecordID, 0, len(changes))
	var settled []Resolution
	applied := 0
	var erasing []RecordID
	var held map[RecordID][]Value
	var edited []RecordID // records a change merged into after another
	logged := func(st *staged, c *Change) error {
		applied++
		if !st.dirty {
			st.dirty = true
			dirty = append(dirty, c.Record)
		}
		if c.Erases() {
			erasing = append(erasing, c.Record)
		} else if st.rec != nil && st.rec.Erased() {
			// An edit the erasure had not seen: its dot is logged (peers
			// and resends need it), its answers are not.
			s := stripped(c)
			return r.appendLog(tx, origin, &s)
		}
		return r.appendLog(tx, origin, c)
	}
	for i := range changes {
		c := &changes[i]
		st := cache[c.Record]
		if st == nil {
			rec, err := tx.Record(c.Record)
			if errors.Is(err, ErrNotFound) {
				// A change creating its record (the usual case for a
				// server or a fresh device): encoded straight from the
				// change (oracle: TestMarshalNewRecordOracle).
				st = &staged{raw: MarshalNewRecord(nil, c), finalized: r.finalized != nil && writesFinalized(c)}
				cache[c.Record] = st
				if err := logged(st, c); err != nil {
					return 0, merged{}, nil, err
				}
				continue
			}
			if err != nil {
				return 0, merged{}, nil, err
			}
			st = &staged{rec: rec}
			cache[c.Record] = st
		} else if st.rec == nil {
			rec, err := UnmarshalRecord(c.Record, st.raw)
			if err != nil {
				return 0, merged{}, nil, err
			}
			st.rec, st.raw = rec, nil
		}
		rec := st.rec
		if c.Erases() && !rec.Erased() && !rec.Applied.Contains(c.Dot) {
			if held == nil {
				held = map[RecordID][]Value{}
			}
			held[c.Record] = heldValues(held[c.Record], rec)
		}
		if r.resolved != nil && len(rec.Fields) > 0 && !rec.Applied.Contains(c.Dot) {
			settled = append(settled, resolutions(rec, c)...)
		}
		if r.forgot.Load() {
			restored, err := r.rehydrate(tx, st, c)
			if err != nil {
				return 0, merged{}, nil, err
			}
			if restored && !st.dirty {
				st.dirty = true
				dirty = append(dirty, c.Record)
			}
		}
		if !rec.Apply(c) {
			continue
		}
		if err := logged(st, c); err != nil {
			return 0, merged{}, nil, err
		}
		if !st.edited {
			st.edited = true
			edited = append(edited, c.Record)
		}
		if c.Assigns() {
			if err := tx.SetMeta(metaAssigned+c.Record.String(), nil); err != nil {
				return 0, merged{}, nil, err
			}
		}
	}
	if err := r.markEdited(tx, edited...); err != nil {
		return 0, merged{}, nil, err
	}
	m := merged{recs: make([]*Record, 0, len(dirty))}
	for _, st := range cache {
		if err := st.forgot.save(tx); err != nil {
			return 0, merged{}, nil, err
		}
	}
	for _, id := range dirty {
		st := cache[id]
		if st.rec == nil {
			if err := tx.PutRecordBytes(id, st.raw); err != nil {
				return 0, merged{}, nil, err
			}
			if st.finalized {
				m.finalized = append(m.finalized, id)
			}
			continue
		}
		if err := tx.PutRecord(st.rec); err != nil {
			return 0, merged{}, nil, err
		}
		m.recs = append(m.recs, st.rec)
	}
	if err := r.eraseLogged(tx, erasing, held); err != nil {
		return 0, merged{}, nil, err
	}
	return applied, m, settled, nil
}

// writesFinalized reports whether c sets the status to finalized: the
// status of a record c creates.
func writesFinalized(c *Change) bool {
	for _, f := range c.Fields {
		if f.Name == StatusField {
			return f.Value.Kind == Text && f.Value.Str == "finalized"
		}
	}
	return false
}

func (r *Replica) observeAll(changes []Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range changes {
		r.observe(changes[i].HLC)
	}
}

// Restamp writes again, as this replica, each current value written by one
// of dots: a policy above (the server's) decided those writes carry a
// clock reading it cannot trust (a device dated 1970, or years ahead, once
// faked creation dates and won every conflict's provisional value). Each
// rewrite supersedes exactly one write (its context is that dot alone), so
// every value stays and a conflict stays a conflict; only the clock
// reading becomes this replica's. Dots no longer current are skipped. It
// returns how many writes were re-stamped.
func (r *Replica) Restamp(ctx context.Context, id RecordID, dots DotSet) (int, error) {
	n := 0
	err := r.localUpdate(ctx, func(tx Tx) error {
		n = 0
		rec, err := tx.Record(id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		byDot := map[Dot][]FieldWrite{}
		for name, reg := range rec.Fields {
			for _, e := range reg.Entries {
				if dots.Contains(e.Dot) && e.Dot.Replica != r.id {
					byDot[e.Dot] = append(byDot[e.Dot], FieldWrite{Name: name, Value: e.Value})
				}
			}
		}
		if len(byDot) == 0 {
			return nil
		}
		order := make([]Dot, 0, len(byDot))
		for d := range byDot {
			order = append(order, d)
		}
		slices.SortFunc(order, Dot.Compare)
		for _, d := range order {
			fields := byDot[d]
			slices.SortFunc(fields, func(a, b FieldWrite) int { return strings.Compare(a.Name, b.Name) })
			r.counter++
			c := Change{Record: id, Form: rec.Form, Dot: Dot{Replica: r.id, Counter: r.counter}, HLC: r.tick(),
				Context: DotSet{d}, Fields: fields}
			if err := c.Validate(); err != nil {
				return err
			}
			rec.Apply(&c)
			if err := r.appendLog(tx, Local, &c); err != nil {
				return err
			}
			n++
		}
		return tx.PutRecord(rec)
	})
	return n, err
}
