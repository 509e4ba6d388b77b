// Package media holds the files that answers name (photos, audio, video,
// signatures, any file): content-addressed by SHA-256, cut in chunks that
// are content-addressed too, and kept in a syncengine.Store's meta space,
// so the device's encrypted Badger store, the server's Badger store and
// PostgreSQL all hold them the same way, in the same transactions as
// records. No file is ever whole in memory: it is written, checked, read
// and sent one chunk at a time.
//
// An answer names its file by a Ref ("sha256:HEX:SIZE:NAME"). Replacing a
// file is writing another Ref: two devices replacing one photo offline is
// an ordinary conflict of that answer.
package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tessera-survey/tessera/syncengine"
)

// ChunkSize is the unit of storage and transfer: small enough that a cut
// on a 64 kbit/s link loses at most half a minute, large enough that
// loopback moves hundreds of MB/s.
const ChunkSize = 256 << 10

// Errors.
var (
	ErrNotFound   = errors.New("no such file")
	ErrBadChunk   = errors.New("chunk does not match its hash")
	ErrBadFile    = errors.New("file does not match its hash")
	ErrIncomplete = errors.New("file is not complete yet")
	ErrTooLarge   = errors.New("file is too large")
	ErrBadRef     = errors.New("not a file reference")
)

// Ref is what an answer to a media question holds: the file's SHA-256
// (lower-case hex), its size and the name it was captured under. A Ref
// without a hash names a file not received yet (an ODK submission whose
// attachment comes in a later request).
type Ref struct {
	SHA256 string
	Size   int64
	Name   string
}

// Text is the answer's text: "sha256:HEX:SIZE:NAME", or NAME alone when
// the content is not known yet.
func (r Ref) Text() string {
	if r.SHA256 == "" {
		return r.Name
	}
	return "sha256:" + r.SHA256 + ":" + strconv.FormatInt(r.Size, 10) + ":" + r.Name
}

// ParseRef reads an answer's text. A text that is not "sha256:..." is a
// bare file name (ok, without hash); "" is no file (ErrBadRef).
func ParseRef(s string) (Ref, error) {
	if s == "" {
		return Ref{}, ErrBadRef
	}
	rest, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return Ref{Name: s}, nil
	}
	h, rest, ok1 := strings.Cut(rest, ":")
	n, name, ok2 := strings.Cut(rest, ":")
	size, err := strconv.ParseInt(n, 10, 64)
	if !ok1 || !ok2 || err != nil || size < 0 || !validHash(h) {
		return Ref{}, fmt.Errorf("%w: %.80q", ErrBadRef, s)
	}
	return Ref{SHA256: h, Size: size, Name: name}, nil
}

// FileName is the name to write the file under: the captured name's last
// element, made safe for any file system; the hash when it has none.
func (r Ref) FileName() string {
	name := path.Base(strings.ReplaceAll(r.Name, "\\", "/"))
	name = strings.Map(func(c rune) rune {
		if c < 0x20 || strings.ContainsRune(`<>:"/\|?*`, c) {
			return '_'
		}
		return c
	}, name)
	if name == "" || name == "." || name == ".." || name == "/" {
		return r.SHA256
	}
	return name
}

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Manifest lists a file's chunks: their hashes in order. A file's hash is
// the SHA-256 of all its bytes (not of the chunk list), so it is the hash
// any tool computes.
type Manifest struct {
	SHA256 string   `json:"sha256"`
	Size   int64    `json:"size"`
	Chunks []string `json:"chunks"`
}

// Check reports a manifest that cannot describe a file of at most max
// bytes (max ≤ 0: no bound).
func (m Manifest) Check(max int64) error {
	if !validHash(m.SHA256) || m.Size < 0 {
		return fmt.Errorf("%w: bad manifest", ErrBadRef)
	}
	if max > 0 && m.Size > max {
		return fmt.Errorf("%w: %s is more than the limit of %s", ErrTooLarge, Bytes(m.Size), Bytes(max))
	}
	if int64(len(m.Chunks)) != (m.Size+ChunkSize-1)/ChunkSize {
		return fmt.Errorf("%w: %d chunks for %d bytes", ErrBadRef, len(m.Chunks), m.Size)
	}
	for _, c := range m.Chunks {
		if !validHash(c) {
			return fmt.Errorf("%w: bad chunk hash", ErrBadRef)
		}
	}
	return nil
}

