package survey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// ErrUpstream is a hub's upstream that could not be reached or answered
// with a failure of its own (the hub retries; the caller may too).
var ErrUpstream = errors.New("the upstream server did not answer")

// Upstream is the server a hub relays to: its sync protocol, its forms,
// the devices of the hub's scope and the enrollment of new ones.
type Upstream interface {
	syncengine.Remote
	// SyncForms copies the upstream's form versions reg lacks when the
	// digest a pull reported differs from seen; it returns what it
	// fetched and the digest to remember.
	// Attachments go through ms, chunk by chunk and resumable.
	SyncForms(ctx context.Context, reg *forms.Registry, ms *media.Store, st syncengine.ServerState, seen string) ([]string, string, error)
	// Devices returns the devices of the hub's scope enrolled upstream,
	// telling it which of them wiped themselves at the hub.
	// reported are the devices the hub enrolled itself (with their flags).
	Devices(ctx context.Context, wiped []string, reported []auth.Device) ([]auth.Device, error)
	// Enroll spends an upstream enrollment code for a device (the device
	// signed the code with the key of pub); it returns the device and its
	// secret. A code the upstream refuses is auth.ErrCodeRejected.
	Enroll(ctx context.Context, code string, pub, sig []byte) (auth.Device, string, error)
	// UploadMedia sends a file of st that an answer of record id names,
	// resuming from what the upstream holds; ErrMediaNotNamed when no
	// answer of the upstream's record names it (any more).
	UploadMedia(ctx context.Context, st *media.Store, id syncengine.RecordID, m media.Manifest) error
	// BundleKeys returns the upstream's public bundle keys (a zero replica
	// when it has none).
	BundleKeys(ctx context.Context) (BundleKeys, error)
}

// HubEnrollment is what a hub keeps of its enrollment at its upstream: the
// credential it presents there and the scope it relays within.
type HubEnrollment struct {
	Credential string `json:"credential"`
	Scope
	// Key is the Ed25519 private key the hub enrolled with: it signs the
	// hub's bundles (kept in the hub's store, encrypted when it is).
	Key []byte `json:"key,omitempty"`
}

const metaHub = "hub.credential"

// HubIdentity returns the hub's enrollment at its upstream, enrolling with
// enroll on the first start (enroll nil: a hub with no code dials as an
// anonymous caller, which only an open upstream accepts). The hub's
// project is created here, so its admin can enroll devices into it.
func (s *Service) HubIdentity(ctx context.Context, enroll func(context.Context) (HubEnrollment, error)) (HubEnrollment, error) {
	var e HubEnrollment
	var b []byte
	err := s.store.View(ctx, func(tx syncengine.ReadTx) (err error) { b, err = tx.Meta(metaHub); return })
	switch {
	case err == nil:
		if json.Unmarshal(b, &e) != nil {
			e = HubEnrollment{Credential: string(b)} // kept before scopes were: unknown scope
		}
		s.hub = &e
		return e, nil
	case !errors.Is(err, syncengine.ErrNotFound):
		return e, err
	case enroll == nil:
		return e, nil
	}
	if e, err = enroll(ctx); err != nil {
		return e, err
	}
	if b, err = json.Marshal(e); err != nil {
		return e, err
	}
	if err := s.store.Update(ctx, func(tx syncengine.Tx) error { return tx.SetMeta(metaHub, b) }); err != nil {
		return e, err
	}
	if err := s.auth.CreateProject(ctx, "upstream", e.Project); err != nil && !errors.Is(err, auth.ErrExists) {
		return e, err
	}
	if err := s.auth.Audit(ctx, "upstream", "hub-enrolled", fmt.Sprintf("project %s team %s", e.Project, e.Team)); err != nil {
		return e, fmt.Errorf("audit: %w", err)
	}
	s.hub = &e
	return e, nil
}

