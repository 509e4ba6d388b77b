package fieldapp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

func TestPIN(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "dev")
	for _, weak := range []string{"12", "0000", "2468", "000000", "123456", "9876543"} {
		if _, err := Init(ctx, dir, Config{PIN: weak}); !errors.Is(err, ErrWeakPIN) {
			t.Fatalf("weak PIN %q: %v", weak, err)
		}
	}
	if Exists(dir) {
		t.Fatal("a refused init left a store")
	}
	if _, err := Init(ctx, dir, Config{}); !errors.Is(err, ErrNoPIN) {
		t.Fatalf("no PIN: %v", err)
	}
	d, err := Init(ctx, dir, Config{PIN: "471108"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := d.Replica().Create(ctx, "f", []syncengine.FieldWrite{{Name: "q", Value: syncengine.TextValue("v")}})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()

	for i, want := range []time.Duration{time.Second, 2 * time.Second} {
		start := time.Now()
		_, err := Open(ctx, dir, "4712")
		if !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("wrong PIN %d: %v", i+1, err)
		}
		if took := time.Since(start); took < want {
			t.Fatalf("wrong PIN %d answered after %s, want a delay of %s", i+1, took, want)
		}
	}
	if l, err := readLock(dir); err != nil || l.Failures != 2 {
		t.Fatalf("failures on disk = %+v, %v", l, err)
	}
	if _, err := Open(ctx, dir, ""); !errors.Is(err, ErrNoPIN) {
		t.Fatalf("empty PIN: %v", err)
	}
	d, err = Open(ctx, dir, "471108")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if r, err := d.Replica().Record(ctx, id); err != nil || r.Values()["q"].Str != "v" {
		t.Fatalf("record after unlock: %v %v", r, err)
	}
	if l, _ := readLock(dir); l.Failures != 0 {
		t.Fatalf("the right PIN did not reset the count: %d", l.Failures)
	}
	if WrongPINDelay(20) != 30*time.Second {
		t.Fatalf("delay cap: %s", WrongPINDelay(20))
	}
}

