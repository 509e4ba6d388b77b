package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/syncengine"
)

// metaHubCredential is where a hub keeps the credential its upstream
// issued at enrollment (a stolen hub is revoked at the upstream).
const metaHubCredential = "hub.credential"

// hubCredential returns the hub's credential at its upstream, enrolling
// with UpstreamEnroll on first start ("" when it has none and no code: it
// dials as an anonymous caller, which only an open upstream accepts).
func (s *Server) hubCredential(ctx context.Context) (string, error) {
	var cred []byte
	err := s.store.View(ctx, func(tx syncengine.ReadTx) (err error) { cred, err = tx.Meta(metaHubCredential); return })
	if err == nil {
		return string(cred), nil
	}
	if !errors.Is(err, syncengine.ErrNotFound) {
		return "", err
	}
	if s.cfg.UpstreamEnroll == "" {
		return "", nil
	}
	// The hub's key is not kept: its credential is what it presents.
	res, _, err := wire.Enroll(ctx, s.cfg.Upstream, s.cfg.UpstreamEnroll)
	if err != nil {
		return "", err
	}
	err = s.store.Update(ctx, func(tx syncengine.Tx) error { return tx.SetMeta(metaHubCredential, []byte(res.Credential)) })
	if err != nil {
		return "", err
	}
	s.log.Info("enrolled at the upstream as a hub", "upstream", s.cfg.Upstream, "project", res.Project, "team", res.Team)
	return res.Credential, nil
}

// upstream is the Connect client to a hub's upstream, as the relay needs it.
type upstream struct{ *wire.Client }

func (u upstream) SyncForms(ctx context.Context, reg *forms.Registry, st syncengine.ServerState, seen string) ([]string, string, error) {
	return wire.SyncForms(ctx, u.Client, reg, st, seen)
}

// startHub runs the hub's upstream loop: sync at every interval, and soon
// after a device pushed something new, so data moves on while a link is up.
func (s *Server) startHub() error {
	cred, err := s.hubCredential(context.Background())
	if err != nil {
		return fmt.Errorf("server: upstream %q: %w", s.cfg.Upstream, err)
	}
	var opts []wire.Option
	if cred != "" {
		opts = append(opts, wire.WithAuthorization("Device "+cred))
	}
	up, err := wire.Dial(s.cfg.Upstream, nil, opts...)
	if err != nil {
		return fmt.Errorf("server: upstream %q: %w", s.cfg.Upstream, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.hubPoke = make(chan struct{}, 1)
	s.hubDone = make(chan struct{})
	s.relay = s.svc.Relay(upstream{up})
	go s.hubLoop(ctx)
	return nil
}

func (s *Server) hubLoop(ctx context.Context) {
	defer close(s.hubDone)
	backoff := time.Second
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.hubPoke:
			// Let a burst of device pushes gather into one sync.
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
		wait := s.cfg.UpstreamInterval
		if err := s.SyncUpstream(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("upstream sync failed", "upstream", s.cfg.Upstream, "err", err, "retry_in", backoff)
			wait = min(backoff, s.cfg.UpstreamInterval)
			backoff = min(backoff*2, 5*time.Minute)
		} else {
			backoff = time.Second
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// SyncUpstream runs one sync with the upstream server (hubs only).
func (s *Server) SyncUpstream(ctx context.Context) error {
	if s.relay == nil {
		return fmt.Errorf("server: no upstream configured")
	}
	return s.relay.Sync(ctx)
}

// pokeHub is the use cases' hook after they wrote records.
func (s *Server) pokeHub() {
	if s.hubPoke == nil {
		return
	}
	select {
	case s.hubPoke <- struct{}{}:
	default:
	}
}
