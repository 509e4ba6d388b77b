package survey

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/syncengine"
)

// Statuses are a record's own statuses, as its enumerator set them.
var Statuses = []string{"draft", "finalized"}

// RecordFilter is what the record list can filter on; the zero value
// passes every record.
type RecordFilter struct {
	Form          string
	ConflictsOnly bool
	Review        string // one of ReviewStates
	Status        string // one of Statuses
	Team          string // the enumerator team the record belongs to
	Device        string // part of the creating device's replica id
	From, To      string // creation date, YYYY-MM-DD, inclusive
	from, to      int64  // the same in Unix milliseconds, [from, to)
}

// prepare checks the filter and reads its dates.
func (f *RecordFilter) prepare() error {
	f.Device = strings.ToLower(f.Device)
	if f.Status != "" && f.Status != "draft" && f.Status != "finalized" {
		return fmt.Errorf("%w: status: draft or finalized", ErrFilter)
	}
	if f.Review != "" && !ValidReviewState(f.Review) {
		return fmt.Errorf("%w: review: received, has_issues, approved or rejected", ErrFilter)
	}
	for _, d := range []struct {
		text, name string
		ms         *int64
		days       int
	}{{f.From, "from", &f.from, 0}, {f.To, "to", &f.to, 1}} {
		if d.text == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, d.text)
		if err != nil {
			return fmt.Errorf("%w: %s: a date as YYYY-MM-DD", ErrFilter, d.name)
		}
		*d.ms = t.AddDate(0, 0, d.days).UnixMilli()
	}
	return nil
}

// Summary is what the record list shows of a record, computed once (the
// filters and the row use the same).
type Summary struct {
	ID        syncengine.RecordID
	Form      string
	Status    string
	Conflicts []string // answers in conflict, sorted
	// DeleteConflict: a delete concurrent with a restore or an unseen edit.
	DeleteConflict bool
	Created        syncengine.HLC // the earliest write
	Creator        string         // the replica that made it
	Team           string         // from the record's scope
	Review         string
}

// summarize computes a record's summary (its team and review read in tx).
func (s *Service) summarize(tx syncengine.ReadTx, rec *syncengine.Record) (Summary, error) {
	sum := summaryOf(rec)
	v, ok, err := s.scopes.get(tx, rec.ID)
	if err != nil {
		return sum, err
	}
	if ok {
		sum.Team = v.Team
	}
	sum.Review, err = reviewState(tx, rec.ID)
	return sum, err
}

// summaryOf is the part of a summary the record itself holds.
func summaryOf(rec *syncengine.Record) Summary {
	sum := Summary{ID: rec.ID, Form: rec.Form, Status: rec.Status(), Conflicts: rec.Conflicts(), DeleteConflict: rec.DeleteConflict()}
	sum.Created, sum.Creator = created(rec)
	return sum
}

// matches is the filter over a summary.
func (f *RecordFilter) matches(sum *Summary) bool {
	switch {
	case f.Form != "" && !ofForm(sum.Form, f.Form):
	case f.ConflictsOnly && len(sum.Conflicts) == 0 && !sum.DeleteConflict:
	case f.Status != "" && sum.Status != f.Status:
	case f.Team != "" && sum.Team != f.Team:
	case f.Device != "" && !strings.Contains(sum.Creator, f.Device):
	case f.from != 0 && sum.Created.Millis() < f.from, f.to != 0 && sum.Created.Millis() >= f.to:
	case f.Review != "" && sum.Review != f.Review:
	default:
		return true
	}
	return false
}

// created is the record's earliest write and the device that made it.
func created(rec *syncengine.Record) (syncengine.HLC, string) {
	var lo syncengine.HLC
	device := ""
	for _, f := range rec.Fields {
		for _, e := range f.Entries {
			if lo == 0 || e.HLC < lo {
				lo, device = e.HLC, e.Dot.Replica.String()
			}
		}
	}
	if device == "" && len(rec.Applied) > 0 {
		device = rec.Applied[0].Replica.String()
	}
	return lo, device
}

// RecordPage is a page of the record list; Next is the cursor of the
// next page ("" at the end).
type RecordPage struct {
	Rows []Summary
	Next string
}

