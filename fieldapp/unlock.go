package fieldapp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// Errors of unlocking.
var (
	ErrWrongPIN = errors.New("wrong PIN")
	ErrNoPIN    = errors.New("a PIN is needed to open the device store (enter it, or set TESSERA_PIN)")
	ErrWeakPIN  = errors.New("the PIN must have at least 6 characters and not be a run such as 000000 or 123456 (a passphrase is better)")
	// ErrPINChanged: the old PIN of a change a crash interrupted after the
	// store's keys were re-encrypted.
	ErrPINChanged = errors.New("this PIN was being changed when the app stopped, and the change went through: unlock with the new PIN")
)

// MinPIN is the shortest PIN accepted when a store is created or its PIN
// changed (stores made with a shorter one still unlock with it). With the
// shipped argon2id cost (about 80 ms a guess on one laptop core), the
// million 6-digit PINs take some 22 core-hours to try offline on a stolen
// device: hours, not minutes, on a rented machine. A passphrase is better.
const MinPIN = 6

// weakPIN: too short, or a run of one digit or consecutive digits, the
// first PINs any guesser tries.
func weakPIN(pin string) bool {
	if utf8.RuneCountInString(pin) < MinPIN {
		return true
	}
	same, up, down := true, true, true
	for i := 1; i < len(pin); i++ {
		a, b := pin[i-1], pin[i]
		if a < '0' || a > '9' || b < '0' || b > '9' {
			return false
		}
		same = same && a == b
		up = up && b == a+1
		down = down && b+1 == a
	}
	return same || up || down
}

