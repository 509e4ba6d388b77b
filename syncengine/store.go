package syncengine

import (
	"context"
	"errors"
)

// Store is what a replica needs from its storage. One Update is one atomic,
// durable transaction: record state, log entries and meta (counters, cursors)
// written in it become visible together or not at all, and are on disk when
// Update returns nil. Implementations: badgerstore (devices and the default
// server), and the PostgreSQL store for larger servers.
type Store interface {
	// Update runs fn in a read-write transaction and commits it. An
	// implementation may run fn again when the transaction conflicts with
	// another, so fn must not have effects outside tx.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only snapshot.
	View(ctx context.Context, fn func(ReadTx) error) error
	Close() error
}

// ReadTx reads one consistent snapshot.
type ReadTx interface {
	// Record returns the stored state of id, or ErrNotFound.
	Record(id RecordID) (*Record, error)
	// ScanRecords calls fn for every record with an id at or after from, in
	// id order, until fn returns an error (ErrStop ends the scan cleanly).
	ScanRecords(from RecordID, fn func(*Record) error) error
	// ScanLog calls fn for every log entry with a sequence number after
	// `after`, in order, with the entry's stored size in bytes, until fn
	// returns an error (ErrStop ends the scan cleanly).
	ScanLog(after uint64, fn func(e LogEntry, size int) error, opts ...ScanOption) error
	// LogEntry returns the log entry at seq, or ErrNotFound.
	LogEntry(seq uint64) (LogEntry, error)
	// Head returns the last sequence number in the log (0 when empty).
	Head() (uint64, error)
	// Meta returns a small named value, or ErrNotFound.
	Meta(key string) ([]byte, error)
	// ScanMeta calls fn for every meta entry whose key starts with prefix,
	// in key order, until fn returns an error (ErrStop ends it cleanly).
	ScanMeta(prefix string, fn func(key string, value []byte) error) error
}

// Tx is a read-write transaction. Reads see the transaction's own writes.
type Tx interface {
	ReadTx
	PutRecord(r *Record) error
	// PutRecordBytes stores a record already encoded by MarshalRecord (or
	// MarshalNewRecord); the store keeps b, which the caller must not
	// reuse.
	PutRecordBytes(id RecordID, b []byte) error
	// Append adds c to the log under the next sequence number and returns
	// it. Sequence numbers start at 1 and have no gaps.
	Append(origin Origin, c *Change) (uint64, error)
	// ReplaceLog replaces the change of log entry seq, which must exist,
	// keeping its sequence and origin (an erasure strips the answers of
	// the entries of its record; see ErasedField).
	ReplaceLog(seq uint64, c *Change) error
	SetMeta(key string, value []byte) error
	// DeleteMeta removes a meta entry (no error if absent).
	DeleteMeta(key string) error
}

// LogDeleter is an optional Tx method for a device compacting its log
// (Replica.CompactLog): the entry at seq leaves the log; its sequence
// number is never used again (the log then has gaps: ScanLog passes over
// them, LogEntry answers ErrNotFound, Head stays). Only a device's log,
// which no other replica pages through, is compacted. Deleting an entry
// that is not there is not an error.
type LogDeleter interface {
	DeleteLog(seq uint64) error
	// ReplaceLogBytes replaces the entry at seq, which must exist, with
	// b, an entry encoded by MarshalLogEntry or MarshalLogEntryRef (its
	// origin must stay the entry's).
	ReplaceLogBytes(seq uint64, b []byte) error
}

// ScanOption is a hint to ScanLog. Stores that ignore it stay correct.
type ScanOption struct {
	// Skip: entries written by this replica may be passed with only Seq,
	// Origin and Change.Dot set (a server paging its log for a device
	// never sends the device its own changes, so it need not decode them).
	Skip ReplicaID
	// Records: when set, entries of records it rejects may be passed
	// with only Seq, Origin and Change.Record set (compaction reads the
	// entries of a few records out of a whole log).
	Records func(RecordID) bool
}

// ErrStop ends a scan without error.
var ErrStop = errors.New("stop scan")

// MetaChecker is an optional ReadTx method: whether a meta key is held,
// without reading its value (a resumed upload asks it of every chunk of a
// file, and Badger keeps chunks in its value log).
type MetaChecker interface {
	HasMeta(key string) (bool, error)
}

// MetaOnceSetter is an optional Store method for content-addressed values
// (file chunks, their manifests): SetMetaOnce stores each value under its
// key unless the key is held already, all in one commit, in a write of
// its own that touches neither records nor the log, so a store runs it
// beside other writers instead of after them (one fsync'd commit per
// chunk, in turn, held uploads to a third of the disk's speed). Every call
// for one key must carry the same value.
type MetaOnceSetter interface {
	SetMetaOnce(ctx context.Context, kvs ...KeyValue) error
}

// KeyValue is a meta entry.
type KeyValue struct {
	Key   string
	Value []byte
}

// RawRecordScanner is an optional ReadTx method for bulk readers that lay
// records out straight from their encoding (syncengine.RecordVisitor): fn
// gets each record's stored bytes, valid only until it returns (a reader
// that keeps them copies them, into a buffer it can reuse: a fresh copy
// of every record cost an export more than reading it).
type RawRecordScanner interface {
	ScanRecordBytes(from RecordID, fn func(id RecordID, b []byte) error) error
}

// LogOriginScanner is an optional ReadTx method for counting what awaits a
// push: fn sees the sequence and origin of each log entry after `after`,
// in order, until it returns an error (ErrStop ends the scan cleanly). A
// store that keeps the origin beside the key answers without reading the
// entries' changes (the device keeps them in Badger's value log, and a
// count that read them all touched every page of it).
type LogOriginScanner interface {
	ScanLogOrigins(after uint64, fn func(seq uint64, origin Origin) error) error
}

// ReverseRecordScanner is an optional ReadTx method for screens that list
// the newest records first (record ids grow with time): fn sees every
// record with an id before `before` (all of them when it is zero), in
// descending id order, until it returns an error (ErrStop ends the scan
// cleanly).
type ReverseRecordScanner interface {
	ScanRecordsReverse(before RecordID, fn func(*Record) error) error
}
