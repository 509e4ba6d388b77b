package server

import (
	"context"
	"fmt"
	"time"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/syncengine"
)

// upstream is the Connect client to a hub's upstream, as the relay needs it.
type upstream struct{ *wire.Client }

func (u upstream) SyncForms(ctx context.Context, reg *forms.Registry, st syncengine.ServerState, seen string) ([]string, string, error) {
	return wire.SyncForms(ctx, u.Client, reg, st, seen)
}

// startHub runs the hub's upstream loop: sync at every interval, and soon
// after a device pushed something new, so data moves on while a link is up.
func (s *Server) startHub() error {
	up, err := wire.Dial(s.cfg.Upstream, nil)
	if err != nil {
		return fmt.Errorf("server: upstream %q: %w", s.cfg.Upstream, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.hubPoke = make(chan struct{}, 1)
	s.hubDone = make(chan struct{})
	s.upstream = up
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
