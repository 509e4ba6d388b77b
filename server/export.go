package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/dataset"
	"github.com/tessera-survey/tessera/forms"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/gen/tessera/v1/tesserav1connect"
	"github.com/tessera-survey/tessera/syncengine"
)

const metaReview = "review/"

var reviewStates = map[string]bool{"received": true, "has_issues": true, "approved": true, "rejected": true}

type review struct {
	State   string `json:"state"`
	Comment string `json:"comment,omitempty"`
	By      string `json:"by"`
	At      int64  `json:"at"`
}

const (
	metaReviewSeq = "reviewseq"
	metaReviewLog = "reviewlog/" // + 16 hex digits of the review sequence → record id
)

// setReview saves a record's review and logs it under the next review
// sequence number: reviews are not changes to the record, but an
// incremental export must still see that a record became approved (or
// stopped being). The export cursor carries both positions.
func (s *Server) setReview(ctx context.Context, id syncengine.RecordID, rv review) error {
	b, _ := json.Marshal(rv)
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		var seq uint64
		if v, err := tx.Meta(metaReviewSeq); err == nil {
			seq, _ = strconv.ParseUint(string(v), 10, 64)
		} else if !errors.Is(err, syncengine.ErrNotFound) {
			return err
		}
		seq++
		if err := tx.SetMeta(metaReviewSeq, []byte(strconv.FormatUint(seq, 10))); err != nil {
			return err
		}
		if err := tx.SetMeta(fmt.Sprintf("%s%016x", metaReviewLog, seq), []byte(id.String())); err != nil {
			return err
		}
		return tx.SetMeta(metaReview+id.String(), b)
	})
}

// parseCursor reads an export cursor: "c<log seq>" or "c<log seq>.r<review seq>".
func parseCursor(c string) (logSeq, reviewSeq uint64, err error) {
	rest, ok := strings.CutPrefix(c, "c")
	l, r, hasR := strings.Cut(rest, ".r")
	if logSeq, err = strconv.ParseUint(l, 10, 64); !ok || err != nil {
		return 0, 0, errors.New("not a cursor")
	}
	if hasR {
		if reviewSeq, err = strconv.ParseUint(r, 10, 64); err != nil {
			return 0, 0, errors.New("not a cursor")
		}
	}
	return logSeq, reviewSeq, nil
}

// mergedReviews reads review states for a scan of records in id order by
// walking the review entries alongside (they are kept in the same order)
// instead of one lookup per record. Should a store ever list them in
// another order, it notices and falls back to lookups, so no review is
// missed.
func mergedReviews(tx syncengine.ReadTx, lookup func(syncengine.RecordID) ([]byte, bool)) (func(syncengine.RecordID) ([]byte, bool), func()) {
	next, stop := iter.Pull2(func(yield func(string, []byte) bool) {
		_ = tx.ScanMeta(metaReview, func(k string, v []byte) error {
			if !yield(k, v) {
				return syncengine.ErrStop
			}
			return nil
		})
	})
	key, val, ok := next()
	ordered := true
	var last string
	return func(id syncengine.RecordID) ([]byte, bool) {
		want := metaReview + id.String()
		if !ordered || want < last {
			return lookup(id)
		}
		last = want
		for ok && key < want {
			prev := key
			key, val, ok = next()
			if ok && key < prev {
				ordered = false
				return lookup(id)
			}
		}
		if ok && key == want {
			return val, true
		}
		return nil, false
	}, stop
}

// errExportSend stops reading once the stream has failed; the send's own
// error is what the handler returns.
var errExportSend = errors.New("export: stream failed")

type reviewService struct{ s *Server }

func (h *reviewService) SetReview(ctx context.Context, req *tesserav1.SetReviewRequest) (*tesserav1.SetReviewResponse, error) {
	id, err := syncengine.ParseRecordID(req.Record)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "SetReview", err)
	}
	if !reviewStates[req.State] {
		return nil, connect.NewError(connect.CodeInvalidArgument, "state: received, has_issues, approved or rejected")
	}
	rec, err := h.s.rep.Record(ctx, id)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "SetReview", err)
	}
	if err := h.s.requireRecordRole(ctx, rec, auth.Lead); err != nil {
		return nil, err
	}
	if err := h.s.setReview(ctx, id, review{State: req.State, Comment: req.Comment, By: actor(ctx), At: h.s.rep.Now().UnixMilli()}); err != nil {
		return nil, toConnect(ctx, h.s.log, "SetReview", err)
	}
	_ = h.s.auth.Audit(ctx, actor(ctx), "review", fmt.Sprintf("record %s: %s %s", id, req.State, req.Comment))
	return &tesserav1.SetReviewResponse{}, nil
}

