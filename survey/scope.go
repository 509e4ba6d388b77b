package survey

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/syncengine"
)

// Record scopes: a record belongs to the project (and team) of the device
// that first pushed it. An enrolled device may push only to records of its
// own project and team and pulls only those; forms it receives are its
// project's (and the ones published for every project).
const metaScope = "scope/"

// Scope is the project and team a record was stamped with.
type Scope struct{ Project, Team string }

func (v Scope) encode() []byte { return []byte(v.Project + "\x00" + v.Team) }

func decodeScope(b []byte) Scope {
	p, t, _ := strings.Cut(string(b), "\x00")
	return Scope{p, t}
}

// scopes caches record scopes (they never change once stamped).
type scopes struct {
	mu sync.RWMutex
	m  map[syncengine.RecordID]Scope
}

func (sc *scopes) get(tx syncengine.ReadTx, id syncengine.RecordID) (Scope, bool, error) {
	sc.mu.RLock()
	v, ok := sc.m[id]
	sc.mu.RUnlock()
	if ok {
		return v, true, nil
	}
	b, err := tx.Meta(metaScope + id.String())
	if errors.Is(err, syncengine.ErrNotFound) {
		return Scope{}, false, nil
	}
	if err != nil {
		return Scope{}, false, err
	}
	v = decodeScope(b)
	sc.mu.Lock()
	if sc.m == nil {
		sc.m = map[syncengine.RecordID]Scope{}
	}
	sc.m[id] = v
	sc.mu.Unlock()
	return v, true, nil
}

// allows reports whether a device may see or write a record of scope v.
func allows(d *auth.Device, v Scope) bool {
	return v.Project == d.Project && (d.Team == "" || v.Team == d.Team)
}

// guard checks a device's batch against record scopes and stamps new
// records with the device's scope, inside the merge transaction (the
// forms' projects are read there too). Every change's form is checked, not
// only a new record's: a device of B once created a record on an unknown
// form, then pushed to it again with A's form.
func (s *Service) guard(d *auth.Device) syncengine.Guard {
	return func(tx syncengine.Tx, cs []syncengine.Change) error {
		stamped := map[syncengine.RecordID]bool{}
		formProject := map[string]string{} // per batch: forms repeat
		for i := range cs {
			c := &cs[i]
			p, seen := formProject[c.Form]
			if !seen {
				var err error
				if p, err = projectIn(tx, c.Form); err != nil {
					return err
				}
				formProject[c.Form] = p
			}
			if p != "" && p != d.Project {
				return fmt.Errorf("%w: form %s belongs to project %s; nothing of this batch was applied", auth.ErrDenied, c.Form, p)
			}
			if stamped[c.Record] {
				continue
			}
			v, ok, err := s.scopes.get(tx, c.Record)
			if err != nil {
				return err
			}
			if ok {
				if !allows(d, v) {
					return fmt.Errorf("%w: record %s belongs to another project or team; nothing of this batch was applied", auth.ErrDenied, c.Record)
				}
				stamped[c.Record] = true
				continue
			}
			if err := tx.SetMeta(metaScope+c.Record.String(), Scope{d.Project, d.Team}.encode()); err != nil {
				return err
			}
			stamped[c.Record] = true
		}
		return nil
	}
}

// A device credential is bound to the one replica whose writes it may
// push: the first it pushed or pulled as. Each replica to one device: a
// credential cannot claim a teammate's replica, bound or not yet.
const (
	metaDeviceReplica = "devreplica/" // + device id → replica id
	metaReplicaDevice = "replicadev/" // + replica id → device id
)

