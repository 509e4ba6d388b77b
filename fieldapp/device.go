// Package fieldapp is the Device API: what runs on an enumerator's device,
// with no user interface of its own. It holds the encrypted device store
// and its PIN (unlock, change, wipe), the records and interviews the forms
// produce (answers typed by their question, repeats, conflicts settled),
// and sync with a server (forms fetched, progress). A native mobile shell
// binds it; the command line (fieldapp/cli) and the web UI (fieldapp/ui)
// are two of its users.
package fieldapp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/forms"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// Errors of the device layer.
var (
	ErrNoStore  = errors.New("no device store here: run 'fieldapp init --server URL' first")
	ErrNoServer = errors.New("no server configured: pass --server URL")
)

const (
	settingCredential  = "credential" // "ID:SECRET" from enrollment
	settingProject     = "project"
	settingTeam        = "team"
	settingDeviceKey   = "device.key" // Ed25519 private key, base64
	settingServer      = "server"
	settingFormsDigest = "forms.digest" // of the server's forms, at the last fetch
)

// Device is an open device store.
type Device struct {
	dir   string
	store *badgerstore.Store
	rep   *syncengine.Replica
	forms *forms.Registry
	log   *slog.Logger
	wiped bool
	// opened: how long Open took to derive the key and to open the store.
	opened OpenTimes
}

// OpenTimes is how long opening the store took, in its two parts.
type OpenTimes struct {
	Unlock time.Duration // deriving the key from the PIN (argon2id, on purpose slow)
	Store  time.Duration // opening Badger (replaying its logs) and the replica
}

// Opened returns how long Open took.
func (d *Device) Opened() OpenTimes { return d.opened }

func storeDir(dir string) string { return filepath.Join(dir, "store") }

// Config is what a new device store needs.
type Config struct {
	// Server is the URL of the server or hub to sync with.
	Server string
	// Enroll is an enrollment code from the project lead ("" for servers
	// that do not require sign-in).
	Enroll string
	// PIN (or passphrase) the store key is derived from; the key itself is
	// never written down.
	PIN string
}