// requireRecordRole checks the caller's role in the project of a record's
// form (signed-in users; an open server's anonymous callers pass).
func (s *Server) requireRecordRole(ctx context.Context, rec *syncengine.Record, role auth.Role) error {
	p := principal(ctx)
	if p.User == nil {
		return nil
	}
	project := ""
	if f, err := s.forms.Form(ctx, rec.Form); err == nil {
		project = f.Project
	}
	if project == "" {
		if p.CanAnywhere(role) {
			return nil
		}
		return connect.NewError(connect.CodePermissionDenied, "your role does not allow this")
	}
	return requireProject(ctx, project, role)
}

type exportService struct{ s *Server }

// exportBatch rows go in one message at most, and as many records in one
// batch of the export's pipeline (so a main table's rows are one message).
const exportBatch = 2000

func (h *exportService) Export(ctx context.Context, req *tesserav1.ExportRequest, stream tesserav1connect.ExportServiceExportServerStream) error {
	s := h.s
	all, err := s.forms.List(ctx)
	if err != nil {
		return toConnect(ctx, s.log, "Export", err)
	}
	var versions []*forms.Form
	for _, info := range all {
		if info.ID != req.FormId {
			continue
		}
		f, err := s.forms.Form(ctx, info.Key())
		if err != nil {
			return toConnect(ctx, s.log, "Export", err)
		}
		versions = append(versions, f)
	}
	if len(versions) == 0 {
		return toConnect(ctx, s.log, "Export", fmt.Errorf("%w: %s", forms.ErrUnknownForm, req.FormId))
	}
	project := versions[0].Project
	p := principal(ctx)
	sensitive := false
	if p.User != nil {
		if project != "" {
			if err := requireProject(ctx, project, auth.Analyst); err != nil {
				return err
			}
		}
		sensitive = p.Can(project, auth.Lead) || p.User.Admin
	}
	layout := dataset.NewLayout(versions, dataset.Options{Labels: req.Labels, Sensitive: sensitive})
	schema := &tesserav1.ExportSchema{}
	for _, t := range layout.Tables {
		et := &tesserav1.ExportTable{Name: t.Name, Parent: t.Parent}
		for _, c := range t.Columns {
			et.Columns = append(et.Columns, &tesserav1.ExportColumn{Name: c.Name, Type: tesserav1.ColumnType(c.Type), Geopoint: c.Geopoint, Part: c.Part})
		}
		schema.Tables = append(schema.Tables, et)
	}
	if err := stream.Send(&tesserav1.ExportResponse{Part: &tesserav1.ExportResponse_Schema{Schema: schema}}); err != nil {
		return err
	}
	var since, sinceReview uint64
	incremental := req.Since != ""
	if incremental {
		if since, sinceReview, err = parseCursor(req.Since); err != nil {
			return connect.NewError(connect.CodeInvalidArgument, "since: not a cursor from a previous export")
		}
	}
	prefix := req.FormId + "@"
	matches := func(form string) bool { return form == req.FormId || strings.HasPrefix(form, prefix) }
	// exported: the record is of the form and not deleted (a delete in
	// conflict is exported, with its conflict).
	exported := func(rec *syncengine.Record) bool {
		return matches(rec.Form) && (!rec.Deleted() || rec.DeleteConflict())
	}
	run := newExportRun(stream, versions, dataset.Options{Labels: req.Labels, Sensitive: sensitive}, req.PackedTexts, matches, exported)
	defer run.finish()
	var head, reviewHead uint64
	err = s.store.View(ctx, func(tx syncengine.ReadTx) error {
		var err error
		if head, err = tx.Head(); err != nil {
			return err
		}
		if v, err := tx.Meta(metaReviewSeq); err == nil {
			reviewHead, _ = strconv.ParseUint(string(v), 10, 64)
		} else if !errors.Is(err, syncengine.ErrNotFound) {
			return err
		}
		if since > head || sinceReview > reviewHead {
			return connect.NewError(connect.CodeInvalidArgument, "since: the cursor is ahead of this server")
		}
		reviewOf := func(id syncengine.RecordID) ([]byte, bool) {
			b, err := tx.Meta(metaReview + id.String())
			return b, err == nil
		}
		// enqueue hands a record (decoded, or as stored: raw, copied
		// by the run) with its review state to the layout stage, when
		// the review filter lets it by.
		enqueue := func(rec *syncengine.Record, id syncengine.RecordID, raw []byte) error {
			var rv review
			if b, ok := reviewOf(id); ok {
				json.Unmarshal(b, &rv)
			}
			if req.ApprovedOnly && rv.State != "approved" {
				return nil
			}
			return run.add(rec, id, raw, rv.State)
		}
		each := func(rec *syncengine.Record) error {
			if !exported(rec) {
				return nil
			}
			return enqueue(rec, rec.ID, nil)
		}
		if !incremental {
			var stop func()
			reviewOf, stop = mergedReviews(tx, reviewOf)
			defer stop()
			if raw, ok := tx.(syncengine.RawRecordScanner); ok && len(layout.Tables) == 1 {
				// The fast path: records go to the layout stage as stored,
				// which lays most out without decoding them (see dataset's
				// RowsFromStored); the form and delete checks happen there.
				return raw.ScanRecordBytes(syncengine.RecordID{}, func(id syncengine.RecordID, b []byte) error {
					return enqueue(nil, id, b)
				})
			}
			return tx.ScanRecords(syncengine.RecordID{}, each)
		}
		// Only records changed after the cursor: collect their ids from
		// the log (small for an incremental run), then export each once.
		changed := map[syncengine.RecordID]bool{}
		if err := tx.ScanLog(since, func(e syncengine.LogEntry, _ int) error {
			if matches(e.Change.Form) {
				changed[e.Change.Record] = true
			}
			return nil
		}); err != nil {
			return err
		}
		// Records whose review changed after the cursor, whatever form:
		// the form is checked when the record is read.
		if err := tx.ScanMeta(metaReviewLog, func(k string, v []byte) error {
			n, err := strconv.ParseUint(strings.TrimPrefix(k, metaReviewLog), 16, 64)
			if err != nil || n <= sinceReview {
				return nil
			}
			if id, err := syncengine.ParseRecordID(string(v)); err == nil {
				if rec, err := tx.Record(id); err == nil && matches(rec.Form) {
					changed[id] = true
				}
			}
			return nil
		}); err != nil {
			return err
		}
		ids := make([]string, 0, min(len(changed), 10000))
		for id := range changed {
			ids = append(ids, id.String())
			if len(ids) == cap(ids) {
				if err := run.send(&tesserav1.ExportResponse{Part: &tesserav1.ExportResponse_Changed{Changed: &tesserav1.ExportChanged{RecordIds: ids}}}); err != nil {
					return err
				}
				ids = make([]string, 0, cap(ids)) // the sent slice belongs to the sender now
			}
		}
		if len(ids) > 0 {
			if err := run.send(&tesserav1.ExportResponse{Part: &tesserav1.ExportResponse_Changed{Changed: &tesserav1.ExportChanged{RecordIds: ids}}}); err != nil {
				return err
			}
		}
		for id := range changed {
			rec, err := tx.Record(id)
			if errors.Is(err, syncengine.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := each(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = run.flush()
	}
	records, rows, runErr := run.finish()
	if runErr != nil && !errors.Is(runErr, errExportSend) {
		return toConnect(ctx, s.log, "Export", runErr) // a record could not be laid out
	}
	if runErr != nil {
		return run.sendErr // the client went away or the link broke
	}
	if err != nil {
		return toConnect(ctx, s.log, "Export", err)
	}
	_ = s.auth.Audit(ctx, actor(ctx), "export", fmt.Sprintf("form %s: %d records, %d rows (since %q, approved only %v, sensitive %v)",
		req.FormId, records, rows, req.Since, req.ApprovedOnly, sensitive))
	return stream.Send(&tesserav1.ExportResponse{Part: &tesserav1.ExportResponse_End{End: &tesserav1.ExportEnd{
		Cursor: fmt.Sprintf("c%d.r%d", head, reviewHead), Records: records, Rows: rows}}})
}

// appendRow adds a row to a columnar batch, its texts packed or not.
func appendRow(b *tesserav1.ExportRows, cells []syncengine.Value, packed bool) {
	b.Count++
	for _, v := range cells {
		switch v.Kind {
		case syncengine.Text:
			b.Kinds = append(b.Kinds, tesserav1.CellKind_CELL_KIND_TEXT)
			if packed {
				b.TextData = append(b.TextData, v.Str...)
				b.TextLens = append(b.TextLens, uint32(len(v.Str)))
			} else {
				b.Texts = append(b.Texts, v.Str)
			}
		case syncengine.Int:
			b.Kinds = append(b.Kinds, tesserav1.CellKind_CELL_KIND_INT)
			b.Ints = append(b.Ints, v.Int)
		case syncengine.Decimal:
			b.Kinds = append(b.Kinds, tesserav1.CellKind_CELL_KIND_DECIMAL)
			b.Decimals = append(b.Decimals, v.Num)
		case syncengine.Bool:
			b.Kinds = append(b.Kinds, tesserav1.CellKind_CELL_KIND_BOOL)
			b.Bools = append(b.Bools, v.Bool)
		default:
			b.Kinds = append(b.Kinds, tesserav1.CellKind_CELL_KIND_UNSPECIFIED)
		}
	}
}