// lockFile describes how the store's key is derived from the PIN. It holds
// no secret: a random salt, the argon2id cost, and a check value that tells
// a wrong PIN from a damaged store before Badger is asked to open (Badger
// would reject a wrong key too, but with a less useful error).
type lockFile struct {
	Version   int    `json:"version"`
	KDF       string `json:"kdf"`
	Salt      []byte `json:"salt"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Check     []byte `json:"check"`
	// Failures counts wrong PINs since the last right one; each makes the
	// next refusal wait longer.
	Failures int `json:"failures,omitempty"`
	// LastFailure is when the last wrong PIN was refused (Unix ms): no
	// attempt, right or wrong, is checked before its delay has passed, so
	// a client that hangs up early gains nothing.
	LastFailure int64 `json:"last_failure,omitempty"`
}

// argon2id cost for device keys: 32 MiB and 3 passes take about a tenth
// of a second on a laptop and under a second on a cheap phone, while
// making each guess at a stolen device's PIN cost the same. The memory is
// returned to the OS right after (debug.FreeOSMemory) so it does not stay
// in the app's footprint.
const (
	kdfTime    = 3
	kdfMemory  = 32 << 10
	kdfThreads = 1
)

func lockPath(dir string) string { return filepath.Join(dir, "unlock.json") }

// nextLockPath holds the lock file of a PIN change until the store's keys
// are re-encrypted for it.
func nextLockPath(dir string) string { return filepath.Join(dir, "unlock.json.next") }

func (l *lockFile) derive(pin string) []byte {
	key := argon2.IDKey([]byte(pin), l.Salt, l.Time, l.MemoryKiB, l.Threads, 32)
	debug.FreeOSMemory()
	return key
}

func checkOf(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("tessera device store key check"))
	return m.Sum(nil)
}

// newKey makes the lock file for a new store and returns the store key.
func newKey(dir, pin string) ([]byte, error) {
	if pin == "" {
		return nil, ErrNoPIN
	}
	if weakPIN(pin) {
		return nil, ErrWeakPIN
	}
	l, key, err := newLockFile(pin)
	if err != nil {
		return nil, err
	}
	if err := l.write(dir); err != nil {
		return nil, err
	}
	return key, nil
}

// newLockFile derives a store key from pin with a fresh salt and returns
// the lock file that finds it again.
func newLockFile(pin string) (*lockFile, []byte, error) {
	l := &lockFile{Version: 1, KDF: "argon2id", Salt: make([]byte, 16), Time: kdfTime, MemoryKiB: kdfMemory, Threads: kdfThreads}
	if _, err := rand.Read(l.Salt); err != nil {
		return nil, nil, err
	}
	key := l.derive(pin)
	l.Check = checkOf(key)
	return l, key, nil
}

func (l *lockFile) write(dir string) error { return l.writeTo(dir, lockPath(dir)) }

// writeTo writes the lock file at path durably: a temporary file synced,
// renamed over, the directory synced.
func (l *lockFile) writeTo(dir, path string) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	d.Sync() // not supported everywhere (Windows); the rename is what matters
	return nil
}

func readLock(dir string) (*lockFile, error) { return readLockAt(lockPath(dir)) }

func readLockAt(path string) (*lockFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var l lockFile
	if err := json.Unmarshal(b, &l); err != nil || l.KDF != "argon2id" || len(l.Salt) < 8 || len(l.Check) != sha256.Size ||
		l.Time == 0 || l.MemoryKiB == 0 || l.Threads == 0 || l.MemoryKiB > 1<<21 || l.Time > 64 {
		return nil, fmt.Errorf("%s is damaged: cannot tell how to unlock this store", path)
	}
	return &l, nil
}

// WrongPINDelay is how long a refusal waits after n wrong PINs in a row:
// one second, doubling, at most 30 seconds. The count is kept on disk, so
// restarting the app does not reset it.
func WrongPINDelay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := time.Second << min(n-1, 5)
	return min(d, 30*time.Second)
}

// storeKey derives the store key of dir from pin, or fails with
// ErrWrongPIN after the delay.
func storeKey(ctx context.Context, dir, pin string) ([]byte, error) {
	// One attempt at a time per store, in this process and across
	// processes: parallel guesses each read the count before any wrote it.
	mu, _ := pinLocks.LoadOrStore(filepath.Clean(dir), new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if _, err := os.Stat(lockPath(dir)); err != nil {
		return nil, err
	}
	unlock, err := lockAttempts(dir)
	if err != nil {
		return nil, fmt.Errorf("PIN attempts: %w", err)
	}
	defer unlock()
	l, err := readLock(dir)
	if err != nil {
		return nil, err
	}
	if pin == "" {
		return nil, ErrNoPIN
	}
	if l.Failures > 0 {
		if err := sleepCtx(ctx, time.Until(time.UnixMilli(l.LastFailure).Add(WrongPINDelay(l.Failures)))); err != nil {
			return nil, err
		}
	}
	if key, ok := finishPINChange(dir, l, pin); ok {
		return key, nil
	}
	key := l.derive(pin)
	if hmac.Equal(checkOf(key), l.Check) {
		if _, err := os.Stat(nextLockPath(dir)); err == nil {
			return nil, ErrPINChanged
		}
		if l.Failures != 0 {
			l.Failures = 0
			if err := l.write(dir); err != nil {
				return nil, err
			}
		}
		return key, nil
	}
	l.Failures++
	l.LastFailure = time.Now().UnixMilli()
	if err := l.write(dir); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, WrongPINDelay(l.Failures)); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w (%d wrong in a row; each waits longer)", ErrWrongPIN, l.Failures)
}

// pinLocks serializes PIN attempts per store directory.
var pinLocks sync.Map

// sleepCtx waits d (nothing if d <= 0) unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finishPINChange settles a PIN change a crash interrupted: if the store's
// keys were re-encrypted for the new PIN and pin is that PIN, the change is
// completed and its key returned; if they were not, the change is dropped
// (the old PIN stays).
func finishPINChange(dir string, cur *lockFile, pin string) ([]byte, bool) {
	next, err := readLockAt(nextLockPath(dir))
	if err != nil {
		return nil, false
	}
	if key := next.derive(pin); hmac.Equal(checkOf(key), next.Check) && badgerstore.CheckKey(storeDir(dir), key) == nil {
		next.Failures = 0
		if next.write(dir) == nil {
			os.Remove(nextLockPath(dir))
			return key, true
		}
		return nil, false
	}
	if key := cur.derive(pin); hmac.Equal(checkOf(key), cur.Check) && badgerstore.CheckKey(storeDir(dir), key) == nil {
		os.Remove(nextLockPath(dir))
	}
	return nil, false
}

// ChangePIN re-encrypts the store's keys for newPIN after checking oldPIN
// (a wrong one is refused with the usual delay). The store must not be open
// anywhere (ErrLocked otherwise). The data is not rewritten: Badger's data
// keys are sealed again with the new key, in a few milliseconds. A crash
// midway leaves exactly one of the two PINs working.
func ChangePIN(ctx context.Context, dir, oldPIN, newPIN string) error {
	if !Exists(dir) {
		return fmt.Errorf("%s: %w", dir, ErrNoStore)
	}
	if newPIN == "" {
		return ErrNoPIN
	}
	if weakPIN(newPIN) {
		return ErrWeakPIN
	}
	oldKey, err := storeKey(ctx, dir, oldPIN)
	if err != nil {
		return err
	}
	l, newKey, err := newLockFile(newPIN)
	if err != nil {
		return err
	}
	if err := l.writeTo(dir, nextLockPath(dir)); err != nil {
		return fmt.Errorf("change PIN: %w", err)
	}
	if err := badgerstore.Rekey(storeDir(dir), oldKey, newKey); err != nil {
		os.Remove(nextLockPath(dir))
		return fmt.Errorf("change PIN: %w", err)
	}
	if err := l.write(dir); err != nil {
		return fmt.Errorf("change PIN: %w (the new PIN works; unlock with it to finish)", err)
	}
	os.Remove(nextLockPath(dir))
	return nil
}

// CheckPIN reports whether pin unlocks the store in dir (ErrWrongPIN after
// the delay if not), without opening it: a second tab joining a session,
// or a PIN asked again before settling a conflict.
func CheckPIN(ctx context.Context, dir, pin string) error {
	_, err := storeKey(ctx, dir, pin)
	return err
}
