package survey

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// Resolve settles one conflicting answer with one of its concurrent values
// (Pick, their index in the register's display order) or a corrected one
// (Custom, typed by the question as the device types answers).
type Resolve struct {
	Record syncengine.RecordID
	Field  string
	Pick   int // used when Custom is ""; -1: none
	Custom string
	Reason string
	Via    string // noted in the audit entry ("the console"), or ""
}

// Resolve writes the settling value: an ordinary causal write by the
// server's replica, which reaches every device at its next sync. The
// audit entry commits with it. It returns the value written.
func (s *Service) Resolve(ctx context.Context, p auth.Principal, in Resolve) (syncengine.Value, error) {
	rec, err := s.rep.Record(ctx, in.Record)
	if err != nil {
		return syncengine.Value{}, err
	}
	if err := s.RequireRecord(ctx, p, rec, auth.Lead); err != nil {
		return syncengine.Value{}, err
	}
	if strings.TrimSpace(in.Reason) == "" {
		return syncengine.Value{}, ErrNeedReason
	}
	var v syncengine.Value
	if in.Custom != "" {
		v = s.typed(ctx, rec.Form, in.Field, in.Custom)
	}
	via := ""
	if in.Via != "" {
		via = " in " + in.Via
	}
	err = s.rep.Edit(ctx, in.Record, func(tx syncengine.Tx, rec *syncengine.Record) ([]syncengine.FieldWrite, error) {
		reg := rec.Fields[in.Field]
		if reg == nil || len(reg.Entries) < 2 {
			return nil, fmt.Errorf("resolve %s: field %q: %w", in.Record, in.Field, syncengine.ErrNoConflict)
		}
		if in.Custom == "" {
			es := reg.Sorted()
			if in.Pick < 0 || in.Pick >= len(es) {
				return nil, ErrNeedValue
			}
			v = es[in.Pick].Value
		}
		// The audit trail says who settled what and why, never the answer:
		// it is kept (hash-chained) after an erasure of the record.
		how := fmt.Sprintf("kept value %d of %d", in.Pick+1, len(reg.Entries))
		if in.Custom != "" {
			how = "a corrected value"
		}
		detail := fmt.Sprintf("record %s field %s: %s%s: %s", in.Record, in.Field, how, via, in.Reason)
		if err := s.auth.AuditIn(tx, Actor(p), "conflict-resolved", detail); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		return []syncengine.FieldWrite{{Name: in.Field, Value: v}}, nil
	})
	if err != nil {
		return syncengine.Value{}, err
	}
	s.poke()
	return v, nil
}

// typed types an entered answer by its question, as the device's own
// interview does; an answer to a question the form does not have (or of a
// form not published here) is read as the command line reads values.
func (s *Service) typed(ctx context.Context, form, field, text string) syncengine.Value {
	if f, err := s.forms.Form(ctx, form); err == nil {
		if q := f.QuestionAt(forms.Path(field)); q != nil {
			return forms.Typed(q.Kind, text)
		}
	}
	return syncengine.ParseValue(text)
}

// BulkResolve is a rule for every conflict on one question of one form,
// e.g. "for threats/safe_day keep the latest visit".
type BulkResolve struct {
	Form, Question string
	Rule           string // "latest" or "earliest"
	Reason         string
}

// BulkResult says what a bulk rule did: records settled, and conflicts
// left alone because the caller may not change their records.
type BulkResult struct{ Resolved, Refused int }

// BulkResolve applies a rule: each resolution is an ordinary causal write,
// audited one by one with the rule and the reason in its own transaction.
// On an error, the resolutions made so far stay made and are counted.
func (s *Service) BulkResolve(ctx context.Context, p auth.Principal, in BulkResolve) (BulkResult, error) {
	var res BulkResult
	if in.Form == "" || in.Question == "" || (in.Rule != "latest" && in.Rule != "earliest") {
		return res, ErrBulkRule
	}
	if strings.TrimSpace(in.Reason) == "" {
		return res, ErrNeedReason
	}
	type fix struct {
		id    syncengine.RecordID
		form  string
		field string
	}
	var fixes []fix
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		return tx.ScanRecords(syncengine.RecordID{}, func(rec *syncengine.Record) error {
			if !ofForm(rec.Form, in.Form) {
				return nil
			}
			for name, reg := range rec.Fields {
				if len(reg.Entries) > 1 && !syncengine.Reserved(name) && forms.Path(name).Question() == in.Question {
					fixes = append(fixes, fix{rec.ID, rec.Form, name})
				}
			}
			return nil
		})
	})
	if err != nil {
		return res, err
	}
	for _, f := range fixes {
		err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
			project, err := s.recordProject(ctx, tx, f.id, f.form)
			if err == nil && !s.mayRecord(p, project, auth.Lead) {
				err = auth.ErrDenied
			}
			return err
		})
		if errors.Is(err, auth.ErrDenied) {
			res.Refused++
			continue
		}
		if err != nil {
			return res, err
		}
		err = s.bulkOne(ctx, p, in, f.id, f.field)
		if errors.Is(err, syncengine.ErrNoConflict) {
			continue // settled since the scan
		}
		if err != nil {
			return res, err
		}
		res.Resolved++
	}
	if res.Resolved > 0 {
		s.poke()
	}
	return res, nil
}

func (s *Service) bulkOne(ctx context.Context, p auth.Principal, in BulkResolve, id syncengine.RecordID, field string) error {
	return s.rep.Edit(ctx, id, func(tx syncengine.Tx, rec *syncengine.Record) ([]syncengine.FieldWrite, error) {
		reg := rec.Fields[field]
		if reg == nil || len(reg.Entries) < 2 {
			return nil, fmt.Errorf("resolve %s: field %q: %w", id, field, syncengine.ErrNoConflict)
		}
		v := bulkPick(reg, in.Rule).Value
		detail := fmt.Sprintf("record %s field %s by the console rule \"keep the %s value of %s\": %s",
			id, field, in.Rule, in.Question, in.Reason)
		if err := s.auth.AuditIn(tx, Actor(p), "conflict-resolved", detail); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		return []syncengine.FieldWrite{{Name: field, Value: v}}, nil
	})
}

// bulkPick chooses the value a bulk rule keeps among concurrent entries:
// the one written last (or first) by its hybrid clock, ties broken by the
// register's own display order so every run picks the same.
func bulkPick(reg *syncengine.Register, rule string) syncengine.Entry {
	es := reg.Sorted()
	best := es[0]
	for _, e := range es[1:] {
		if (rule == "latest" && e.HLC > best.HLC) || (rule == "earliest" && e.HLC < best.HLC) {
			best = e
		}
	}
	return best
}

// ofForm: a record's form key is form itself or one of its versions.
func ofForm(key, form string) bool {
	return key == form || (len(key) > len(form) && key[len(form)] == '@' && key[:len(form)] == form)
}
