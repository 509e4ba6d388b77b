package badgerstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/tessera-survey/tessera/syncengine"
)

// keyPurgeStash holds the current values of keys being purged, between
// dropping every version of them and writing the current ones back.
var keyPurgeStash = metaKey("purge.stash")

// keyPurgeFill is the filler Purge writes to close the value-log file.
var keyPurgeFill = metaKey("purge.fill")

// maxFill bounds the filler: the device's files are 4 MiB and the
// server's 128 MiB; a store with Badger's default 1 GiB files (no
// profile) leaves the bytes to the file's next rotation.
const maxFill = 128 << 20

var _ syncengine.Purger = (*Store)(nil)

type kept struct {
	key, value []byte
	meta       byte
}

// Purge implements syncengine.Purger. Badger keeps the versions a write
// replaced (in the memtables and their write-ahead logs, in tables until a
// compaction drops them, in the value log), and reading with AllVersions
// finds them; DropPrefix is the one call that removes every version of a
// key everywhere in the tree at once. The current values (the erased
// state: no answers) are stashed first and written back after, so a crash
// in between loses nothing: Open writes a stash back. Writers wait for the
// purge (it takes the store's writer lock; Badger blocks its own writes
// while dropping).
func (s *Store) Purge(ctx context.Context, records []syncengine.RecordID, log []uint64, meta []string) error {
	keys := make([][]byte, 0, len(records)+len(log)+len(meta))
	for _, id := range records {
		keys = append(keys, recordKey(id))
	}
	for _, seq := range log {
		keys = append(keys, logKey(seq))
	}
	for _, k := range meta {
		keys = append(keys, metaKey(k))
	}
	if len(keys) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	// DropPrefix drops every key that starts with one given: stash the
	// current value of each (a meta key may be the prefix of another).
	// Note whether any version lives in the value log (at or over the
	// value threshold).
	var cur []kept
	inLog := false
	err := s.db.View(func(txn *badger.Txn) error {
		for _, k := range keys {
			opts := badger.DefaultIteratorOptions
			opts.Prefix, opts.AllVersions, opts.PrefetchValues = k, true, false
			it := txn.NewIterator(opts)
			var last []byte
			for it.Rewind(); it.Valid(); it.Next() {
				item := it.Item()
				inLog = inLog || item.ValueSize() >= s.threshold
				newest := !bytes.Equal(item.Key(), last)
				last = item.KeyCopy(last[:0])
				if !newest || item.IsDeletedOrExpired() {
					continue
				}
				v, err := item.ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				cur = append(cur, kept{key: item.KeyCopy(nil), value: v, meta: item.UserMeta()})
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("badger: purge: %w", err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(keyPurgeStash, encodeKept(cur)) }); err != nil {
		return fmt.Errorf("badger: purge: %w", err)
	}
	if s.rotate > 0 && s.rotate <= maxFill && inLog {
		// The value-log file being written is never rewritten by the GC;
		// fill it so Badger starts the next one, and the file with the
		// erased values (and this filler, dropped below) can be.
		fill := make([]byte, s.rotate)
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(keyPurgeFill, fill) }); err != nil {
			return fmt.Errorf("badger: purge: %w", err)
		}
		keys = append(keys, keyPurgeFill)
	}
	if err := s.db.DropPrefix(keys...); err != nil {
		return fmt.Errorf("badger: purge: %w", err)
	}
	if err := s.writeBack(); err != nil {
		return err
	}
	// The value log still holds the dropped values until its files are
	// rewritten; rewrite what qualifies now (the file the filler closed).
	for range 8 {
		if err := s.db.RunValueLogGC(0.01); err != nil {
			break
		}
	}
	return nil
}

// writeBack restores a stash left by Purge and removes it, in one commit.
func (s *Store) writeBack() error {
	err := s.db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get(keyPurgeStash)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := it.ValueCopy(nil)
		if err != nil {
			return err
		}
		kvs, err := decodeKept(b)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := txn.SetEntry(badger.NewEntry(kv.key, kv.value).WithMeta(kv.meta)); err != nil {
				return err
			}
		}
		return txn.Delete(keyPurgeStash)
	})
	if err != nil {
		return fmt.Errorf("badger: purge: writing back: %w", err)
	}
	return nil
}

func encodeKept(kvs []kept) []byte {
	var b []byte
	for _, kv := range kvs {
		b = binary.AppendUvarint(b, uint64(len(kv.key)))
		b = append(b, kv.key...)
		b = append(b, kv.meta)
		b = binary.AppendUvarint(b, uint64(len(kv.value)))
		b = append(b, kv.value...)
	}
	return b
}

func decodeKept(b []byte) ([]kept, error) {
	var out []kept
	for len(b) > 0 {
		var kv kept
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n+1 {
			return nil, fmt.Errorf("purge stash: %w", syncengine.ErrCorrupt)
		}
		kv.key, b = b[w:w+int(n)], b[w+int(n):]
		kv.meta, b = b[0], b[1:]
		n, w = binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return nil, fmt.Errorf("purge stash: %w", syncengine.ErrCorrupt)
		}
		kv.value, b = b[w:w+int(n)], b[w+int(n):]
		out = append(out, kv)
	}
	return out, nil
}
