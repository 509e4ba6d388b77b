package server

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// A backup (surveyd --data DIR backup FILE) is Badger's own backup stream
// (every key's latest version) cut in frames of at most frameSize bytes.
// Badger writes it in plaintext, so the backup of an encrypted store is
// sealed frame by frame with AES-256-GCM under a key derived from the
// store's passphrase with the backup's own salt: it opens with that
// passphrase wherever it is restored, and holds no answer in the clear.
// Each frame's nonce is its number and its additional data says whether
// it is the last, so a truncated, reordered or altered backup is refused
// whole. A plain store's backup carries a SHA-256 per frame instead.

const (
	backupMagic = "tessera-backup 1\n"
	frameSize   = 1 << 20
)

// ErrBadBackup: the file is not a backup, or it was cut short or altered.
var ErrBadBackup = errors.New("not a whole Tessera backup")

type backupHeader struct {
	Encrypted bool     `json:"encrypted"`
	Key       *keyFile `json:"key,omitempty"`
}

// frames seals or checks frames.
type frames struct {
	aead cipher.AEAD // nil: plain, checked by SHA-256
	n    uint64
}

func newFrames(key []byte) (*frames, error) {
	if key == nil {
		return &frames{}, nil
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &frames{aead: g}, nil
}

func (f *frames) nonce() []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], f.n)
	return n
}

func lastFlag(last bool) []byte {
	if last {
		return []byte{1}
	}
	return []byte{0}
}

func (f *frames) seal(data []byte, last bool) []byte {
	defer func() { f.n++ }()
	if f.aead != nil {
		return f.aead.Seal(nil, f.nonce(), data, lastFlag(last))
	}
	sum := f.sum(data, last)
	return append(append([]byte{}, data...), sum...)
}

func (f *frames) sum(data []byte, last bool) []byte {
	h := sha256.New()
	h.Write(f.nonce())
	h.Write(lastFlag(last))
	h.Write(data)
	return h.Sum(nil)
}

func (f *frames) open(frame []byte, last bool) ([]byte, error) {
	defer func() { f.n++ }()
	if f.aead != nil {
		out, err := f.aead.Open(nil, f.nonce(), frame, lastFlag(last))
		if err != nil {
			return nil, fmt.Errorf("%w: frame %d does not open (altered, or cut short)", ErrBadBackup, f.n)
		}
		return out, nil
	}
	if len(frame) < sha256.Size {
		return nil, fmt.Errorf("%w: frame %d is short", ErrBadBackup, f.n)
	}
	data, sum := frame[:len(frame)-sha256.Size], frame[len(frame)-sha256.Size:]
	if subtle.ConstantTimeCompare(f.sum(data, last), sum) != 1 {
		return nil, fmt.Errorf("%w: frame %d does not match its checksum", ErrBadBackup, f.n)
	}
	return data, nil
}

// frameWriter cuts what is written into sealed frames: a length (with the
// last-frame bit) and the sealed bytes.
type frameWriter struct {
	w   *bufio.Writer
	f   *frames
	buf []byte
}

