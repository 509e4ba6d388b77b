package survey

import (
	"context"
	"fmt"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// The rules of who may do what, decided here for every adapter.

func anonymous(p auth.Principal) bool { return p.User == nil && p.Device == nil }

// may reports whether p holds role in project: "" is a record or form of
// no project, which needs the role in some project. An anonymous caller
// of an open server may (the transport lets it reach only what an open
// server offers).
func (s *Service) may(p auth.Principal, project string, role auth.Role) bool {
	if anonymous(p) {
		return s.open
	}
	if project == "" {
		return p.CanAnywhere(role)
	}
	return p.Can(project, role)
}

// require is may as an error.
func (s *Service) require(p auth.Principal, project string, role auth.Role) error {
	if s.may(p, project, role) {
		return nil
	}
	if project == "" {
		return fmt.Errorf("%w: your role does not allow this", auth.ErrDenied)
	}
	return fmt.Errorf("%w: your role does not allow this in project %s", auth.ErrDenied, project)
}

// seesSensitive: answers to questions a form marks sensitive reach an
// admin and the leads of the record's project, nobody else (an anonymous
// caller of an open server neither).
func seesSensitive(p auth.Principal, project string) bool {
	return p.User != nil && (p.User.Admin || (project != "" && p.Can(project, auth.Lead)))
}

// mayReadForm: a device sees its project's forms and the ones for every
// project; a user the forms of projects they have a role in; an admin (or
// an anonymous caller of an open server) all.
func (s *Service) mayReadForm(p auth.Principal, i forms.Info) bool {
	switch {
	case i.Project == "":
		return true
	case p.Device != nil:
		return p.Device.Project == i.Project
	}
	return s.may(p, i.Project, auth.Enumerator)
}

// projectOf is the project a record of form belongs to: its form's ("" for
// a form of every project, or one not published here).
func (s *Service) projectOf(ctx context.Context, form string) string {
	if f, err := s.forms.Form(ctx, form); err == nil {
		return f.Project
	}
	return ""
}

// projectIn is projectOf inside a transaction.
func projectIn(tx syncengine.ReadTx, form string) (string, error) {
	p, _, err := forms.ProjectIn(tx, form)
	return p, err
}

// recordProject is the project a record belongs to: the scope stamped
// when a device first pushed it, else its form's project. "" when neither
// says (a form not published here, or one for every project, and no device
// pushed the record): unknown, so only an admin may act on it.
func (s *Service) recordProject(ctx context.Context, tx syncengine.ReadTx, id syncengine.RecordID, form string) (string, error) {
	v, ok, err := s.scopes.get(tx, id)
	if err != nil {
		return "", err
	}
	if ok && v.Project != "" {
		return v.Project, nil
	}
	return s.projectOf(ctx, form), nil
}

// mayRecord: p holds role in a record's project; a record of no known
// project is an admin's alone.
func (s *Service) mayRecord(p auth.Principal, project string, role auth.Role) bool {
	if project == "" {
		return (anonymous(p) && s.open) || (p.User != nil && p.User.Admin)
	}
	return s.may(p, project, role)
}

// projectOfRecord reads a record's project in a transaction of its own.
func (s *Service) projectOfRecord(ctx context.Context, rec *syncengine.Record) (project string, err error) {
	err = s.store.View(ctx, func(tx syncengine.ReadTx) (err error) {
		project, err = s.recordProject(ctx, tx, rec.ID, rec.Form)
		return err
	})
	return project, err
}

// RequireRecord checks p holds role in the project of rec.
func (s *Service) RequireRecord(ctx context.Context, p auth.Principal, rec *syncengine.Record, role auth.Role) error {
	project, err := s.projectOfRecord(ctx, rec)
	if err != nil {
		return err
	}
	return s.requireRecord(p, project, role)
}

// requireRecord is mayRecord as an error.
func (s *Service) requireRecord(p auth.Principal, project string, role auth.Role) error {
	if s.mayRecord(p, project, role) {
		return nil
	}
	if project == "" {
		return fmt.Errorf("%w: this record belongs to no project known here (only an admin may)", auth.ErrDenied)
	}
	return fmt.Errorf("%w: your role does not allow this in project %s", auth.ErrDenied, project)
}