// ListRecords pages through records by id after the cursor (keyset
// paging: every page costs the same however far in), listing those of
// projects where p is at least an analyst that pass the filter.
func (s *Service) ListRecords(ctx context.Context, p auth.Principal, f RecordFilter, after string, limit int) (RecordPage, error) {
	if err := f.prepare(); err != nil {
		return RecordPage{}, err
	}
	var from syncengine.RecordID
	if after != "" {
		id, err := syncengine.ParseRecordID(after)
		if err != nil {
			return RecordPage{}, fmt.Errorf("%w: bad page cursor", ErrFilter)
		}
		from = id
	}
	var page RecordPage
	visit := func(tx syncengine.ReadTx, rec *syncengine.Record) error {
		if rec.ID == from && after != "" {
			return nil
		}
		if f.Form != "" && !ofForm(rec.Form, f.Form) {
			return nil
		}
		project, err := s.recordProject(ctx, tx, rec.ID, rec.Form)
		if err != nil || !s.mayRecord(p, project, auth.Analyst) {
			return err
		}
		sum, err := s.summarize(tx, rec)
		if err != nil || !f.matches(&sum) {
			return err
		}
		if len(page.Rows) == limit {
			page.Next = page.Rows[len(page.Rows)-1].ID.String()
			return syncengine.ErrStop
		}
		page.Rows = append(page.Rows, sum)
		return nil
	}
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		err := s.scanRecords(tx, from, &f, func(rec *syncengine.Record) error { return visit(tx, rec) })
		if errors.Is(err, syncengine.ErrStop) {
			err = nil
		}
		return err
	})
	return page, err
}

// scanRecords scans records from an id, passing over, from their stored
// bytes or their id, records a filter certainly rejects, without building
// them (a 1M-record scan for none: ~3 s before).
func (s *Service) scanRecords(tx syncengine.ReadTx, from syncengine.RecordID, f *RecordFilter, fn func(*syncengine.Record) error) error {
	raw, ok := tx.(syncengine.RawRecordScanner)
	if !ok || *f == (RecordFilter{}) {
		return tx.ScanRecords(from, fn)
	}
	var v syncengine.RecordVisitor
	return raw.ScanRecordBytes(from, func(id syncengine.RecordID, b []byte) error {
		if !f.mayMatch(&v, b) {
			return nil
		}
		// The team and the review state need only the id.
		if f.Team != "" {
			if sc, ok, err := s.scopes.get(tx, id); err != nil || !ok || sc.Team != f.Team {
				return err
			}
		}
		if f.Review != "" {
			if st, err := reviewState(tx, id); err != nil || st != f.Review {
				return err
			}
		}
		rec, err := syncengine.UnmarshalRecord(id, b)
		if err != nil {
			return err
		}
		return fn(rec)
	})
}

// mayMatch reads a stored record's form, status, conflicts and creation
// (time and device) without building it, and is false only when the
// filter certainly rejects it; anything it cannot tell (a record that does
// not decode, a status in conflict, a delete) is left to the full check.
func (f *RecordFilter) mayMatch(v *syncengine.RecordVisitor, b []byte) bool {
	multi, deletes := false, false
	status, statusKnown := "draft", true
	// The earliest writes (ties are possible): whether one of their
	// replicas matches the device filter, and the last replica checked
	// (a record's first change writes many fields: formatted once).
	var lo syncengine.HLC
	var wrote, deviceHit bool
	var lastRep syncengine.ReplicaID
	h, err := v.Visit(b, func(name []byte, es []syncengine.Entry) error {
		for _, e := range es {
			wrote = true
			if lo == 0 || e.HLC < lo {
				lo, deviceHit, lastRep = e.HLC, false, syncengine.ReplicaID{}
			}
			if e.HLC == lo && f.Device != "" && !deviceHit && e.Dot.Replica != lastRep {
				lastRep = e.Dot.Replica
				deviceHit = strings.Contains(lastRep.String(), f.Device)
			}
		}
		switch string(name) {
		case syncengine.DeletedField:
			deletes = true
		case syncengine.StatusField:
			switch {
			case len(es) > 1:
				statusKnown = false
			case len(es) == 1 && es[0].Value.Kind == syncengine.Text:
				status = es[0].Value.Str
			}
		default:
			if len(es) > 1 && !syncengine.Reserved(string(name)) {
				multi = true
			}
		}
		return nil
	})
	if err != nil {
		return true
	}
	if f.Device != "" && !wrote { // the device is the first applied dot's
		deviceHit = !h.FirstApplied.IsZero() && strings.Contains(h.FirstApplied.Replica.String(), f.Device)
	}
	switch {
	case f.Form != "" && !ofForm(h.Form, f.Form):
	case f.ConflictsOnly && !multi && !deletes:
	case f.Status != "" && statusKnown && status != f.Status:
	case (f.from != 0 && lo.Millis() < f.from) || (f.to != 0 && lo.Millis() >= f.to):
	case f.Device != "" && !deviceHit:
	default:
		return true
	}
	return false
}
