package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/auth"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/survey"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// hubEnroll enrolls the hub at its upstream with its code. It presents
// its credential when it syncs; its key signs its bundles.
func (s *Server) hubEnroll(ctx context.Context) (survey.HubEnrollment, error) {
	res, key, err := wire.Enroll(ctx, s.cfg.Upstream, s.cfg.UpstreamEnroll)
	if err != nil {
		return survey.HubEnrollment{}, err
	}
	s.log.Info("enrolled at the upstream as a hub", "upstream", s.cfg.Upstream, "project", res.Project, "team", res.Team)
	return survey.HubEnrollment{Credential: res.Credential, Scope: survey.Scope{Project: res.Project, Team: res.Team}, Key: key}, nil
}

// upstream is the Connect client to a hub's upstream, as the relay needs it.
type upstream struct{ *wire.Client }

func (u upstream) SyncForms(ctx context.Context, reg *forms.Registry, ms *media.Store, st syncengine.ServerState, seen string) ([]string, string, error) {
	return wire.SyncForms(ctx, u.Client, reg, ms, st, seen)
}

func (u upstream) UploadMedia(ctx context.Context, st *media.Store, id syncengine.RecordID, m media.Manifest) error {
	_, err := wire.Upload(ctx, u.Client, st, id, m, nil)
	if errors.Is(err, wire.ErrNotNamed) {
		return fmt.Errorf("%w: %w", survey.ErrMediaNotNamed, err)
	}
	return err
}

func (u upstream) BundleKeys(ctx context.Context) (survey.BundleKeys, error) {
	res, err := u.Sync().BundleKeys(ctx, &tesserav1.BundleKeysRequest{})
	if connect.CodeOf(err) == connect.CodeUnimplemented {
		return survey.BundleKeys{}, nil
	}
	if err != nil {
		return survey.BundleKeys{}, fmt.Errorf("%w: bundle keys: %w", survey.ErrUpstream, err)
	}
	rep, err := wire.ReplicaFrom(res.Replica)
	if err != nil || len(res.SealKey) != 32 || len(res.SignKey) != 32 {
		return survey.BundleKeys{}, fmt.Errorf("%w: malformed bundle keys", survey.ErrUpstream)
	}
	return survey.BundleKeys{Replica: rep, Seal: res.SealKey, Sign: res.SignKey}, nil
}

func (u upstream) Devices(ctx context.Context, wiped []string, reported []auth.Device) ([]auth.Device, error) {
	res, err := u.Auth().HubDevices(ctx, &tesserav1.HubDevicesRequest{Wiped: wiped, Reported: wire.HubDevicesTo(reported)})
	if err != nil {
		return nil, fmt.Errorf("%w: devices: %w", survey.ErrUpstream, err)
	}
	return wire.HubDevicesFrom(res.Devices), nil
}

func (u upstream) Enroll(ctx context.Context, code string, pub, sig []byte) (auth.Device, string, error) {
	res, err := u.Auth().Enroll(ctx, &tesserav1.EnrollRequest{Code: code, PublicKey: pub, Signature: sig})
	switch connect.CodeOf(err) {
	case connect.CodePermissionDenied:
		return auth.Device{}, "", auth.ErrCodeRejected
	case connect.CodeInvalidArgument:
		return auth.Device{}, "", fmt.Errorf("%w: the device key does not sign the code", auth.ErrInvalid)
	}
	if err != nil {
		return auth.Device{}, "", fmt.Errorf("%w: enroll: %w", survey.ErrUpstream, err)
	}
	id, secret, ok := strings.Cut(res.Credential, ":")
	if !ok || id != res.DeviceId {
		return auth.Device{}, "", fmt.Errorf("%w: enroll: a credential that is not ID:SECRET", survey.ErrUpstream)
	}
	return auth.Device{ID: id, Project: res.Project, Team: res.Team}, secret, nil
}

// fromWire and toWire convert record scopes between the wire and the use
// cases.
func fromWire(ws []wire.Scope) []survey.RecordScope {
	out := make([]survey.RecordScope, len(ws))
	for i, w := range ws {
		out[i] = survey.RecordScope{Record: w.Record, Scope: survey.Scope{Project: w.Project, Team: w.Team}}
	}
	return out
}

func toWire(ss []survey.RecordScope) []wire.Scope {
	out := make([]wire.Scope, len(ss))
	for i, s := range ss {
		out[i] = wire.Scope{Record: s.Record, Project: s.Project, Team: s.Team}
	}
	return out
}

// startHub runs the hub's upstream loop: sync at every interval, and soon
// after a device pushed something new, so data moves on while a link is up.
func (s *Server) startHub() error {
	var enroll func(context.Context) (survey.HubEnrollment, error)
	if s.cfg.UpstreamEnroll != "" {
		enroll = s.hubEnroll
	}
	id, err := s.svc.HubIdentity(context.Background(), enroll)
	if err != nil {
		return fmt.Errorf("server: upstream %q: %w", s.cfg.Upstream, err)
	}
	var opts []wire.Option
	if id.Credential != "" {
		opts = append(opts, wire.WithAuthorization("Device "+id.Credential))
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
	up.SetScopeHooks(wire.ScopeHooks{
		Out: func(ctx context.Context, cs []syncengine.Change) ([]wire.Scope, error) {
			ss, err := s.relay.ScopesOf(ctx, cs)
			return toWire(ss), err
		},
		In: func(ctx context.Context, ws []wire.Scope) error { return s.relay.Stamp(ctx, fromWire(ws)) },
	})
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