func TestChangePIN(t *testing.T) {
	ctx := context.Background()
	newStore := func(t *testing.T) (string, syncengine.RecordID) {
		dir := filepath.Join(t.TempDir(), "dev")
		d, err := Init(ctx, dir, Config{PIN: "old-pin"})
		if err != nil {
			t.Fatal(err)
		}
		id, err := d.Replica().Create(ctx, "f", []syncengine.FieldWrite{{Name: "q", Value: syncengine.TextValue("kept")}})
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		return dir, id
	}
	opens := func(t *testing.T, dir, pin string, id syncengine.RecordID) error {
		t.Helper()
		d, err := Open(ctx, dir, pin)
		if err != nil {
			return err
		}
		defer d.Close()
		if r, err := d.Replica().Record(ctx, id); err != nil || r.Values()["q"].Str != "kept" {
			t.Fatalf("record after opening with %q: %v %v", pin, r, err)
		}
		return nil
	}

	t.Run("Change", func(t *testing.T) {
		dir, id := newStore(t)
		if err := ChangePIN(ctx, dir, "old-pin", "ab"); !errors.Is(err, ErrWeakPIN) {
			t.Fatalf("weak new PIN: %v", err)
		}
		if err := ChangePIN(ctx, dir, "not-it", "new-pin"); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("wrong old PIN: %v", err)
		}
		d, err := Open(ctx, dir, "old-pin")
		if err != nil {
			t.Fatal(err)
		}
		if err := ChangePIN(ctx, dir, "old-pin", "new-pin"); !errors.Is(err, badgerstore.ErrLocked) {
			t.Fatalf("change while the store is open: %v", err)
		}
		d.Close()
		if err := ChangePIN(ctx, dir, "old-pin", "new-pin"); err != nil {
			t.Fatal(err)
		}
		if err := opens(t, dir, "new-pin", id); err != nil {
			t.Fatalf("new PIN: %v", err)
		}
		if err := opens(t, dir, "old-pin", id); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("old PIN after the change: %v", err)
		}
	})

	// A crash after the new lock file was written but before the keys
	// were re-encrypted: the old PIN still works and the change is dropped.
	t.Run("CrashBeforeRekey", func(t *testing.T) {
		dir, id := newStore(t)
		l := &lockFile{Version: 1, KDF: "argon2id", Salt: []byte("0123456789abcdef"), Time: kdfTime, MemoryKiB: kdfMemory, Threads: kdfThreads}
		l.Check = checkOf(l.derive("new-pin"))
		if err := l.writeTo(dir, nextLockPath(dir)); err != nil {
			t.Fatal(err)
		}
		if err := opens(t, dir, "old-pin", id); err != nil {
			t.Fatalf("old PIN: %v", err)
		}
		if _, err := os.Stat(nextLockPath(dir)); !os.IsNotExist(err) {
			t.Fatal("the interrupted change was not dropped")
		}
	})

	// A crash after the keys were re-encrypted but before the lock file
	// was replaced: the old PIN gets a clear error, the new one works and
	// completes the change.
	t.Run("CrashAfterRekey", func(t *testing.T) {
		dir, id := newStore(t)
		cur, _ := readLock(dir)
		l := &lockFile{Version: 1, KDF: "argon2id", Salt: []byte("fedcba9876543210"), Time: kdfTime, MemoryKiB: kdfMemory, Threads: kdfThreads}
		newKey := l.derive("new-pin")
		l.Check = checkOf(newKey)
		if err := l.writeTo(dir, nextLockPath(dir)); err != nil {
			t.Fatal(err)
		}
		if err := badgerstore.Rekey(storeDir(dir), cur.derive("old-pin"), newKey); err != nil {
			t.Fatal(err)
		}
		if err := opens(t, dir, "old-pin", id); !errors.Is(err, ErrPINChanged) {
			t.Fatalf("old PIN after an interrupted change: %v", err)
		}
		if err := opens(t, dir, "new-pin", id); err != nil {
			t.Fatalf("new PIN: %v", err)
		}
		if _, err := os.Stat(nextLockPath(dir)); !os.IsNotExist(err) {
			t.Fatal("the change was not completed")
		}
		if err := opens(t, dir, "new-pin", id); err != nil {
			t.Fatalf("new PIN, again: %v", err)
		}
	})
}

// TestPINDelayHoldsAgainstHangUpsAndParallelGuesses (issue 13, finding
// 11): a guesser that hangs up before the delay, or sends guesses in
// parallel, gains nothing: every attempt waits for the last refusal's
// delay, and every wrong guess is counted.
func TestPINDelayHoldsAgainstHangUpsAndParallelGuesses(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "dev")
	d, err := Init(ctx, dir, Config{PIN: "right-pin-1"})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	// Hang up right after the check: the next attempt still waits.
	hang, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if _, err := Open(hang, dir, "wrong-pin-1"); err == nil {
		t.Fatal("a wrong PIN opened the store")
	}
	cancel()
	start := time.Now()
	if _, err := Open(ctx, dir, "wrong-pin-2"); !errors.Is(err, ErrWrongPIN) {
		t.Fatalf("second wrong PIN: %v", err)
	}
	if took := time.Since(start); took < 2500*time.Millisecond { // the rest of 1 s, then 2 s
		t.Fatalf("after a hang-up the next guess answered in %s", took)
	}
	// Parallel guesses are each counted.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			Open(pctx, dir, fmt.Sprintf("parallel-%d", i))
		}()
	}
	wg.Wait()
	l, err := readLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	// One was checked and counted; the others waited behind it and gave
	// up before the delay it set had passed, unchecked.
	if l.Failures != 3 {
		t.Fatalf("failures after parallel guesses: %d, want 3", l.Failures)
	}
}
