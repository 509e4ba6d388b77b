package badgerstore

import (
	"errors"
	"reflect"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/ristretto/v2/z"
)

// Badger builds every table (a memtable flush, each compaction output) in
// a z.Allocator taken from a pool of eight that it keeps for the life of
// the database and empties only after two seconds in which no table was
// built. Built without jemalloc (pure Go, as the phone binary is), an
// allocator's buffers are Go heap, and one that built a level-0 table from
// an 8 MiB memtable holds ~30 MiB of them, kept across Reset. During a
// long sync tables are built all the time, so the pool never empties: a
// fresh device pulling 40,000 records carried 50-70 MiB of idle builder
// buffers, the live heap passed the device's 56 MiB soft memory limit,
// and the collector ran ~500 times (7.3 s against 2.1 s without the limit).
//
// Badger has no option for the pool, so the device store drains it itself:
// allocPool finds the pool's channel (the field names are checked by a test
// against the pinned Badger version, and a mismatch disables the drain
// rather than crashing), and drainAllocators releases whatever allocators
// sit idle in it. Receiving from the channel is what Badger's own Get does,
// so an allocator taken here is never in use, and nothing is written to
// Badger's structures: the drain is race-free.

var errNoAllocPool = errors.New("badger's table allocator pool not found (Badger's internals changed)")

// allocPool returns the channel of db's table allocator pool.
func allocPool(db *badger.DB) (chan *z.Allocator, error) {
	dv := reflect.ValueOf(db).Elem()
	f := dv.FieldByName("allocPool")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*z.AllocatorPool]() || f.IsNil() {
		return nil, errNoAllocPool
	}
	pool := (*z.AllocatorPool)(unsafe.Pointer(f.Pointer()))
	c := reflect.ValueOf(pool).Elem().FieldByName("allocCh")
	if !c.IsValid() || c.Type() != reflect.TypeFor[chan *z.Allocator]() {
		return nil, errNoAllocPool
	}
	return *(*chan *z.Allocator)(unsafe.Pointer(c.UnsafeAddr())), nil
}

// drainAllocators releases the idle allocators of a pool, so that their
// buffers become garbage. It must not run after the database is closed
// (Close closes the channel).
func drainAllocators(ch chan *z.Allocator) int {
	n := 0
	for {
		select {
		case a, ok := <-ch:
			if !ok {
				return n
			}
			a.Release()
			n++
		default:
			return n
		}
	}
}
