// Package mediatest is the contract suite of the media store, run over
// every syncengine.Store implementation (memory, Badger, PostgreSQL).
package mediatest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// Data is n pseudo-random bytes from seed.
func Data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func hash(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// Run runs the suite; fresh returns an empty store.
func Run(t *testing.T, fresh func(t *testing.T) syncengine.Store) {
	ctx := context.Background()
	sizes := []int{0, 1, media.ChunkSize - 1, media.ChunkSize, media.ChunkSize + 1, 3*media.ChunkSize + 17}

	t.Run("AddOpen", func(t *testing.T) {
		s := media.New(fresh(t))
		for i, n := range sizes {
			data := Data(uint64(i), n)
			m, err := s.Add(ctx, bytes.NewReader(data), 0)
			if err != nil {
				t.Fatal(err)
			}
			if m.SHA256 != hash(data) || m.Size != int64(n) || m.Check(0) != nil {
				t.Fatalf("size %d: manifest %+v", n, m)
			}
			r, err := s.Open(ctx, m.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("size %d: read %d bytes, %v", n, len(got), err)
			}
		}
		if _, err := s.Open(ctx, hash([]byte("absent"))); !errors.Is(err, media.ErrNotFound) {
			t.Fatalf("absent file: %v", err)
		}
	})

	t.Run("AddStaged", func(t *testing.T) {
		st := fresh(t)
		s := media.New(st)
		for i, n := range sizes {
			data := Data(uint64(100+i), n)
			m, staged, err := s.AddStaged(ctx, bytes.NewReader(data), 0)
			if err != nil {
				t.Fatal(err)
			}
			if m.SHA256 != hash(data) || m.Size != int64(n) {
				t.Fatalf("size %d: manifest %+v", n, m)
			}
			if held, err := s.Has(ctx, m.SHA256); err != nil || held {
				t.Fatalf("size %d: the store holds a file whose end is only staged (%v)", n, err)
			}
			if i%2 == 0 {
				err = st.Update(ctx, func(tx syncengine.Tx) error { return staged.Write(tx) })
			} else {
				err = s.Commit(ctx, staged)
			}
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Open(ctx, m.SHA256)
			if err != nil {
				t.Fatalf("size %d: %v", n, err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("size %d: read %d bytes, %v", n, len(got), err)
			}
			// Written again (a resend): the same content, nothing changes.
			if err := st.Update(ctx, func(tx syncengine.Tx) error { return staged.Write(tx) }); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("AddTooLarge", func(t *testing.T) {
		s := media.New(fresh(t))
		data := Data(9, 2*media.ChunkSize)
		if _, err := s.Add(ctx, bytes.NewReader(data), media.ChunkSize); !errors.Is(err, media.ErrTooLarge) {
			t.Fatalf("got %v", err)
		}
		if ok, err := s.Has(ctx, hash(data)); ok || err != nil {
			t.Fatalf("a refused file is held: %v %v", ok, err)
		}
	})

	// Receive moves a file from one store to another as sync does, cut
	// after every cut chunks, and counts the chunks sent.
	receive := func(t *testing.T, from, to *media.Store, m media.Manifest, cut int) (sent int) {
		for round := 0; ; round++ {
			if round > 2*len(m.Chunks)+2 {
				t.Fatal("no progress")
			}
			missing, err := to.Missing(ctx, m, 0)
			if err != nil {
				t.Fatal(err)
			}
			if missing == nil {
				return sent
			}
			for k, i := range missing {
				if cut > 0 && k == cut {
					break // the link drops: ask again
				}
				b, err := from.Chunk(ctx, m, i)
				if err != nil {
					t.Fatal(err)
				}
				sent++
				done, err := to.Put(ctx, m.SHA256, i, b, k == len(missing)-1)
				if err != nil {
					t.Fatal(err)
				}
				if done {
					return sent
				}
			}
		}
	}

	t.Run("TransferResumesAndDeduplicates", func(t *testing.T) {
		from, to := media.New(fresh(t)), media.New(fresh(t))
		data := Data(3, 7*media.ChunkSize+5)
		m, err := from.Add(ctx, bytes.NewReader(data), 0)
		if err != nil {
			t.Fatal(err)
		}
		if sent := receive(t, from, to, m, 3); sent != len(m.Chunks) {
			t.Fatalf("sent %d chunks for %d", sent, len(m.Chunks))
		}
		r, err := to.Open(ctx, m.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(r); !bytes.Equal(got, data) {
			t.Fatal("received file differs")
		}
		if sent := receive(t, from, to, m, 0); sent != 0 {
			t.Fatalf("a held file cost %d chunks", sent)
		}
		// A file sharing all but its last chunk costs one chunk.
		other := append(bytes.Clone(data[:7*media.ChunkSize]), 1, 2, 3)
		m2, err := from.Add(ctx, bytes.NewReader(other), 0)
		if err != nil {
			t.Fatal(err)
		}
		if sent := receive(t, from, to, m2, 0); sent != 1 {
			t.Fatalf("shared chunks: sent %d", sent)
		}
	})

	t.Run("BadChunkRefused", func(t *testing.T) {
		from, to := media.New(fresh(t)), media.New(fresh(t))
		m, err := from.Add(ctx, bytes.NewReader(Data(4, media.ChunkSize+10)), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := to.Missing(ctx, m, 0); err != nil {
			t.Fatal(err)
		}
		b, _ := from.Chunk(ctx, m, 1)
		b[0] ^= 1
		if _, err := to.Put(ctx, m.SHA256, 1, b, true); !errors.Is(err, media.ErrBadChunk) {
			t.Fatalf("altered chunk: %v", err)
		}
		if _, err := to.Put(ctx, m.SHA256, 5, b, true); !errors.Is(err, media.ErrBadChunk) {
			t.Fatalf("chunk out of range: %v", err)
		}
		if sent := receive(t, from, to, m, 0); sent != 2 {
			t.Fatalf("sent %d", sent)
		}
	})

	t.Run("LyingManifestRefused", func(t *testing.T) {
		from, to := media.New(fresh(t)), media.New(fresh(t))
		a, _ := from.Add(ctx, bytes.NewReader(Data(5, 100)), 0)
		// Chunks of a, claimed to be another file.
		lie := a
		lie.SHA256 = hash([]byte("another file"))
		if _, err := to.Missing(ctx, lie, 0); err != nil {
			t.Fatal(err)
		}
		b, _ := from.Chunk(ctx, a, 0)
		if _, err := to.Put(ctx, lie.SHA256, 0, b, true); !errors.Is(err, media.ErrBadFile) {
			t.Fatalf("lying manifest: %v", err)
		}
		if ok, _ := to.Has(ctx, lie.SHA256); ok {
			t.Fatal("a file under a hash its bytes do not have")
		}
	})

	t.Run("AnyChunkOrder", func(t *testing.T) {
		// Chunks arrive in any order (several in flight at once), some
		// twice, and the file completes only when the last arrives.
		from, to := media.New(fresh(t)), media.New(fresh(t))
		data := Data(6, 9*media.ChunkSize+3)
		m, _ := from.Add(ctx, bytes.NewReader(data), 0)
		if _, err := to.Missing(ctx, m, 0); err != nil {
			t.Fatal(err)
		}
		order := []int{0, 3, 2, 1, 1, 7, 5, 4, 9, 8}
		for k, i := range order {
			b, _ := from.Chunk(ctx, m, i)
			done, err := to.Put(ctx, m.SHA256, i, b, false)
			if err != nil || done {
				t.Fatalf("chunk %d (%d sent): done %v, %v", i, k, done, err)
			}
		}
		b, _ := from.Chunk(ctx, m, 6)
		if done, err := to.Put(ctx, m.SHA256, 6, b, true); err != nil || !done {
			t.Fatalf("last chunk: done %v, %v", done, err)
		}
		r, err := to.Open(ctx, m.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(r); !bytes.Equal(got, data) {
			t.Fatal("received file differs")
		}
	})

	t.Run("ManifestSwappedMidway", func(t *testing.T) {
		// A sender starts with the true manifest, another replaces it with
		// one naming other chunks under the same hash: the file is never
		// completed with chunks that are not its bytes.
		from, to := media.New(fresh(t)), media.New(fresh(t))
		data := Data(7, 3*media.ChunkSize)
		m, _ := from.Add(ctx, bytes.NewReader(data), 0)
		if _, err := to.Missing(ctx, m, 0); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			b, _ := from.Chunk(ctx, m, i)
			if _, err := to.Put(ctx, m.SHA256, i, b, false); err != nil {
				t.Fatal(err)
			}
		}
		o, _ := from.Add(ctx, bytes.NewReader(Data(8, 3*media.ChunkSize)), 0)
		lie := media.Manifest{SHA256: m.SHA256, Size: m.Size, Chunks: []string{m.Chunks[0], m.Chunks[1], o.Chunks[2]}}
		if _, err := to.Missing(ctx, lie, 0); err != nil {
			t.Fatal(err)
		}
		b, _ := from.Chunk(ctx, o, 2)
		if _, err := to.Put(ctx, m.SHA256, 2, b, true); !errors.Is(err, media.ErrBadFile) {
			t.Fatalf("swapped manifest: %v", err)
		}
		if ok, _ := to.Has(ctx, m.SHA256); ok {
			t.Fatal("a file under a hash its bytes do not have")
		}
		if sent := receive(t, from, to, m, 0); sent != 1 {
			t.Fatalf("after the lie, the true file cost %d chunks (1 missing)", sent)
		}
		r, _ := to.Open(ctx, m.SHA256)
		if got, _ := io.ReadAll(r); !bytes.Equal(got, data) {
			t.Fatal("received file differs")
		}
	})

	t.Run("ManifestChecked", func(t *testing.T) {
		to := media.New(fresh(t))
		for _, m := range []media.Manifest{
			{SHA256: "zz", Size: 1, Chunks: []string{hash(nil)}},
			{SHA256: hash(nil), Size: 1, Chunks: nil},
			{SHA256: hash(nil), Size: -1},
			{SHA256: hash(nil), Size: 1, Chunks: []string{"x"}},
		} {
			if _, err := to.Missing(ctx, m, 0); !errors.Is(err, media.ErrBadRef) {
				t.Fatalf("%+v: %v", m, err)
			}
		}
		big := media.Manifest{SHA256: hash(nil), Size: 2 * media.ChunkSize, Chunks: []string{hash(nil), hash(nil)}}
		if _, err := to.Missing(ctx, big, media.ChunkSize); !errors.Is(err, media.ErrTooLarge) {
			t.Fatalf("over the limit: %v", err)
		}
	})
}