// withinHub refuses enrolling a device outside the scope a hub relays:
// its records could never reach the upstream.
func (s *Service) withinHub(project, team string, hub bool) error {
	if s.hub == nil || s.hub.Credential == "" {
		return nil
	}
	switch {
	case hub:
		return fmt.Errorf("%w: a hub does not enroll hubs; mint hub codes at the central server", auth.ErrDenied)
	case s.hub.Project == "":
		return fmt.Errorf("%w: this hub does not know its scope: enroll it again with a new hub code", auth.ErrDenied)
	case !allows(s.hubDevice(), Scope{project, team}):
		return fmt.Errorf("%w: this hub relays project %s%s only", auth.ErrDenied, s.hub.Project, teamSuffix(s.hub.Team))
	}
	return nil
}

func teamSuffix(team string) string {
	if team == "" {
		return ""
	}
	return " (team " + team + ")"
}

// HubStatus reports a hub's last sync with its upstream.
type HubStatus struct {
	LastSync time.Time            `json:"last_sync,omitzero"`
	LastErr  string               `json:"last_error,omitempty"`
	Stats    syncengine.SyncStats `json:"-"`
}

// Relay is a hub's link to its upstream: it relays its devices' changes up
// and the upstream's changes, scopes, forms and devices down, one sync at
// a time.
type Relay struct {
	s      *Service
	up     Upstream
	syncMu sync.Mutex // one upstream sync at a time
	digest string     // forms digest of the upstream at the last fetch

	mu     sync.Mutex
	status HubStatus
}

// Relay returns the relay to up.
func (s *Service) Relay(up Upstream) *Relay {
	s.relaying = true // files received from now on are queued for upstream
	return &Relay{s: s, up: up}
}

// Sync runs one sync with the upstream: push, pull (scopes with each
// page), then its forms and the devices of the hub's scope.
func (r *Relay) Sync(ctx context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	st, err := r.s.rep.Sync(ctx, r.up, syncengine.SyncOptions{})
	if err == nil {
		err = r.s.keepUpstreamPolicy(ctx, st.Server)
	}
	if err == nil {
		var got []string
		got, r.digest, err = r.up.SyncForms(ctx, r.s.forms, r.s.media, st.Server, r.digest)
		if len(got) > 0 {
			r.s.log.Info("forms fetched from upstream", "forms", got)
		}
	}
	if err == nil && r.s.hub != nil && r.s.hub.Credential != "" {
		err = r.devices(ctx)
	}
	if err == nil {
		if kerr := r.keepUpstreamKeys(ctx); kerr != nil {
			r.s.log.Warn("the upstream's bundle keys were not fetched", "err", kerr)
		}
	}
	if err == nil {
		err = r.media(ctx)
	}
	r.mu.Lock()
	r.status.Stats = st
	if err != nil {
		r.status.LastErr = err.Error()
	} else {
		r.status.LastSync, r.status.LastErr = r.s.now().UTC(), ""
	}
	r.mu.Unlock()
	if err == nil && (st.Pushed > 0 || st.Applied > 0) {
		r.s.log.Info("upstream sync", "pushed", st.Pushed, "pulled", st.Applied, "round_trips", st.RoundTrips)
	}
	return err
}

// devices refreshes the copies of the upstream's devices (so they sign in
// here while the link is down) and reports the ones that wiped here.
func (r *Relay) devices(ctx context.Context) error {
	local, err := r.s.auth.Devices(ctx, "")
	if err != nil {
		return err
	}
	wiped, reported := hubReports(local)
	devs, err := r.up.Devices(ctx, wiped, reported)
	if err != nil {
		return err
	}
	return r.mirror(ctx, devs)
}

// hubReports splits a hub's devices into what it tells its upstream:
// upstream devices that wiped themselves here, and the devices it enrolled
// itself.
func hubReports(local []auth.Device) (wiped []string, reported []auth.Device) {
	for _, d := range local {
		switch {
		case d.Upstream && d.Wiped != 0:
			wiped = append(wiped, d.ID)
		case !d.Upstream && !d.Hub:
			reported = append(reported, d)
		}
	}
	return wiped, reported
}

