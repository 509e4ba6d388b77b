package survey

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/dataset"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// ExportRequest asks for a form's records as tables.
type ExportRequest struct {
	FormID       string
	Labels       string // write choice labels in this language instead of names
	Since        string // a previous export's cursor: only what changed after it
	ApprovedOnly bool
}

// ExportEnd closes an export: the cursor for the next incremental run and
// what was sent.
type ExportEnd struct {
	Cursor        string
	Records, Rows uint64
}

// Sink receives an export, in order: the schema, then rows, changed ids and
// progress as the pipeline produces them. NewRows is called from the
// layout workers at the same time as the others; a batch passed to Rows
// belongs to the sink again (it may reuse it for a later NewRows).
type Sink interface {
	Schema(tables []dataset.Table) error
	NewRows(table int) Rows
	Rows(Rows) error
	Changed(ids []string) error
	Progress(records uint64) error
}

// Rows is a batch of rows of one table, filled by the pipeline.
type Rows interface {
	Append(cells []syncengine.Value)
	Len() int
}

// exportBatch rows go in one batch at most, and as many records in one
// batch of the export's pipeline (so a main table's rows are one batch).
const exportBatch = 2000

// export is one run's decisions: the form's versions, whether sensitive
// answers go out, which records are of the form.
type export struct {
	req       ExportRequest
	versions  []*forms.Form
	sensitive bool
	layout    *dataset.Layout
}

func (e *export) matches(form string) bool { return ofForm(form, e.req.FormID) }

// exported: the record is of the form and not deleted (a delete in
// conflict is exported, with its conflict).
func (e *export) exported(rec *syncengine.Record) bool {
	return e.matches(rec.Form) && (!rec.Deleted() || rec.DeleteConflict())
}

func (e *export) options() dataset.Options {
	return dataset.Options{Labels: e.req.Labels, Sensitive: e.sensitive}
}

// plan finds the form's versions and decides what p receives.
func (s *Service) plan(ctx context.Context, p auth.Principal, req ExportRequest) (*export, error) {
	all, err := s.forms.List(ctx)
	if err != nil {
		return nil, err
	}
	e := &export{req: req}
	for _, info := range all {
		if info.ID != req.FormID {
			continue
		}
		f, err := s.forms.Form(ctx, info.Key())
		if err != nil {
			return nil, err
		}
		e.versions = append(e.versions, f)
	}
	if len(e.versions) == 0 {
		return nil, fmt.Errorf("%w: %s", forms.ErrUnknownForm, req.FormID)
	}
	project := e.versions[0].Project
	if p.User != nil && !s.mayRecord(p, project, auth.Analyst) {
		if project == "" {
			// Its records may be of any project: not for one project's analyst.
			return nil, fmt.Errorf("%w: form %s is published for every project; only an admin exports it", auth.ErrDenied, req.FormID)
		}
		return nil, s.require(p, project, auth.Analyst)
	}
	e.sensitive = seesSensitive(p, project)
	e.layout = dataset.NewLayout(e.versions, e.options())
	return e, nil
}

// Export sends a form's records to sink: every record, or those changed
// (or reviewed) after req.Since. It is audited before any record leaves,
// and again with the counts at the end; either audit failing fails it.
func (s *Service) Export(ctx context.Context, p auth.Principal, req ExportRequest, sink Sink) (ExportEnd, error) {
	e, err := s.plan(ctx, p, req)
	if err != nil {
		return ExportEnd{}, err
	}
	var since, sinceReview uint64
	if req.Since != "" {
		if since, sinceReview, err = parseCursor(req.Since); err != nil {
			return ExportEnd{}, ErrCursor
		}
	}
	what := fmt.Sprintf("form %s (since %q, approved only %v, sensitive %v)", req.FormID, req.Since, req.ApprovedOnly, e.sensitive)
	if err := s.auth.Audit(ctx, Actor(p), "export", what); err != nil {
		return ExportEnd{}, fmt.Errorf("audit: %w", err)
	}
	if err := sink.Schema(e.layout.Tables); err != nil {
		return ExportEnd{}, err
	}
	run := newExportRun(sink, e)
	defer run.finish()
	var head, reviewHead uint64
	err = s.store.View(ctx, func(tx syncengine.ReadTx) error {
		var err error
		if head, err = tx.Head(); err != nil {
			return err
		}
		if reviewHead, err = reviewSeq(tx); err != nil {
			return err
		}
		if since > head || sinceReview > reviewHead {
			return ErrAhead
		}
		if req.Since == "" {
			return e.scanAll(tx, run)
		}
		return e.scanChanged(tx, run, since, sinceReview)
	})
	if err == nil {
		err = run.flush()
	}
	records, rows, runErr := run.finish()
	if runErr != nil {
		return ExportEnd{}, runErr // a record could not be laid out, or the sink failed
	}
	if err != nil {
		return ExportEnd{}, err
	}
	if err := s.auth.Audit(ctx, Actor(p), "export-done", fmt.Sprintf("%s: %d records, %d rows", what, records, rows)); err != nil {
		return ExportEnd{}, fmt.Errorf("audit: %w", err)
	}
	return ExportEnd{Cursor: fmt.Sprintf("c%d.r%d", head, reviewHead), Records: records, Rows: rows}, nil
}

