// Package badgerstore keeps a replica's state in an embedded Badger v4
// database: the device store of the field app and the default server store.
package badgerstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/ristretto/v2/z"

	"github.com/tessera-survey/tessera/syncengine"
)

// Key prefixes. Log keys are big-endian so iteration order is log order.
const (
	prefixRecord = 'r'
	prefixLog    = 'l'
	prefixMeta   = 'm'
)

var keyHead = []byte{'h'}

// Profile selects Badger tuning.
type Profile int

const (
	// Server: Badger's defaults (64 MiB memtables), with a 16 MiB block
	// cache instead of 256: a server's reads are sync pulls of recent
	// changes (in the memtables and the newest tables) and exports that
	// stream everything once, and an export filled whatever cache there
	// was (and the collector's headroom doubles it): at 1M records the
	// server's RSS grew by 285 MiB with 64 MiB of cache, 180 with 16, and
	// the export ran faster (ristretto's bookkeeping per block); sync
	// push and pull medians did not move beyond the machine's noise.
	Server Profile = iota
	// Device: sized for a cheap phone (issue 5's target: 100 MB with
	// 100,000 records). Records and log entries live in the value log and
	// the tree holds only keys and pointers (deviceValueThreshold): a
	// pulled or imported record is written once, appended to the value
	// log, instead of once to the write-ahead log, again into a level-0
	// table and again at each level a compaction moves it through. Table
	// builders are then small, and so is the garbage they make (a fresh
	// device pulling 100,000 records: 16.4 s and 96 MiB peak RSS with the
	// values in the tree, 5.3 s and 66 MiB with them in the value log,
	// under the same 56 MiB soft memory limit). Two 8 MiB memtables bound
	// the write buffers (a transaction may hold ~1.2 MiB; callers split
	// larger ones); a 4 MiB block cache and 2 MiB index cache keep reads of
	// recent records cheap without holding the dataset in memory. Tables
	// are 512 KiB at every level because a compaction keeps up to 8 +
	// splits table builders in memory at once, each starting at twice the
	// table size. Value-log files are 4 MiB: opening the store reads the
	// newest one through (126 ms after a 10,000-record import with 16 MiB
	// files, ~10 ms now). The price is disk: the value log is not compressed
	// (100,000 records of 22 answers: 79 MB against 33 MB), and an edited
	// record leaves its old value behind until the value log is collected
	// (Store.CollectGarbage; the field app runs one pass when it closes the
	// store).
	Device
)

// deviceValueThreshold: values of at least this many bytes go to the
// value log. Every record and log entry is longer; counters, cursors and
// settings stay in the tree.
const deviceValueThreshold = 64

// serverValueThreshold: on a server, values of at least this many bytes
// (file chunks, the largest records) go to the value log.
const serverValueThreshold = 64 << 10

// serverValueLogFile: a server's value-log files are this large (Badger's
// default is 1 GB), so the one being written, which the trimmer spares,
// holds little of a server's memory.
const serverValueLogFile = 128 << 20

// Options configure Open.
type Options struct {
	Dir     string
	Profile Profile
	// EncryptionKey, when set (16, 24 or 32 bytes), encrypts everything
	// Badger writes (AES-CTR). A wrong key fails Open.
	EncryptionKey []byte
	// InMemory keeps nothing on disk (tests and benchmarks only).
	InMemory bool
	Logger   *slog.Logger
}

// Store is a syncengine.Store on Badger.
type Store struct {
	db *badger.DB
	// Writers are serialized: log sequence numbers are assigned inside the
	// transaction, and concurrent writers would only conflict and retry.
	mu sync.Mutex
	// stop and done run the device profile's page trimmer.
	stop, done chan struct{}
	stopOnce   sync.Once
	once       onceWriter
	// kick wakes the trimmer early when large values (file chunks) were
	// read: at 100 MB/s a quarter second maps 25 MB of the value log.
	kick     chan struct{}
	kickAt   int64 // bytes
	keepTail bool  // the value-log file being written is not trimmed
	mapped   atomic.Int64
	// rotate is the value-log file size (0: no value log): Purge writes
	// that much to close the file holding purged values, so the value-log
	// GC can rewrite it. threshold is the value size from which values
	// go to the value log.
	rotate    int64
	threshold int64
}