// mirror keeps copies of the upstream's devices (by network or in a
// bundle's reply).
func (r *Relay) mirror(ctx context.Context, devs []auth.Device) error {
	// The upstream answers for the hub's scope; a copy outside it would let
	// a device sign in here that the hub never relays for.
	hub := r.s.hubDevice()
	in := devs[:0]
	for _, d := range devs {
		if allows(hub, Scope{d.Project, d.Team}) {
			in = append(in, d)
		}
	}
	n, err := r.s.auth.MirrorDevices(ctx, in)
	if n > 0 {
		r.s.log.Info("devices copied from upstream", "devices", n)
	}
	return err
}

// hubDevice is the hub as its upstream sees it (for the scope rule).
func (s *Service) hubDevice() *auth.Device {
	return &auth.Device{Project: s.hub.Project, Team: s.hub.Team, Hub: true}
}

// Status is the last sync's outcome.
func (r *Relay) Status() HubStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Enroll spends an enrollment code at the hub: one minted here, or one
// minted upstream, forwarded there (the link must be up). A device
// enrolled upstream within the hub's scope syncs here at once.
func (r *Relay) Enroll(ctx context.Context, code string, pub, sig []byte) (auth.Device, string, error) {
	known, err := r.s.auth.CodeKnown(ctx, code)
	if err != nil {
		return auth.Device{}, "", err
	}
	if known || r.s.hub == nil || r.s.hub.Credential == "" {
		d, secret, err := r.s.auth.Enroll(ctx, code, pub, sig)
		if err != nil {
			return auth.Device{}, "", err
		}
		return d, secret, nil
	}
	d, secret, err := r.up.Enroll(ctx, code, pub, sig)
	if err != nil {
		return auth.Device{}, "", err
	}
	d.PublicKey, d.CredHash, d.Enrolled = pub, auth.CredentialHash(secret), r.s.now().UnixMilli()
	if allows(r.s.hubDevice(), Scope{d.Project, d.Team}) {
		if _, err := r.s.auth.MirrorDevices(ctx, []auth.Device{d}); err != nil {
			return auth.Device{}, "", err
		}
	}
	return d, secret, nil
}

// RecordScope is a record's scope as it travels between a hub and its
// upstream.
type RecordScope struct {
	Record syncengine.RecordID
	Scope
}

// ScopesOf returns the scopes the hub stamped the records of a relayed
// batch with (records it holds no scope for are left out: the upstream
// stamps them with the hub's).
func (r *Relay) ScopesOf(ctx context.Context, cs []syncengine.Change) ([]RecordScope, error) {
	return r.s.scopesOf(ctx, cs)
}

// Stamp keeps the scopes the upstream sent with a page, before the page
// is applied: the upstream decides a record's scope, so its stamp replaces
// one the hub made (they differ only if a device lied to one of them).
func (r *Relay) Stamp(ctx context.Context, ss []RecordScope) error {
	if len(ss) == 0 {
		return nil
	}
	var changed []RecordScope
	err := r.s.store.Update(ctx, func(tx syncengine.Tx) error {
		changed = changed[:0]
		for _, rs := range ss {
			if rs.Project == "" {
				continue
			}
			v, ok, err := r.s.scopes.get(tx, rs.Record)
			if err != nil {
				return err
			}
			if ok && v == rs.Scope {
				continue
			}
			if ok {
				r.s.log.Warn("record scope replaced by the upstream's", "record", rs.Record, "was", v.String(), "now", rs.Scope.String())
			}
			if err := tx.SetMeta(metaScope+rs.Record.String(), rs.encode()); err != nil {
				return err
			}
			changed = append(changed, rs)
		}
		return nil
	})
	if err == nil {
		for _, rs := range changed {
			r.s.scopes.set(rs.Record, rs.Scope)
		}
	}
	return err
}

// String names a scope in messages.
func (v Scope) String() string { return strings.TrimSuffix(v.Project+"/"+v.Team, "/") }
