package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

// badLink forwards TCP with a camp's satellite link in between: a fixed
// one-way delay, a bandwidth cap in each direction, and connections cut at
// random points.
type badLink struct {
	ln       net.Listener
	target   string
	delay    time.Duration
	rate     float64 // bytes per second, each direction
	cutEvery func() int64
	cuts     atomic.Int64
	wg       sync.WaitGroup
}

func newBadLink(t *testing.T, target string, delay time.Duration, rate float64, cut func() int64) *badLink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &badLink{ln: ln, target: target, delay: delay, rate: rate, cutEvery: cut}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() { defer b.wg.Done(); b.handle(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

func (b *badLink) handle(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", b.target)
	if err != nil {
		return
	}
	defer up.Close()
	var budget atomic.Int64
	budget.Store(b.cutEvery())
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		type chunk struct {
			at time.Time
			b  []byte
		}
		q := make(chan chunk, 1024)
		go func() {
			defer close(q)
			for {
				buf := make([]byte, 512)
				n, err := src.Read(buf)
				if n > 0 {
					q <- chunk{time.Now(), buf[:n]}
				}
				if err != nil {
					return
				}
			}
		}()
		for ch := range q {
			time.Sleep(time.Until(ch.at.Add(b.delay)))
			time.Sleep(time.Duration(float64(len(ch.b)) / b.rate * float64(time.Second)))
			if budget.Add(-int64(len(ch.b))) < 0 {
				b.cuts.Add(1)
				return
			}
			if _, err := dst.Write(ch.b); err != nil {
				return
			}
		}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
}

// ackWatch is a Remote that remembers every change the server acknowledged
// and fails the test if one is ever pushed again.
type ackWatch struct {
	syncengine.Remote
	mu     sync.Mutex
	acked  map[syncengine.Dot]bool
	resent int
}

func (a *ackWatch) Push(ctx context.Context, p syncengine.Push) (syncengine.PushResult, error) {
	a.mu.Lock()
	for _, c := range p.Changes {
		if a.acked[c.Dot] {
			a.resent++
		}
	}
	a.mu.Unlock()
	res, err := a.Remote.Push(ctx, p)
	if err == nil && !res.Resend {
		a.mu.Lock()
		for _, c := range p.Changes {
			a.acked[c.Dot] = true
		}
		a.mu.Unlock()
	}
	return res, err
}

// TestBadLink: 1,000 records over 64 kbit/s with a 300 ms round trip and
// random cuts arrive within 60 s, each once, and nothing the server
// acknowledged is sent again.
func TestBadLink(t *testing.T) {
	if testing.Short() {
		t.Skip("slow link simulation (about 20 s)")
	}
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	rng := rand.New(rand.NewPCG(3, 4))
	var mu sync.Mutex
	cutsLeft := 3
	link := newBadLink(t, srv.URL[len("http://"):], 150*time.Millisecond, 8000, func() int64 {
		mu.Lock()
		defer mu.Unlock()
		if cutsLeft > 0 && (cutsLeft == 3 || rng.IntN(2) == 0) {
			cutsLeft--
			return 1 + rng.Int64N(20_000)
		}
		return 1 << 40
	})
	d := newDevice(t, link.URL())
	recs := make([]syncengine.NewRecord, 1000)
	for i := range recs {
		fs := make([]syncengine.FieldWrite, 22)
		for k := range fs {
			v := syncengine.IntValue(rng.Int64N(100))
			if k%3 == 1 {
				v = syncengine.TextValue(benchChoices[rng.IntN(len(benchChoices))])
			}
			fs[k] = syncengine.FieldWrite{Name: fmt.Sprintf("q%02d", k), Value: v}
		}
		fs[21].Value = syncengine.TextValue(fmt.Sprintf("hh-%04d", i))
		recs[i] = syncengine.NewRecord{Form: "household", Fields: fs}
	}
	if _, err := d.Replica().CreateMany(ctx, recs); err != nil {
		t.Fatal(err)
	}
	client, err := wire.Dial(link.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	watch := &ackWatch{Remote: client, acked: map[syncengine.Dot]bool{}}
	start := time.Now()
	attempts := 0
	for {
		attempts++
		sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		_, err := d.Replica().Sync(sctx, watch, syncengine.SyncOptions{})
		cancel()
		if err == nil {
			break
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("not synced after %v (%d attempts): %v", time.Since(start), attempts, err)
		}
	}
	el := time.Since(start)
	if head := logLen(t, srv.Replica()); head != 1000 {
		t.Fatalf("server log holds %d changes, want 1000", head)
	}
	if watch.resent > 0 {
		t.Fatalf("%d acknowledged changes were sent again", watch.resent)
	}
	if el > 60*time.Second {
		t.Fatalf("took %v, want under 60 s", el)
	}
	if link.cuts.Load() == 0 {
		t.Fatal("the link cut nothing: the test proved nothing")
	}
	t.Logf("1,000 records over the bad link in %v, %d attempts, %d cuts", el.Round(time.Millisecond), attempts, link.cuts.Load())
}

func (b *badLink) URL() string { return "http://" + b.ln.Addr().String() }
