package server

import (
	"context"
	"fmt"
	"time"

	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/syncengine"
)

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
	go func() {
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
	}()
	return nil
}

// SyncUpstream runs one sync with the upstream server (hubs only).
func (s *Server) SyncUpstream(ctx context.Context) error {
	if s.upstream == nil {
		return fmt.Errorf("server: no upstream configured")
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	st, err := s.rep.Sync(ctx, s.upstream, syncengine.SyncOptions{})
	if err == nil {
		// Forms flow down too: the hub's devices fetch them from the hub.
		var got []string
		got, s.upstreamDigest, err = wire.SyncForms(ctx, s.upstream, s.forms, st.Server, s.upstreamDigest)
		if len(got) > 0 {
			s.log.Info("forms fetched from upstream", "forms", got)
		}
	}
	s.mu.Lock()
	s.hubStat.Stats = st
	if err != nil {
		s.hubStat.LastErr = err.Error()
	} else {
		s.hubStat.LastSync, s.hubStat.LastErr = s.rep.Now().UTC(), ""
	}
	s.mu.Unlock()
	if err == nil && (st.Pushed > 0 || st.Applied > 0) {
		s.log.Info("upstream sync", "pushed", st.Pushed, "pulled", st.Applied, "round_trips", st.RoundTrips)
	}
	return err
}

func (s *Server) pokeHub() {
	if s.hubPoke == nil {
		return
	}
	select {
	case s.hubPoke <- struct{}{}:
	default:
	}
}