var _ syncengine.Store = (*Store)(nil)

// ErrLocked is returned when another process has the store open.
var ErrLocked = errors.New("store is in use by another process")

// Open opens (creating if needed) the store in opts.Dir. Every commit is
// fsynced: a write acknowledged to a user or a peer survives a crash.
func Open(opts Options) (*Store, error) {
	bo := badger.DefaultOptions(opts.Dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{opts.Logger}).
		WithInMemory(opts.InMemory).
		WithCompression(options.Snappy)
	if opts.InMemory {
		bo = bo.WithDir("").WithValueDir("")
	}
	if opts.Profile == Server {
		bo = bo.WithBlockCacheSize(16 << 20)
		// Media chunks (256 KiB) go to the value log: kept in the tree
		// they filled memtables (300 MB of RSS in a 200 MB upload) and
		// were copied again by every flush and compaction. Records stay
		// in the tree.
		if !opts.InMemory {
			bo = bo.WithValueThreshold(serverValueThreshold).WithValueLogFileSize(serverValueLogFile)
		}
	}
	if opts.Profile == Device {
		bo = bo.WithMemTableSize(8 << 20).
			WithNumMemtables(2).
			WithNumLevelZeroTables(2).
			WithNumLevelZeroTablesStall(8).
			WithBaseTableSize(512 << 10).
			WithBaseLevelSize(4 << 20).
			WithValueLogFileSize(4 << 20).
			WithBlockCacheSize(4 << 20).
			WithIndexCacheSize(2 << 20).
			WithNumCompactors(2)
		bo.TableSizeMultiplier = 1 // no With method for it
		// An in-memory store has no value log.
		if !opts.InMemory {
			bo = bo.WithValueThreshold(deviceValueThreshold)
		}
	}
	if len(opts.EncryptionKey) > 0 {
		bo = bo.WithEncryptionKey(opts.EncryptionKey).WithEncryptionKeyRotationDuration(30 * 24 * time.Hour)
		if bo.IndexCacheSize == 0 {
			bo = bo.WithIndexCacheSize(16 << 20)
		}
	}
	if !opts.InMemory {
		if err := removeTornFiles(opts.Dir); err != nil {
			return nil, fmt.Errorf("open %s: %w", opts.Dir, err)
		}
	}
	db, err := badger.Open(bo)
	if err != nil {
		if isLockErr(err) {
			return nil, fmt.Errorf("open %s: %w", opts.Dir, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", opts.Dir, err)
	}
	st := &Store{db: db}
	if !opts.InMemory {
		st.rotate, st.threshold = bo.ValueLogFileSize, bo.ValueThreshold
	}
	if err := st.writeBack(); err != nil { // a purge a crash interrupted
		db.Close()
		return nil, fmt.Errorf("open %s: %w", opts.Dir, err)
	}
	switch {
	case opts.InMemory:
	case opts.Profile == Device:
		pool, err := allocPool(db)
		if err != nil && opts.Logger != nil {
			opts.Logger.Warn("device store: builder buffers are not drained", "err", err)
		}
		st.startTrimmer(opts.Dir, []string{".sst", ".vlog", ".mem"}, trimInterval, 8<<20, pool)
	case opts.Profile == Server:
		// Only the value log, where file chunks are: tables stay mapped
		// for the reads of records, and a server's memory is flat
		// however many files pass through it.
		st.keepTail = true
		st.startTrimmer(opts.Dir, []string{".vlog"}, 5*time.Second, 64<<20, nil)
	}
	return st, nil
}

// trimInterval is how often a device store gives back the file pages its
// reads mapped in (see trimMapped); large values read or written wake it
// sooner (mappedLarge).
const trimInterval = 250 * time.Millisecond

// startTrimmer gives back, every so often and after kickAt bytes of large
// values, the pages of the files with these suffixes (trimMapped).
func (s *Store) startTrimmer(dir string, suffixes []string, every time.Duration, kickAt int64, pool chan *z.Allocator) {
	s.stop, s.done, s.kick = make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	s.kickAt = kickAt
	go s.trimLoop(dir, suffixes, every, pool)
}

func (s *Store) trimLoop(dir string, suffixes []string, every time.Duration, pool chan *z.Allocator) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kick:
		}
		trimMapped(dir, suffixes, s.keepTail)
		if pool != nil {
			drainAllocators(pool)
		}
	}
}

