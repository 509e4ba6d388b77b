package fieldapp

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
)

func TestPIN(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "dev")
	if _, err := Init(ctx, dir, Config{PIN: "12"}); !errors.Is(err, ErrWeakPIN) {
		t.Fatalf("short PIN: %v", err)
	}
	if Exists(dir) {
		t.Fatal("a refused init left a store")
	}
	if _, err := Init(ctx, dir, Config{}); !errors.Is(err, ErrNoPIN) {
		t.Fatalf("no PIN: %v", err)
	}
	d, err := Init(ctx, dir, Config{PIN: "4711"})
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
	d, err = Open(ctx, dir, "4711")
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
