// Package survey holds the server's use cases: publishing forms and
// listing them, reviewing, resolving and bulk resolving records, the record
// list with its filters and a record's page, exports (the pipeline behind a
// small sink), record scopes (the push guard and the pull filter),
// validation flags, devices and their stats, and the hub's relay. Every
// rule of who may do what, what is sensitive and which project a record
// belongs to is decided here, once. Audit entries are written in the
// action's own transaction: a failed audit write fails the action.
//
// It knows nothing of HTTP or protobuf: the Connect handlers and the
// console in package server are thin adapters over it.
package survey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// Errors of the use cases. Each wraps the domain error a transport maps to
// its code (invalid input, denied), and is told apart by the console.
var (
	ErrNeedProject = fmt.Errorf("%w: name a project you lead (only an admin publishes for every project)", auth.ErrDenied)
	ErrNeedReason  = fmt.Errorf("%w: give a reason", syncengine.ErrInvalid)
	ErrNeedValue   = fmt.Errorf("%w: pick one of the values or enter a corrected one", syncengine.ErrInvalid)
	ErrReviewState = fmt.Errorf("%w: state: received, has_issues, approved or rejected", syncengine.ErrInvalid)
	ErrFilter      = fmt.Errorf("%w: bad filter", syncengine.ErrInvalid)
	ErrCursor      = fmt.Errorf("%w: since: not a cursor from a previous export", syncengine.ErrInvalid)
	ErrAhead       = fmt.Errorf("%w: since: the cursor is ahead of this server", syncengine.ErrInvalid)
	ErrBulkRule    = fmt.Errorf("%w: bulk rule: name the form and the question, and keep the latest or the earliest value", syncengine.ErrInvalid)
)

// Config configures a Service.
type Config struct {
	// Open lets anonymous callers act (a developer's loopback server): the
	// transport lets them reach only the procedures an open server offers,
	// and they never receive sensitive answers.
	Open   bool
	Clock  func() time.Time
	Logger *slog.Logger
	// Changed, when set, is called after a use case wrote records (a hub
	// syncs with its upstream soon after).
	Changed func()
	// MediaMaxBytes bounds one file an answer names
	// (DefaultMediaMaxBytes when 0).
	MediaMaxBytes int64
}

// Service is the server's use cases over one store.
type Service struct {
	store    syncengine.Store
	rep      *syncengine.Replica
	forms    *forms.Registry
	auth     *auth.Service
	log      *slog.Logger
	open     bool
	changed  func()
	scopes   scopes
	bound    sync.Map   // device id → the replica it is bound to (bindReplica's cache)
	bundleMu sync.Mutex // creating the bundle keys once
	checker  *checker
	stats    *devStats
	hub      *HubEnrollment // set on a hub once HubIdentity ran
	media    *media.Store
	// collectCounters keeps each collecting replica's last counter once
	// read: only its device's submissions write it, one at a time
	// (collectLocks), so a submission need not wait for a store read.
	collectCounters sync.Map // syncengine.ReplicaID → uint64
	mediaMax        int64
	relaying        bool // a hub: files received go upstream too
}

// New opens the replica kept in store (initializing an empty store) with
// the hooks the use cases need. Close stops its background work; the
// store is the caller's to close after.
func New(ctx context.Context, store syncengine.Store, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MediaMaxBytes <= 0 {
		cfg.MediaMaxBytes = DefaultMediaMaxBytes
	}
	s := &Service{store: store, log: cfg.Logger, open: cfg.Open, changed: cfg.Changed,
		media: media.New(store), mediaMax: cfg.MediaMaxBytes}
	s.checker = startChecker(s)
	ropts := syncengine.Options{Clock: cfg.Clock, Finalized: s.checker.finalized, Resolved: s.auditResolutions, History: true,
		Erasing: s.erasing}
	rep, err := syncengine.Open(ctx, store, ropts)
	if errors.Is(err, syncengine.ErrNotInitialized) {
		if err = syncengine.Init(ctx, store, syncengine.NewReplicaID()); err == nil {
			rep, err = syncengine.Open(ctx, store, ropts)
		}
	}
	if err != nil {
		s.checker.stop()
		return nil, err
	}
	s.rep = rep
	s.forms = forms.NewRegistryWith(store, s.media) // attachments as media: chunked, sent by chunk
	s.auth = auth.New(store, rep.Now)
	s.stats = newDevStats(store, 30*time.Second, s.log.Warn)
	if err := s.restampLeftovers(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the re-check worker and writes the device stats.
func (s *Service) Close() {
	s.checker.stop()
	s.stats.close()
}

// Replica returns the server's replica.
func (s *Service) Replica() *syncengine.Replica { return s.rep }

// Forms returns the form registry.
func (s *Service) Forms() *forms.Registry { return s.forms }

// Auth returns accounts, devices and the audit trail.
func (s *Service) Auth() *auth.Service { return s.auth }

func (s *Service) now() time.Time { return s.rep.Now() }

func (s *Service) poke() {
	if s.changed != nil {
		s.changed()
	}
}

// Actor names a principal in the audit trail.
func Actor(p auth.Principal) string {
	switch {
	case p.User != nil:
		return p.User.Name
	case p.Device != nil:
		return "device:" + p.Device.ID
	}
	return "anonymous"
}

// auditResolutions records, in the merge's transaction, every conflict
// settled in the data the server merges (on a device, anywhere upstream).
func (s *Service) auditResolutions(tx syncengine.Tx, rs []syncengine.Resolution) error {
	for _, r := range rs {
		err := s.auth.AuditIn(tx, "replica:"+r.By.Replica.String(), "conflict-resolved",
			fmt.Sprintf("record %s field %s (%d concurrent values)", r.Record, r.Field, r.Values))
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	return nil
}
