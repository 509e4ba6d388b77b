package syncengine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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
// and counts). The value lists the answers that were live then, as
// (question, dot) pairs: when the same writes arrive again (a lead
// assigned the record back to this device, and the server resends its
// history), they take their place again instead of being ignored as
// applied (rehydrate). Marks from before hold nothing.
const metaForgot = "forgot/"

// forgotten is a forgotten record's list of answers to take back.
type forgotten struct {
	id      RecordID
	pairs   []forgotPair
	changed bool
}

type forgotPair struct {
	Name string
	Dot  Dot
}

func encodeForgotten(ps []forgotPair) []byte {
	e := encoder{}
	e.uvarint(uint64(len(ps)))
	for _, p := range ps {
		e.str(p.Name)
		e.dot(p.Dot)
	}
	return e.b
}

func decodeForgotten(id RecordID, b []byte) (*forgotten, error) {
	f := &forgotten{id: id}
	if len(b) == 0 {
		return f, nil
	}
	d := decoder{b: b}
	n := d.count(18)
	for range n {
		f.pairs = append(f.pairs, forgotPair{Name: d.str(), Dot: d.dot()})
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, fmt.Errorf("forgotten answers of %s: %w", id, ErrCorrupt)
	}
	return f, nil
}

// save writes the list back when a merge changed it; a record with
// nothing left to take back is whole again and loses its mark.
func (f *forgotten) save(tx Tx) error {
	if f == nil || !f.changed {
		return nil
	}
	if len(f.pairs) == 0 {
		return tx.DeleteMeta(metaForgot + f.id.String())
	}
	return tx.SetMeta(metaForgot+f.id.String(), encodeForgotten(f.pairs))
}

// rehydrate runs before c is applied to a record of st: if the record was
// forgotten here, c either brings back answers it wrote that were live
// when forgotten (c's dot is applied already: its answers take their
// place again), or supersedes some of them (those it had seen: they are
// no longer live anywhere, so never to take back). It reports whether the
// record changed.
func (r *Replica) rehydrate(tx ReadTx, st *staged, c *Change) (bool, error) {
	if st.forgot == nil {
		b, err := tx.Meta(metaForgot + c.Record.String())
		if errors.Is(err, ErrNotFound) {
			st.forgot = &forgotten{id: c.Record}
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if st.forgot, err = decodeForgotten(c.Record, b); err != nil {
			return false, err
		}
	}
	f, rec := st.forgot, st.rec
	if len(f.pairs) == 0 {
		return false, nil
	}
	if c.Erases() {
		f.pairs, f.changed = nil, true
		return false, nil
	}
	again := rec.Applied.Contains(c.Dot)
	restored := false
	for _, w := range c.Fields {
		f.pairs = slices.DeleteFunc(f.pairs, func(p forgotPair) bool {
			switch {
			case p.Name != w.Name:
				return false
			case again && p.Dot == c.Dot:
				reg := rec.Fields[w.Name]
				if reg == nil {
					reg = &Register{Seen: DotSet{c.Dot}}
					rec.Fields[w.Name] = reg
				}
				e := Entry{Dot: c.Dot, HLC: c.HLC, Value: w.Value}
				i, _ := slices.BinarySearchFunc(reg.Entries, e.Dot, func(x Entry, d Dot) int { return x.Dot.Compare(d) })
				reg.Entries = slices.Insert(reg.Entries, i, e)
				restored, f.changed = true, true
				return true
			case !again && c.Context.Contains(p.Dot):
				f.changed = true
				return true
			}
			return false
		})
	}
	return restored, nil
}

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
			live := liveAnswers(rec)
			forgetAnswers(rec)
			if err := tx.PutRecord(rec); err != nil {
				return err
			}
			if err := tx.SetMeta(metaForgot+id.String(), encodeForgotten(live)); err != nil {
				return err
			}
		}
		return r.eraseLogged(tx, ids, held)
	})
	if err == nil {
		r.forgot.Store(true)
		err = r.finishErasures(ctx)
	}
	if err != nil {
		return fmt.Errorf("forget: %w", err)
	}
	return nil
}

// liveAnswers lists rec's live answers as (question, dot) pairs, sorted.
func liveAnswers(rec *Record) []forgotPair {
	var out []forgotPair
	for name, reg := range rec.Fields {
		if Reserved(name) {
			continue
		}
		for _, e := range reg.Entries {
			out = append(out, forgotPair{name, e.Dot})
		}
	}
	slices.SortFunc(out, func(a, b forgotPair) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), a.Dot.Compare(b.Dot))
	})
	return out
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

// metaAssigned + record id: an assignment of the record was merged here
// (a device checks those records when its assignments change, instead
// of reading every record it holds).
const metaAssigned = "assigned/"

// AssignedRecords returns the records whose assignment was ever merged
// here.
func (r *Replica) AssignedRecords(ctx context.Context) ([]RecordID, error) {
	var out []RecordID
	err := r.store.View(ctx, func(tx ReadTx) error {
		return tx.ScanMeta(metaAssigned, func(key string, _ []byte) error {
			id, err := ParseRecordID(strings.TrimPrefix(key, metaAssigned))
			if err != nil {
				return fmt.Errorf("assigned mark %q: %w", key, ErrCorrupt)
			}
			out = append(out, id)
			return nil
		})
	})
	return out, err
}

// ForgetRecords is Forget over the records ids only; it returns how many
// it forgot.
func (r *Replica) ForgetRecords(ctx context.Context, ids []RecordID, pick func(*Record) bool) (int, error) {
	unsent, err := r.Unsent(ctx)
	if err != nil {
		return 0, fmt.Errorf("forget: %w", err)
	}
	var chosen []RecordID
	err = r.store.View(ctx, func(tx ReadTx) error {
		for _, id := range ids {
			rec, err := tx.Record(id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if len(rec.FieldNames()) > 0 && !unsent(rec) && pick(rec) {
				chosen = append(chosen, id)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("forget: %w", err)
	}
	for i := 0; i < len(chosen); i += forgetBatch {
		if err := r.forget(ctx, chosen[i:min(i+forgetBatch, len(chosen))]); err != nil {
			return i, err
		}
	}
	return len(chosen), nil
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
