package survey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/syncengine"
)

// What a project's devices keep (auth.DevicePolicy) is set at the server
// that enrolls them and sent with every pull page; a hub keeps the one its
// upstream sends for its project and passes it on, so a camp office
// cannot keep more on phones than the project decided.

// metaUpstreamPolicy: on a hub, the policy its upstream sent last.
const metaUpstreamPolicy = "policy.upstream"

// metaHoldings + device id: what the device said it holds.
const metaHoldings = "devholds/"

// ErrPolicyUpstream: a hub's devices follow the upstream's policy.
var ErrPolicyUpstream = errors.New("this hub takes its project's device policy from its upstream: set it there")

// Holdings is what a device says it holds after a sync.
type Holdings struct {
	Records int   `json:"records"` // records with answers on the device
	Unsent  int   `json:"unsent"`  // of those, with a write not yet acknowledged
	Removed int   `json:"removed"` // answers gone after send or retention
	At      int64 `json:"at"`      // server time of the report, Unix ms
}

// SetPolicy sets what a project's devices keep (a lead of the project).
func (s *Service) SetPolicy(ctx context.Context, p auth.Principal, project string, pol auth.DevicePolicy) error {
	if err := s.require(p, project, auth.Lead); err != nil {
		return err
	}
	if s.hub != nil {
		return ErrPolicyUpstream
	}
	return s.auth.SetProjectPolicy(ctx, Actor(p), project, pol)
}

// Policy returns what a project's devices keep (a lead of the project).
func (s *Service) Policy(ctx context.Context, p auth.Principal, project string) (auth.DevicePolicy, error) {
	if err := s.require(p, project, auth.Lead); err != nil {
		return auth.DevicePolicy{}, err
	}
	return s.devicePolicy(ctx, project)
}

// devicePolicy is the policy a device of project is sent.
func (s *Service) devicePolicy(ctx context.Context, project string) (auth.DevicePolicy, error) {
	var pol auth.DevicePolicy
	if s.hub != nil {
		err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
			b, err := tx.Meta(metaUpstreamPolicy)
			if errors.Is(err, syncengine.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &pol); err != nil {
				return fmt.Errorf("upstream policy: %w", syncengine.ErrCorrupt)
			}
			return nil
		})
		return pol, err
	}
	pr, err := s.auth.Project(ctx, project)
	if errors.Is(err, auth.ErrNotFound) {
		return pol, nil // a device of a project since removed keeps everything
	}
	if err != nil {
		return pol, err
	}
	return pr.Policy, nil
}

// keepUpstreamPolicy stores, on a hub, the policy its upstream sent.
func (s *Service) keepUpstreamPolicy(ctx context.Context, st syncengine.ServerState) error {
	b, err := json.Marshal(auth.DevicePolicy{DeleteAfterSend: st.DeleteAfterSend, RetentionDays: st.RetentionDays, TeamRecords: st.TeamRecords})
	if err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		if old, err := tx.Meta(metaUpstreamPolicy); err == nil && string(old) == string(b) {
			return nil
		}
		return tx.SetMeta(metaUpstreamPolicy, b)
	})
}

// ReportHoldings notes what a device says it holds (a device only).
func (s *Service) ReportHoldings(ctx context.Context, p auth.Principal, h Holdings) error {
	if p.Device == nil {
		return fmt.Errorf("%w: holdings are a device's report", auth.ErrDenied)
	}
	if h.Records < 0 || h.Unsent < 0 || h.Removed < 0 || h.Unsent > h.Records {
		return fmt.Errorf("%w: holdings %+v", auth.ErrInvalid, h)
	}
	h.At = s.now().UnixMilli()
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx syncengine.Tx) error { return tx.SetMeta(metaHoldings+p.Device.ID, b) })
}

// holdings returns what device id last said it holds (zero At: never).
func (s *Service) holdings(tx syncengine.ReadTx, id string) (Holdings, error) {
	var h Holdings
	b, err := tx.Meta(metaHoldings + id)
	if errors.Is(err, syncengine.ErrNotFound) {
		return h, nil
	}
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("device holdings: %w", syncengine.ErrCorrupt)
	}
	return h, nil
}
