package server

import (
	"context"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
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
