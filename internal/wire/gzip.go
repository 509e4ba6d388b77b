package wire

import (
	"fmt"
	"io"
	"sync"

	"connectrpc.com/connect/v2"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
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

var (
	zstdCompressor = &Zstd{level: zstd.SpeedBetterCompression}
	zstdClient     = &Zstd{level: zstd.SpeedDefault}
	zstdBulk       = &Zstd{level: zstd.SpeedFastest}
)

// BulkCompressors is the set for streams of bulk data (exports): zstd at
// its fastest level. At the better level sync batches use, compression was
// a fifth of the server's CPU per exported row.
func BulkCompressors() []connect.Compressor { return []connect.Compressor{zstdBulk, gzipCompressor} }

// Compressors is the compression set servers of Tessera use, most
// preferred first.
func Compressors() []connect.Compressor { return []connect.Compressor{zstdCompressor, gzipCompressor} }

// ClientCompressors is the set Tessera's clients send with: zstd at its
// default level. A device's pushes are a tenth of PouchDB's bytes at any
// level, and the better level was the device's largest CPU cost in a push
// after reading its log; what a server sends (pages many devices pull,
// over the field's slow links) keeps the better level.
func ClientCompressors() []connect.Compressor {
	return []connect.Compressor{zstdClient, gzipCompressor}
}

// Zstd is a connect.Compressor for zstd (klauspost's, pooled). Tessera's
// clients prefer it: on sync batches it is both smaller and faster than
// gzip. Peers that only speak gzip still get gzip.
type Zstd struct {
	level   zstd.EncoderLevel
	writers sync.Pool
	readers sync.Pool
}

func (*Zstd) Name() string { return "zstd" }

func (z *Zstd) Compress(dst io.Writer) (io.WriteCloser, error) {
	if w, ok := z.writers.Get().(*zstdWriter); ok {
		w.Reset(dst)
		return w, nil
	}
	enc, err := zstd.NewWriter(dst, zstd.WithEncoderLevel(z.level), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(1<<20))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return &zstdWriter{Encoder: enc, pool: &z.writers}, nil
}

func (z *Zstd) Decompress(src io.Reader) (io.ReadCloser, error) {
	if r, ok := z.readers.Get().(*zstdReader); ok {
		if err := r.Reset(src); err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return r, nil
	}
	dec, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return &zstdReader{Decoder: dec, pool: &z.readers}, nil
}

type zstdWriter struct {
	*zstd.Encoder
	pool *sync.Pool
}

func (w *zstdWriter) Close() error {
	err := w.Encoder.Close()
	w.pool.Put(w)
	return err
}

type zstdReader struct {
	*zstd.Decoder
	pool *sync.Pool
}

func (r *zstdReader) Read(p []byte) (int, error) { return r.Decoder.Read(p) }

func (r *zstdReader) Close() error {
	r.pool.Put(r)
	return nil
}
