package survey

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// encodeStamp is a scope stamped with the replica whose write created the
// record (what a device receives depends on it: see pullRule).
func encodeStamp(v Scope, creator syncengine.ReplicaID) []byte {
	return append(v.encode(), "\x00"+creator.String()...)
}

// stamp is a record's scope and, when known (records stamped since
// minimisation), the replica that created it.
type stamp struct {
	Scope
	creator syncengine.ReplicaID
	known   bool
}

func decodeStamp(b []byte) stamp {
	p, rest, _ := strings.Cut(string(b), "\x00")
	t, c, ok := strings.Cut(rest, "\x00")
	st := stamp{Scope: Scope{p, t}}
	if ok {
		if rep, err := syncengine.ParseReplicaID(c); err == nil {
			st.creator, st.known = rep, true
		}
	}
	return st
}

// scopes caches record scopes (they never change once stamped).
type scopes struct {
	mu sync.RWMutex
	m  map[syncengine.RecordID]stamp
}

func (sc *scopes) stamp(tx syncengine.ReadTx, id syncengine.RecordID) (stamp, bool, error) {
	sc.mu.RLock()
	v, ok := sc.m[id]
	sc.mu.RUnlock()
	if ok {
		return v, true, nil
	}
	b, err := tx.Meta(metaScope + id.String())
	if errors.Is(err, syncengine.ErrNotFound) {
		return stamp{}, false, nil
	}
	if err != nil {
		return stamp{}, false, err
	}
	v = decodeStamp(b)
	sc.put(id, v)
	return v, true, nil
}

func (sc *scopes) get(tx syncengine.ReadTx, id syncengine.RecordID) (Scope, bool, error) {
	v, ok, err := sc.stamp(tx, id)
	return v.Scope, ok, err
}

// creator returns the replica that created a record, if it is known.
func (sc *scopes) creator(tx syncengine.ReadTx, id syncengine.RecordID) (syncengine.ReplicaID, bool, error) {
	v, _, err := sc.stamp(tx, id)
	return v.creator, v.known, err
}

func (sc *scopes) set(id syncengine.RecordID, v Scope) { sc.put(id, stamp{Scope: v}) }

func (sc *scopes) put(id syncengine.RecordID, v stamp) {
	sc.mu.Lock()
	if sc.m == nil {
		sc.m = map[syncengine.RecordID]stamp{}
	}
	sc.m[id] = v
	sc.mu.Unlock()
}

// allows reports whether a device may see or write a record of scope v.
func allows(d *auth.Device, v Scope) bool {
	return v.Project == d.Project && (d.Team == "" || v.Team == d.Team)
}

