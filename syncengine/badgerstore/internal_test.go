package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/tessera-survey/tessera/syncengine"
)

// The drain reaches into Badger's unexported fields; this test fails when a
// Badger upgrade renames or retypes them (the drain would silently stop,
// and the device's sync would slow down three times under its memory
// limit).
func TestAllocPoolFound(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ch, err := allocPool(db)
	if err != nil {
		t.Fatal(err)
	}
	if cap(ch) == 0 {
		t.Fatalf("pool channel has no capacity: not the allocator pool")
	}
}

// Tables built while allocators are drained are intact, and the drain
// does take idle allocators: many small memtables flushed and compacted,
// drained after every write, then every value read back.
func TestDrainKeepsTablesIntact(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil).
		WithMemTableSize(1 << 20).WithValueThreshold(64 << 10).WithBaseTableSize(256 << 10).WithNumLevelZeroTables(2).
		WithEncryptionKey([]byte("0123456789abcdef0123456789abcdef")).WithIndexCacheSize(1 << 20))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ch, err := allocPool(db)
	if err != nil {
		t.Fatal(err)
	}
	const n = 6000
	val := func(i int) []byte { return fmt.Appendf(nil, "%0900d", i) }
	drained := 0
	for i := 0; i < n; i += 100 {
		err := db.Update(func(txn *badger.Txn) error {
			for j := i; j < i+100; j++ {
				if err := txn.Set(fmt.Appendf(nil, "k%06d", j), val(j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		drained += drainAllocators(ch)
	}
	if err := db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	drained += drainAllocators(ch)
	if drained == 0 {
		t.Errorf("no allocator was ever idle in the pool: nothing was drained")
	}
	err = db.View(func(txn *badger.Txn) error {
		for i := range n {
			it, err := txn.Get(fmt.Appendf(nil, "k%06d", i))
			if err != nil {
				return fmt.Errorf("key %d: %w", i, err)
			}
			v, err := it.ValueCopy(nil)
			if err != nil || string(v) != string(val(i)) {
				return fmt.Errorf("key %d: %q %v", i, v, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A device store (values in the value log, the drain running) written
// through flushes and compactions reads every record back after reopening.
func TestDeviceStoreRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	key := []byte("0123456789abcdef0123456789abcdef")
	s, err := Open(Options{Dir: dir, Profile: Device, EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := syncengine.Init(ctx, s, syncengine.NewReplicaID()); err != nil {
		t.Fatal(err)
	}
	rep, err := syncengine.Open(ctx, s, syncengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := 0; i < n; i += 500 {
		batch := make([]syncengine.NewRecord, 500)
		for j := range batch {
			batch[j] = syncengine.NewRecord{Form: "f@1", Fields: []syncengine.FieldWrite{
				{Name: "n", Value: syncengine.IntValue(int64(i + j))},
				{Name: "t", Value: syncengine.TextValue(fmt.Sprintf("a longer answer for record %d", i+j))},
			}}
		}
		if _, err := rep.CreateMany(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir, Profile: Device, EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CollectGarbage(2); err != nil {
		t.Fatal(err)
	}
	rep, err = syncengine.Open(ctx, s, syncengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, n)
	if err := rep.Records(ctx, func(r *syncengine.Record) error {
		e, _ := r.Fields["n"].Current()
		seen[e.Value.Int] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("record %d lost", i)
		}
	}
}

// Log entries written before the origin was kept in the user meta byte (a
// store from an older release) are counted by decoding them: the same
// origins as the new ones.
func TestLogOriginsOfOlderEntries(t *testing.T) {
	s, err := Open(Options{Dir: filepath.Join(t.TempDir(), "db"), Profile: Device})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	origins := []syncengine.Origin{syncengine.Upstream, syncengine.Local, syncengine.Downstream}
	err = s.db.Update(func(txn *badger.Txn) error {
		for i, o := range origins { // as the older Append wrote them: no meta byte
			c := syncengine.Change{Record: syncengine.NewRecordID(), Form: "f@1", HLC: 1,
				Dot:    syncengine.Dot{Replica: syncengine.ReplicaID{9}, Counter: uint64(i + 1)},
				Fields: []syncengine.FieldWrite{{Name: "q", Value: syncengine.IntValue(int64(i))}}}
			if err := txn.Set(logKey(uint64(i+1)), syncengine.MarshalLogEntry(nil, o, &c)); err != nil {
				return err
			}
		}
		return txn.Set(keyHead, binary.BigEndian.AppendUint64(nil, uint64(len(origins))))
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Update(ctx, func(tx syncengine.Tx) error {
		c := syncengine.Change{Record: syncengine.NewRecordID(), Form: "f@1", HLC: 1,
			Dot: syncengine.Dot{Replica: syncengine.ReplicaID{9}, Counter: 4}, Fields: []syncengine.FieldWrite{{Name: "q", Value: syncengine.IntValue(4)}}}
		_, err := tx.Append(syncengine.Upstream, &c)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []syncengine.Origin
	if err := s.View(ctx, func(rt syncengine.ReadTx) error {
		return rt.(syncengine.LogOriginScanner).ScanLogOrigins(0, func(_ uint64, o syncengine.Origin) error {
			got = append(got, o)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	want := append(origins, syncengine.Upstream)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("origins %v, want %v", got, want)
	}
}
