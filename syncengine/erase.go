package syncengine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Erasure on request (see ErasedField). Applying an erasure, wherever it
// is applied (the server that made it, a hub, a device), removes the
// record's answers from the record, from every log entry of the record
// (rewritten with the dot and context only) and, after the commit, from
// every older version the store keeps (Purger).

// metaErasePending lists the records whose store versions are still to be
// purged (a crash between the commit and the purge is finished at Open);
// the value is the log sequences rewritten.
const metaErasePending = "erase.pending/"

// metaEraseMeta + key: a meta key the Erasing hook removed, whose older
// versions are still to be purged.
const metaEraseMeta = "erase.meta/"

// Purger is an optional Store method: Purge drops every version a store
// keeps of the given records and log entries except the current one (the
// erased state), so nothing of an erased record's answers stays readable
// in a store that keeps versions (Badger's tree and value log; PostgreSQL's
// dead rows). A store that keeps no versions need not implement it.
type Purger interface {
	Purge(ctx context.Context, records []RecordID, log []uint64, meta []string) error
}

// heldValues appends every value rec's registers hold (concurrent ones
// included): what an erasure of rec takes away.
func heldValues(held []Value, rec *Record) []Value {
	for name, reg := range rec.Fields {
		if Reserved(name) {
			continue
		}
		for _, e := range reg.Entries {
			held = append(held, e.Value)
		}
	}
	return held
}

// stripped is c without its answers: a valid change with the same record,
// dot and context (so peers and resends still know it happened).
func stripped(c *Change) Change {
	s := *c
	s.Fields = []FieldWrite{{Name: CreatedField, Value: BoolValue(true)}}
	return s
}

// Erase erases record id on request: its answers leave this replica's
// store now and every replica's at its next sync, and no edit made before
// it arrived brings them back. Erasing an erased record is harmless (and
// writes nothing).
func (r *Replica) Erase(ctx context.Context, id RecordID) error {
	_, err := r.EraseWith(ctx, id, nil)
	return err
}

// EraseWith is Erase with also, when set, run in the erasure's
// transaction before it is written (a server audits it there; an error
// writes nothing). It reports whether it wrote: false when the record was
// erased before (also is not run then).
func (r *Replica) EraseWith(ctx context.Context, id RecordID, also func(Tx, *Record) error) (bool, error) {
	err := r.Edit(ctx, id, func(tx Tx, rec *Record) ([]FieldWrite, error) {
		if rec.Erased() {
			return nil, errAlreadyErased
		}
		if also != nil {
			if err := also(tx, rec); err != nil {
				return nil, err
			}
		}
		return []FieldWrite{{Name: ErasedField, Value: BoolValue(true)}}, nil
	})
	if errors.Is(err, errAlreadyErased) {
		return false, nil
	}
	return err == nil, err
}

var errAlreadyErased = errors.New("already erased")

