package syncengine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Log compaction on a device. A device's log exists to push its writes
// and, after the server lost data (restored from a backup, replaced), to
// resend everything it holds (startOver). Once the server acknowledged
// them, the entries superseded in every register they wrote add nothing to
// either: CompactLog drops them, and the device's storage stops growing
// with every edit of the same answers.
//
// What is kept for a resend: every entry whose write is still live in its
// record (a current value, or one side of a conflict), whole, with its
// causal context; and every superseded entry that is not covered. An
// entry z is covered when, for each field it wrote, a live entry e of that
// field had seen z and everything z had seen (e's context holds z and
// z's context). Applying e then does all that applying z and e does to
// those registers, anywhere, in any order: a server restored from a
// backup that still holds z's value, or values z had superseded, loses
// them to e exactly as it would have to z. What a compacted device cannot
// give a restored server is the record's superseded answers themselves
// (they are history) and the dots of dropped writes in the record's set
// of applied changes (nothing compares values by it). Writes of $deleted
// (their contexts decide delete conflicts), $erased and records that were
// erased or forgotten (their entries are stripped already) are never
// dropped.

// metaCompacted: the log position through which CompactLog has looked.
// metaEditedRecord + record id: the log head after the last write into
// that record while it existed (only such writes supersede: a log of
// records each written once has nothing to compact, and a sync that
// pushed 100,000 new interviews after one was edited looks at that one).
// metaEdited: the same for the whole log, as devices wrote it before
// marks per record; such a mark past metaCompacted has CompactLog look at
// every record once more.
const (
	metaCompacted    = "log.compacted"
	metaEdited       = "log.edited"
	metaEditedRecord = "log.edited/"
)

// metaContextBase + record id + "/" + base id: a set of the record's dots
// that the contexts of its compacted log entries are written against
// (LogEntry.Ref): the ~22 live entries of an edited record each carried
// nearly every dot of the record, 3.7 of a 6 MB log after 100,000 edits.
const metaContextBase = "cbase/"

func baseKey(id RecordID, base uint64) string {
	return metaContextBase + id.String() + "/" + strconv.FormatUint(base, 16)
}

// minRefContext: smaller contexts stay written in full.
const minRefContext = 8

// Resolve fills e's context when it is stored by reference (a device's
// compacted log: see CompactLog). Readers of a log other than this
// package's (tests, tools) call it on every entry they use.
func Resolve(tx ReadTx, e *LogEntry) error { return resolveWith(tx, e, nil) }

// bases caches the context bases read by one pass over a log.
type bases map[string]DotSet

// resolveWith is Resolve reading each base once per cache (nil: none).
func resolveWith(tx ReadTx, e *LogEntry, cache bases) error {
	if e.Ref == nil {
		return nil
	}
	key := baseKey(e.Change.Record, e.Ref.Base)
	base, ok := cache[key]
	if !ok {
		b, err := tx.Meta(key)
		if err != nil {
			return fmt.Errorf("log entry %d: context base: %w", e.Seq, err)
		}
		bd := decoder{b: b, v: codecVersion}
		if base = bd.dots(); bd.err != nil || len(bd.b) != 0 {
			return fmt.Errorf("log entry %d: context base: %w", e.Seq, ErrCorrupt)
		}
		if cache != nil {
			cache[key] = base
		}
	}
	d := decoder{b: e.Ref.raw, v: codecVersion}
	ctx := d.refSetInto(nil, base)
	if d.err != nil || len(d.b) != 0 {
		return fmt.Errorf("log entry %d: context: %w", e.Seq, ErrCorrupt)
	}
	e.Change.Context, e.Ref = ctx, nil
	return nil
}

// markEdited notes records written while they existed, for CompactLog.
// A replica keeping a history index (a server) keeps its whole log, and
// no marks.
func (r *Replica) markEdited(tx Tx, ids ...RecordID) error {
	if r.history || len(ids) == 0 {
		return nil
	}
	head, err := tx.Head()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := setMetaUint(tx, metaEditedRecord+id.String(), head); err != nil {
			return err
		}
	}
	return nil
}

// compactMinEntries: CompactLog waits until this many entries were
// acknowledged since it last ran (each run reads the device's whole log
// once per compactChunk records).
var compactMinEntries uint64 = 500

// compactChunk bounds the records whose entries one scan of the log
// gathers (a device's memory is small).
const compactChunk = 256

// compactBatch bounds the deletions of one transaction.
const compactBatch = 256

// CompactStats says what CompactLog did.
type CompactStats struct {
	Records int // records whose entries were examined
	Dropped int // log entries dropped
}