// removeTornFiles deletes empty write-ahead (.mem) and value-log (.vlog)
// files. Badger creates such a file, then sizes it: a process killed in
// between (a phone's app killed mid-sync) leaves it empty, and Badger then
// refuses to open the store at all ("Create a new file"), a device locked
// out of its own interviews. An empty file holds no data: nothing is
// acknowledged before its bytes are written and synced.
func removeTornFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".mem") || strings.HasSuffix(name, ".vlog")) {
			continue
		}
		if info, err := e.Info(); err == nil && info.Size() == 0 {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

func isLockErr(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "Cannot acquire directory lock"))
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	s.once.wg.Wait()
	if s.stop != nil {
		s.stopOnce.Do(func() { close(s.stop) })
		<-s.done
	}
	return s.db.Close()
}

// DB exposes the database for benchmarks that measure Badger itself.
func (s *Store) DB() *badger.DB { return s.db }

// Update implements syncengine.Store.
func (s *Store) Update(ctx context.Context, fn func(syncengine.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		txn := s.db.NewTransaction(true)
		t := &tx{txn: txn, s: s}
		err := fn(t)
		if err == nil && t.headDirty {
			// The log head is written once per transaction, however many
			// entries it appended.
			err = txn.Set(keyHead, binary.BigEndian.AppendUint64(nil, t.head))
		}
		if err == nil {
			err = txn.Commit()
		} else {
			txn.Discard()
		}
		switch {
		case errors.Is(err, badger.ErrConflict) && attempt < 10:
			continue
		case errors.Is(err, badger.ErrTxnTooBig):
			return fmt.Errorf("badger: %w: transaction over Badger's batch size", syncengine.ErrTooLarge)
		}
		return err
	}
}

// View implements syncengine.Store.
func (s *Store) View(ctx context.Context, fn func(syncengine.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(txn *badger.Txn) error { return fn(&tx{txn: txn, s: s}) })
}

type tx struct {
	s         *Store
	txn       *badger.Txn
	head      uint64
	read      bool // head loaded
	headDirty bool // appended to: the head is written at commit
	buf       []byte
}

func recordKey(id syncengine.RecordID) []byte { return append([]byte{prefixRecord}, id[:]...) }
func logKey(seq uint64) []byte                { return binary.BigEndian.AppendUint64([]byte{prefixLog}, seq) }
func metaKey(k string) []byte                 { return append([]byte{prefixMeta}, k...) }

func (t *tx) get(key []byte, fn func([]byte) error) error {
	item, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return syncengine.ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(fn)
}

// HasMeta implements syncengine.MetaChecker: the key alone, no value read.
func (t *tx) HasMeta(key string) (bool, error) {
	_, err := t.txn.Get(metaKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (t *tx) Record(id syncengine.RecordID) (*syncengine.Record, error) {
	var r *syncengine.Record
	err := t.get(recordKey(id), func(b []byte) (err error) {
		r, err = syncengine.UnmarshalRecord(id, b)
		return err
	})
	return r, err
}

// Iterators read values as they go, without prefetching: records, log
// entries and meta are small and stored inline in the tree (Badger's value
// threshold is 1 MiB), so prefetching only copied each value once more.

// eachRecord calls fn with every stored record's item from the key seek
// on, forwards or (reverse) backwards.
func (t *tx) eachRecord(seek []byte, reverse bool, fn func(syncengine.RecordID, *badger.Item) error) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}, Reverse: reverse})
	defer it.Close()
	for it.Seek(seek); it.Valid(); it.Next() {
		item := it.Item()
		var id syncengine.RecordID
		copy(id[:], item.Key()[1:])
		if err := fn(id, item); err != nil {
			return err
		}
	}
	return nil
}