// enqueue hands a record (decoded, or as stored: raw, copied by the run)
// with its review state to the layout stage, when the review filter lets
// it by.
func (e *export) enqueue(run *exportRun, reviews reviewLookup, rec *syncengine.Record, id syncengine.RecordID, raw []byte) error {
	b, ok, err := reviews(id)
	if err != nil {
		return err
	}
	state := ""
	if ok {
		if state, err = decodeReview(b); err != nil {
			return err
		}
	}
	if e.req.ApprovedOnly && state != "approved" {
		return nil
	}
	return run.add(rec, id, raw, state)
}

// scanAll sends every record of the form.
func (e *export) scanAll(tx syncengine.ReadTx, run *exportRun) error {
	reviews, stop := mergedReviews(tx)
	defer stop()
	if raw, ok := tx.(syncengine.RawRecordScanner); ok && len(e.layout.Tables) == 1 {
		// The fast path: records go to the layout stage as stored, which
		// lays most out without decoding them (see dataset's
		// RowsFromStored); the form and delete checks happen there.
		return raw.ScanRecordBytes(syncengine.RecordID{}, func(id syncengine.RecordID, b []byte) error {
			return e.enqueue(run, reviews, nil, id, b)
		})
	}
	return tx.ScanRecords(syncengine.RecordID{}, func(rec *syncengine.Record) error {
		if !e.exported(rec) {
			return nil
		}
		return e.enqueue(run, reviews, rec, rec.ID, nil)
	})
}

// scanChanged sends the records changed or reviewed after the cursor:
// their ids first (so a mirror drops the ones no longer exported), then
// each record once.
func (e *export) scanChanged(tx syncengine.ReadTx, run *exportRun, since, sinceReview uint64) error {
	changed, err := e.changedSince(tx, since, sinceReview)
	if err != nil {
		return err
	}
	ids := make([]string, 0, min(len(changed), 10000))
	for id := range changed {
		ids = append(ids, id.String())
		if len(ids) == cap(ids) {
			if err := run.changed(ids); err != nil {
				return err
			}
			ids = make([]string, 0, cap(ids)) // the sent slice belongs to the sink now
		}
	}
	if len(ids) > 0 {
		if err := run.changed(ids); err != nil {
			return err
		}
	}
	reviews := lookupReview(tx)
	for id := range changed {
		rec, err := tx.Record(id)
		if errors.Is(err, syncengine.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if e.exported(rec) {
			if err := e.enqueue(run, reviews, rec, rec.ID, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// changedSince collects the ids of the form's records changed after the
// log position since (from the log: small for an incremental run) or
// reviewed after the review position sinceReview.
func (e *export) changedSince(tx syncengine.ReadTx, since, sinceReview uint64) (map[syncengine.RecordID]bool, error) {
	changed := map[syncengine.RecordID]bool{}
	err := tx.ScanLog(since, func(l syncengine.LogEntry, _ int) error {
		if e.matches(l.Change.Form) {
			changed[l.Change.Record] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Records whose review changed after the cursor, whatever form: the
	// form is checked when the record is read.
	err = tx.ScanMeta(metaReviewLog, func(k string, v []byte) error {
		n, err := strconv.ParseUint(strings.TrimPrefix(k, metaReviewLog), 16, 64)
		if err != nil {
			return fmt.Errorf("review log: %w", syncengine.ErrCorrupt)
		}
		if n <= sinceReview {
			return nil
		}
		id, err := syncengine.ParseRecordID(string(v))
		if err != nil {
			return fmt.Errorf("review log: %w", syncengine.ErrCorrupt)
		}
		rec, err := tx.Record(id)
		if errors.Is(err, syncengine.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if e.matches(rec.Form) {
			changed[id] = true
		}
		return nil
	})
	return changed, err
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
