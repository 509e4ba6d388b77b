package wire

import (
	"fmt"
	"io"
	"sync"

	"connectrpc.com/connect/v2"
	"github.com/klauspost/compress/gzip"
)

// Gzip is a connect.Compressor producing standard gzip with klauspost's
// implementation at its fastest level: on sync batches it compresses about
// as well as the standard library's default level at several times the
// speed, and compression was the largest single cost of a push. The wire
// format is plain gzip, so any Connect, gRPC or gRPC-Web peer reads it.
// (klauspost/compress is already in the build through Badger.)
type Gzip struct {
	writers sync.Pool
	readers sync.Pool
}

var gzipCompressor = &Gzip{}

// Name implements connect.Compressor.
func (*Gzip) Name() string { return connect.CompressionNameGzip }

// Compress implements connect.Compressor.
func (g *Gzip) Compress(dst io.Writer) (io.WriteCloser, error) {
	if w, ok := g.writers.Get().(*gzipWriter); ok {
		w.Reset(dst)
		return w, nil
	}
	zw, err := gzip.NewWriterLevel(dst, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return &gzipWriter{Writer: zw, pool: &g.writers}, nil
}

// Decompress implements connect.Compressor.
func (g *Gzip) Decompress(src io.Reader) (io.ReadCloser, error) {
	if r, ok := g.readers.Get().(*gzipReader); ok {
		if err := r.Reset(src); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return r, nil
	}
	zr, err := gzip.NewReader(src)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return &gzipReader{Reader: zr, pool: &g.readers}, nil
}

type gzipWriter struct {
	*gzip.Writer
	pool *sync.Pool
}

func (w *gzipWriter) Close() error {
	err := w.Writer.Close()
	w.pool.Put(w)
	return err
}

type gzipReader struct {
	*gzip.Reader
	pool *sync.Pool
}

func (r *gzipReader) Close() error {
	err := r.Reader.Close()
	r.pool.Put(r)
	return err
}

// Compressors is the compression set clients and servers of Tessera use.
func Compressors() []connect.Compressor { return []connect.Compressor{gzipCompressor} }