// decodeRecord is eachRecord's fn for callers that want records.
func decodeRecord(fn func(*syncengine.Record) error) func(syncengine.RecordID, *badger.Item) error {
	return func(id syncengine.RecordID, item *badger.Item) error {
		var r *syncengine.Record
		if err := item.Value(func(b []byte) (err error) { r, err = syncengine.UnmarshalRecord(id, b); return }); err != nil {
			return err
		}
		return fn(r)
	}
}

func (t *tx) ScanRecords(from syncengine.RecordID, fn func(*syncengine.Record) error) error {
	return t.eachRecord(recordKey(from), false, decodeRecord(fn))
}

// ScanRecordsReverse implements syncengine.ReverseRecordScanner.
func (t *tx) ScanRecordsReverse(before syncengine.RecordID, fn func(*syncengine.Record) error) error {
	seek := before
	if seek.IsZeroID() {
		for i := range seek {
			seek[i] = 0xff
		}
	}
	decode := decodeRecord(fn)
	return t.eachRecord(recordKey(seek), true, func(id syncengine.RecordID, item *badger.Item) error {
		if id == before {
			return nil // the scan starts before it
		}
		return decode(id, item)
	})
}

// ScanRecordBytes implements syncengine.RawRecordScanner.
func (t *tx) ScanRecordBytes(from syncengine.RecordID, fn func(syncengine.RecordID, []byte) error) error {
	return t.eachRecord(recordKey(from), false, func(id syncengine.RecordID, item *badger.Item) error {
		return item.Value(func(b []byte) error { return fn(id, b) })
	})
}

func (t *tx) ScanLog(after uint64, fn func(syncengine.LogEntry, int) error, opts ...syncengine.ScanOption) error {
	opt := syncengine.OptionOf(opts)
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}})
	defer it.Close()
	for it.Seek(logKey(after + 1)); it.Valid(); it.Next() {
		item := it.Item()
		seq := binary.BigEndian.Uint64(item.Key()[1:])
		var e syncengine.LogEntry
		var n int
		if err := item.Value(func(b []byte) (err error) {
			n = len(b)
			e, err = syncengine.DecodeLogEntry(seq, b, opt)
			return err
		}); err != nil {
			return err
		}
		if err := fn(e, n); err != nil {
			return err
		}
	}
	return nil
}

// A log entry's origin is also kept in Badger's user meta byte, beside its
// key in the tree (origin+1; 0 in entries written before it was kept), so
// that counting entries by origin reads no values.
func originMeta(o syncengine.Origin) byte { return byte(o) + 1 }

