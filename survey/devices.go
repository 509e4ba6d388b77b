package survey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/syncengine"
)

const metaDevStat = "devstat/"

// ClockWarning is how far a device clock may be from the server's before
// the console warns: HLCs keep merges right whatever the clocks say, but
// times shown to people (and "latest visit" choices) come from them.
const ClockWarning = 2 * time.Minute

// SilentAfter is when a device that has not synced is marked silent.
const SilentAfter = 7 * 24 * time.Hour

// devStat is what the server saw of a device at its last contact.
type devStat struct {
	LastSync int64  `json:"last_sync"`             // server time, Unix ms
	Offset   int64  `json:"offset_ms"`             // device clock minus server clock
	Cursor   uint64 `json:"cursor"`                // the server log position it has pulled to
	Known    bool   `json:"clock_known,omitempty"` // the device sent its time
	Bundle   bool   `json:"bundle,omitempty"`      // the contact was a bundle (sync by file)
}

// DeviceState is a device as a lead sees it.
type DeviceState struct {
	auth.Device
	State    string    // active, revoked, wipe pending, wiped
	LastSync time.Time // zero: never
	ByBundle bool      // the last contact was a bundle (sync by file)
	Waiting  uint64    // changes of the server's log it has not pulled
	// Clock is the device clock minus the server's at its last sync
	// (ClockKnown false when it did not say).
	Clock      time.Duration
	ClockKnown bool
	Silent     bool     // no sync for SilentAfter (or since enrollment)
	Holds      Holdings // what it said it holds at its last report
}

// ClockWarn reports whether the device's clock is off by more than
// ClockWarning.
func (d DeviceState) ClockWarn() bool {
	return d.ClockKnown && (d.Clock > ClockWarning || d.Clock < -ClockWarning)
}

// Devices lists a project's devices ("" every project's: an admin only)
// with what the server saw of each.
func (s *Service) Devices(ctx context.Context, p auth.Principal, project string) ([]DeviceState, error) {
	if project == "" && (p.User == nil || !p.User.Admin) {
		return nil, fmt.Errorf("%w: name a project (only an admin lists every project's devices)", auth.ErrDenied)
	}
	if project != "" {
		if err := s.require(p, project, auth.Lead); err != nil {
			return nil, err
		}
	}
	devs, err := s.auth.Devices(ctx, project)
	if err != nil {
		return nil, err
	}
	var head uint64
	holds := make([]Holdings, len(devs))
	if err := s.store.View(ctx, func(tx syncengine.ReadTx) (err error) {
		for i, d := range devs {
			if holds[i], err = s.holdings(tx, d.ID); err != nil {
				return err
			}
		}
		head, err = tx.Head()
		return err
	}); err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]DeviceState, 0, len(devs))
	for i, d := range devs {
		ds := DeviceState{Device: d, State: deviceState(d), Holds: holds[i]}
		st, ok, err := s.stats.get(ctx, s.store, d.ID)
		if err != nil {
			return nil, err
		}
		if ok {
			ds.LastSync, ds.ByBundle = time.UnixMilli(st.LastSync), st.Bundle
			ds.Waiting = head - min(head, st.Cursor)
			ds.Silent = now.Sub(ds.LastSync) > SilentAfter
			ds.Clock, ds.ClockKnown = time.Duration(st.Offset)*time.Millisecond, st.Known
		} else {
			ds.Silent = now.Sub(time.UnixMilli(d.Enrolled)) > SilentAfter
		}
		out = append(out, ds)
	}
	return out, nil
}

func deviceState(d auth.Device) string {
	switch {
	case d.Wiped != 0:
		return "wiped"
	case d.Revoked:
		return "revoked"
	case d.Wipe:
		return "wipe pending"
	}
	return "active"
}

// EnrollmentCode makes a one-time code for a device of project (and team),
// valid for ttl (15 minutes when 0).
func (s *Service) EnrollmentCode(ctx context.Context, p auth.Principal, project, team string, ttl time.Duration, hub bool) (string, time.Time, error) {
	if err := s.require(p, project, auth.Lead); err != nil {
		return "", time.Time{}, err
	}
	if err := s.withinHub(project, team, hub); err != nil {
		return "", time.Time{}, err
	}
	if ttl <= 0 {
		ttl = 15 * time.Minute
	}
	if hub {
		return s.auth.NewHubCode(ctx, Actor(p), project, team, ttl)
	}
	return s.auth.NewEnrollmentCode(ctx, Actor(p), project, team, ttl)
}