func (fw *frameWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(frameSize-len(fw.buf), len(p))
		fw.buf = append(fw.buf, p[:k]...)
		p = p[k:]
		if len(fw.buf) == frameSize {
			if err := fw.flush(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (fw *frameWriter) flush(last bool) error {
	sealed := fw.f.seal(fw.buf, last)
	hdr := uint32(len(sealed))
	if last {
		hdr |= 1 << 31
	}
	if err := binary.Write(fw.w, binary.BigEndian, hdr); err != nil {
		return err
	}
	_, err := fw.w.Write(sealed)
	fw.buf = fw.buf[:0]
	return err
}

// frameReader reads frames back; io.EOF only after the last one.
type frameReader struct {
	r    *bufio.Reader
	f    *frames
	buf  []byte
	done bool
}

func (fr *frameReader) Read(p []byte) (int, error) {
	for len(fr.buf) == 0 {
		if fr.done {
			return 0, io.EOF
		}
		var hdr uint32
		if err := binary.Read(fr.r, binary.BigEndian, &hdr); err != nil {
			return 0, fmt.Errorf("%w: it ends before its last frame", ErrBadBackup)
		}
		last, size := hdr&(1<<31) != 0, hdr&^(1<<31)
		if size > frameSize+64 {
			return 0, fmt.Errorf("%w: frame %d is too large", ErrBadBackup, fr.f.n)
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(fr.r, frame); err != nil {
			return 0, fmt.Errorf("%w: it ends inside frame %d", ErrBadBackup, fr.f.n)
		}
		data, err := fr.f.open(frame, last)
		if err != nil {
			return 0, err
		}
		fr.buf, fr.done = data, last
		if last {
			if _, err := fr.r.ReadByte(); err != io.EOF {
				return 0, fmt.Errorf("%w: bytes follow its last frame", ErrBadBackup)
			}
		}
	}
	n := copy(p, fr.buf)
	fr.buf = fr.buf[n:]
	return n, nil
}

// Backup writes a backup of the Badger store in dir (opened with key: nil
// for a plain store) to file, sealed under pass when key is set. The file
// appears whole or not at all (written beside it, then renamed). The
// server must not be running: Badger's folder is locked while it is.
func Backup(dir string, key []byte, pass, file string) (bytes int64, err error) {
	if !hasStore(dir) {
		return 0, fmt.Errorf("backup: %s holds no store", dir)
	}
	st, err := badgerstore.Open(badgerstore.Options{Dir: dir, Profile: badgerstore.Server, EncryptionKey: key})
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer st.Close()
	hdr := backupHeader{Encrypted: key != nil}
	var fkey []byte
	if key != nil {
		if hdr.Key, fkey, err = newKeyFile(pass); err != nil {
			return 0, fmt.Errorf("backup: %w", err)
		}
	}
	f, err := newFrames(fkey)
	if err != nil {
		return 0, err
	}
	tmp := file + ".partial"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(out, 1<<20)
	hb, _ := json.Marshal(hdr)
	if _, err := bw.WriteString(backupMagic + string(hb) + "\n"); err != nil {
		return 0, err
	}
	fw := &frameWriter{w: bw, f: f}
	if _, err := st.DB().Backup(fw, 0); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if err := fw.flush(true); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	if err := out.Sync(); err != nil {
		return 0, err
	}
	info, _ := out.Stat()
	if err := out.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, file); err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// BackupEncrypted reports whether a backup file is sealed (it needs the
// passphrase of the store it came from).
func BackupEncrypted(file string) (bool, error) {
	in, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer in.Close()
	hdr, err := readBackupHeader(bufio.NewReader(in))
	return hdr.Encrypted, err
}

func readBackupHeader(r *bufio.Reader) (backupHeader, error) {
	var hdr backupHeader
	magic := make([]byte, len(backupMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != backupMagic {
		return hdr, fmt.Errorf("%w: it does not begin as one", ErrBadBackup)
	}
	line, err := r.ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &hdr) != nil || (hdr.Encrypted && (hdr.Key == nil || !hdr.Key.valid())) {
		return hdr, fmt.Errorf("%w: its header is damaged", ErrBadBackup)
	}
	return hdr, nil
}

// Restore loads a backup into dir, which must hold no store yet. A sealed
// backup needs pass (the passphrase of the store it came from); the new
// store is encrypted with pass when the backup was sealed or encrypt is
// set, and plain otherwise.
func Restore(dir, file, pass string, encrypt bool) (err error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("restore: %s is not empty: restore into a new or empty folder", dir)
	}
	in, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	r := bufio.NewReaderSize(in, 1<<20)
	hdr, err := readBackupHeader(r)
	if err != nil {
		return fmt.Errorf("restore %s: %w", file, err)
	}
	var fkey []byte
	if hdr.Encrypted {
		if fkey, err = hdr.Key.open(pass); err != nil {
			return fmt.Errorf("restore %s: %w", file, err)
		}
	}
	f, err := newFrames(fkey)
	if err != nil {
		return err
	}
	var key []byte
	var kf *keyFile
	if hdr.Encrypted || encrypt {
		if kf, key, err = newKeyFile(pass); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// The folder was empty: on failure nothing half-restored is left to
	// be mistaken for a store.
	fail := func(err error) error {
		if entries, rerr := os.ReadDir(dir); rerr == nil {
			for _, e := range entries {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
		return fmt.Errorf("restore %s: %w", file, err)
	}
	if kf != nil {
		if err := writeKeyFile(dir, kf); err != nil {
			return fail(err)
		}
	}
	st, err := badgerstore.Open(badgerstore.Options{Dir: dir, Profile: badgerstore.Server, EncryptionKey: key})
	if err != nil {
		return fail(err)
	}
	lerr := st.DB().Load(&frameReader{r: r, f: f}, 256)
	if err := errors.Join(lerr, st.Close()); err != nil {
		return fail(err)
	}
	return nil
}