// ScanLogOrigins implements syncengine.LogOriginScanner.
func (t *tx) ScanLogOrigins(after uint64, fn func(uint64, syncengine.Origin) error) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}})
	defer it.Close()
	for it.Seek(logKey(after + 1)); it.Valid(); it.Next() {
		item := it.Item()
		seq := binary.BigEndian.Uint64(item.Key()[1:])
		o := syncengine.Origin(item.UserMeta() - 1)
		if item.UserMeta() == 0 {
			if err := item.Value(func(b []byte) error {
				e, err := syncengine.UnmarshalLogEntry(seq, b)
				o = e.Origin
				return err
			}); err != nil {
				return err
			}
		}
		if err := fn(seq, o); err != nil {
			if errors.Is(err, syncengine.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (t *tx) LogEntry(seq uint64) (syncengine.LogEntry, error) {
	var e syncengine.LogEntry
	err := t.get(logKey(seq), func(b []byte) (err error) {
		e, err = syncengine.UnmarshalLogEntry(seq, b)
		return err
	})
	return e, err
}

func (t *tx) Head() (uint64, error) {
	if t.read {
		return t.head, nil
	}
	err := t.get(keyHead, func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("log head: %w", syncengine.ErrCorrupt)
		}
		t.head = binary.BigEndian.Uint64(b)
		return nil
	})
	if err != nil && !errors.Is(err, syncengine.ErrNotFound) {
		return 0, err
	}
	t.read = true
	return t.head, nil
}

func (t *tx) Meta(key string) ([]byte, error) {
	var v []byte
	err := t.get(metaKey(key), func(b []byte) error { v = append([]byte(nil), b...); return nil })
	if len(v) >= kickValue {
		t.s.mappedLarge(len(v))
	}
	return v, err
}

// Large values (at least kickValue bytes) read or written beyond the
// store's kickAt since the last trim wake the trimmer.
const kickValue = 64 << 10

func (s *Store) mappedLarge(n int) {
	if s.kick == nil || s.mapped.Add(int64(n)) < s.kickAt {
		return
	}
	s.mapped.Store(0)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (t *tx) PutRecord(r *syncengine.Record) error {
	return t.txn.Set(recordKey(r.ID), syncengine.MarshalRecord(nil, r))
}

func (t *tx) PutRecordBytes(id syncengine.RecordID, b []byte) error {
	return t.txn.Set(recordKey(id), b)
}

func (t *tx) Append(origin syncengine.Origin, c *syncengine.Change) (uint64, error) {
	head, err := t.Head()
	if err != nil {
		return 0, err
	}
	seq := head + 1
	e := badger.NewEntry(logKey(seq), syncengine.MarshalLogEntry(nil, origin, c)).WithMeta(originMeta(origin))
	if err := t.txn.SetEntry(e); err != nil {
		return 0, err
	}
	t.head, t.headDirty = seq, true
	return seq, nil
}

func (t *tx) ReplaceLog(seq uint64, c *syncengine.Change) error {
	e, err := t.LogEntry(seq)
	if err != nil {
		return err
	}
	return t.txn.SetEntry(badger.NewEntry(logKey(seq), syncengine.MarshalLogEntry(nil, e.Origin, c)).WithMeta(originMeta(e.Origin)))
}

// ReplaceLogBytes implements syncengine.LogDeleter.
// The entry's origin is the one b carries (the caller keeps it): only the
// key is looked up, not the old value in the value log.
func (t *tx) ReplaceLogBytes(seq uint64, b []byte) error {
	if _, err := t.txn.Get(logKey(seq)); errors.Is(err, badger.ErrKeyNotFound) {
		return syncengine.ErrNotFound
	} else if err != nil {
		return err
	}
	if len(b) < 2 {
		return fmt.Errorf("log entry %d: %w", seq, syncengine.ErrCorrupt)
	}
	return t.txn.SetEntry(badger.NewEntry(logKey(seq), append([]byte(nil), b...)).WithMeta(originMeta(syncengine.Origin(b[1]))))
}

// DeleteLog implements syncengine.LogDeleter.
func (t *tx) DeleteLog(seq uint64) error { return t.txn.Delete(logKey(seq)) }

func (t *tx) ScanMeta(prefix string, fn func(string, []byte) error) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: metaKey(prefix)})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		key := string(item.Key()[1:])
		if err := item.Value(func(b []byte) error { return fn(key, b) }); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) DeleteMeta(key string) error { return t.txn.Delete(metaKey(key)) }

func (t *tx) SetMeta(key string, value []byte) error {
	if len(value) >= kickValue {
		// A file's chunk written with a record (an OpenRosa photo): its
		// pages in the value log are given back like those of any chunk.
		t.s.mappedLarge(len(value))
	}
	return t.txn.Set(metaKey(key), append([]byte(nil), value...))
}

// badgerLogger sends Badger's chatter to slog: warnings and errors only.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) log(level slog.Level, f string, args ...any) {
	if b.l != nil {
		b.l.Log(context.Background(), level, "badger: "+trimNL(fmt.Sprintf(f, args...)))
	}
}
func (b badgerLogger) Errorf(f string, a ...any)   { b.log(slog.LevelError, f, a...) }
func (b badgerLogger) Warningf(f string, a ...any) { b.log(slog.LevelWarn, f, a...) }
func (b badgerLogger) Infof(string, ...any)        {}
func (b badgerLogger) Debugf(string, ...any)       {}

