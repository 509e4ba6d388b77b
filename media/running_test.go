package media

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/tessera-survey/tessera/syncengine/memstore"
)

// TestRunningHashBudget: chunks arriving in any order complete the file,
// and the bytes kept for out-of-order chunks all come back to the budget,
// also when a manifest is replaced midway.
func TestRunningHashBudget(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 12*ChunkSize+7)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	from, to := New(memstore.New()), New(memstore.New())
	m, err := from.Add(ctx, bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := to.Missing(ctx, m, 0); err != nil {
		t.Fatal(err)
	}
	put := func(i int, last bool) bool {
		b, _ := from.Chunk(ctx, m, i)
		done, err := to.Put(ctx, m.SHA256, i, b, last)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		return done
	}
	order := rng.Perm(len(m.Chunks) - 1)
	for _, i := range order[:6] {
		put(i, false)
	}
	if to.heldBytes.Load() == 0 && order[0] != 0 {
		t.Fatal("no out-of-order chunk was kept")
	}
	// The same manifest again (a resumed upload) keeps the running hash.
	if _, err := to.Missing(ctx, m, 0); err != nil {
		t.Fatal(err)
	}
	for _, i := range order[6:] {
		put(i, false)
	}
	if !put(len(m.Chunks)-1, true) {
		t.Fatal("not done after every chunk")
	}
	if n := to.heldBytes.Load(); n != 0 {
		t.Fatalf("%d bytes still counted against the budget", n)
	}
	r, _ := to.Open(ctx, m.SHA256)
	var got bytes.Buffer
	got.ReadFrom(r)
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("file differs")
	}

	// Replaced midway: the first running hash gives its bytes back.
	to = New(memstore.New())
	to.Missing(ctx, m, 0)
	put(3, false)
	put(5, false)
	other := m
	other.Chunks = append([]string{m.Chunks[1]}, m.Chunks[1:]...)
	to.Missing(ctx, other, 0)
	b, _ := from.Chunk(ctx, m, 1)
	to.Put(ctx, m.SHA256, 0, b, false)
	if n := to.heldBytes.Load(); n != 0 {
		t.Fatalf("a replaced running hash still counts %d bytes", n)
	}
}
