package server_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// cutProxy forwards TCP connections to target and cuts each one after a
// random number of bytes, so requests and responses die at any point:
// mid-request, after the server committed but before the answer arrived,
// mid-page.
type cutProxy struct {
	ln     net.Listener
	target string
	budget func() int64
	cuts   atomic.Int64
	down   atomic.Int64 // bytes delivered to clients
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string, budget func() int64) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, budget: budget}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *cutProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *cutProxy) handle(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	var left atomic.Int64
	left.Store(p.budget())
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				allowed := min(int64(n), max(left.Add(-int64(n))+int64(n), 0))
				if allowed > 0 {
					if w, _ := dst.Write(buf[:allowed]); dst == c {
						p.down.Add(int64(w))
					}
				}
				if allowed < int64(n) {
					p.cuts.Add(1)
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done // either side finished or was cut: drop both
}

// TestInterruptedSync cuts connections mid-push and mid-pull until the sync
// gets through; nothing is lost and nothing is applied twice.
func TestInterruptedSync(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	proxy := newCutProxy(t, srv.URL[len("http://"):], func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return 1 + rng.Int64N(60_000)
	})
	const n = 3000
	a := newDevice(t, proxy.URL())
	recs := make([]syncengine.NewRecord, n)
	for i := range recs {
		recs[i] = syncengine.NewRecord{Form: "household", Fields: fw("idx", itoa(i), "camp", "north", "note", fmt.Sprintf("n%x", rng.Uint64()))}
	}
	if _, err := a.Replica().CreateMany(ctx, recs); err != nil {
		t.Fatal(err)
	}
	failures := 0
	for {
		res, err := a.Sync(ctx, "", nil)
		if err == nil {
			t.Logf("push got through: %d changes, %d bytes sent", res.Pushed, res.BytesSent)
			break
		}
		if failures++; failures > 300 {
			t.Fatalf("push never got through: %v", err)
		}
	}
	if got := logLen(t, srv.Replica()); got != n {
		t.Fatalf("server log holds %d changes after an interrupted push of %d", got, n)
	}
	if got := len(states(t, srv.Replica())); got != n {
		t.Fatalf("server holds %d records, want %d", got, n)
	}
	pushFailures := failures
	b := newDevice(t, proxy.URL())
	failures = 0
	for {
		_, err := b.Sync(ctx, "", nil)
		if err == nil {
			break
		}
		if failures++; failures > 300 {
			t.Fatalf("pull never got through: %v", err)
		}
	}
	if got := logLen(t, b.Replica()); got != n {
		t.Fatalf("device log holds %d changes after an interrupted pull of %d", got, n)
	}
	assertConverged(t, srv.Replica(), a.Replica(), b.Replica())
	if proxy.cuts.Load() == 0 || pushFailures == 0 || failures == 0 {
		t.Fatalf("the proxy cut nothing (cuts %d, failed pushes %d, failed pulls %d): the test proved nothing",
			proxy.cuts.Load(), pushFailures, failures)
	}
	t.Logf("%d cuts; push failed %d times, pull %d times, then converged", proxy.cuts.Load(), pushFailures, failures)
}

// TestServerRestoredFromBackup: the server goes back to an older backup.
// Devices are not wedged: they notice, resend what the server lacks and
// converge, and nothing acknowledged before is lost.
func TestServerRestoredFromBackup(t *testing.T) {
	ctx := context.Background()
	dir1 := filepath.Join(t.TempDir(), "s1")
	srv1 := startServer(t, server.Config{DataDir: dir1})
	a, b := newDevice(t, srv1.URL), newDevice(t, srv1.URL)
	create := func(d *fieldapp.Device, n int, tag string) {
		for i := range n {
			if _, err := d.Replica().Create(ctx, "household", fw("tag", tag, "i", itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	create(a, 50, "a1")
	mustSync(t, a)
	create(b, 50, "b1")
	mustSync(t, b)
	mustSync(t, a)

	backup := filepath.Join(t.TempDir(), "backup.bak")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	db := srv1.Replica().Store().(*badgerstore.Store).DB()
	if _, err := db.Backup(f, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()

	create(a, 20, "a2")
	mustSync(t, a)
	mustSync(t, b) // b now holds a2 too
	create(b, 10, "b2")
	mustSync(t, b)
	srv1.stop()

	dir2 := filepath.Join(t.TempDir(), "s2")
	restoreBackup(t, backup, dir2)
	srv2 := startServer(t, server.Config{DataDir: dir2})
	if got := len(states(t, srv2.Replica())); got != 100 {
		t.Fatalf("restored server holds %d records, want the 100 of the backup", got)
	}
	// a syncs first: it resends its own a2 but cannot know b2; b then
	// resends everything, b2 included.
	for _, d := range []*fieldapp.Device{a, b, a} {
		if _, err := d.Sync(ctx, srv2.URL, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(states(t, srv2.Replica())); got != 130 {
		t.Fatalf("after resync the server holds %d records, want 130", got)
	}
	assertConverged(t, srv2.Replica(), a.Replica(), b.Replica())
}

func restoreBackup(t *testing.T, backup, dir string) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := db.Load(io.Reader(f), 16); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