func trimNL(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}

// CheckKey reports whether key opens the encrypted store in dir (its key
// registry), without opening the store.
func CheckKey(dir string, key []byte) error {
	kr, err := badger.OpenKeyRegistry(badger.KeyRegistryOptions{Dir: dir, ReadOnly: true, EncryptionKey: key})
	if err != nil {
		return fmt.Errorf("key registry: %w", err)
	}
	return kr.Close()
}

// Rekey re-encrypts the store's data keys (Badger's key registry) from
// oldKey to newKey; the data itself stays encrypted with those data keys.
// The store must be closed: Rekey holds Badger's directory lock meanwhile
// (ErrLocked if a process has the store open). Badger writes the new
// registry beside the old one and renames it over, so a crash leaves one
// of the two keys working.
func Rekey(dir string, oldKey, newKey []byte) error {
	return withDirLock(dir, func() error {
		kr, err := badger.OpenKeyRegistry(badger.KeyRegistryOptions{Dir: dir, ReadOnly: true, EncryptionKey: oldKey})
		if err != nil {
			return fmt.Errorf("key registry: %w", err)
		}
		defer kr.Close()
		return badger.WriteKeyRegistry(kr, badger.KeyRegistryOptions{Dir: dir, EncryptionKey: newKey})
	})
}

// CollectGarbage rewrites up to max value log files of which at least half
// is values that were since overwritten or deleted (an edited record
// leaves its previous value behind), and reports how many it rewrote.
// Badger learns what is garbage as compactions pass over overwritten keys,
// so a file qualifies some time after its records were edited.
func (s *Store) CollectGarbage(max int) (int, error) { return s.collect(max, 0.5) }

// collect rewrites up to max value-log files of which at least ratio is
// garbage.
func (s *Store) collect(max int, ratio float64) (int, error) {
	n := 0
	for n < max {
		err := s.db.RunValueLogGC(ratio)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("badger: value log collection: %w", err)
		}
		n++
	}
	return n, nil
}

// keyReclaim is the marker Reclaim writes and drops to flush the memtable.
var keyReclaim = metaKey("reclaim.flush")

// Reclaim collects the value log's garbage now, rewriting up to max files
// (the one being written excepted), and reports how many it rewrote.
// Badger learns which values are garbage only when a compaction passes
// over their keys, and a device's memtable holds hundreds of thousands of
// pointers before it is flushed: a store edited 20,000 times in one
// session had 33 MB of value log, nearly all of it old versions, and no
// file the collector would take. So the memtable is flushed first (a
// marker written and dropped: DropPrefix flushes only when it drops
// something) and the tree compacted into one level; then files at least
// a quarter garbage are rewritten. It costs a flush, a compaction of the keys
// and pointers, and the rewrites: for when much was superseded.
func (s *Store) Reclaim(max int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(keyReclaim, []byte{1}) }); err != nil {
		return 0, fmt.Errorf("badger: reclaim: %w", err)
	}
	if err := s.db.DropPrefix(keyReclaim); err != nil {
		return 0, fmt.Errorf("badger: reclaim: %w", err)
	}
	if err := s.db.Flatten(1); err != nil {
		return 0, fmt.Errorf("badger: reclaim: %w", err)
	}
	return s.collect(max, reclaimRatio)
}

// reclaimRatio: Reclaim rewrites a value-log file a quarter garbage (the
// usual pass waits for half): after many edits of the same records every
// file holds some, and at half the store kept a third of its value log
// as garbage.
const reclaimRatio = 0.1

// Settle compacts the whole tree into one level. After a bulk load it
// spares the next open the compaction backlog (on a phone, the memory peak
// of the day would be that compaction at unlock).
func (s *Store) Settle() error { return s.db.Flatten(1) }