// CollectDevice registers a collecting device for ODK Collect in a
// project and team (a lead of the project), returning it and its token.
func (s *Service) CollectDevice(ctx context.Context, p auth.Principal, project, team, name string) (auth.Device, string, error) {
	if err := s.require(p, project, auth.Lead); err != nil {
		return auth.Device{}, "", err
	}
	if err := s.withinHub(project, team, false); err != nil {
		return auth.Device{}, "", err
	}
	return s.auth.NewCollectDevice(ctx, Actor(p), project, team, name)
}

// DeviceAction revokes a device (refused from its next call) or asks it to
// wipe itself at its next sync; a lead of its project only.
func (s *Service) DeviceAction(ctx context.Context, p auth.Principal, id string, revoke, wipe bool) (*auth.Device, error) {
	d, err := s.auth.GetDevice(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.require(p, d.Project, auth.Lead); err != nil {
		return nil, err
	}
	return d, s.auth.SetDevice(ctx, Actor(p), id, revoke, wipe)
}

// deviceSeen notes a device's pull: when, where in the server's log it
// has pulled to, and how far its clock is from the server's. Nothing is
// read here: the sync path only records what the request carried.
func (s *Service) deviceSeen(id string, deviceTime int64, cursor uint64) {
	now := s.now().UnixMilli()
	st := devStat{LastSync: now, Cursor: cursor}
	if deviceTime != 0 {
		st.Offset, st.Known = deviceTime-now, true
	}
	s.stats.seen(id, st)
}

// bundleSeen notes a device's bundle (its clock is not known from one).
func (s *Service) bundleSeen(id string, cursor uint64) {
	s.stats.seen(id, devStat{LastSync: s.now().UnixMilli(), Cursor: cursor, Bundle: true})
}

// devStats keeps device contacts in memory and writes them to the store in
// the background: a sync must not wait for a bookkeeping write.
type devStats struct {
	mu    sync.Mutex
	dirty map[string]devStat
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	log   func(msg string, args ...any)
}

func newDevStats(store syncengine.Store, every time.Duration, log func(string, ...any)) *devStats {
	d := &devStats{dirty: map[string]devStat{}, stop: make(chan struct{}), done: make(chan struct{}), log: log}
	go func() {
		defer close(d.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				d.flush(store)
			case <-d.stop:
				d.flush(store)
				return
			}
		}
	}()
	return d
}

func (d *devStats) seen(id string, st devStat) {
	d.mu.Lock()
	d.dirty[id] = st
	d.mu.Unlock()
}

// flush writes the contacts seen since the last flush. A failed write
// puts them back for the next one (newer contacts win), and is logged.
func (d *devStats) flush(store syncengine.Store) {
	d.mu.Lock()
	batch := d.dirty
	d.dirty = map[string]devStat{}
	d.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	err := store.Update(context.Background(), func(tx syncengine.Tx) error {
		for id, st := range batch {
			b, err := json.Marshal(st)
			if err != nil {
				return err
			}
			if err := tx.SetMeta(metaDevStat+id, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		d.log("device stats not saved; retrying at the next flush", "devices", len(batch), "err", err)
		d.mu.Lock()
		for id, st := range batch {
			if _, newer := d.dirty[id]; !newer {
				d.dirty[id] = st
			}
		}
		d.mu.Unlock()
	}
}

// get returns the latest contact of device id (false if never seen).
func (d *devStats) get(ctx context.Context, store syncengine.Store, id string) (devStat, bool, error) {
	d.mu.Lock()
	st, ok := d.dirty[id]
	d.mu.Unlock()
	if ok {
		return st, true, nil
	}
	err := store.View(ctx, func(tx syncengine.ReadTx) error {
		b, err := tx.Meta(metaDevStat + id)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("device stats: %w", syncengine.ErrCorrupt)
		}
		return nil
	})
	if errors.Is(err, syncengine.ErrNotFound) {
		return st, false, nil
	}
	return st, err == nil, err
}

func (d *devStats) close() {
	d.once.Do(func() { close(d.stop) })
	<-d.done
}