// bindReplica checks a device speaks for its own replica, binding it on
// first use. A device pushes only its own dots (it never relays).
func (s *Service) bindReplica(ctx context.Context, d *auth.Device, rep syncengine.ReplicaID) error {
	if rep == s.rep.ID() {
		return fmt.Errorf("%w: the server's own replica id", auth.ErrDenied)
	}
	if v, ok := s.bound.Load(d.ID); ok && v.(syncengine.ReplicaID) == rep {
		return nil
	}
	err := s.store.Update(ctx, func(tx syncengine.Tx) error {
		mine, err := tx.Meta(metaDeviceReplica + d.ID)
		switch {
		case err == nil && string(mine) == rep.String():
			return nil
		case err == nil:
			return fmt.Errorf("%w: this device's credential belongs to replica %s", auth.ErrDenied, mine)
		case !errors.Is(err, syncengine.ErrNotFound):
			return err
		}
		if owner, err := tx.Meta(metaReplicaDevice + rep.String()); err == nil && string(owner) != d.ID {
			return fmt.Errorf("%w: replica %s belongs to another device", auth.ErrDenied, rep)
		} else if err != nil && !errors.Is(err, syncengine.ErrNotFound) {
			return err
		}
		if err := tx.SetMeta(metaReplicaDevice+rep.String(), []byte(d.ID)); err != nil {
			return err
		}
		return tx.SetMeta(metaDeviceReplica+d.ID, []byte(rep.String()))
	})
	if err == nil {
		s.bound.Store(d.ID, rep)
	}
	return err
}

// filter hides records outside a device's scope, read in the pull's
// transaction; a store error fails the pull.
func (s *Service) filter(d *auth.Device) syncengine.Filter {
	return func(tx syncengine.ReadTx, c *syncengine.Change) (bool, error) {
		v, ok, err := s.scopes.get(tx, c.Record)
		return ok && allows(d, v), err
	}
}

// Push merges a batch: a device's is checked against its scope, a user's
// (an admin, or anyone on an open server: the transport decides who may
// push) is merged as sent.
func (s *Service) Push(ctx context.Context, p auth.Principal, push syncengine.Push) (syncengine.PushResult, error) {
	var opts []syncengine.ServeOption
	if p.User != nil {
		// A signed-in user (an admin: the transport lets no one else push)
		// pushes a replica's own writes; relaying is for enrolled hubs.
		if push.Relay {
			return syncengine.PushResult{}, fmt.Errorf("%w: relaying is for enrolled hubs (surveyctl hub code)", auth.ErrDenied)
		}
		if err := s.notOurDots(push.Changes); err != nil {
			return syncengine.PushResult{}, err
		}
	}
	if p.Device != nil {
		if push.Relay && !p.Device.Hub {
			return syncengine.PushResult{}, fmt.Errorf("%w: a device pushes its own writes only (relaying is for hubs)", auth.ErrDenied)
		}
		if err := s.bindReplica(ctx, p.Device, push.From); err != nil {
			return syncengine.PushResult{}, err
		}
		if err := s.notOurDots(push.Changes); err != nil {
			return syncengine.PushResult{}, err
		}
		opts = append(opts, syncengine.WithGuard(s.guard(p.Device)))
	}
	res, err := s.rep.Receive(ctx, push, opts...)
	if err == nil && res.Applied > 0 {
		s.poke()
	}
	return res, err
}

// notOurDots refuses writes claiming this server's replica: its own dots
// never come from outside (a hub relays its devices', never ours).
func (s *Service) notOurDots(cs []syncengine.Change) error {
	for i := range cs {
		if cs[i].Dot.Replica == s.rep.ID() {
			return fmt.Errorf("%w: change %d claims this server's own replica", auth.ErrDenied, i)
		}
	}
	return nil
}

// Pull returns a page of the log a device may see (everything for a user
// allowed to pull), with the forms digest and, for a device, whether it
// must wipe. deviceTime is the puller's clock (0 unknown), kept with the
// device's stats.
func (s *Service) Pull(ctx context.Context, p auth.Principal, req syncengine.PullRequest, deviceTime int64) (syncengine.Page, error) {
	var opts []syncengine.ServeOption
	if p.Device != nil {
		if err := s.bindReplica(ctx, p.Device, req.For); err != nil {
			return syncengine.Page{}, err
		}
		opts = append(opts, syncengine.WithFilter(s.filter(p.Device)))
	}
	page, err := s.rep.Page(ctx, req, opts...)
	if err != nil {
		return syncengine.Page{}, err
	}
	if p.Device != nil {
		page.Server.Wipe = p.Device.Wipe
		s.deviceSeen(p.Device.ID, deviceTime, page.Cursor)
	}
	if page.Server.FormsDigest, err = s.forms.Digest(ctx); err != nil {
		return syncengine.Page{}, err
	}
	return page, nil
}
