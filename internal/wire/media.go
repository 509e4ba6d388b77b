package wire

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"connectrpc.com/connect/v2"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// ErrNotNamed: the server knows no answer of the record naming the file
// (it was replaced there, or the record was not pushed).
var ErrNotNamed = errors.New("the server's record does not name this file")

func rawHash(h string) []byte { b, _ := hex.DecodeString(h); return b }

// Upload sends a file of st that an answer of record id names, resuming
// from the chunks the server holds. sent counts the chunk bytes sent (0:
// the server had the file). progress, when set, sees the bytes sent so far.
// A chunk the server finds altered on the way is sent again (up to 3
// times); a server that refuses the file (too large, no right) refuses it
// before any chunk.
func Upload(ctx context.Context, c *Client, st *media.Store, id syncengine.RecordID, m media.Manifest, progress func(int64)) (sent int64, err error) {
	req := &tesserav1.StartUploadRequest{Record: id.String(), Sha256: rawHash(m.SHA256), Size: m.Size}
	for _, ch := range m.Chunks {
		req.Chunks = append(req.Chunks, rawHash(ch))
	}
	for round := 0; round < 4; round++ {
		res, err := c.media.StartUpload(ctx, req)
		if connect.CodeOf(err) == connect.CodeFailedPrecondition {
			return sent, fmt.Errorf("%w: %w", ErrNotNamed, err)
		}
		if err != nil {
			return sent, err
		}
		if len(res.Missing) == 0 {
			return sent, nil
		}
		done, n, err := putChunks(ctx, c, st, m, req, res.Missing, func(n int64) {
			if progress != nil {
				progress(sent + n)
			}
		})
		sent += n
		if err != nil || done {
			return sent, err
		}
	}
	return sent, fmt.Errorf("media: %s did not complete on the server", m.SHA256)
}

// uploadWindow chunks are in flight at once, each on its own connection:
// the next one travels while the server commits the one before, and a cut
// link loses the one chunk its connection carried.
const uploadWindow = 4

// putChunks sends the missing chunks, uploadWindow at a time, and the last
// one alone once the others are stored, so the server can finish the file.
// On an error it waits for the chunks in flight (what they stored is kept).
func putChunks(ctx context.Context, c *Client, st *media.Store, m media.Manifest, req *tesserav1.StartUploadRequest,
	missing []uint32, progress func(int64)) (done bool, sent int64, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, uploadWindow)
	var first error
	put := func(i uint32, last bool) bool {
		data, err := st.Chunk(ctx, m, int(i))
		var pr *tesserav1.PutChunkResponse
		if err == nil {
			p := &tesserav1.PutChunkRequest{Record: req.Record, Sha256: req.Sha256, Index: i, Data: data, Last: last}
			for try := 0; ; try++ {
				pr, err = c.media.PutChunk(ctx, p)
				if connect.CodeOf(err) != connect.CodeDataLoss || try == 2 {
					break // an altered chunk is sent again, twice at most
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if err == nil && pr.Done {
			done = true
		}
		if err != nil {
			if first == nil {
				first = err
			}
			return false
		}
		sent += int64(len(data))
		progress(sent)
		return true
	}
	for _, i := range missing[:len(missing)-1] {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			put(i, false)
		}()
	}
	wg.Wait()
	if first == nil {
		put(missing[len(missing)-1], true)
	}
	return done, sent, first
}

// Download writes a file an answer of record id names to w, from chunk
// from on (a resumed download passes the chunks it has). It returns the
// file's size and name as the server gives them.
func Download(ctx context.Context, c *Client, id syncengine.RecordID, file string, from int, w io.Writer) (size int64, name string, err error) {
	stream, err := c.media.GetMedia(ctx, &tesserav1.GetMediaRequest{Record: id.String(), Sha256: rawHash(file), FromChunk: uint32(from)})
	if err != nil {
		return 0, "", err
	}
	defer stream.Close()
	first := true
	for {
		msg, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return size, name, nil
		}
		if err != nil {
			return size, name, err
		}
		if first {
			size, name, first = msg.Size, msg.Name, false
		}
		if _, err := w.Write(msg.Data); err != nil {
			return size, name, err
		}
	}
}