// Init creates an encrypted device store in dir with a fresh replica id,
// the server to sync with and, when cfg.Enroll is set, enrollment: the
// device makes an Ed25519 key, proves it by signing the code, and keeps the
// credential the server returns. It refuses a dir that already holds a
// store; a failed init leaves no store behind.
func Init(ctx context.Context, dir string, cfg Config) (*Device, error) {
	if _, err := os.Stat(filepath.Join(storeDir(dir), "MANIFEST")); err == nil {
		return nil, fmt.Errorf("init %s: %w: a device store is already there", dir, syncengine.ErrExists)
	}
	if cfg.Server != "" {
		if _, err := wire.Dial(cfg.Server, nil); err != nil {
			return nil, fmt.Errorf("init: --server: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	os.Remove(wipedPath(dir))
	key, err := newKey(dir, cfg.PIN)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	fail := func(d *Device, err error) (*Device, error) {
		if d != nil {
			d.Close()
		}
		os.RemoveAll(storeDir(dir))
		os.Remove(lockPath(dir))
		return nil, err
	}
	st, err := badgerstore.Open(badgerstore.Options{Dir: storeDir(dir), Profile: badgerstore.Device, EncryptionKey: key})
	if err != nil {
		return fail(nil, fmt.Errorf("init: %w", err))
	}
	if err := syncengine.Init(ctx, st, syncengine.NewReplicaID()); err != nil {
		st.Close()
		return fail(nil, fmt.Errorf("init: %w", err))
	}
	d, err := open(ctx, dir, st)
	if err != nil {
		return fail(nil, err)
	}
	if err := d.rep.SetSetting(ctx, settingServer, cfg.Server); err != nil {
		return fail(d, fmt.Errorf("init: %w", err))
	}
	if cfg.Enroll != "" {
		if err := d.enroll(ctx, cfg.Server, cfg.Enroll); err != nil {
			return fail(d, err)
		}
	}
	return d, nil
}

func (d *Device) enroll(ctx context.Context, serverURL, code string) error {
	res, priv, err := wire.Enroll(ctx, serverURL, code)
	if err != nil {
		return err
	}
	for k, v := range map[string]string{settingCredential: res.Credential, settingProject: res.Project, settingTeam: res.Team,
		settingDeviceKey: base64.StdEncoding.EncodeToString(priv)} {
		if err := d.rep.SetSetting(ctx, k, v); err != nil {
			return err
		}
	}
	return nil
}

// Enrollment returns the device's project and team ("" when not enrolled).
func (d *Device) Enrollment(ctx context.Context) (project, team string, err error) {
	if project, err = d.rep.Setting(ctx, settingProject); err != nil {
		return "", "", err
	}
	team, err = d.rep.Setting(ctx, settingTeam)
	return project, team, err
}

// dial opens a client with the device's credential, if it has one.
func (d *Device) dial(ctx context.Context, serverURL string, counter *wire.Counter) (*wire.Client, error) {
	cred, err := d.rep.Setting(ctx, settingCredential)
	if err != nil {
		return nil, err
	}
	var opts []wire.Option
	if cred != "" {
		opts = append(opts, wire.WithAuthorization("Device "+cred))
	}
	return wire.Dial(serverURL, counter, opts...)
}

// Dial opens a client to serverURL with the device's credential (tools
// and tests that speak to the server as this device).
func (d *Device) Dial(ctx context.Context, serverURL string) (*wire.Client, error) {
	return d.dial(ctx, serverURL, nil)
}

// Exists reports whether dir holds a device store.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(storeDir(dir), "MANIFEST"))
	return err == nil
}

// Open unlocks the device store in dir with pin. A wrong PIN fails with
// ErrWrongPIN after a delay that grows with each wrong PIN in a row.
func Open(ctx context.Context, dir, pin string) (*Device, error) {
	if !Exists(dir) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoStore)
	}
	t0 := time.Now()
	key, err := storeKey(ctx, dir, pin)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	st, err := badgerstore.Open(badgerstore.Options{Dir: storeDir(dir), Profile: badgerstore.Device, EncryptionKey: key})
	if err != nil {
		return nil, err
	}
	d, err := open(ctx, dir, st)
	if err != nil {
		return nil, err
	}
	d.opened = OpenTimes{Unlock: t1.Sub(t0), Store: time.Since(t1)}
	return d, nil
}

func open(ctx context.Context, dir string, st *badgerstore.Store) (*Device, error) {
	ms := media.New(st)
	rep, err := syncengine.Open(ctx, st, syncengine.Options{Erasing: erasing(ms)})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Device{dir: dir, store: st, rep: rep, forms: forms.NewRegistryWith(st, ms), log: slog.Default()}, nil
}

// erasing is the device's syncengine.Options.Erasing: an erasure pulled
// from the server takes with it the files only the erased record named
// and the record's queue of files to upload.
func erasing(ms *media.Store) func(syncengine.Tx, map[syncengine.RecordID][]syncengine.Value) ([]string, error) {
	files := ms.Eraser(forms.AttachmentsIn)
	return func(tx syncengine.Tx, held map[syncengine.RecordID][]syncengine.Value) ([]string, error) {
		keys, err := files(tx, held)
		if err != nil {
			return nil, err
		}
		for id := range held {
			out, err := syncengine.DeleteMetaPrefix(tx, metaOutbox+id.String()+"/")
			if err != nil {
				return nil, err
			}
			keys = append(keys, out...)
		}
		return keys, nil
	}
}

// gcFilesPerSync bounds the value-log files a sync rewrites (4 MiB each).
const gcFilesPerSync = 8

// Close closes the store.
func (d *Device) Close() error {
	if d.wiped {
		return nil
	}
	// The value log keeps an edited record's previous values until it is
	// collected; a pass at close finds at most one file worth rewriting.
	// A failure loses nothing (the file stays as it was).
	if _, err := d.store.CollectGarbage(1); err != nil {
		d.log.Warn("device store: value log collection failed", "err", err)
	}
	return d.store.Close()
}

