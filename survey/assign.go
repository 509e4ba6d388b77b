package survey

import (
	"context"
	"errors"
	"fmt"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/syncengine"
)

// Minimisation: a device receives its own interviews and the records a
// lead assigned to it or to its team for a follow-up visit, not the whole
// team's history. Sensitive answers of a record it did not create reach it
// only when the record is assigned to that device for a follow-up. The
// assignment is a record's reserved register (syncengine.AssignedField),
// written by the server, so it syncs to hubs and they decide what their
// devices receive by the same rule (pullRule).

// Assignment says who follows a record up (see syncengine.Assignment).
type Assignment = syncengine.Assignment

// ErrAssignment: an assignment that names no one, or two, or a follow-up
// without a device, or someone outside the record's project and team.
var ErrAssignment = fmt.Errorf("%w: assignment", syncengine.ErrInvalid)

// Assign is a request to assign one record.
type Assign struct {
	Record syncengine.RecordID
	To     Assignment
	Via    string // noted in the audit entry ("the console"), or ""
}

// AssignRecord assigns a record for a follow-up (a lead of its project or
// an admin): a write of the record's assignment register, audited in the
// same commit. The devices it names receive the record (its earlier
// changes too) at their next sync. Assigning it as it is writes nothing.
func (s *Service) AssignRecord(ctx context.Context, p auth.Principal, in Assign) (changed bool, err error) {
	a := in.To
	if (a.Team != "" && a.Device != "") || (a.FollowUp && a.Device == "") {
		return false, fmt.Errorf("%w: name one team or one device (a follow-up needs a device)", ErrAssignment)
	}
	rec, err := s.rep.Record(ctx, in.Record)
	if err != nil {
		return false, err
	}
	if err := s.RequireRecord(ctx, p, rec, auth.Lead); err != nil {
		return false, err
	}
	if rec.Erased() {
		return false, fmt.Errorf("%w: record %s was erased", ErrAssignment, in.Record)
	}
	via := ""
	if in.Via != "" {
		via = " in " + in.Via
	}
	err = s.rep.Edit(ctx, in.Record, func(tx syncengine.Tx, rec *syncengine.Record) ([]syncengine.FieldWrite, error) {
		if rec.Assigned() == a.Text() {
			return nil, errUnchanged
		}
		if err := s.checkAssignee(tx, rec.ID, a); err != nil {
			return nil, err
		}
		detail := fmt.Sprintf("record %s of form %s%s: to %s", rec.ID, rec.Form, via, a)
		if err := s.auth.AuditIn(tx, Actor(p), "record-assigned", detail); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		return []syncengine.FieldWrite{{Name: syncengine.AssignedField, Value: syncengine.TextValue(a.Text())}}, nil
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.poke()
	return true, nil
}

var errUnchanged = errors.New("unchanged")

// checkAssignee: the device or team must lie within the record's scope.
func (s *Service) checkAssignee(tx syncengine.ReadTx, id syncengine.RecordID, a Assignment) error {
	v, ok, err := s.scopes.get(tx, id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: record %s came from no device, so no device receives it", ErrAssignment, id)
	}
	switch {
	case a.Device != "":
		d, err := auth.DeviceIn(tx, a.Device)
		if err != nil {
			return err
		}
		if d == nil || d.Hub || !allows(d, v) {
			return fmt.Errorf("%w: no device %s of the record's project and team", ErrAssignment, a.Device)
		}
	case a.Team != "":
		if v.Team != "" && v.Team != a.Team {
			return fmt.Errorf("%w: the record belongs to team %s", ErrAssignment, v.Team)
		}
	}
	return nil
}

// Assigned returns a record's assignment (a lead of its project).
func (s *Service) Assigned(ctx context.Context, p auth.Principal, id syncengine.RecordID) (Assignment, error) {
	rec, err := s.rep.Record(ctx, id)
	if err != nil {
		return Assignment{}, err
	}
	if err := s.RequireRecord(ctx, p, rec, auth.Lead); err != nil {
		return Assignment{}, err
	}
	return syncengine.ParseAssignment(rec.Assigned()), nil
}

// pullRule decides, once per pull, which changes a device receives: of a
// record in its scope, every change if it created the record; if the record
// is assigned to it or its team, every change but those writing a sensitive
// answer, which need a follow-up assignment to this device; erasures
// always (they hold no answers, and the device may hold the record from
// before). A project whose policy keeps team-wide pulls sends everything
// of the team. Assignments themselves reach only pullers that merge them.
type pullRule struct {
	s      *Service
	ctx    context.Context
	d      *auth.Device
	rep    syncengine.ReplicaID
	team   bool // the project's devices receive the whole team's records
	assign bool // the puller merges assignments
	recs   map[syncengine.RecordID]access
	forms  map[string]func(string) bool
}

// access is what a device may receive of one record: anything (in its
// scope), every change or those without a sensitive answer.
type access struct {
	scoped, any, sensitive bool
}

func (s *Service) newPullRule(ctx context.Context, d *auth.Device, req syncengine.PullRequest, pol auth.DevicePolicy) *pullRule {
	return &pullRule{s: s, ctx: ctx, d: d, rep: req.For, team: pol.TeamRecords, assign: req.Assignments,
		recs: map[syncengine.RecordID]access{}, forms: map[string]func(string) bool{}}
}

func (pr *pullRule) access(tx syncengine.ReadTx, id syncengine.RecordID) (access, error) {
	if a, ok := pr.recs[id]; ok {
		return a, nil
	}
	var a access
	v, ok, err := pr.s.scopes.get(tx, id)
	if err != nil || !ok || !allows(pr.d, v) {
		return a, err
	}
	a.scoped = true
	if pr.team {
		a.any, a.sensitive = true, true
		pr.recs[id] = a
		return a, nil
	}
	creator, known, err := pr.s.scopes.creator(tx, id)
	if err != nil {
		return a, err
	}
	if known && creator == pr.rep {
		a.any, a.sensitive = true, true
		pr.recs[id] = a
		return a, nil
	}
	rec, err := tx.Record(id)
	if err != nil {
		return a, err
	}
	// A stamp from before minimisation names no creator: a record holding
	// one of the device's writes counts as its own.
	created := !known && rec.WroteBy(pr.rep)
	as := syncengine.ParseAssignment(rec.Assigned())
	a.any = created || as.Names(pr.d.ID, pr.d.Team)
	a.sensitive = created || (as.Device == pr.d.ID && as.FollowUp)
	pr.recs[id] = a
	return a, nil
}

// deviceReceives reports whether the pull rule sends device d record id
// (the media of a record follow it).
func (s *Service) deviceReceives(ctx context.Context, tx syncengine.ReadTx, d *auth.Device, id syncengine.RecordID) (bool, error) {
	if d.Hub {
		return true, nil
	}
	var rep syncengine.ReplicaID // zero while unbound: it has created nothing here
	if v, ok := s.bound.Load(d.ID); ok {
		rep = v.(syncengine.ReplicaID)
	} else if b, err := tx.Meta(metaDeviceReplica + d.ID); err == nil {
		if rep, err = syncengine.ParseReplicaID(string(b)); err != nil {
			return false, fmt.Errorf("device %s replica: %w", d.ID, syncengine.ErrCorrupt)
		}
	} else if !errors.Is(err, syncengine.ErrNotFound) {
		return false, err
	}
	pol, err := s.devicePolicy(ctx, d.Project)
	if err != nil {
		return false, err
	}
	a, err := s.newPullRule(ctx, d, syncengine.PullRequest{For: rep}, pol).access(tx, id)
	return a.any, err
}

// filter is the rule as a syncengine.Filter.
func (pr *pullRule) filter(tx syncengine.ReadTx, c *syncengine.Change) (bool, error) {
	a, err := pr.access(tx, c.Record)
	switch {
	case err != nil || !a.scoped:
		return false, err
	case c.Assigns():
		if !pr.assign {
			return false, nil
		}
		if a.any {
			return true, nil
		}
		return pr.wasAssigned(tx, c.Record)
	case c.Erases():
		return true, nil
	case !a.any:
		return false, nil
	case a.sensitive:
		return true, nil
	}
	return !pr.writesSensitive(c), nil
}

// wasAssigned reports whether an assignment of the record ever named the
// puller or its team: then it is sent the ones that no longer do, and lets
// the record go (assignments are rare; their history is short).
func (pr *pullRule) wasAssigned(tx syncengine.ReadTx, id syncengine.RecordID) (bool, error) {
	named := false
	err := syncengine.HistoryIn(tx, id, func(e syncengine.LogEntry) error {
		if e.Change.Assigns() && syncengine.ParseAssignment(e.Change.Fields[0].Value.Str).Names(pr.d.ID, pr.d.Team) {
			named = true
			return syncengine.ErrStop
		}
		return nil
	})
	if errors.Is(err, syncengine.ErrStop) {
		err = nil
	}
	return named, err
}

// writesSensitive reports whether c writes an answer its form marks
// sensitive. The whole change is held back, not only that answer: a
// device that applied the change's dot would never take the answer later,
// when a follow-up assignment sends it.
func (pr *pullRule) writesSensitive(c *syncengine.Change) bool {
	is, ok := pr.forms[c.Form]
	if !ok {
		is = pr.s.sensitive(pr.ctx, c.Form)
		pr.forms[c.Form] = is
	}
	for _, f := range c.Fields {
		if !syncengine.Reserved(f.Name) && is(f.Name) {
			return true
		}
	}
	return false
}

// expand sends a record's earlier changes with the assignment that gives it
// to the puller: its pull cursor may have passed them long ago. The
// changes it may receive go (the same rule), its own too: a device that
// forgot the record takes them back.
func (pr *pullRule) expand(tx syncengine.ReadTx, c *syncengine.Change) ([]syncengine.Change, error) {
	if !c.Assigns() {
		return nil, nil
	}
	a, err := pr.access(tx, c.Record)
	if err != nil || !a.any || pr.team {
		return nil, err
	}
	// Its creator too: a device that let the record go after sending it
	// (delete after send) takes its answers back (syncengine.Forget).
	var out []syncengine.Change
	err = syncengine.HistoryIn(tx, c.Record, func(e syncengine.LogEntry) error {
		if e.Change.Dot == c.Dot {
			return nil
		}
		ok, err := pr.filter(tx, &e.Change)
		if ok {
			out = append(out, e.Change)
		}
		return err
	})
	return out, err
}
