package survey

import (
	"context"
	"fmt"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// Publish is a form file to publish for a project ("" for every project:
// an admin only).
type Publish struct {
	XLSX      []byte
	Files     []forms.File // the attachments the form names
	DefaultID string       // the form id when the settings sheet names none
	Project   string
	Via       string // noted in the audit entry ("console"), or ""
}

// Publish checks and stores a form version. created is false when this
// exact version and content were published before. The audit entry is
// written with the version.
func (s *Service) Publish(ctx context.Context, p auth.Principal, in Publish) (info forms.Info, created bool, err error) {
	if !anonymous(p) {
		if in.Project == "" && (p.User == nil || !p.User.Admin) {
			return forms.Info{}, false, ErrNeedProject
		}
		if in.Project != "" {
			if err := s.require(p, in.Project, auth.Lead); err != nil {
				return forms.Info{}, false, err
			}
		}
	}
	if in.Project != "" {
		if _, err := s.auth.Project(ctx, in.Project); err != nil {
			return forms.Info{}, false, err
		}
	}
	if err := s.formOwnedElsewhere(ctx, in); err != nil {
		return forms.Info{}, false, err
	}
	detail := " project " + in.Project
	if in.Via != "" {
		detail += " (" + in.Via + ")"
	}
	info, created, err = s.forms.PublishWith(ctx, in.XLSX, in.Files, in.DefaultID, in.Project, s.now(), func(tx syncengine.Tx, info forms.Info) error {
		return s.auth.AuditIn(tx, Actor(p), "form-publish", info.Key()+detail)
	})
	if err != nil {
		return forms.Info{}, false, err
	}
	if created {
		s.log.Info("form published", "form", info.Key(), "title", info.Title, "questions", info.Questions)
	}
	return info, created, nil
}

// formOwnedElsewhere refuses a form id another project (or every
// project) already has: a form id belongs to one project, or a lead of B
// could publish A's form id and export A's records.
func (s *Service) formOwnedElsewhere(ctx context.Context, in Publish) error {
	f, err := forms.Parse(in.XLSX, in.DefaultID)
	if err != nil {
		return nil // Publish reports the form's own problems
	}
	all, err := s.forms.List(ctx)
	if err != nil {
		return err
	}
	for _, i := range all {
		if i.ID == f.ID && i.Project != in.Project {
			owner := "every project"
			if i.Project != "" {
				owner = "another project"
			}
			return fmt.Errorf("%w: form id %s belongs to %s: give this form its own form_id", forms.ErrExists, f.ID, owner)
		}
	}
	return nil
}

// ListForms returns the form versions p may read.
func (s *Service) ListForms(ctx context.Context, p auth.Principal) ([]forms.Info, error) {
	all, err := s.forms.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []forms.Info
	for _, i := range all {
		if s.mayReadForm(p, i) {
			out = append(out, i)
		}
	}
	return out, nil
}

// GetXForm returns a form version's XForm (the newest version when
// version is ""); one p may not read is as absent.
func (s *Service) GetXForm(ctx context.Context, p auth.Principal, id, version string) (forms.Info, []byte, error) {
	info, x, err := s.forms.XForm(ctx, id, version)
	if err == nil && !s.mayReadForm(p, info) {
		err = fmt.Errorf("%w: %s", forms.ErrUnknownForm, id)
	}
	if err != nil {
		return forms.Info{}, nil, err
	}
	return info, x, nil
}

// GetFormFile returns a form version and its file, without its
// attachments (the caller fetches those with OpenFormMedia); one p may not
// read is as absent.
func (s *Service) GetFormFile(ctx context.Context, p auth.Principal, id, version string) (forms.Info, []byte, error) {
	info, file, err := s.forms.Get(ctx, id, version)
	if err == nil && !s.mayReadForm(p, info) {
		err = fmt.Errorf("%w: %s", forms.ErrUnknownForm, id)
	}
	if err != nil {
		return forms.Info{}, nil, err
	}
	return info, file, nil
}

// GetForm returns a form version, its file and its attachments; one p may
// not read is as absent.
func (s *Service) GetForm(ctx context.Context, p auth.Principal, id, version string) (forms.Info, []byte, []forms.File, error) {
	info, file, err := s.GetFormFile(ctx, p, id, version)
	if err != nil {
		return forms.Info{}, nil, nil, err
	}
	files := make([]forms.File, len(info.Files))
	for i, fi := range info.Files {
		data, err := s.forms.File(ctx, fi.SHA256)
		if err != nil {
			return forms.Info{}, nil, nil, err
		}
		files[i] = forms.File{Name: fi.Name, Data: data}
	}
	return info, file, files, nil
}
