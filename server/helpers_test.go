package server_test

import (
	"context"
	"net"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

type testServer struct {
	*server.Server
	URL  string
	Dir  string // the data folder ("" with a store of the test's own)
	stop func()
}

// startServer runs a real server on a loopback port until the test ends
// (or stop is called).
func startServer(t testing.TB, cfg server.Config) *testServer {
	t.Helper()
	if cfg.DataDir == "" && cfg.Store == nil {
		cfg.DataDir = filepath.Join(t.TempDir(), "server")
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	ts := &testServer{Server: srv, URL: "http://" + ln.Addr().String(), Dir: cfg.DataDir}
	stopped := false
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		srv.Close()
	}
	t.Cleanup(ts.stop)
	return ts
}

func newDevice(t *testing.T, url string) *fieldapp.Device {
	t.Helper()
	d, err := fieldapp.Init(context.Background(), filepath.Join(t.TempDir(), "device"), fieldapp.Config{Server: url, PIN: testPIN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func mustSync(t *testing.T, d *fieldapp.Device) fieldapp.SyncResult {
	t.Helper()
	res, err := d.Sync(context.Background(), "", nil)
	if err != nil {
		t.Fatalf("sync %s: %v", d.Replica().ID(), err)
	}
	return res
}

// snapshot is every record of a replica, as views, by id.
func snapshot(t *testing.T, r *syncengine.Replica) map[string]fieldapp.RecordView {
	t.Helper()
	out := map[string]fieldapp.RecordView{}
	err := r.Records(context.Background(), func(rec *syncengine.Record) error {
		out[rec.ID.String()] = fieldapp.View(rec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// states is every record's full merge state, for exact comparison.
func states(t *testing.T, r *syncengine.Replica) map[syncengine.RecordID]*syncengine.Record {
	t.Helper()
	out := map[syncengine.RecordID]*syncengine.Record{}
	if err := r.Records(context.Background(), func(rec *syncengine.Record) error { out[rec.ID] = rec; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func assertConverged(t *testing.T, reps ...*syncengine.Replica) {
	t.Helper()
	want := states(t, reps[0])
	for _, r := range reps[1:] {
		got := states(t, r)
		if len(got) != len(want) {
			t.Fatalf("replica %s has %d records, replica %s has %d", r.ID(), len(got), reps[0].ID(), len(want))
		}
		for id, rec := range want {
			if o := got[id]; o == nil || !o.Equal(rec) {
				t.Fatalf("record %s differs between %s and %s:\n%+v\n%+v", id, reps[0].ID(), r.ID(), fieldapp.View(rec), o)
			}
		}
	}
}

func logLen(t *testing.T, r *syncengine.Replica) uint64 {
	t.Helper()
	var n uint64
	if err := r.Store().View(context.Background(), func(tx syncengine.ReadTx) (err error) { n, err = tx.Head(); return }); err != nil {
		t.Fatal(err)
	}
	return n
}

func values(v fieldapp.FieldView) []string {
	var out []string
	for _, c := range v.Conflicts {
		out = append(out, c.Value.String())
	}
	sort.Strings(out)
	return out
}

func fw(kv ...string) []syncengine.FieldWrite {
	var out []syncengine.FieldWrite
	for i := 0; i < len(kv); i += 2 {
		out = append(out, syncengine.FieldWrite{Name: kv[i], Value: syncengine.ParseValue(kv[i+1])})
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testPIN unlocks the device stores tests create.
const testPIN = "246813"
