// Package fieldapp is what runs on an enumerator's device: the device store,
// the records an interview produces, and sync with a server. Device is its
// small API (open, records, sync) so a native mobile shell can bind it; the
// command line in cli.go is one user of it.
package fieldapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// Errors of the device layer.
var (
	ErrNoStore  = errors.New("no device store here: run 'fieldapp init --server URL' first")
	ErrNoServer = errors.New("no server configured: pass --server URL")
)

const settingServer = "server"

// Device is an open device store.
type Device struct {
	dir   string
	store *badgerstore.Store
	rep   *syncengine.Replica
	log   *slog.Logger
}

func storeDir(dir string) string { return filepath.Join(dir, "store") }

// Init creates a device store in dir with a fresh replica id and records the
// server to sync with. It refuses a dir that already holds a store.
func Init(ctx context.Context, dir, serverURL string) (*Device, error) {
	if _, err := os.Stat(filepath.Join(storeDir(dir), "MANIFEST")); err == nil {
		return nil, fmt.Errorf("init %s: %w: a device store is already there", dir, syncengine.ErrExists)
	}
	if serverURL != "" {
		if _, err := wire.Dial(serverURL, nil); err != nil {
			return nil, fmt.Errorf("init: --server: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	st, err := badgerstore.Open(badgerstore.Options{Dir: storeDir(dir), Profile: badgerstore.Device})
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if err := syncengine.Init(ctx, st, syncengine.NewReplicaID()); err != nil {
		st.Close()
		return nil, fmt.Errorf("init: %w", err)
	}
	d, err := open(ctx, dir, st)
	if err != nil {
		return nil, err
	}
	if err := d.rep.SetSetting(ctx, settingServer, serverURL); err != nil {
		d.Close()
		return nil, fmt.Errorf("init: %w", err)
	}
	return d, nil
}

// Open opens the device store in dir.
func Open(ctx context.Context, dir string) (*Device, error) {
	if _, err := os.Stat(filepath.Join(storeDir(dir), "MANIFEST")); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoStore)
	}
	st, err := badgerstore.Open(badgerstore.Options{Dir: storeDir(dir), Profile: badgerstore.Device})
	if err != nil {
		return nil, err
	}
	return open(ctx, dir, st)
}

func open(ctx context.Context, dir string, st *badgerstore.Store) (*Device, error) {
	rep, err := syncengine.Open(ctx, st, syncengine.Options{})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Device{dir: dir, store: st, rep: rep, log: slog.Default()}, nil
}

// Close closes the store.
func (d *Device) Close() error { return d.store.Close() }

// Replica returns the device's replica.
func (d *Device) Replica() *syncengine.Replica { return d.rep }

// Server returns the configured server URL.
func (d *Device) Server(ctx context.Context) (string, error) {
	return d.rep.Setting(ctx, settingServer)
}

// SetServer changes the server URL.
func (d *Device) SetServer(ctx context.Context, url string) error {
	if _, err := wire.Dial(url, nil); err != nil {
		return err
	}
	return d.rep.SetSetting(ctx, settingServer, url)
}

// SyncResult is what a sync moved, as the CLI and UI report it.
type SyncResult struct {
	Server        string   `json:"server"`
	Pushed        int      `json:"pushed"`
	Pulled        int      `json:"pulled"`
	Applied       int      `json:"applied"`
	RoundTrips    int      `json:"round_trips"`
	BytesSent     int64    `json:"bytes_sent"`
	BytesReceived int64    `json:"bytes_received"`
	DurationMS    float64  `json:"duration_ms"`
	ServerTime    string   `json:"server_time,omitempty"`
	ClockSkewMS   int64    `json:"clock_skew_ms"`
	ResentAll     bool     `json:"resent_all,omitempty"`
	Warnings      []string `json:"warnings,omitempty"`
}

// ClockWarning is how far the device clock may be from the server's before
// a sync warns: further off, conflict times and "today" answers mislead.
const ClockWarning = 5 * time.Minute

// Sync pushes then pulls with the configured server (or serverURL if not
// empty). progress, when set, sees the running totals.
func (d *Device) Sync(ctx context.Context, serverURL string, progress func(SyncResult)) (SyncResult, error) {
	if serverURL == "" {
		var err error
		if serverURL, err = d.Server(ctx); err != nil {
			return SyncResult{}, err
		}
	}
	if serverURL == "" {
		return SyncResult{}, ErrNoServer
	}
	var counter wire.Counter
	client, err := wire.Dial(serverURL, &counter)
	if err != nil {
		return SyncResult{}, err
	}
	defer client.Close()
	start := time.Now()
	result := func(st syncengine.SyncStats) SyncResult {
		r := SyncResult{
			Server: serverURL, Pushed: st.Pushed, Pulled: st.Pulled, Applied: st.Applied, RoundTrips: st.RoundTrips,
			BytesSent: counter.Sent.Load(), BytesReceived: counter.Received.Load(),
			DurationMS: float64(time.Since(start).Microseconds()) / 1000, ClockSkewMS: st.ClockSkew.Milliseconds(),
			ResentAll: st.Resent,
		}
		if !st.ServerTime.IsZero() {
			r.ServerTime = st.ServerTime.UTC().Format(time.RFC3339Nano)
		}
		if skew := st.ClockSkew.Abs(); st.RoundTrips > 0 && skew > ClockWarning {
			r.Warnings = append(r.Warnings, fmt.Sprintf(
				"this device's clock is %s %s the server's: set the date and time", skew.Round(time.Second), aheadBehind(st.ClockSkew)))
		}
		return r
	}
	opts := syncengine.SyncOptions{PageLimit: 500}
	if progress != nil {
		opts.Progress = func(st syncengine.SyncStats) { progress(result(st)) }
	}
	st, err := d.rep.Sync(ctx, client, opts)
	return result(st), err
}

func aheadBehind(skew time.Duration) string {
	if skew > 0 {
		return "behind" // the server is ahead of us
	}
	return "ahead of"
}

// RecordView is a record as the CLI, the UI and exports show it.
type RecordView struct {
	ID             string               `json:"id"`
	Form           string               `json:"form"`
	Fields         map[string]FieldView `json:"fields"`
	Deleted        bool                 `json:"deleted,omitempty"`
	DeleteConflict bool                 `json:"delete_conflict,omitempty"`
}

// FieldView is one answer: its provisional value and, when in conflict,
// every concurrent value.
type FieldView struct {
	Value     syncengine.Value `json:"value"`
	Conflicts []ConflictValue  `json:"conflicts,omitempty"`
}

// ConflictValue is one of the concurrent values of a field in conflict.
type ConflictValue struct {
	Value   syncengine.Value `json:"value"`
	Replica string           `json:"replica"`
	Time    string           `json:"time"`
}

// View builds the view of a record.
func View(r *syncengine.Record) RecordView {
	v := RecordView{ID: r.ID.String(), Form: r.Form, Fields: map[string]FieldView{}, Deleted: r.Deleted(), DeleteConflict: r.DeleteConflict()}
	for name, reg := range r.Fields {
		if syncengine.Reserved(name) || len(reg.Entries) == 0 {
			continue
		}
		cur, conflict := reg.Current()
		fv := FieldView{Value: cur.Value}
		if conflict {
			for _, e := range reg.Sorted() {
				fv.Conflicts = append(fv.Conflicts, ConflictValue{
					Value: e.Value, Replica: e.Dot.Replica.String(),
					Time: time.UnixMilli(e.HLC.Millis()).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
				})
			}
		}
		v.Fields[name] = fv
	}
	return v
}

// ConflictFields returns the names of v's fields in conflict, sorted.
func (v RecordView) ConflictFields() []string {
	var out []string
	for name, f := range v.Fields {
		if len(f.Conflicts) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
