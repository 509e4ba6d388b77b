package survey

import (
	"context"
	"fmt"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// FieldView is one answer of a record as a principal may see it.
type FieldView struct {
	Name     string
	Value    syncengine.Value   // the provisional value (zero when withheld)
	Conflict bool               // concurrent values are waiting to be settled
	Entries  []syncengine.Entry // the concurrent values, in display order (none when withheld)
	Withheld bool               // sensitive: not for this principal
}

// HistoryEntry is one change to a record.
type HistoryEntry struct {
	HLC     syncengine.HLC
	Replica syncengine.ReplicaID
	Server  bool // written by this server (a console resolution)
	// Restamp: written by this server to re-date one device write whose
	// clock was out of bounds (its context is that write alone; a
	// resolution's holds every value it settles).
	Restamp bool
	Changes []FieldChange
}

// FieldChange is one answer a change wrote.
type FieldChange struct {
	Name     string
	Value    syncengine.Value // zero when withheld
	Withheld bool
	Deleted  bool // the change deleted (or restored) the record: Value says which
}

// RecordView is a record's page: its answers, history, review and flags,
// sensitive answers withheld from whoever may not read them.
type RecordView struct {
	ID                   syncengine.RecordID
	Form, Status, Review string
	Fields               []FieldView
	History              []HistoryEntry
	Flags                []forms.Violation
	CanReview            bool       // p may review, resolve and erase it
	Erased               bool       // erased on request: no answers left anywhere
	Assigned             Assignment // who follows it up (for a lead; zero otherwise)
}

// Record returns a record's page for an analyst (or above) of its project.
func (s *Service) Record(ctx context.Context, p auth.Principal, id syncengine.RecordID) (RecordView, error) {
	rec, err := s.rep.Record(ctx, id)
	if err != nil {
		return RecordView{}, err
	}
	project, err := s.projectOfRecord(ctx, rec)
	if err != nil {
		return RecordView{}, err
	}
	if err := s.requireRecord(p, project, auth.Analyst); err != nil {
		return RecordView{}, err
	}
	// Who read which record is part of the trail (not what they saw).
	if err := s.auth.Audit(ctx, Actor(p), "record-view", id.String()); err != nil {
		return RecordView{}, fmt.Errorf("audit: %w", err)
	}
	withheld := s.withheld(ctx, p, project, rec.Form)
	v := RecordView{ID: id, Form: rec.Form, Status: rec.Status(), CanReview: s.mayRecord(p, project, auth.Lead), Erased: rec.Erased()}
	if v.Erased {
		v.Status = "erased"
	}
	if v.CanReview {
		v.Assigned = syncengine.ParseAssignment(rec.Assigned())
	}
	for _, name := range rec.FieldNames() {
		reg := rec.Fields[name]
		cur, conflict := reg.Current()
		fv := FieldView{Name: name, Conflict: conflict, Withheld: withheld(name)}
		if !fv.Withheld {
			fv.Value = cur.Value
			if conflict {
				fv.Entries = reg.Sorted()
			}
		}
		v.Fields = append(v.Fields, fv)
	}
	entries, err := s.rep.History(ctx, id)
	if err != nil {
		return RecordView{}, err
	}
	for _, e := range entries {
		h := HistoryEntry{HLC: e.Change.HLC, Replica: e.Change.Dot.Replica, Server: e.Change.Dot.Replica == s.rep.ID()}
		h.Restamp = h.Server && len(e.Change.Context) == 1 && e.Change.Context[0].Replica != s.rep.ID()
		for _, f := range e.Change.Fields {
			if syncengine.Reserved(f.Name) && f.Name != syncengine.DeletedField {
				continue
			}
			fc := FieldChange{Name: f.Name, Value: f.Value, Deleted: f.Name == syncengine.DeletedField, Withheld: withheld(f.Name)}
			if fc.Withheld {
				fc.Value = syncengine.Value{}
			}
			h.Changes = append(h.Changes, fc)
		}
		v.History = append(v.History, h)
	}
	err = s.store.View(ctx, func(tx syncengine.ReadTx) (err error) {
		if v.Review, err = reviewState(tx, id); err != nil {
			return err
		}
		v.Flags, err = flagsOf(tx, id)
		return err
	})
	v.Flags = s.flagsFor(ctx, p, project, rec.Form, v.Flags)
	return v, err
}

// withheld reports the answers of a record of form in project that p may
// not read: those to questions the form marks sensitive, for anyone below
// lead of the record's project (exports follow the same rule).
func (s *Service) withheld(ctx context.Context, p auth.Principal, project, form string) func(field string) bool {
	if seesSensitive(p, project) {
		return func(string) bool { return false }
	}
	return s.sensitive(ctx, form)
}

// sensitive reports the answers of a record of form that its questions
// mark sensitive (none when the form is not known here).
func (s *Service) sensitive(ctx context.Context, form string) func(field string) bool {
	f, err := s.forms.Form(ctx, form)
	if err != nil {
		return func(string) bool { return false }
	}
	sens := map[string]bool{}
	f.Walk(func(q *forms.Question) {
		if q.Sensitive {
			sens[q.Path()] = true
		}
	})
	return func(field string) bool { return sens[forms.Path(field).Question()] }
}