// guard checks a device's batch against record scopes and stamps new
// records with the device's scope, inside the merge transaction (the
// forms' projects are read there too). Every change's form is checked, not
// only a new record's: a device of B once created a record on an unknown
// form, then pushed to it again with A's form. A hub's new records take
// the scope it stamped them with (given), which must lie within its own;
// the writes it relays must not be those of a device outside its scope.
func (s *Service) guard(d *auth.Device, given map[syncengine.RecordID]Scope) syncengine.Guard {
	return func(tx syncengine.Tx, cs []syncengine.Change) error {
		if d.Hub {
			if err := s.relayedWithin(tx, d, cs); err != nil {
				return err
			}
		}
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
			if c.Erases() && !d.Hub && !holds(tx, c) {
				// Erasure is a lead's decision (EraseRecord); a hub relays
				// its leads' erasures, a device only ones it was sent.
				return fmt.Errorf("%w: a device may not erase record %s; nothing of this batch was applied", auth.ErrDenied, c.Record)
			}
			if c.Assigns() && !d.Hub && !holds(tx, c) {
				// The same for assignment (AssignRecord): a device that
				// assigned itself would receive what it may not.
				return fmt.Errorf("%w: a device may not assign record %s; nothing of this batch was applied", auth.ErrDenied, c.Record)
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
			v = Scope{d.Project, d.Team}
			if g, ok := given[c.Record]; ok {
				if !allows(d, g) {
					return fmt.Errorf("%w: record %s is stamped %s, outside this hub's scope; nothing of this batch was applied", auth.ErrDenied, c.Record, g)
				}
				v = g
			}
			if err := tx.SetMeta(metaScope+c.Record.String(), encodeStamp(v, c.Dot.Replica)); err != nil {
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

// relayedWithin refuses a hub's batch carrying writes of a replica bound
// here to a device outside the hub's scope (a hub relays its own
// devices', and those of upstream devices of its scope syncing through it).
func (s *Service) relayedWithin(tx syncengine.Tx, hub *auth.Device, cs []syncengine.Change) error {
	checked := map[syncengine.ReplicaID]bool{}
	for i := range cs {
		rep := cs[i].Dot.Replica
		if checked[rep] {
			continue
		}
		checked[rep] = true
		id, err := tx.Meta(metaReplicaDevice + rep.String())
		if errors.Is(err, syncengine.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		dev, err := auth.DeviceIn(tx, string(id))
		if err != nil {
			return err
		}
		if dev == nil || dev.Hub || !allows(hub, Scope{dev.Project, dev.Team}) {
			return fmt.Errorf("%w: change %d is a write of a device outside this hub's scope; nothing of this batch was applied", auth.ErrDenied, i)
		}
	}
	return nil
}

// filter hides records outside a hub's scope (a device's rule is
// pullRule's), read in the pull's transaction; a store error fails the
// pull. A hub that does not merge assignments gets none.
func (s *Service) filter(d *auth.Device, assign bool) syncengine.Filter {
	return func(tx syncengine.ReadTx, c *syncengine.Change) (bool, error) {
		if c.Assigns() && !assign {
			return false, nil
		}
		v, ok, err := s.scopes.get(tx, c.Record)
		return ok && allows(d, v), err
	}
}

// Push merges a batch: a device's is checked against its scope, a user's
// (an admin, or anyone on an open server: the transport decides who may
// push) is merged as sent.
// A hub's push may say how it scoped its records (given); anyone else's
// scopes are ignored.
func (s *Service) Push(ctx context.Context, p auth.Principal, push syncengine.Push, given []RecordScope) (syncengine.PushResult, error) {
	return s.push(ctx, p, push, given, nil)
}

// push is Push with also run in the merge transaction after the checks
// (an OpenRosa submission records itself there: all or nothing).
func (s *Service) push(ctx context.Context, p auth.Principal, push syncengine.Push, given []RecordScope, also func(syncengine.Tx) error) (syncengine.PushResult, error) {
	var scoped syncengine.Guard
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
		if err := s.bindReplica(ctx, p.Device, push.From); err != nil {
			return syncengine.PushResult{}, err
		}
		if err := s.notOurDots(push.Changes); err != nil {
			return syncengine.PushResult{}, err
		}
		var g map[syncengine.RecordID]Scope
		if p.Device.Hub && len(given) > 0 {
			g = make(map[syncengine.RecordID]Scope, len(given))
			for _, rs := range given {
				g[rs.Record] = rs.Scope
			}
		}
		scoped = s.guard(p.Device, g)
		if push.Relay && !p.Device.Hub {
			scoped = heldOnly(push.From, scoped)
		}
	}
	var marked []syncengine.RecordID
	guard := func(tx syncengine.Tx, cs []syncengine.Change) (err error) {
		if scoped != nil {
			if err := scoped(tx, cs); err != nil {
				return err
			}
		}
		if marked, err = s.markClocks(tx, p, cs); err != nil || also == nil {
			return err
		}
		return also(tx)
	}
	res, err := s.rep.Receive(ctx, push, syncengine.WithGuard(guard))
	if err == nil && len(marked) > 0 {
		// The push is in; a failed re-stamp is finished at the next start.
		if rerr := s.restamp(ctx, marked); rerr != nil {
			s.log.Error("re-stamping writes of a wrong device clock", "err", rerr)
		}
	}
	if err == nil && res.Applied > 0 {
		s.poke()
	}
	return res, err
}

// heldOnly lets a device resend other replicas' writes only where this
// server already holds them (then they change nothing). A device moved to
// another hub, or syncing with a server restored from a backup, resends its
// whole log; what it carries of others' is theirs to deliver, and a write
// this server has not seen could be forged.
func heldOnly(from syncengine.ReplicaID, next syncengine.Guard) syncengine.Guard {
	return func(tx syncengine.Tx, cs []syncengine.Change) error {
		unheld := 0
		for i := range cs {
			if cs[i].Dot.Replica == from {
				continue
			}
			rec, err := tx.Record(cs[i].Record)
			if errors.Is(err, syncengine.ErrNotFound) || (err == nil && !rec.Applied.Contains(cs[i].Dot)) {
				unheld++
				continue
			}
			if err != nil {
				return err
			}
		}
		if unheld > 0 {
			return fmt.Errorf("%w: a device pushes its own writes only; this batch carries %d writes of other devices this server does not hold (they reach it from their own devices or its upstream)", auth.ErrDenied, unheld)
		}
		return next(tx, cs)
	}
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
// device's stats. A hub (or a user) also gets the page's record scopes,
// so the devices behind it see exactly their team's records.
func (s *Service) Pull(ctx context.Context, p auth.Principal, req syncengine.PullRequest, deviceTime int64) (syncengine.Page, []RecordScope, error) {
	page, err := s.pull(ctx, p, req, deviceTime)
	if err != nil || (p.Device != nil && !p.Device.Hub) || len(page.Changes) == 0 {
		return page, nil, err
	}
	out, err := s.scopesOf(ctx, page.Changes)
	if err != nil {
		return syncengine.Page{}, nil, err
	}
	return page, out, nil
}

func (s *Service) pull(ctx context.Context, p auth.Principal, req syncengine.PullRequest, deviceTime int64) (syncengine.Page, error) {
	var opts []syncengine.ServeOption
	var pol auth.DevicePolicy
	if p.Device != nil {
		if err := s.bindReplica(ctx, p.Device, req.For); err != nil {
			return syncengine.Page{}, err
		}
		var err error
		if pol, err = s.devicePolicy(ctx, p.Device.Project); err != nil {
			return syncengine.Page{}, err
		}
		if p.Device.Hub {
			opts = append(opts, syncengine.WithFilter(s.filter(p.Device, req.Assignments)))
		} else {
			rule := s.newPullRule(ctx, p.Device, req, pol)
			opts = append(opts, syncengine.WithFilter(rule.filter), syncengine.WithExpand(rule.expand))
		}
	}
	page, err := s.rep.Page(ctx, req, opts...)
	if err != nil {
		return syncengine.Page{}, err
	}
	if p.Device != nil {
		page.Server.Wipe = p.Device.Wipe
		if !page.More { // a sync acts on its last page's state
			page.Server.DeleteAfterSend, page.Server.RetentionDays, page.Server.TeamRecords = pol.DeleteAfterSend, pol.RetentionDays, pol.TeamRecords
		}
		s.deviceSeen(p.Device.ID, deviceTime, page.Cursor)
	}
	if page.Server.FormsDigest, err = s.forms.Digest(ctx); err != nil {
		return syncengine.Page{}, err
	}
	return page, nil
}

// scopesOf returns the scopes of the records of cs that have one.
func (s *Service) scopesOf(ctx context.Context, cs []syncengine.Change) ([]RecordScope, error) {
	var out []RecordScope
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		out = out[:0]
		seen := map[syncengine.RecordID]bool{}
		for i := range cs {
			id := cs[i].Record
			if seen[id] {
				continue
			}
			seen[id] = true
			v, ok, err := s.scopes.get(tx, id)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, RecordScope{id, v})
			}
		}
		return nil
	})
	return out, err
}

// HubDevices is a hub's copy of the devices of its scope (hubs left out:
// one hub's credential never signs in at another), after noting those
// that wiped themselves at the hub.
func (s *Service) HubDevices(ctx context.Context, p auth.Principal, wiped []string, reported []auth.Device) ([]auth.Device, error) {
	if p.Device == nil || !p.Device.Hub {
		return nil, fmt.Errorf("%w: for enrolled hubs only", auth.ErrDenied)
	}
	hub := p.Device
	// The devices the hub enrolled itself, within its scope only.
	var mine []auth.Device
	for _, d := range reported {
		if allows(hub, Scope{d.Project, d.Team}) {
			mine = append(mine, d)
		}
	}
	if len(mine) > 0 {
		if _, err := s.auth.ReportedDevices(ctx, hub.ID, mine); err != nil {
			return nil, err
		}
	}
	list := func() ([]auth.Device, error) {
		devs, err := s.auth.Devices(ctx, hub.Project)
		in := devs[:0]
		for _, d := range devs {
			if !d.Hub && allows(hub, Scope{d.Project, d.Team}) {
				in = append(in, d)
			}
		}
		return in, err
	}
	in, err := list()
	if err != nil {
		return nil, err
	}
	noted := 0
	for _, id := range wiped {
		// Only a wipe asked for, of a device of the hub's scope.
		i := slices.IndexFunc(in, func(d auth.Device) bool { return d.ID == id })
		if i < 0 || !in[i].Wipe || in[i].Wiped != 0 {
			continue
		}
		if err := s.auth.Wiped(ctx, id); err != nil {
			return nil, err
		}
		noted++
	}
	if noted > 0 {
		return list()
	}
	return in, nil
}

// holds reports whether the store has applied c already.
func holds(tx syncengine.ReadTx, c *syncengine.Change) bool {
	rec, err := tx.Record(c.Record)
	return err == nil && rec.Applied.Contains(c.Dot)
}
