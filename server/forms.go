package server

import (
	"context"
	"crypto/md5"
	"encoding/hex"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/survey"
)

type formService struct{ s *Server }

func (h *formService) PublishForm(ctx context.Context, req *tesserav1.PublishFormRequest) (*tesserav1.PublishFormResponse, error) {
	info, created, err := h.s.svc.Publish(ctx, principal(ctx), survey.Publish{XLSX: req.Xlsx, Files: wire.FilesFrom(req.Files), DefaultID: req.DefaultFormId, Project: req.Project})
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "PublishForm", err)
	}
	return &tesserav1.PublishFormResponse{Form: wire.InfoTo(info), Created: created}, nil
}

func (h *formService) ListForms(ctx context.Context, _ *tesserav1.ListFormsRequest) (*tesserav1.ListFormsResponse, error) {
	all, err := h.s.svc.ListForms(ctx, principal(ctx))
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "ListForms", err)
	}
	res := &tesserav1.ListFormsResponse{}
	for _, i := range all {
		res.Forms = append(res.Forms, wire.InfoTo(i))
	}
	return res, nil
}

func (h *formService) GetForm(ctx context.Context, req *tesserav1.GetFormRequest) (*tesserav1.GetFormResponse, error) {
	if req.FilesByChunk {
		info, file, err := h.s.svc.GetFormFile(ctx, principal(ctx), req.FormId, req.Version)
		if err != nil {
			return nil, toConnect(ctx, h.s.log, "GetForm", err)
		}
		return &tesserav1.GetFormResponse{Form: wire.InfoTo(info), Xlsx: file}, nil
	}
	info, file, files, err := h.s.svc.GetForm(ctx, principal(ctx), req.FormId, req.Version)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "GetForm", err)
	}
	return &tesserav1.GetFormResponse{Form: wire.InfoTo(info), Xlsx: file, Files: wire.FilesTo(files)}, nil
}

func (h *formService) GetXForm(ctx context.Context, req *tesserav1.GetXFormRequest) (*tesserav1.GetXFormResponse, error) {
	info, x, err := h.s.svc.GetXForm(ctx, principal(ctx), req.FormId, req.Version)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "GetXForm", err)
	}
	sum := md5.Sum(x)
	return &tesserav1.GetXFormResponse{Form: wire.InfoTo(info), Xform: x, Md5: hex.EncodeToString(sum[:])}, nil
}

func (h *formService) ListFlags(ctx context.Context, req *tesserav1.ListFlagsRequest) (*tesserav1.ListFlagsResponse, error) {
	flags, err := h.s.svc.ListFlags(ctx, principal(ctx), req.FormId)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "ListFlags", err)
	}
	res := &tesserav1.ListFlagsResponse{}
	for _, f := range flags {
		rf := &tesserav1.RecordFlags{Record: f.Record[:], Form: f.Form, CheckedAt: f.CheckedAt}
		for _, v := range f.Violations {
			rf.Violations = append(rf.Violations, &tesserav1.Violation{Field: v.Field, Code: v.Code, Message: v.Message})
		}
		res.Records = append(res.Records, rf)
	}
	return res, nil
}
