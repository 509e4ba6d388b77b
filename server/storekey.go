package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// An encrypted server store (surveyd --encrypt) is Badger's own
// encryption at rest, with its key derived from a passphrase: a hub is a
// laptop in a camp office that may be stolen or seized. The key is never
// written down; keyFile holds how to derive it again (salt, cost) and a
// check value that tells a wrong passphrase from a damaged store.

// Errors of the store's passphrase.
var (
	ErrWrongPassphrase = errors.New("wrong passphrase for this encrypted store")
	ErrNoPassphrase    = errors.New("the store's passphrase is needed: type it at the terminal, or give TESSERA_STORE_PASSPHRASE or --passphrase-file")
	ErrWeakPassphrase  = errors.New("a store passphrase needs at least 12 characters (several words are best)")
)

// MinPassphrase is the shortest passphrase a new encrypted store takes.
// Unlike a phone's PIN, a server's passphrase is typed rarely and can be
// long, and a seized laptop can be attacked offline for as long as needed.
const MinPassphrase = 12

// keyFileName, in the data folder, marks the store as encrypted.
const keyFileName = "encryption.json"

type keyFile struct {
	Version   int    `json:"version"`
	KDF       string `json:"kdf"`
	Salt      []byte `json:"salt"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Check     []byte `json:"check"`
}

// argon2id cost of a server key: 64 MiB and 3 passes, a fraction of a
// second once per start, the same for every guess at a seized store.
const (
	serverKDFTime    = 3
	serverKDFMemory  = 64 << 10
	serverKDFThreads = 2
)

func (k *keyFile) derive(pass string) []byte {
	key := argon2.IDKey([]byte(pass), k.Salt, k.Time, k.MemoryKiB, k.Threads, 32)
	debug.FreeOSMemory()
	return key
}

func keyCheck(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("tessera server store key check"))
	return m.Sum(nil)
}

// newKeyFile derives a key from pass with a fresh salt.
func newKeyFile(pass string) (*keyFile, []byte, error) {
	if utf8.RuneCountInString(pass) < MinPassphrase {
		return nil, nil, ErrWeakPassphrase
	}
	k := &keyFile{Version: 1, KDF: "argon2id", Salt: make([]byte, 16), Time: serverKDFTime, MemoryKiB: serverKDFMemory, Threads: serverKDFThreads}
	if _, err := rand.Read(k.Salt); err != nil {
		return nil, nil, err
	}
	key := k.derive(pass)
	k.Check = keyCheck(key)
	return k, key, nil
}

// open derives the key from pass, or ErrWrongPassphrase.
func (k *keyFile) open(pass string) ([]byte, error) {
	if pass == "" {
		return nil, ErrNoPassphrase
	}
	key := k.derive(pass)
	if !hmac.Equal(keyCheck(key), k.Check) {
		return nil, ErrWrongPassphrase
	}
	return key, nil
}

func (k *keyFile) valid() bool {
	return k.KDF == "argon2id" && len(k.Salt) >= 8 && len(k.Check) == sha256.Size && k.Time > 0 && k.Time <= 64 &&
		k.MemoryKiB > 0 && k.MemoryKiB <= 1<<21 && k.Threads > 0
}

// readKeyFile reads dir's key file: nil (and no error) when the store is
// not encrypted.
func readKeyFile(dir string) (*keyFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, keyFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var k keyFile
	if err := json.Unmarshal(b, &k); err != nil || !k.valid() {
		return nil, fmt.Errorf("%s is damaged: cannot tell how to unlock this store", filepath.Join(dir, keyFileName))
	}
	return &k, nil
}

// writeKeyFile writes it durably: a temporary file synced, renamed over,
// the folder synced.
func writeKeyFile(dir string, k *keyFile) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, keyFileName)
	f, err := os.OpenFile(path+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // not everywhere (Windows): the rename is what matters
		d.Close()
	}
	return nil
}

// hasStore reports whether dir already holds a Badger store.
func hasStore(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "MANIFEST"))
	return err == nil
}

// StoreKey returns the key to open the Badger store in dir with: nil for
// a store that is not encrypted. An encrypted store (its key file is
// there) needs its passphrase whatever encrypt says; a new store is
// encrypted when encrypt is set, its key file written first; asking to
// encrypt an existing plain store is refused (back it up and restore it
// with --encrypt). pass is called only when a passphrase is needed, with
// confirm set for a new store.
func StoreKey(dir string, encrypt bool, pass func(confirm bool) (string, error)) ([]byte, error) {
	k, err := readKeyFile(dir)
	if err != nil {
		return nil, err
	}
	if k != nil {
		p, err := pass(false)
		if err != nil {
			return nil, err
		}
		return k.open(p)
	}
	if !encrypt {
		return nil, nil
	}
	if hasStore(dir) {
		return nil, fmt.Errorf("the store in %s is not encrypted: to encrypt it, back it up (surveyd --data %s backup FILE), then restore it into a new folder with --encrypt", dir, dir)
	}
	p, err := pass(true)
	if err != nil {
		return nil, err
	}
	k, key, err := newKeyFile(p)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return key, writeKeyFile(dir, k)
}
