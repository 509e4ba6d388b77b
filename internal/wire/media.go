package wire

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

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

// Chunks in flight: on a fast link several at once (each on its own
// connection), so the next travels while the server commits the ones
// before; on a slow one a single chunk, so a cut link loses only the chunk
// it carried. The window doubles after a chunk that took under fastChunk
// and halves after one that took over slowChunk.
const (
	maxWindow = 16
	fastChunk = 200 * time.Millisecond
	slowChunk = time.Second
)

// putChunks sends the missing chunks, the last one alone once the others
// are stored (so the server can finish the file). On an error it waits for
// the chunks in flight (what they stored is kept) and sends no more.
func putChunks(ctx context.Context, c *Client, st *media.Store, m media.Manifest, req *tesserav1.StartUploadRequest,
	missing []uint32, progress func(int64)) (done bool, sent int64, err error) {
	type result struct {
		n    int64
		done bool
		took time.Duration
		err  error
	}
	put := func(i uint32, last bool) result {
		start := time.Now()
		data, err := st.Chunk(ctx, m, int(i))
		if err != nil {
			return result{err: err}
		}
		p := &tesserav1.PutChunkRequest{Record: req.Record, Sha256: req.Sha256, Index: i, Data: data, Last: last}
		for try := 0; ; try++ {
			pr, err := c.media.PutChunk(ctx, p)
			if connect.CodeOf(err) == connect.CodeDataLoss && try < 2 {
				continue // an altered chunk is sent again, twice at most
			}
			if err != nil {
				return result{err: err}
			}
			return result{n: int64(len(data)), done: pr.Done, took: time.Since(start)}
		}
	}
	results := make(chan result)
	window, inflight := 1, 0
	rest := missing[:len(missing)-1]
	for len(rest) > 0 || inflight > 0 {
		for ; err == nil && inflight < window && len(rest) > 0; inflight++ {
			go func(i uint32) { results <- put(i, false) }(rest[0])
			rest = rest[1:]
		}
		r := <-results
		inflight--
		if r.err != nil {
			err = cmp.Or(err, r.err)
			rest = nil
			continue
		}
		sent += r.n
		done = done || r.done
		progress(sent)
		switch {
		case r.took < fastChunk:
			window = min(2*window, maxWindow)
		case r.took > slowChunk:
			window = max(window/2, 1)
		}
	}
	if err != nil {
		return done, sent, err
	}
	r := put(missing[len(missing)-1], true)
	if r.err != nil {
		return done, sent, r.err
	}
	sent += r.n
	progress(sent)
	return done || r.done, sent, nil
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

// FetchFormFile keeps an attachment of a form version (key
// "form_id@version") in st, chunk by chunk as the server sends it: each
// chunk is checked against the manifest the server gives and kept as it
// arrives, so a cut connection resumes from the chunks st holds (up to 4
// rounds), and a file st already holds costs nothing.
func FetchFormFile(ctx context.Context, c *Client, st *media.Store, key, file string) error {
	if held, err := st.Has(ctx, file); err != nil || held {
		return err
	}
	var lastErr error
	for round := 0; round < 4; round++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m, err := formFileManifest(ctx, c, key, file)
		if err != nil {
			return err // the server refused it: retrying will not help
		}
		missing, err := st.Missing(ctx, m, 0)
		if err != nil || len(missing) == 0 {
			return err
		}
		done, err := receiveChunks(ctx, c, st, key, m, missing[0])
		if done {
			return nil
		}
		lastErr = err
	}
	return fmt.Errorf("media: attachment %s of %s did not complete: %w", file, key, cmp.Or(lastErr, media.ErrIncomplete))
}

// formFileManifest asks for the file's chunk hashes alone (from past its
// last chunk, the server sends only its first message).
func formFileManifest(ctx context.Context, c *Client, key, file string) (media.Manifest, error) {
	stream, err := c.media.GetMedia(ctx, &tesserav1.GetMediaRequest{Form: key, Sha256: rawHash(file), FromChunk: 1 << 31, Manifest: true})
	if err != nil {
		return media.Manifest{}, err
	}
	defer stream.Close()
	msg, err := stream.Receive()
	if err != nil {
		return media.Manifest{}, err
	}
	m := media.Manifest{SHA256: file, Size: msg.Size}
	for _, ch := range msg.Chunks {
		m.Chunks = append(m.Chunks, hex.EncodeToString(ch))
	}
	return m, m.Check(0)
}

// receiveChunks keeps the chunks of m the server sends from chunk from on;
// done when the file is complete in st.
func receiveChunks(ctx context.Context, c *Client, st *media.Store, key string, m media.Manifest, from int) (bool, error) {
	stream, err := c.media.GetMedia(ctx, &tesserav1.GetMediaRequest{Form: key, Sha256: rawHash(m.SHA256), FromChunk: uint32(from)})
	if err != nil {
		return false, err
	}
	defer stream.Close()
	for i := from; i < len(m.Chunks); i++ {
		msg, err := stream.Receive()
		if err != nil {
			return false, err
		}
		done, err := st.Put(ctx, m.SHA256, i, msg.Data, i == len(m.Chunks)-1)
		if err != nil || done {
			return done, err
		}
	}
	return false, nil
}
