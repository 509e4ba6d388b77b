package syncengine

import (
	"context"
	"fmt"
	"strings"
)

// Forgetting is how a device lets go of records the server holds (a
// project's delete-after-send and retention settings): unlike an erasure it
// writes no change and reaches no other replica. A forgotten record keeps
// what sync needs to stay correct (its id, form, the dots it applied and
// its reserved registers: status, deletion), so an edit made elsewhere
// later merges into it as usual and brings back only what it writes, and
// its answers leave the record, its log entries (rewritten with the dot
// and context only) and, after the commit, every older version the store
// keeps (Purger), as an erasure's do.
//
// The price, said plainly: a server restored from a backup older than the
// forgetting gets the record's dots from this device's resend but not its
// answers.

// metaForgot + record id: the record was forgotten here (a mark for lists
// and counts; the value is empty).
const metaForgot = "forgot/"

// ForgetStats says what Forget did and what the replica still holds.
type ForgetStats struct {
	Forgotten int // records whose answers left the store now
	Holding   int // records that still hold answers
	Unsent    int // of those, with a write the upstream has not acknowledged (never picked)
	Stubs     int // records forgotten now or before that hold no answer
}

// forgetBatch bounds the records forgotten in one transaction (a device's
// transactions are small; each batch also scans the log once).
const forgetBatch = 200

// Forget drops the answers of the records pick chooses from this replica's
// store (see metaForgot above). A record holding one of this replica's
// writes that the upstream has not acknowledged is never forgotten, so
// nothing unsent is lost. pick sees every other record with answers. The
// replica's Erasing option is told what the records held, in the same
// transactions, as for an erasure (a device drops the files their answers
// name there). It returns counts for a device list.
func (r *Replica) Forget(ctx context.Context, pick func(*Record) bool) (ForgetStats, error) {
	var st ForgetStats
	unsent, err := r.Unsent(ctx)
	if err != nil {
		return st, fmt.Errorf("forget: %w", err)
	}
	var ids []RecordID
	err = r.store.View(ctx, func(tx ReadTx) error {
		return tx.ScanRecords(RecordID{}, func(rec *Record) error {
			if len(rec.FieldNames()) == 0 {
				st.Stubs++ // drafts without answers count here too
				return nil
			}
			if unsent(rec) {
				st.Holding++
				st.Unsent++
				return nil
			}
			if !pick(rec) {
				st.Holding++
				return nil
			}
			ids = append(ids, rec.ID)
			return nil
		})
	})
	if err != nil {
		return st, fmt.Errorf("forget: %w", err)
	}
	for len(ids) > 0 {
		n := min(len(ids), forgetBatch)
		if err := r.forget(ctx, ids[:n]); err != nil {
			return st, err
		}
		st.Forgotten += n
		st.Stubs += n
		ids = ids[n:]
	}
	return st, nil
}

// forget drops the answers of ids in one transaction, then purges their
// older versions.
func (r *Replica) forget(ctx context.Context, ids []RecordID) error {
	r.mu.Lock() // no local write between the choice and the rewrite
	defer r.mu.Unlock()
	err := r.store.Update(ctx, func(tx Tx) error {
		held := make(map[RecordID][]Value, len(ids))
		for _, id := range ids {
			rec, err := tx.Record(id)
			if err != nil {
				return fmt.Errorf("record %s: %w", id, err)
			}
			held[id] = heldValues(nil, rec)
			forgetAnswers(rec)
			if err := tx.PutRecord(rec); err != nil {
				return err
			}
			if err := tx.SetMeta(metaForgot+id.String(), nil); err != nil {
				return err
			}
		}
		return r.eraseLogged(tx, ids, held)
	})
	if err == nil {
		err = r.finishErasures(ctx)
	}
	if err != nil {
		return fmt.Errorf("forget: %w", err)
	}
	return nil
}

// forgetAnswers drops rec's answers and keeps, for each register, the dots
// it had seen: a write that arrives late but was superseded before the
// forgetting (another device had seen it) must not show up as the
// record's answer here.
func forgetAnswers(rec *Record) {
	for name, reg := range rec.Fields {
		if !Reserved(name) {
			reg.Entries = nil
		}
	}
}

// Forgotten returns the records forgotten on this replica (Forget); one
// may hold answers written elsewhere since.
func (r *Replica) Forgotten(ctx context.Context) (map[RecordID]bool, error) {
	out := map[RecordID]bool{}
	err := r.store.View(ctx, func(tx ReadTx) error {
		return tx.ScanMeta(metaForgot, func(key string, _ []byte) error {
			id, err := ParseRecordID(strings.TrimPrefix(key, metaForgot))
			if err != nil {
				return fmt.Errorf("forgotten mark %q: %w", key, ErrCorrupt)
			}
			out[id] = true
			return nil
		})
	})
	return out, err
}

// LastWrite returns the clock of the latest write rec holds (its registers'
// entries, reserved ones included): how old the record is for a retention
// limit.
func LastWrite(rec *Record) HLC {
	var h HLC
	for _, reg := range rec.Fields {
		for _, e := range reg.Entries {
			h = max(h, e.HLC)
		}
	}
	return max(h, rec.FormHLC)
}