// Forms returns the forms on the device.
func (d *Device) Forms() *forms.Registry { return d.forms }

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
	Server        string  `json:"server"`
	Pushed        int     `json:"pushed"`
	Pulled        int     `json:"pulled"`
	Applied       int     `json:"applied"`
	RoundTrips    int     `json:"round_trips"`
	BytesSent     int64   `json:"bytes_sent"`
	BytesReceived int64   `json:"bytes_received"`
	DurationMS    float64 `json:"duration_ms"`
	ServerTime    string  `json:"server_time,omitempty"`
	ClockSkewMS   int64   `json:"clock_skew_ms"`
	ResentAll     bool    `json:"resent_all,omitempty"`
	// LogCompacted: acknowledged log entries dropped after the sync
	// (superseded edits a resend no longer needs).
	LogCompacted int `json:"log_compacted,omitempty"`
	// CompactMS: how long the compaction and the collection after it
	// took (included in duration_ms).
	CompactMS float64 `json:"compact_ms,omitempty"`
	Wiped     bool    `json:"wiped,omitempty"`
	// What the project's delete-after-send and retention settings did
	// (absent when the project has none).
	Kept         *KeepResult `json:"kept,omitempty"`
	FormsFetched []string    `json:"forms_fetched,omitempty"`
	// Files that answers name, sent after the records.
	Media    MediaResult `json:"media"`
	Warnings []string    `json:"warnings,omitempty"`
	// How long this process took to unlock the store (the PIN's key
	// derivation) and to open it, before the sync began; set by the
	// command line, which opens the store for the sync.
	UnlockMS float64 `json:"unlock_ms,omitempty"`
	OpenMS   float64 `json:"open_ms,omitempty"`
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
	client, err := d.dial(ctx, serverURL, &counter)
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
	// Full pages (1,000 changes) compress best; a page too large for the
	// device's transaction size is asked again in halves.
	opts := syncengine.SyncOptions{}
	if progress != nil {
		opts.Progress = func(st syncengine.SyncStats) { progress(result(st)) }
	}
	st, err := d.rep.Sync(ctx, client, opts)
	res := result(st)
	if err != nil {
		return res, err
	}
	seen, err := d.rep.Setting(ctx, settingFormsDigest)
	if err != nil {
		return res, err
	}
	var digest string
	if res.FormsFetched, digest, err = wire.SyncForms(ctx, client, d.forms, d.Media(), st.Server, seen); err == nil && digest != seen {
		err = d.rep.SetSetting(ctx, settingFormsDigest, digest)
	}
	if err == nil {
		if kerr := d.fetchBundleKeys(ctx, client); kerr != nil {
			res.Warnings = append(res.Warnings, "the server's bundle keys were not fetched: "+kerr.Error())
		}
	}
	if err == nil {
		var warn []string
		var mp func(MediaResult)
		if progress != nil {
			mp = func(m MediaResult) { r := res; r.Media = m; progress(r) }
		}
		res.Media, warn, err = d.uploadMedia(ctx, client, mp)
		res.Warnings = append(res.Warnings, warn...)
	}
	if err == nil && st.Server.Wipe {
		err = d.wipe(ctx, client)
		res.Wiped = err == nil
	} else if err == nil {
		res.Kept, err = d.keep(ctx, client, st.Server, st.ServerTime)
	}
	if err == nil && !res.Wiped {
		// Acknowledged entries a resend no longer needs leave the log, so
		// the store does not grow with every edit of the same answers.
		began := time.Now()
		var cs syncengine.CompactStats
		cs, err = d.rep.CompactLog(ctx)
		res.LogCompacted = cs.Dropped
		if err == nil && cs.Dropped > 0 {
			// Superseded edits and dropped entries leave their bytes in
			// the value log until it is collected: when compaction found
			// some, collect now. A failure loses nothing.
			if _, gerr := d.store.Reclaim(gcFilesPerSync); gerr != nil {
				d.log.Warn("device store: value log collection failed", "err", gerr)
			}
		}
		if cs.Records > 0 {
			res.CompactMS = float64(time.Since(began).Microseconds()) / 1000
		}
	}
	res.BytesSent, res.BytesReceived = counter.Sent.Load(), counter.Received.Load()
	res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return res, err
}

