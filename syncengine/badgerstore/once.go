package badgerstore

import (
	"context"
	"errors"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/tessera-survey/tessera/syncengine"
)

// onceWriter commits SetMetaOnce calls in groups. Each Badger transaction
// waits at its start for every commit in flight and at its end for its own
// fsync; one transaction per file chunk spent most of an upload in those
// waits (70 MB/s on a disk that takes 350). Concurrent calls that arrive
// while a group commits go together in the next one.
type onceWriter struct {
	mu      sync.Mutex
	pending []*onceReq
	running bool
	wg      sync.WaitGroup
}

type onceReq struct {
	kvs  []onceKV
	size int
	done chan error
}

type onceKV struct{ key, value []byte }

// A group holds at most this many writes and bytes: well inside Badger's
// transaction limits, and a few seconds of a slow disk.
const (
	onceGroupCount = 64
	onceGroupBytes = 16 << 20
)

// SetMetaOnce implements syncengine.MetaOnceSetter outside the writers'
// lock, in groups (onceWriter).
func (s *Store) SetMetaOnce(ctx context.Context, kvs ...syncengine.KeyValue) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &onceReq{done: make(chan error, 1)}
	for _, kv := range kvs {
		r.kvs = append(r.kvs, onceKV{metaKey(kv.Key), append([]byte(nil), kv.Value...)})
		r.size += len(kv.Value)
	}
	w := &s.once
	w.mu.Lock()
	w.pending = append(w.pending, r)
	if !w.running {
		w.running = true
		w.wg.Add(1)
		go s.writeGroups()
	}
	w.mu.Unlock()
	// Not abandoned on ctx: the group may be committing it already, and
	// the caller must not believe a value absent that is about to land.
	return <-r.done
}

// writeGroups commits what is pending, group by group, until nothing is.
func (s *Store) writeGroups() {
	w := &s.once
	defer w.wg.Done()
	for {
		w.mu.Lock()
		n, size := 0, 0
		for n < len(w.pending) && n < onceGroupCount && (n == 0 || size+w.pending[n].size <= onceGroupBytes) {
			size += w.pending[n].size
			n++
		}
		group := w.pending[:n:n]
		w.pending = w.pending[n:]
		if n == 0 {
			w.running = false
			w.pending = nil
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		err := s.commitOnce(group)
		s.mappedLarge(size)
		if errors.Is(err, badger.ErrTxnTooBig) && len(group) > 1 {
			for _, r := range group {
				r.done <- s.commitOnce([]*onceReq{r})
			}
			continue
		}
		for _, r := range group {
			r.done <- err
		}
	}
}

// commitOnce writes every key of group not held yet, in one transaction.
func (s *Store) commitOnce(group []*onceReq) error {
	for attempt := 0; ; attempt++ {
		err := s.db.Update(func(txn *badger.Txn) error {
			for _, r := range group {
				for _, kv := range r.kvs {
					_, err := txn.Get(kv.key)
					if err == nil {
						continue // held already: same content
					}
					if !errors.Is(err, badger.ErrKeyNotFound) {
						return err
					}
					if err := txn.Set(kv.key, kv.value); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if errors.Is(err, badger.ErrConflict) && attempt < 10 {
			continue // written or deleted meanwhile: look again
		}
		return err
	}
}