// eraseLogged rewrites the log entries of records just erased in tx
// without their answers, tells the Erasing hook what the records held
// (their values before the erasure, held, and every value their log
// entries wrote) and marks it all for the purge.
func (r *Replica) eraseLogged(tx Tx, ids []RecordID, held map[RecordID][]Value) error {
	if len(ids) == 0 {
		return nil
	}
	if held == nil {
		held = map[RecordID][]Value{}
	}
	seqs := make(map[RecordID][]uint64, len(ids))
	for _, id := range ids {
		seqs[id] = nil
	}
	visit := func(e LogEntry) error {
		if _, ok := seqs[e.Change.Record]; !ok {
			return nil
		}
		// A compacted entry is written back with its context in full, so
		// the record's context bases can go.
		wasRef := e.Ref != nil
		if err := Resolve(tx, &e); err != nil {
			return err
		}
		createdOnly := len(e.Change.Fields) == 1 && e.Change.Fields[0].Name == CreatedField
		if wasRef && (createdOnly || e.Change.Erases()) {
			if err := tx.ReplaceLog(e.Seq, &e.Change); err != nil {
				return err
			}
		}
		if e.Change.Erases() {
			return nil
		}
		if !(len(e.Change.Fields) == 1 && e.Change.Fields[0].Name == CreatedField) {
			for _, f := range e.Change.Fields {
				if !Reserved(f.Name) {
					held[e.Change.Record] = append(held[e.Change.Record], f.Value)
				}
			}
			s := stripped(&e.Change)
			if err := tx.ReplaceLog(e.Seq, &s); err != nil {
				return err
			}
		}
		seqs[e.Change.Record] = append(seqs[e.Change.Record], e.Seq)
		return nil
	}
	var err error
	if r.history {
		err = r.historyEntries(tx, ids, visit)
	} else {
		// A device keeps no index from records to entries: one pass over
		// its log for the whole batch (erasures are rare).
		err = tx.ScanLog(0, func(e LogEntry, _ int) error { return visit(e) })
	}
	if err != nil {
		return fmt.Errorf("erase: %w", err)
	}
	for id := range seqs {
		if _, err := DeleteMetaPrefix(tx, metaContextBase+id.String()+"/"); err != nil {
			return err
		}
	}
	for id, ss := range seqs {
		b := make([]byte, 0, 8*len(ss))
		for _, s := range ss {
			b = binary.BigEndian.AppendUint64(b, s)
		}
		if err := tx.SetMeta(metaErasePending+id.String(), b); err != nil {
			return err
		}
	}
	if r.erasing != nil {
		for _, id := range ids {
			if _, ok := held[id]; !ok {
				held[id] = nil
			}
		}
		keys, err := r.erasing(tx, held)
		if err != nil {
			return fmt.Errorf("erase: %w", err)
		}
		for _, k := range keys {
			if err := tx.SetMeta(metaEraseMeta+k, []byte{1}); err != nil {
				return err
			}
		}
	}
	r.purgeDue.Store(true)
	return nil
}

// DeleteMetaPrefix deletes, in tx, every meta entry whose key starts with
// prefix, and returns the keys deleted (what an Options.Erasing hook
// hands back for the purge).
func DeleteMetaPrefix(tx Tx, prefix string) ([]string, error) {
	var keys []string
	if err := tx.ScanMeta(prefix, func(k string, _ []byte) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := tx.DeleteMeta(k); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// historyEntries calls fn for each indexed log entry of ids.
func (r *Replica) historyEntries(tx ReadTx, ids []RecordID, fn func(LogEntry) error) error {
	for _, id := range ids {
		prefix := metaHistory + id.String() + "/"
		var seqs []uint64
		if err := tx.ScanMeta(prefix, func(key string, _ []byte) error {
			seq, err := strconv.ParseUint(strings.TrimPrefix(key, prefix), 16, 64)
			if err != nil {
				return fmt.Errorf("history key %q: %w", key, ErrCorrupt)
			}
			seqs = append(seqs, seq)
			return nil
		}); err != nil {
			return err
		}
		for _, seq := range seqs {
			e, err := tx.LogEntry(seq)
			if err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// finishErasures purges the store versions of erased records (see
// Purger) and forgets them. It runs after every commit that applied an
// erasure, and at Open for one a crash interrupted.
func (r *Replica) finishErasures(ctx context.Context) error {
	if !r.purgeDue.Swap(false) {
		return nil
	}
	var ids []RecordID
	var keys, meta []string
	var seqs []uint64
	err := r.store.View(ctx, func(tx ReadTx) error {
		if err := tx.ScanMeta(metaEraseMeta, func(key string, _ []byte) error {
			keys, meta = append(keys, key), append(meta, strings.TrimPrefix(key, metaEraseMeta))
			return nil
		}); err != nil {
			return err
		}
		return tx.ScanMeta(metaErasePending, func(key string, v []byte) error {
			id, err := ParseRecordID(strings.TrimPrefix(key, metaErasePending))
			if err != nil || len(v)%8 != 0 {
				return fmt.Errorf("erasure mark %q: %w", key, ErrCorrupt)
			}
			ids, keys = append(ids, id), append(keys, key)
			for i := 0; i < len(v); i += 8 {
				seqs = append(seqs, binary.BigEndian.Uint64(v[i:]))
			}
			return nil
		})
	})
	if err == nil && len(keys) > 0 {
		if p, ok := r.store.(Purger); ok {
			err = p.Purge(ctx, ids, seqs, meta)
		}
	}
	if err == nil && len(keys) > 0 {
		err = r.store.Update(ctx, func(tx Tx) error {
			for _, k := range keys {
				if err := tx.DeleteMeta(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		r.purgeDue.Store(true) // tried again after the next write, or at Open
		return fmt.Errorf("erase: purge: %w", err)
	}
	return nil
}
