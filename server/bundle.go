package server

import (
	"context"

	"github.com/tessera-survey/tessera/bundle"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/survey"
)

func (h *syncService) BundleKeys(ctx context.Context, _ *tesserav1.BundleKeysRequest) (*tesserav1.BundleKeysResponse, error) {
	k, err := h.s.svc.PublicBundleKeys(ctx)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "BundleKeys", err)
	}
	return &tesserav1.BundleKeysResponse{Replica: k.Replica[:], SealKey: k.Seal, SignKey: k.Sign}, nil
}

func (h *syncService) ImportBundle(ctx context.Context, req *tesserav1.ImportBundleRequest) (*tesserav1.ImportBundleResponse, error) {
	reply, st, err := h.s.svc.ImportBundle(ctx, principal(ctx), req.Bundle, wire.BundleCodec{})
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "ImportBundle", err)
	}
	h.s.pokeHub()
	return &tesserav1.ImportBundleResponse{Reply: reply, Device: st.Device.ID, Project: st.Device.Project, Team: st.Device.Team,
		Pushed: uint32(st.Pushed), Applied: uint32(st.Applied), Pulled: uint32(st.Pulled), Forms: uint32(st.Forms)}, nil
}

func (h *syncService) ExportUpstreamBundle(ctx context.Context, req *tesserav1.ExportUpstreamBundleRequest) (*tesserav1.ExportUpstreamBundleResponse, error) {
	if h.s.relay == nil {
		return nil, toConnect(ctx, h.s.log, "ExportUpstreamBundle", survey.ErrNotHub)
	}
	parts, n, err := h.s.relay.ExportBundle(ctx, principal(ctx), int(req.MaxBytes), wire.BundleCodec{})
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "ExportUpstreamBundle", err)
	}
	res := &tesserav1.ExportUpstreamBundleResponse{Changes: uint32(n)}
	total := 0
	for _, p := range parts {
		if total += len(p); total > bundle.MaxSize && len(res.Parts) > 0 {
			res.More = true // what a client may read in one answer
			break
		}
		res.Parts = append(res.Parts, p)
	}
	return res, nil
}

func (h *syncService) ImportUpstreamReply(ctx context.Context, req *tesserav1.ImportUpstreamReplyRequest) (*tesserav1.ImportUpstreamReplyResponse, error) {
	if h.s.relay == nil {
		return nil, toConnect(ctx, h.s.log, "ImportUpstreamReply", survey.ErrNotHub)
	}
	st, err := h.s.relay.ImportReply(ctx, principal(ctx), req.Reply, wire.BundleCodec{})
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "ImportUpstreamReply", err)
	}
	return &tesserav1.ImportUpstreamReplyResponse{Received: uint32(st.Received), Applied: uint32(st.Applied), Forms: uint32(st.Forms),
		Devices: uint32(st.Devices), Pending: uint32(st.Pending)}, nil
}
