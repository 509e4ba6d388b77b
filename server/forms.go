package server

import (
	"context"

	"connectrpc.com/connect/v2"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tessera-survey/tessera/auth"

	"github.com/tessera-survey/tessera/forms"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/syncengine"
)

type formService struct{ s *Server }

func (h *formService) PublishForm(ctx context.Context, req *tesserav1.PublishFormRequest) (*tesserav1.PublishFormResponse, error) {
	if p := principal(ctx); p.User != nil {
		if req.Project == "" && !p.User.Admin {
			return nil, connect.NewError(connect.CodePermissionDenied, "name the project the form is for (--project)")
		}
		if req.Project != "" {
			if err := requireProject(ctx, req.Project, auth.Lead); err != nil {
				return nil, err
			}
		}
	}
	if req.Project != "" {
		if _, err := h.s.auth.Project(ctx, req.Project); err != nil {
			return nil, toConnect(ctx, h.s.log, "PublishForm", err)
		}
	}
	info, created, err := h.s.forms.Publish(ctx, req.Xlsx, req.DefaultFormId, req.Project, h.s.rep.Now())
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "PublishForm", err)
	}
	if created {
		h.s.log.Info("form published", "form", info.Key(), "title", info.Title, "questions", info.Questions)
		_ = h.s.auth.Audit(ctx, actor(ctx), "form-publish", info.Key()+" project "+info.Project)
	}
	return &tesserav1.PublishFormResponse{Form: wire.InfoTo(info), Created: created}, nil
}

func (h *formService) ListForms(ctx context.Context, _ *tesserav1.ListFormsRequest) (*tesserav1.ListFormsResponse, error) {
	all, err := h.s.forms.List(ctx)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "ListForms", err)
	}
	res := &tesserav1.ListFormsResponse{}
	for _, i := range all {
		if mayReadForm(ctx, i) {
			res.Forms = append(res.Forms, wire.InfoTo(i))
		}
	}
	return res, nil
}

func (h *formService) GetForm(ctx context.Context, req *tesserav1.GetFormRequest) (*tesserav1.GetFormResponse, error) {
	info, file, err := h.s.forms.Get(ctx, req.FormId, req.Version)
	if err == nil && !mayReadForm(ctx, info) {
		err = forms.ErrUnknownForm // not visible: as if absent
	}
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "GetForm", err)
	}
	return &tesserav1.GetFormResponse{Form: wire.InfoTo(info), Xlsx: file}, nil
}

func (h *formService) ListFlags(ctx context.Context, req *tesserav1.ListFlagsRequest) (*tesserav1.ListFlagsResponse, error) {
	res := &tesserav1.ListFlagsResponse{}
	err := h.s.store.View(ctx, func(tx syncengine.ReadTx) error {
		return tx.ScanMeta(metaFlags, func(_ string, v []byte) error {
			var f flagRecord
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("flags: %w", syncengine.ErrCorrupt)
			}
			if req.FormId != "" && formID(f.Form) != req.FormId {
				return nil
			}
			id, err := syncengine.ParseRecordID(f.Record)
			if err != nil {
				return fmt.Errorf("flags: %w", syncengine.ErrCorrupt)
			}
			rf := &tesserav1.RecordFlags{Record: id[:], Form: f.Form, CheckedAt: f.CheckedAt}
			for _, v := range f.Violations {
				rf.Violations = append(rf.Violations, &tesserav1.Violation{Field: v.Field, Code: v.Code, Message: v.Message})
			}
			res.Records = append(res.Records, rf)
			return nil
		})
	})
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "ListFlags", err)
	}
	return res, nil
}

// mayReadForm: a device sees its project's forms and the ones for every
// project; a user the forms of projects they have a role in; an admin (or
// an anonymous caller of an open server) all.
func mayReadForm(ctx context.Context, i forms.Info) bool {
	p := principal(ctx)
	switch {
	case i.Project == "":
		return true
	case p.Device != nil:
		return p.Device.Project == i.Project
	case p.User != nil:
		return p.Can(i.Project, auth.Enumerator)
	}
	return true
}

func formID(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '@' {
			return key[:i]
		}
	}
	return key
}

// The server never throws an enumerator's data away: a finalized record
// that fails validation is stored like any other and flagged here, with the
// reasons, for the project lead.
const metaFlags = "flags/"

type flagRecord struct {
	Record     string            `json:"record"`
	Form       string            `json:"form"`
	Violations []forms.Violation `json:"violations"`
	CheckedAt  int64             `json:"checked_at"`
}

// checker re-validates finalized records after they change, off the sync
// path: the merge only hands over the record ids.
type checker struct {
	s     *Server
	queue chan syncengine.RecordID
	done  chan struct{}
}

func (s *Server) startChecker() {
	c := &checker{s: s, queue: make(chan syncengine.RecordID, 4096), done: make(chan struct{})}
	s.checker = c
	go c.run()
}

// changed is the replica's hook: queue finalized records for a check.
func (c *checker) finalized(ids []syncengine.RecordID) {
	for _, id := range ids {
		c.queue <- id
	}
}

func (c *checker) stop() {
	close(c.queue)
	<-c.done
}

func (c *checker) run() {
	defer close(c.done)
	for id := range c.queue {
		if err := c.check(context.Background(), id); err != nil {
			c.s.log.Error("validating a record", "record", id, "err", err)
		}
	}
}

// Check validates one record now (tests and tools).
func (s *Server) Check(ctx context.Context, id syncengine.RecordID) error {
	return s.checker.check(ctx, id)
}

func (c *checker) check(ctx context.Context, id syncengine.RecordID) error {
	rec, err := c.s.rep.Record(ctx, id)
	if err != nil {
		return err
	}
	flag := flagRecord{Record: id.String(), Form: rec.Form, CheckedAt: c.s.rep.Now().UnixMilli()}
	if rec.Status() == "finalized" && !rec.Deleted() {
		f, err := c.s.forms.Form(ctx, rec.Form)
		switch {
		case errors.Is(err, forms.ErrUnknownForm):
			flag.Violations = []forms.Violation{{Code: "form", Message: fmt.Sprintf("form %s is not published on this server", rec.Form)}}
		case err != nil:
			return err
		default:
			in := forms.NewInstance(f, forms.Answers(rec.Values()), c.s.rep.Now)
			flag.Violations = append(in.CheckCalculations(), forms.NewInstance(f, forms.Answers(rec.Values()), c.s.rep.Now).Validate(f.DefaultLanguage)...)
		}
	}
	key := metaFlags + id.String()
	return c.s.store.Update(ctx, func(tx syncengine.Tx) error {
		if len(flag.Violations) == 0 {
			return tx.DeleteMeta(key)
		}
		b, err := json.Marshal(flag)
		if err != nil {
			return err
		}
		return tx.SetMeta(key, b)
	})
}