// ChunkLen is the length chunk i of the file must have.
func (m Manifest) ChunkLen(i int) int {
	if i == len(m.Chunks)-1 {
		return int(m.Size - int64(i)*ChunkSize)
	}
	return ChunkSize
}

// Ref names the file of m under name.
func (m Manifest) Ref(name string) Ref { return Ref{SHA256: m.SHA256, Size: m.Size, Name: name} }

// Bytes writes a size for people.
func Bytes(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Keys in the meta space. A file's manifest is under metaFile only once
// every chunk is held and the whole was checked; an upload in progress
// keeps the sender's manifest under metaPart.
const (
	metaChunk = "media.chunk/" // + chunk sha256 → bytes
	metaFile  = "media.file/"  // + file sha256 → manifest (complete)
	metaPart  = "media.part/"  // + file sha256 → manifest (being received)
)

// Store keeps files in a syncengine.Store.
type Store struct {
	st syncengine.Store
	// parts remembers the manifests of files being received, by their
	// stored bytes: Put checks each chunk against one, and decoding 800
	// hashes of JSON per chunk was a third of a server's upload work.
	mu        sync.Mutex
	parts     map[string]part
	runs      map[string]*running
	heldBytes atomic.Int64
}

type part struct {
	raw []byte
	m   Manifest
}

// New keeps files in st.
func New(st syncengine.Store) *Store { return &Store{st: st} }

// get reads a meta value: nil when absent.
func get(tx syncengine.ReadTx, key string) ([]byte, error) {
	b, err := tx.Meta(key)
	if errors.Is(err, syncengine.ErrNotFound) {
		return nil, nil
	}
	return b, err
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// Add reads a file to its end, one chunk per transaction, and keeps it:
// the last chunk in the commit that makes the file complete (an OpenRosa
// photo of one chunk costs one commit). More than max bytes (max > 0) is
// ErrTooLarge and keeps nothing new that names it (chunks already written
// are shared content, harmless).
func (s *Store) Add(ctx context.Context, r io.Reader, max int64) (Manifest, error) {
	m, st, err := s.AddStaged(ctx, r, max)
	if err != nil {
		return Manifest{}, err
	}
	return m, s.Commit(ctx, st)
}

// readBufs are AddStaged's read buffers: a submission's photo no longer
// costs the collector a chunk-sized buffer (20,000 submissions allocated
// 10 GB in them).
var readBufs = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}

// Staged is the end of a file read by AddStaged: its last chunk and its
// manifest, not written yet.
type Staged struct{ kvs []syncengine.KeyValue }

// AddStaged reads a file as Add does but leaves its last chunk and its
// manifest to the caller, to write in the transaction that names the file
// (Write) or on their own (Commit): a file of one chunk, a photo sent with
// an ODK Collect submission, then costs no commit of its own. Until then
// the store does not hold the file.
func (s *Store) AddStaged(ctx context.Context, r io.Reader, max int64) (Manifest, Staged, error) {
	var m Manifest
	file := sha256.New()
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	// held is the chunk read last, not written yet: sized to it (a 100 KB
	// photo holds 100 KB, not a chunk's 256 KiB), then reused.
	buf, held := *bp, []byte(nil)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			m.Size += int64(n)
			if max > 0 && m.Size > max {
				return Manifest{}, Staged{}, fmt.Errorf("%w: more than the limit of %s", ErrTooLarge, Bytes(max))
			}
			if len(held) > 0 {
				if err := s.putChunk(ctx, m.Chunks[len(m.Chunks)-1], held); err != nil {
					return Manifest{}, Staged{}, err
				}
				file.Write(held)
			}
			m.Chunks = append(m.Chunks, sum(buf[:n]))
			held = append(held[:0], buf[:n]...)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return Manifest{}, Staged{}, err
		}
	}
	// The file's hash takes each chunk once the next one shows it was not
	// the last: a file of one chunk (most photos a submission carries)
	// hashes as that chunk does, and is not read a second time.
	if len(m.Chunks) == 1 {
		m.SHA256 = m.Chunks[0]
	} else {
		file.Write(held)
		m.SHA256 = hex.EncodeToString(file.Sum(nil))
	}
	if m.Chunks == nil {
		m.Chunks = []string{}
	}
	b, _ := json.Marshal(m)
	kvs := []syncengine.KeyValue{{Key: metaFile + m.SHA256, Value: b}}
	if len(held) > 0 {
		// Chunk first: a store without SetMetaOnce writes them in order
		// in one transaction too.
		kvs = append([]syncengine.KeyValue{{Key: metaChunk + m.Chunks[len(m.Chunks)-1], Value: held}}, kvs...)
	}
	return m, Staged{kvs}, nil
}

