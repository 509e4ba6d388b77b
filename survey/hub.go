package survey

import (
	"context"
	"sync"
	"time"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// Upstream is the server a hub relays to: its sync protocol, and its forms.
type Upstream interface {
	syncengine.Remote
	// SyncForms copies the upstream's form versions reg lacks when the
	// digest a pull reported differs from seen; it returns what it
	// fetched and the digest to remember.
	SyncForms(ctx context.Context, reg *forms.Registry, st syncengine.ServerState, seen string) ([]string, string, error)
}

// HubStatus reports a hub's last sync with its upstream.
type HubStatus struct {
	LastSync time.Time            `json:"last_sync,omitzero"`
	LastErr  string               `json:"last_error,omitempty"`
	Stats    syncengine.SyncStats `json:"-"`
}

// Relay is a hub's link to its upstream: it relays its devices' changes up
// and the upstream's changes and forms down, one sync at a time.
type Relay struct {
	s      *Service
	up     Upstream
	syncMu sync.Mutex // one upstream sync at a time
	digest string     // forms digest of the upstream at the last fetch

	mu     sync.Mutex
	status HubStatus
}

// Relay returns the relay to up.
func (s *Service) Relay(up Upstream) *Relay { return &Relay{s: s, up: up} }

// Sync runs one sync with the upstream: push, pull, then its forms.
func (r *Relay) Sync(ctx context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	st, err := r.s.rep.Sync(ctx, r.up, syncengine.SyncOptions{})
	if err == nil {
		var got []string
		got, r.digest, err = r.up.SyncForms(ctx, r.s.forms, st.Server, r.digest)
		if len(got) > 0 {
			r.s.log.Info("forms fetched from upstream", "forms", got)
		}
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

// Status is the last sync's outcome.
func (r *Relay) Status() HubStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}