// wipe erases the device store on the server's request, once everything it
// held has been pushed and acknowledged, and tells the server.
func (d *Device) wipe(ctx context.Context, c *wire.Client) error {
	n, err := d.rep.Pending(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("wipe requested, but %d changes are not acknowledged yet: sync again", n)
	}
	if _, err := c.Auth().ReportWiped(ctx, &tesserav1.ReportWipedRequest{}); err != nil {
		return fmt.Errorf("wipe: %w", err)
	}
	d.store.Close()
	d.wiped = true
	os.Remove(lockPath(d.dir))
	if err := os.RemoveAll(storeDir(d.dir)); err != nil {
		return err
	}
	// Say so to whoever opens the app next (the UI's locked screen).
	return os.WriteFile(wipedPath(d.dir), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600)
}

func wipedPath(dir string) string { return filepath.Join(dir, "WIPED") }

// Wiped returns when the store in dir was wiped at the server's request
// ("" if it was not).
func Wiped(dir string) string {
	b, err := os.ReadFile(wipedPath(dir))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// FormKey resolves what a user typed as a record's form: "id@version" as
// is, a bare form id to its latest version on the device, anything else
// unchanged (forms need not be published to sync records).
func (d *Device) FormKey(ctx context.Context, form string) string {
	if strings.Contains(form, "@") {
		return form
	}
	if info, err := d.forms.Latest(ctx, form); err == nil {
		return info.Key()
	}
	return form
}

// Finalize computes a record's calculations and checks it against its
// form; a record with violations is left as it was and the violations are
// returned. Checks use the messages of lang.
func (d *Device) Finalize(ctx context.Context, id syncengine.RecordID, lang string) ([]forms.Violation, error) {
	rec, err := d.rep.Record(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Deleted() {
		return nil, fmt.Errorf("finalize %s: %w", id, syncengine.ErrDeleted)
	}
	f, err := d.forms.Form(ctx, rec.Form)
	if err != nil {
		return nil, fmt.Errorf("finalize %s: form %s is not on this device (sync to fetch it): %w", id, rec.Form, err)
	}
	ans := forms.Answers(rec.Values())
	in := forms.NewInstance(f, ans, time.Now)
	calc, err := in.Calculate()
	if err != nil {
		return nil, fmt.Errorf("finalize %s: %w", id, err)
	}
	now := time.Now()
	if vs := in.Validate(lang); len(vs) > 0 {
		var evs []auditEvent
		for _, v := range vs {
			if v.Code == "constraint" || v.Code == "required" {
				evs = append(evs, auditEvent{event: "constraint error", node: auditNode(f, v.Field), start: now, end: now})
			}
		}
		if w := auditWrite(f, ans[auditPath(f)], evs...); len(w) > 0 {
			if err := d.rep.Set(ctx, id, w); err != nil {
				return nil, err
			}
		}
		return vs, nil
	}
	var writes []syncengine.FieldWrite
	names := make([]string, 0, len(calc))
	for k := range calc {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if old, ok := rec.Values()[k]; !ok || !old.Equal(calc[k]) {
			writes = append(writes, syncengine.FieldWrite{Name: k, Value: calc[k]})
		}
	}
	in.Walk(func(n *forms.INode) bool {
		if n.Q.Kind == forms.KEnd {
			writes = append(writes, syncengine.FieldWrite{Name: n.Field, Value: syncengine.TextValue(time.Now().Format(time.RFC3339))})
		}
		return n.Q.Kind == forms.KGroup
	})
	writes = append(writes, syncengine.FieldWrite{Name: syncengine.StatusField, Value: syncengine.TextValue("finalized")})
	writes = append(writes, auditWrite(f, ans[auditPath(f)],
		auditEvent{event: "end screen", start: now, end: now}, auditEvent{event: "form save", start: now},
		auditEvent{event: "form finalize", start: now})...)
	return nil, d.rep.Set(ctx, id, writes)
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
	Status         string               `json:"status,omitempty"`
	Fields         map[string]FieldView `json:"fields"`
	Deleted        bool                 `json:"deleted,omitempty"`
	DeleteConflict bool                 `json:"delete_conflict,omitempty"`
	// Removed: its answers left this device after they were sent (the
	// project's delete-after-send or retention); fields holds only what
	// was written elsewhere since.
	Removed bool `json:"removed,omitempty"`
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
	if _, ok := r.Fields[syncengine.StatusField]; ok {
		v.Status = r.Status()
	}
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

// Settle compacts the store now (after a bulk import, while the wait is
// expected) rather than at the next unlock.
func (d *Device) Settle() error { return d.store.Settle() }
