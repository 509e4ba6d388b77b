package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/tessera-survey/tessera/forms"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/gen/tessera/v1/tesserav1connect"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/survey"
	"github.com/tessera-survey/tessera/syncengine"
)

type mediaService struct{ s *Server }

func hashFrom(b []byte) (string, error) {
	if len(b) != 32 {
		return "", fmt.Errorf("%w: sha256 must be 32 bytes", media.ErrBadRef)
	}
	return hex.EncodeToString(b), nil
}

func (h *mediaService) StartUpload(ctx context.Context, req *tesserav1.StartUploadRequest) (*tesserav1.StartUploadResponse, error) {
	m, id, err := manifestFrom(req)
	if err == nil {
		var missing []int
		if missing, err = h.s.svc.StartUpload(ctx, principal(ctx), id, m); err == nil {
			res := &tesserav1.StartUploadResponse{MaxBytes: h.s.svc.MediaMaxBytes()}
			for _, i := range missing {
				res.Missing = append(res.Missing, uint32(i))
			}
			return res, nil
		}
	}
	if errors.Is(err, media.ErrTooLarge) {
		err = fmt.Errorf("%w (this server takes files up to %s)", err, media.Bytes(h.s.svc.MediaMaxBytes()))
	}
	return nil, toConnect(ctx, h.s.log, "StartUpload", err)
}

func manifestFrom(req *tesserav1.StartUploadRequest) (media.Manifest, syncengine.RecordID, error) {
	id, err := syncengine.ParseRecordID(req.Record)
	if err != nil {
		return media.Manifest{}, id, err
	}
	m := media.Manifest{Size: req.Size, Chunks: make([]string, len(req.Chunks))}
	if m.SHA256, err = hashFrom(req.Sha256); err != nil {
		return m, id, err
	}
	for i, c := range req.Chunks {
		if m.Chunks[i], err = hashFrom(c); err != nil {
			return m, id, err
		}
	}
	return m, id, nil
}

func (h *mediaService) PutChunk(ctx context.Context, req *tesserav1.PutChunkRequest) (*tesserav1.PutChunkResponse, error) {
	id, err := syncengine.ParseRecordID(req.Record)
	var file string
	if err == nil {
		file, err = hashFrom(req.Sha256)
	}
	var done bool
	if err == nil {
		done, err = h.s.svc.PutChunk(ctx, principal(ctx), id, file, int(req.Index), req.Data, req.Last)
	}
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "PutChunk", err)
	}
	return &tesserav1.PutChunkResponse{Done: done}, nil
}

func (h *mediaService) GetMedia(ctx context.Context, req *tesserav1.GetMediaRequest, stream tesserav1connect.MediaServiceGetMediaServerStream) error {
	file, err := hashFrom(req.Sha256)
	var name string
	var r *media.Reader
	if err == nil && req.Form != "" {
		var fi forms.FileInfo
		fi, r, err = h.s.svc.OpenFormMedia(ctx, principal(ctx), req.Form, file)
		name = fi.Name
	} else if err == nil {
		var id syncengine.RecordID
		var f survey.MediaFile
		if id, err = syncengine.ParseRecordID(req.Record); err == nil {
			f, r, err = h.s.svc.OpenMedia(ctx, principal(ctx), id, file)
			name = f.Ref.Name
		}
	}
	if err != nil {
		return toConnect(ctx, h.s.log, "GetMedia", err)
	}
	m := r.Manifest()
	first := &tesserav1.GetMediaResponse{Size: m.Size, Name: name}
	if req.Manifest {
		for _, c := range m.Chunks {
			b, _ := hex.DecodeString(c) // a stored manifest's hashes are checked hex
			first.Chunks = append(first.Chunks, b)
		}
	}
	for i := int(req.FromChunk); i < len(m.Chunks); i++ {
		b, err := h.s.svc.Media().Chunk(ctx, m, i)
		if err != nil {
			return toConnect(ctx, h.s.log, "GetMedia", err)
		}
		msg := &tesserav1.GetMediaResponse{Data: b}
		if first != nil {
			first.Data, msg, first = b, first, nil
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	if first != nil {
		return stream.Send(first) // an empty file, or from past its end
	}
	return nil
}

func (h *mediaService) ListMedia(ctx context.Context, req *tesserav1.ListMediaRequest, stream tesserav1connect.MediaServiceListMediaServerStream) error {
	var batch []*tesserav1.MediaFile
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := stream.Send(&tesserav1.ListMediaResponse{Files: batch})
		batch = nil
		return err
	}
	var sendErr error
	err := h.s.svc.ListMedia(ctx, principal(ctx), req.FormId, func(f survey.MediaFile) error {
		sum, _ := hex.DecodeString(f.Ref.SHA256)
		batch = append(batch, &tesserav1.MediaFile{Record: f.Record.String(), Field: f.Field, Name: f.Ref.Name,
			Sha256: sum, Size: f.Ref.Size, Held: f.Held})
		if len(batch) == 1000 {
			sendErr = flush()
			return sendErr
		}
		return nil
	})
	if err == nil {
		err = flush()
	} else if sendErr == nil || !errors.Is(err, sendErr) {
		err = toConnect(ctx, h.s.log, "ListMedia", err)
	}
	return err
}