// Commit writes a staged file's end in a commit of its own.
func (s *Store) Commit(ctx context.Context, st Staged) error {
	if len(st.kvs) == 0 {
		return nil
	}
	return s.setOnce(ctx, st.kvs...)
}

// Write writes a staged file's end in tx (what the store holds already is
// left as it is: the same content).
func (st Staged) Write(tx syncengine.Tx) error { return setIn(tx, st.kvs) }

// setOnce stores content-addressed entries not held yet, in one commit.
func (s *Store) setOnce(ctx context.Context, kvs ...syncengine.KeyValue) error {
	if o, ok := s.st.(syncengine.MetaOnceSetter); ok {
		return o.SetMetaOnce(ctx, kvs...)
	}
	return s.st.Update(ctx, func(tx syncengine.Tx) error { return setIn(tx, kvs) })
}

// setIn writes in tx the content-addressed entries it does not hold.
func setIn(tx syncengine.Tx, kvs []syncengine.KeyValue) error {
	for _, kv := range kvs {
		held, err := syncengine.HasMeta(tx, kv.Key)
		if err != nil {
			return err
		}
		if held {
			continue
		}
		if err := tx.SetMeta(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

// putChunk writes a chunk unless it is held already.
func (s *Store) putChunk(ctx context.Context, h string, data []byte) error {
	return s.setOnce(ctx, syncengine.KeyValue{Key: metaChunk + h, Value: data})
}

// Manifest returns a complete file's manifest (ErrNotFound if not held).
func (s *Store) Manifest(ctx context.Context, file string) (m Manifest, err error) {
	err = s.st.View(ctx, func(tx syncengine.ReadTx) error {
		m, err = manifestIn(tx, metaFile, file)
		return err
	})
	return m, err
}

// Has reports whether a complete file is held.
func (s *Store) Has(ctx context.Context, file string) (bool, error) {
	_, err := s.Manifest(ctx, file)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func manifestIn(tx syncengine.ReadTx, prefix, file string) (Manifest, error) {
	var m Manifest
	if !validHash(file) {
		return m, fmt.Errorf("%w: %.70q", ErrNotFound, file)
	}
	b, err := get(tx, prefix+file)
	if err != nil {
		return m, err
	}
	if b == nil {
		return m, fmt.Errorf("%w: %s", ErrNotFound, file)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("media manifest %s: %w", file, err)
	}
	return m, nil
}

// partIn is manifestIn(tx, metaPart, file) through s.parts: the decoded
// manifest is reused only while the stored bytes are the same.
func (s *Store) partIn(tx syncengine.ReadTx, file string) (Manifest, error) {
	b, err := get(tx, metaPart+file)
	if err != nil || b == nil || !validHash(file) {
		return manifestIn(tx, metaPart, file)
	}
	s.mu.Lock()
	p, ok := s.parts[file]
	s.mu.Unlock()
	if ok && bytes.Equal(p.raw, b) {
		return p.m, nil
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("media manifest %s: %w", file, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.parts) >= 64 || s.parts == nil {
		s.parts = map[string]part{} // files in flight at once: a few
	}
	s.parts[file] = part{b, m}
	return m, nil
}

// Missing starts (or resumes) receiving the file m describes: it keeps
// the sender's manifest and returns the indexes of the chunks not held
// yet, in order. nil: the file is complete here (then a sender sends
// nothing: deduplicated).
func (s *Store) Missing(ctx context.Context, m Manifest, max int64) ([]int, error) {
	if err := m.Check(max); err != nil {
		return nil, err
	}
	var missing []int
	err := s.st.Update(ctx, func(tx syncengine.Tx) error {
		missing = nil
		if b, err := get(tx, metaFile+m.SHA256); err != nil || b != nil {
			return err
		}
		for i, c := range m.Chunks {
			held, err := syncengine.HasMeta(tx, metaChunk+c)
			if err != nil {
				return err
			}
			if !held {
				missing = append(missing, i)
			}
		}
		b, _ := json.Marshal(m)
		return tx.SetMeta(metaPart+m.SHA256, b)
	})
	if err != nil {
		return nil, err
	}
	if missing == nil {
		// Every chunk is here (shared with other files, or sent before a
		// cut): check the whole and finish.
		if err := s.finish(ctx, m); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

// Put receives chunk i of a file Missing was told of. A chunk that does not
// match its hash is ErrBadChunk (the sender sends it again). last: the
// sender sends nothing more; the file is checked and, when every chunk is
// here, made complete (done). Not done after the last: ask Missing again.
func (s *Store) Put(ctx context.Context, file string, i int, data []byte, last bool) (done bool, err error) {
	return s.PutChecked(ctx, file, i, data, last, nil)
}

// PutChecked is Put after check (when not nil) passed in the snapshot Put
// reads the manifest from: a caller's rights on the file cost no
// transaction of their own.
func (s *Store) PutChecked(ctx context.Context, file string, i int, data []byte, last bool, check func(syncengine.ReadTx) error) (done bool, err error) {
	var m Manifest
	err = s.st.View(ctx, func(tx syncengine.ReadTx) (err error) {
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		if b, err := get(tx, metaFile+file); err != nil || b != nil {
			done = b != nil
			return err
		}
		m, err = s.partIn(tx, file)
		return err
	})
	if err != nil || done {
		return done, err
	}
	if i < 0 || i >= len(m.Chunks) {
		return false, fmt.Errorf("%w: chunk %d of %d", ErrBadChunk, i, len(m.Chunks))
	}
	if len(data) != m.ChunkLen(i) || sum(data) != m.Chunks[i] {
		return false, fmt.Errorf("%w: chunk %d of %s", ErrBadChunk, i, file)
	}
	if err := s.putChunk(ctx, m.Chunks[i], data); err != nil {
		return false, err
	}
	s.stored(ctx, m, i, data)
	if !last {
		return false, nil
	}
	err = s.finish(ctx, m)
	if errors.Is(err, ErrIncomplete) {
		return false, nil
	}
	return err == nil, err
}

// running is the hash of a file being received over its chunks in order,
// as far as they came: finishing a 200 MB file then reads back only what
// arrived out of order, or before a restart (reading it all back was a
// sixth of its upload).
type running struct {
	mu     sync.Mutex
	chunks []string  // the manifest followed
	next   int       // chunks hashed
	n      int64     // bytes hashed
	h      hash.Hash // over chunks [0, next)
	// held: chunks stored here after next, not hashed yet, with their
	// bytes while the store's budget lasts (nil: read back when due).
	held map[int][]byte
	dead bool // dropped: holds no bytes
}

// runningFor returns the running hash of m's file, a new one when there
// was none or it followed another manifest.
func (s *Store) runningFor(m Manifest) *running {
	var gone []*running
	defer func() {
		for _, r := range gone {
			s.drop(r)
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.runs[m.SHA256]
	if r == nil || !slices.Equal(r.chunks, m.Chunks) {
		if r != nil {
			gone = append(gone, r)
		}
		if len(s.runs) >= 64 || s.runs == nil {
			for _, o := range s.runs {
				gone = append(gone, o)
			}
			s.runs = map[string]*running{} // files in flight at once: a few
		}
		r = &running{chunks: m.Chunks, h: sha256.New(), held: map[int][]byte{}}
		s.runs[m.SHA256] = r
	}
	return r
}

func (s *Store) forget(file string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.runs, file)
}

// heldBudget bounds the out-of-order chunk bytes all running hashes keep:
// a chunk over it is read back from the store when its turn comes (each
// read waits for the commits in flight: a tenth of the upload speed).
const heldBudget = 64 << 20

// stored notes chunk i (data) of m as stored and hashes what follows in
// order. A chunk that cannot be read back leaves the rest to finish.
func (s *Store) stored(ctx context.Context, m Manifest, i int, data []byte) {
	r := s.runningFor(m)
	r.mu.Lock()
	defer r.mu.Unlock()
	if i != r.next {
		if _, ok := r.held[i]; i > r.next && !ok {
			var keep []byte
			if n := int64(len(data)); !r.dead && s.heldBytes.Add(n) <= heldBudget {
				keep = bytes.Clone(data)
			} else if !r.dead {
				s.heldBytes.Add(-n)
			}
			r.held[i] = keep
		}
		return
	}
	r.add(data)
	for {
		b, ok := r.held[r.next]
		if !ok {
			return
		}
		if b != nil {
			s.heldBytes.Add(-int64(len(b)))
		} else {
			var err error
			if b, err = s.chunk(ctx, r.chunks[r.next]); err != nil {
				delete(r.held, r.next)
				return
			}
		}
		r.add(b)
	}
}

func (r *running) add(b []byte) {
	delete(r.held, r.next)
	r.h.Write(b)
	r.n += int64(len(b))
	r.next++
}

// drop gives back the budget of what r keeps: r is done with, or was
// replaced (a caller holding it yet keeps no more bytes in it).
func (s *Store) drop(r *running) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.dropLocked(r)
}

func (s *Store) dropLocked(r *running) {
	for _, b := range r.held {
		s.heldBytes.Add(-int64(len(b)))
	}
	clear(r.held)
	r.dead = true
}

// finish checks that every chunk of m is held and that together they hash
// to m's file hash, then makes the file complete.
func (s *Store) finish(ctx context.Context, m Manifest) error {
	r := s.runningFor(m)
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.next < len(m.Chunks) {
		b, ok := r.held[r.next]
		var err error
		if ok && b != nil {
			s.heldBytes.Add(-int64(len(b)))
		} else {
			b, err = s.chunk(ctx, m.Chunks[r.next])
		}
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: chunk %d of %s", ErrIncomplete, r.next, m.SHA256)
		}
		if err != nil {
			return err
		}
		r.add(b)
	}
	s.forget(m.SHA256)
	s.dropLocked(r)
	if r.n != m.Size || hex.EncodeToString(r.h.Sum(nil)) != m.SHA256 {
		// The chunks are each right but not this file: a lying
		// manifest. Forget it; the sender starts again.
		err := s.st.Update(ctx, func(tx syncengine.Tx) error { return tx.DeleteMeta(metaPart + m.SHA256) })
		return errors.Join(fmt.Errorf("%w: %s", ErrBadFile, m.SHA256), err)
	}
	b, _ := json.Marshal(m)
	return s.st.Update(ctx, func(tx syncengine.Tx) error {
		if err := tx.SetMeta(metaFile+m.SHA256, b); err != nil {
			return err
		}
		return tx.DeleteMeta(metaPart + m.SHA256)
	})
}

func (s *Store) chunk(ctx context.Context, h string) (b []byte, err error) {
	err = s.st.View(ctx, func(tx syncengine.ReadTx) error {
		v, err := get(tx, metaChunk+h)
		if v == nil && err == nil {
			return fmt.Errorf("%w: chunk %s", ErrNotFound, h)
		}
		b = bytes.Clone(v)
		return err
	})
	return b, err
}

// Chunk returns chunk i of a complete file.
func (s *Store) Chunk(ctx context.Context, m Manifest, i int) ([]byte, error) {
	if i < 0 || i >= len(m.Chunks) {
		return nil, fmt.Errorf("%w: chunk %d of %d", ErrNotFound, i, len(m.Chunks))
	}
	return s.chunk(ctx, m.Chunks[i])
}

// Open reads a complete file, one chunk in memory at a time.
func (s *Store) Open(ctx context.Context, file string) (*Reader, error) {
	m, err := s.Manifest(ctx, file)
	if err != nil {
		return nil, err
	}
	return &Reader{s: s, ctx: ctx, m: m}, nil
}

// Reader reads a file chunk by chunk.
type Reader struct {
	s   *Store
	ctx context.Context
	m   Manifest
	i   int
	buf []byte
}

// Manifest is the file's.
func (r *Reader) Manifest() Manifest { return r.m }

func (r *Reader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.i >= len(r.m.Chunks) {
			return 0, io.EOF
		}
		b, err := r.s.Chunk(r.ctx, r.m, r.i)
		if err != nil {
			return 0, err
		}
		r.buf, r.i = b, r.i+1
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Delete forgets a file (its chunks stay: another file may share them).
func (s *Store) Delete(ctx context.Context, file string) error {
	return s.st.Update(ctx, func(tx syncengine.Tx) error {
		return errors.Join(tx.DeleteMeta(metaFile+file), tx.DeleteMeta(metaPart+file))
	})
}

// Refs calls fn for every file an answer of rec names (every concurrent
// value of an answer in conflict), skipping the fields skip reports (nil:
// none), until fn returns false.
func Refs(rec *syncengine.Record, skip func(field string) bool, fn func(field string, r Ref) bool) {
	for _, name := range rec.FieldNames() {
		if syncengine.Reserved(name) || (skip != nil && skip(name)) {
			continue
		}
		for _, e := range rec.Fields[name].Sorted() {
			if e.Value.Kind != syncengine.Text {
				continue
			}
			if r, err := ParseRef(e.Value.Str); err == nil && r.SHA256 != "" && !fn(name, r) {
				return
			}
		}
	}
}

// Names reports whether an answer of rec names file.
func Names(rec *syncengine.Record, file string) bool {
	found := false
	Refs(rec, nil, func(_ string, r Ref) bool {
		found = r.SHA256 == file
		return !found
	})
	return found
}

// types are the content types of the files phones capture, by extension:
// not left to the system's table, which a fresh machine may lack.
var types = map[string]string{
	".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif", ".webp": "image/webp",
	".heic": "image/heic", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".ogg": "audio/ogg",
	".oga": "audio/ogg", ".opus": "audio/ogg", ".wav": "audio/wav", ".amr": "audio/amr", ".weba": "audio/webm",
	".mp4": "video/mp4", ".3gp": "video/3gpp", ".webm": "video/webm", ".mov": "video/quicktime", ".mkv": "video/x-matroska",
	".pdf": "application/pdf", ".csv": "text/csv",
}

// ContentType is the type of a captured file by its name's extension;
// application/octet-stream when unknown.
func ContentType(name string) string {
	if t, ok := types[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return "application/octet-stream"
}

// Kind is how a file shows: image, audio, video or file.
func Kind(name string) string {
	t := ContentType(name)
	for _, k := range []string{"image", "audio", "video"} {
		if strings.HasPrefix(t, k+"/") {
			return k
		}
	}
	return "file"
}

// PutBytes keeps a file held in memory (a form's attachment): Add of its
// bytes. It makes a Store a forms.FileStore.
func (s *Store) PutBytes(ctx context.Context, data []byte) error {
	_, err := s.Add(ctx, bytes.NewReader(data), 0)
	return err
}

// Bytes reads a whole complete file (a form's attachment: bounded by the
// form's limits); one not held is also syncengine.ErrNotFound.
func (s *Store) Bytes(ctx context.Context, file string) ([]byte, error) {
	r, err := s.Open(ctx, file)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", syncengine.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
