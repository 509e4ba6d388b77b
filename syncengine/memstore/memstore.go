// Package memstore is a syncengine.Store held in memory: for simulations
// (the load tool's thousands of devices) and quick experiments. Nothing
// survives Close. It runs the same contract suite as the real stores.
package memstore

import (
	"context"
	"sort"
	"strings"
	"sync"

	"github.com/tessera-survey/tessera/syncengine"
)

// Store is an in-memory syncengine.Store. Records and log entries are kept
// encoded, as a real store keeps them, so callers never share state.
type Store struct {
	mu      sync.RWMutex
	records map[syncengine.RecordID][]byte
	log     [][]byte // log[i] is seq i+1
	meta    map[string][]byte
}

var _ syncengine.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{records: map[syncengine.RecordID][]byte{}, meta: map[string][]byte{}}
}

// Close implements syncengine.Store.
func (s *Store) Close() error { return nil }

// Update implements syncengine.Store: writes are buffered and applied at
// commit, so a failed transaction leaves nothing.
func (s *Store) Update(ctx context.Context, fn func(syncengine.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &tx{s: s, records: map[syncengine.RecordID][]byte{}, meta: map[string][]byte{}, deleted: map[string]bool{}}
	if err := fn(t); err != nil {
		return err
	}
	for id, b := range t.records {
		s.records[id] = b
	}
	for seq, b := range t.replaced {
		s.log[seq-1] = b
	}
	s.log = append(s.log, t.log...)
	for k := range t.deleted {
		delete(s.meta, k)
	}
	for k, v := range t.meta {
		s.meta[k] = v
	}
	return nil
}

// View implements syncengine.Store.
func (s *Store) View(ctx context.Context, fn func(syncengine.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn(&tx{s: s})
}

type tx struct {
	s       *Store
	records map[syncengine.RecordID][]byte // nil in views
	log     [][]byte
	meta    map[string][]byte
	deleted map[string]bool
	// replaced: entries of the store's log rewritten by this transaction.
	replaced map[uint64][]byte
}

func (t *tx) Record(id syncengine.RecordID) (*syncengine.Record, error) {
	b, ok := t.records[id]
	if !ok {
		b, ok = t.s.records[id]
	}
	if !ok {
		return nil, syncengine.ErrNotFound
	}
	return syncengine.UnmarshalRecord(id, b)
}

func (t *tx) ScanRecords(from syncengine.RecordID, fn func(*syncengine.Record) error) error {
	ids := make([]syncengine.RecordID, 0, len(t.s.records)+len(t.records))
	seen := map[syncengine.RecordID]bool{}
	for _, m := range []map[syncengine.RecordID][]byte{t.s.records, t.records} {
		for id := range m {
			if !seen[id] && string(id[:]) >= string(from[:]) {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	for _, id := range ids {
		r, err := t.Record(id)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) entries() [][]byte {
	all := append(t.s.log[:len(t.s.log):len(t.s.log)], t.log...)
	if len(t.replaced) > 0 {
		all = append([][]byte(nil), all...)
		for seq, b := range t.replaced {
			all[seq-1] = b
		}
	}
	return all
}

func (t *tx) ScanLog(after uint64, fn func(syncengine.LogEntry, int) error, opts ...syncengine.ScanOption) error {
	opt := syncengine.OptionOf(opts)
	all := t.entries()
	for i := after; i < uint64(len(all)); i++ {
		if all[i] == nil {
			continue // compacted away (DeleteLog)
		}
		e, err := syncengine.DecodeLogEntry(i+1, all[i], opt)
		if err != nil {
			return err
		}
		if err := fn(e, len(all[i])); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) LogEntry(seq uint64) (syncengine.LogEntry, error) {
	all := t.entries()
	if seq == 0 || seq > uint64(len(all)) || all[seq-1] == nil {
		return syncengine.LogEntry{}, syncengine.ErrNotFound
	}
	return syncengine.UnmarshalLogEntry(seq, all[seq-1])
}

func (t *tx) Head() (uint64, error) { return uint64(len(t.s.log) + len(t.log)), nil }

func (t *tx) Meta(key string) ([]byte, error) {
	if t.deleted[key] {
		return nil, syncengine.ErrNotFound
	}
	if v, ok := t.meta[key]; ok {
		return append([]byte(nil), v...), nil
	}
	if v, ok := t.s.meta[key]; ok {
		return append([]byte(nil), v...), nil
	}
	return nil, syncengine.ErrNotFound
}

func (t *tx) ScanMeta(prefix string, fn func(string, []byte) error) error {
	var keys []string
	seen := map[string]bool{}
	for _, m := range []map[string][]byte{t.s.meta, t.meta} {
		for k := range m {
			if strings.HasPrefix(k, prefix) && !seen[k] && !t.deleted[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := t.Meta(k)
		if err != nil {
			return err
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) PutRecord(r *syncengine.Record) error {
	t.records[r.ID] = syncengine.MarshalRecord(nil, r)
	return nil
}

func (t *tx) PutRecordBytes(id syncengine.RecordID, b []byte) error {
	t.records[id] = b
	return nil
}

func (t *tx) Append(origin syncengine.Origin, c *syncengine.Change) (uint64, error) {
	t.log = append(t.log, syncengine.MarshalLogEntry(nil, origin, c))
	return t.Head()
}

func (t *tx) ReplaceLog(seq uint64, c *syncengine.Change) error {
	e, err := t.LogEntry(seq)
	if err != nil {
		return err
	}
	return t.ReplaceLogBytes(seq, syncengine.MarshalLogEntry(nil, e.Origin, c))
}

// ReplaceLogBytes implements syncengine.LogDeleter.
func (t *tx) ReplaceLogBytes(seq uint64, b []byte) error {
	if _, err := t.LogEntry(seq); err != nil {
		return err
	}
	b = append([]byte(nil), b...)
	if n := uint64(len(t.s.log)); seq > n {
		t.log[seq-n-1] = b
		return nil
	}
	if t.replaced == nil {
		t.replaced = map[uint64][]byte{}
	}
	t.replaced[seq] = b
	return nil
}

// DeleteLog implements syncengine.LogDeleter: the entry's slot stays,
// empty, so sequence numbers keep their places.
func (t *tx) DeleteLog(seq uint64) error {
	n := uint64(len(t.s.log))
	switch {
	case seq == 0 || seq > n+uint64(len(t.log)):
		return nil
	case seq > n:
		t.log[seq-n-1] = nil
		return nil
	}
	if t.replaced == nil {
		t.replaced = map[uint64][]byte{}
	}
	t.replaced[seq] = nil
	return nil
}

func (t *tx) SetMeta(key string, value []byte) error {
	delete(t.deleted, key)
	t.meta[key] = append([]byte(nil), value...)
	return nil
}

func (t *tx) DeleteMeta(key string) error {
	delete(t.meta, key)
	t.deleted[key] = true
	return nil
}
