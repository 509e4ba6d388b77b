package server

import (
	"context"
	"errors"

	"github.com/tessera-survey/tessera/dataset"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/gen/tessera/v1/tesserav1connect"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/survey"
	"github.com/tessera-survey/tessera/syncengine"
)

type reviewService struct{ s *Server }

func (h *reviewService) SetReview(ctx context.Context, req *tesserav1.SetReviewRequest) (*tesserav1.SetReviewResponse, error) {
	id, err := syncengine.ParseRecordID(req.Record)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "SetReview", err)
	}
	if err := h.s.svc.SetReview(ctx, principal(ctx), survey.Review{Record: id, State: req.State, Comment: req.Comment}); err != nil {
		return nil, toConnect(ctx, h.s.log, "SetReview", err)
	}
	return &tesserav1.SetReviewResponse{}, nil
}

func (h *reviewService) EraseRecord(ctx context.Context, req *tesserav1.EraseRecordRequest) (*tesserav1.EraseRecordResponse, error) {
	id, err := syncengine.ParseRecordID(req.Record)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "EraseRecord", err)
	}
	out, err := h.s.svc.EraseRecord(ctx, principal(ctx), survey.Erase{Record: id, Reason: req.Reason})
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "EraseRecord", err)
	}
	return &tesserav1.EraseRecordResponse{AlreadyErased: out.Already}, nil
}

func (h *reviewService) AssignRecord(ctx context.Context, req *tesserav1.AssignRecordRequest) (*tesserav1.AssignRecordResponse, error) {
	id, err := syncengine.ParseRecordID(req.Record)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "AssignRecord", err)
	}
	to := survey.Assignment{Team: req.Team, Device: req.Device, FollowUp: req.FollowUp}
	changed, err := h.s.svc.AssignRecord(ctx, principal(ctx), survey.Assign{Record: id, To: to})
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "AssignRecord", err)
	}
	return &tesserav1.AssignRecordResponse{Changed: changed}, nil
}

type exportService struct{ s *Server }

func (h *exportService) Export(ctx context.Context, req *tesserav1.ExportRequest, stream tesserav1connect.ExportServiceExportServerStream) error {
	sink := newExportSink(stream, req.PackedTexts)
	end, err := h.s.svc.Export(ctx, principal(ctx), survey.ExportRequest{FormID: req.FormId, Labels: req.Labels,
		Since: req.Since, ApprovedOnly: req.ApprovedOnly}, sink)
	if err != nil {
		if sink.sendErr != nil && errors.Is(err, sink.sendErr) {
			return sink.sendErr // the client went away or the link broke
		}
		return toConnect(ctx, h.s.log, "Export", err)
	}
	return stream.Send(&tesserav1.ExportResponse{Part: &tesserav1.ExportResponse_End{End: &tesserav1.ExportEnd{
		Cursor: end.Cursor, Records: end.Records, Rows: end.Rows}}})
}

// exportSink sends an export's parts as stream messages. Row batches are
// the messages themselves, reused once sent: growing fresh slices cell by
// cell cost a fifth of an export's CPU.
type exportSink struct {
	stream  tesserav1connect.ExportServiceExportServerStream
	packed  bool
	spare   chan *exportRows
	sendErr error
}

func newExportSink(stream tesserav1connect.ExportServiceExportServerStream, packed bool) *exportSink {
	return &exportSink{stream: stream, packed: packed, spare: make(chan *exportRows, 24)}
}

func (k *exportSink) send(m *tesserav1.ExportResponse) error {
	if err := k.stream.Send(m); err != nil {
		k.sendErr = err
		return err
	}
	return nil
}

func (k *exportSink) Schema(tables []dataset.Table) error {
	return k.send(&tesserav1.ExportResponse{Part: &tesserav1.ExportResponse_Schema{Schema: wire.SchemaTo(tables)}})
}

func (k *exportSink) NewRows(table int) survey.Rows {
	select {
	case m := <-k.spare:
		r := m.ExportRows
		*r = tesserav1.ExportRows{Table: uint32(table), Kinds: r.Kinds[:0], Texts: r.Texts[:0],
			Ints: r.Ints[:0], Decimals: r.Decimals[:0], Bools: r.Bools[:0],
			TextData: r.TextData[:0], TextLens: r.TextLens[:0]}
		return m
	default:
		return &exportRows{ExportRows: &tesserav1.ExportRows{Table: uint32(table)}, packed: k.packed}
	}
}

func (k *exportSink) Rows(r survey.Rows) error {
	m := r.(*exportRows)
	err := k.send(&tesserav1.ExportResponse{Part: &tesserav1.ExportResponse_Rows{Rows: m.ExportRows}})
	select { // marshalled: its slices are free
	case k.spare <- m:
	default:
	}
	return err
}

func (k *exportSink) Changed(ids []string) error {
	return k.send(&tesserav1.ExportResponse{Part: &tesserav1.ExportResponse_Changed{Changed: &tesserav1.ExportChanged{RecordIds: ids}}})
}

func (k *exportSink) Progress(records uint64) error {
	return k.send(&tesserav1.ExportResponse{Part: &tesserav1.ExportResponse_Progress{Progress: &tesserav1.ExportProgress{RecordsDone: records}}})
}

// exportRows is a columnar message being filled.
type exportRows struct {
	*tesserav1.ExportRows
	packed bool
}

func (r *exportRows) Len() int { return int(r.Count) }

func (r *exportRows) Append(cells []syncengine.Value) { wire.AppendRow(r.ExportRows, cells, r.packed) }