// CompactLog drops the acknowledged log entries that a resend no longer
// needs (see above). It needs a store with LogDeleter and does nothing
// otherwise; it looks only at records written since it last ran.
func (r *Replica) CompactLog(ctx context.Context) (CompactStats, error) {
	var st CompactStats
	var ack, done uint64
	if r.history {
		return st, nil // a server keeps its whole log
	}
	quick := false
	touched := map[RecordID]bool{} // record → it has superseded writes
	marks := map[string]uint64{}   // edit marks this run answers, by key
	err := r.store.View(ctx, func(tx ReadTx) (err error) {
		if _, ok := tx.(LogDeleter); !ok {
			return errNoCompaction
		}
		if ack, err = metaUint(tx, metaPushAck); err != nil {
			return err
		}
		if done, err = metaUint(tx, metaCompacted); err != nil || done >= ack {
			return err
		}
		edited, err := metaUint(tx, metaEdited)
		if err != nil {
			return err
		}
		legacy := edited > done
		err = tx.ScanMeta(metaEditedRecord, func(key string, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("meta %s: %w", key, ErrCorrupt)
			}
			// A write not acknowledged yet waits for a later run.
			if at := binary.BigEndian.Uint64(v); at <= ack {
				marks[key] = at
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !legacy && len(marks) == 0 {
			quick = true // nothing superseded since: only the mark moves
			return nil
		}
		if ack-done < compactMinEntries {
			done = ack // wait for more: each run reads the whole log
			return nil
		}
		for key := range marks {
			id, err := ParseRecordID(strings.TrimPrefix(key, metaEditedRecord))
			if err != nil {
				return fmt.Errorf("meta %s: %w", key, ErrCorrupt)
			}
			rec, err := tx.Record(id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			touched[id] = superseded(rec)
		}
		if !legacy {
			return nil
		}
		err = tx.ScanLog(done, func(e LogEntry, _ int) error {
			if e.Seq > ack {
				return ErrStop
			}
			if _, ok := touched[e.Change.Record]; !ok {
				rec, err := tx.Record(e.Change.Record)
				if err != nil {
					return err
				}
				touched[e.Change.Record] = superseded(rec)
			}
			return nil
		})
		if errors.Is(err, ErrStop) {
			err = nil
		}
		return err
	})
	if errors.Is(err, errNoCompaction) || (err == nil && done >= ack) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("compact log: %w", err)
	}
	if quick {
		return st, r.markCompacted(ctx, ack, nil)
	}
	var chunk []RecordID
	flush := func() error {
		n, err := r.compactRecords(ctx, chunk, ack)
		st.Records += len(chunk)
		st.Dropped += n
		chunk = chunk[:0]
		return err
	}
	for id, some := range touched {
		if !some {
			continue
		}
		if chunk = append(chunk, id); len(chunk) == compactChunk {
			if err := flush(); err != nil {
				return st, err
			}
		}
	}
	if len(chunk) > 0 {
		if err := flush(); err != nil {
			return st, err
		}
	}
	return st, r.markCompacted(ctx, ack, marks)
}

// markCompacted moves the compaction mark to ack and clears the edit
// marks the run answered (one rewritten meanwhile stays).
func (r *Replica) markCompacted(ctx context.Context, ack uint64, marks map[string]uint64) error {
	err := r.store.Update(ctx, func(tx Tx) error {
		for key, at := range marks {
			if now, err := metaUint(tx, key); err != nil || now != at {
				if err != nil {
					return err
				}
				continue
			}
			if err := tx.DeleteMeta(key); err != nil {
				return err
			}
		}
		return setMetaUint(tx, metaCompacted, ack)
	})
	if err != nil {
		return fmt.Errorf("compact log: %w", err)
	}
	return nil
}

var errNoCompaction = errors.New("store does not compact")

// superseded reports whether rec applied writes that hold no live value:
// only such a record has entries to drop.
func superseded(rec *Record) bool {
	if rec.Erased() {
		return false
	}
	live := 0
	seen := map[Dot]bool{}
	for _, reg := range rec.Fields {
		for _, e := range reg.Entries {
			if !seen[e.Dot] {
				seen[e.Dot] = true
				live++
			}
		}
	}
	return len(rec.Applied) > live
}

// recordPlan is what compaction changes of one record's log.
type recordPlan struct {
	id      RecordID
	drop    []LogEntry
	rewrite []LogEntry // kept, acknowledged: written against the new base
	base    DotSet
}

// compactRecords drops the droppable entries of ids, acknowledged through
// ack, and writes the contexts of the others against a base set of their
// record (LogEntry.Ref), with one scan of the log. It returns how many
// entries it dropped.
func (r *Replica) compactRecords(ctx context.Context, ids []RecordID, ack uint64) (int, error) {
	want := make(map[RecordID][]LogEntry, len(ids))
	for _, id := range ids {
		want[id] = nil
	}
	wasRef := map[uint64]bool{}
	var plans []recordPlan
	cache := bases{}
	only := ScanOption{Records: func(id RecordID) bool { _, ok := want[id]; return ok }}
	err := r.store.View(ctx, func(tx ReadTx) error {
		err := tx.ScanLog(0, func(e LogEntry, _ int) error {
			es, ok := want[e.Change.Record]
			if !ok {
				return nil
			}
			if e.Ref != nil {
				wasRef[e.Seq] = true
				if err := resolveWith(tx, &e, cache); err != nil {
					return err
				}
			}
			want[e.Change.Record] = append(es, e)
			return nil
		}, only)
		if err != nil {
			return err
		}
		for id, es := range want {
			rec, err := tx.Record(id)
			if err != nil {
				return err
			}
			if forgot, err := HasMeta(tx, metaForgot+id.String()); err != nil || forgot || rec.Erased() {
				if err != nil {
					return err
				}
				continue
			}
			p := recordPlan{id: id, drop: droppable(rec, es, ack), base: rec.Applied}
			dropped := make(map[uint64]bool, len(p.drop))
			for _, e := range p.drop {
				dropped[e.Seq] = true
			}
			for _, e := range es {
				if !dropped[e.Seq] && e.Seq <= ack && (wasRef[e.Seq] || len(e.Change.Context) >= minRefContext) {
					p.rewrite = append(p.rewrite, e)
				}
			}
			plans = append(plans, p)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("compact log: %w", err)
	}
	n := 0
	for i := 0; i < len(plans); i += compactBatch / 32 {
		part := plans[i:min(i+compactBatch/32, len(plans))]
		if err := r.store.Update(ctx, func(tx Tx) error { return r.applyPlans(tx, part, ack) }); err != nil {
			return n, fmt.Errorf("compact log: %w", err)
		}
		for _, p := range part {
			n += len(p.drop)
		}
	}
	return n, nil
}

// applyPlans writes plans in tx: each record's new base, its rewritten and
// dropped entries, and the removal of its older bases.
func (r *Replica) applyPlans(tx Tx, plans []recordPlan, ack uint64) error {
	del := tx.(LogDeleter)
	for _, p := range plans {
		// An erasure or a forgetting since the plan was made rewrote the
		// record's entries without answers: leave them so.
		rec, err := tx.Record(p.id)
		if err != nil {
			return err
		}
		if forgot, err := HasMeta(tx, metaForgot+p.id.String()); err != nil || forgot || rec.Erased() {
			if err != nil {
				return err
			}
			continue
		}
		var old []string
		prefix := metaContextBase + p.id.String() + "/"
		key := baseKey(p.id, ack)
		if err := tx.ScanMeta(prefix, func(k string, _ []byte) error {
			if k != key {
				old = append(old, k)
			}
			return nil
		}); err != nil {
			return err
		}
		if len(p.rewrite) > 0 {
			e := encoder{}
			e.dots(p.base)
			if err := tx.SetMeta(key, e.b); err != nil {
				return err
			}
		}
		for _, e := range p.rewrite {
			b := MarshalLogEntryRef(nil, e.Origin, &e.Change, ack, p.base)
			if len(e.Change.Context) < minRefContext {
				b = MarshalLogEntry(nil, e.Origin, &e.Change)
			}
			if err := del.ReplaceLogBytes(e.Seq, b); err != nil {
				return err
			}
		}
		for _, e := range p.drop {
			if err := del.DeleteLog(e.Seq); err != nil {
				return err
			}
			if r.history {
				if err := tx.DeleteMeta(historyKey(e.Change.Record, e.Seq)); err != nil {
					return err
				}
			}
		}
		for _, k := range old {
			if err := tx.DeleteMeta(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// HasMeta reports whether a meta key is held, without reading its value
// where the store can (MetaChecker).
func HasMeta(tx ReadTx, key string) (bool, error) {
	if mc, ok := tx.(MetaChecker); ok {
		return mc.HasMeta(key)
	}
	_, err := tx.Meta(key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// droppable returns the entries of rec (es: all its log entries) that are
// acknowledged (at or before ack) and covered (see the top of this file).
func droppable(rec *Record, es []LogEntry, ack uint64) []LogEntry {
	if rec.Erased() {
		return nil
	}
	first := map[Dot]*LogEntry{} // each dot's first entry (a dot may be logged twice)
	for i := range es {
		if _, ok := first[es[i].Change.Dot]; !ok {
			first[es[i].Change.Dot] = &es[i]
		}
	}
	var out []LogEntry
	for i := range es {
		z := &es[i]
		if z.Seq > ack {
			continue
		}
		if first[z.Change.Dot] != z {
			out = append(out, *z) // a repeat of an entry kept before it
			continue
		}
		if covered(rec, z, first) {
			out = append(out, *z)
		}
	}
	return out
}

// covered reports whether every register z wrote has a live write whose
// entry had seen z and all z had seen, z itself being live in none.
func covered(rec *Record, z *LogEntry, first map[Dot]*LogEntry) bool {
	c := &z.Change
	if len(c.Fields) == 0 {
		return false
	}
	for _, f := range c.Fields {
		if f.Name == DeletedField || f.Name == ErasedField {
			return false
		}
		reg := rec.Fields[f.Name]
		if reg == nil || len(reg.Entries) == 0 {
			return false
		}
		ok := false
		for _, e := range reg.Entries {
			if e.Dot == c.Dot {
				return false // live
			}
			le := first[e.Dot]
			if le != nil && le.Change.Context.Contains(c.Dot) && le.Change.Context.Covers(c.Context) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
