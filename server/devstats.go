package server

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
)

const metaDevStat = "devstat/"

// clockWarning is how far a device clock may be from the server's before
// the console warns: HLCs keep merges right whatever the clocks say, but
// times shown to people (and "latest visit" choices) come from them.
const clockWarning = 2 * time.Minute

// devStat is what the server saw of a device at its last contact.
type devStat struct {
	LastSync int64  `json:"last_sync"`             // server time, Unix ms
	Offset   int64  `json:"offset_ms"`             // device clock minus server clock
	Cursor   uint64 `json:"cursor"`                // the server log position it has pulled to
	Known    bool   `json:"clock_known,omitempty"` // the device sent its time
}

// devStats keeps device contacts in memory and writes them to the store in
// the background: a sync must not wait for a bookkeeping write.
type devStats struct {
	mu    sync.Mutex
	dirty map[string]devStat
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newDevStats(store syncengine.Store, every time.Duration) *devStats {
	d := &devStats{dirty: map[string]devStat{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				d.flush(store)
			case <-d.stop:
				d.flush(store)
				return
			}
		}
	}()
	return d
}

func (d *devStats) seen(id string, st devStat) {
	d.mu.Lock()
	d.dirty[id] = st
	d.mu.Unlock()
}

func (d *devStats) flush(store syncengine.Store) {
	d.mu.Lock()
	batch := d.dirty
	d.dirty = map[string]devStat{}
	d.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	_ = store.Update(context.Background(), func(tx syncengine.Tx) error {
		for id, st := range batch {
			b, _ := json.Marshal(st)
			if err := tx.SetMeta(metaDevStat+id, b); err != nil {
				return err
			}
		}
		return nil
	})
}

// get returns the latest contact of device id (false if never seen).
func (d *devStats) get(ctx context.Context, store syncengine.Store, id string) (devStat, bool) {
	d.mu.Lock()
	st, ok := d.dirty[id]
	d.mu.Unlock()
	if ok {
		return st, true
	}
	err := store.View(ctx, func(tx syncengine.ReadTx) error {
		b, err := tx.Meta(metaDevStat + id)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &st)
	})
	return st, err == nil
}

func (d *devStats) close() {
	d.once.Do(func() { close(d.stop) })
	<-d.done
}
