package server

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/tessera-survey/tessera/dataset"
	"github.com/tessera-survey/tessera/forms"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/gen/tessera/v1/tesserav1connect"
	"github.com/tessera-survey/tessera/syncengine"
)

// exportRun is an export's pipeline behind the store scan. The reader
// (the handler, in its read transaction) fills batches of records; layout
// workers, one per core up to four, turn batches into rows at the same
// time; one sender sends every batch's rows in the order the records were
// read, with the other messages (progress, changed ids) in their places.
// Laying out was the slowest stage and a single goroutine could not use
// more than one core.
type exportRun struct {
	stream   tesserav1connect.ExportServiceExportServerStream
	packed   bool
	matches  func(form string) bool
	exported func(*syncengine.Record) bool

	cur        *runBatch      // being filled by the reader
	work       chan *runBatch // to the layout workers
	order      chan runStep   // to the sender, in read order
	free       chan *runBatch // batches back from the sender
	spare      chan *tesserav1.ExportRows
	workers    sync.WaitGroup
	senderDone chan struct{}
	failed     atomic.Bool // a send or a layout failed: the reader stops
	finished   bool

	// The sender's, read after senderDone.
	records, rows uint64
	err           error // the first failure: a layout error, or errExportSend
	sendErr       error // the stream's own error when a send failed
}

// runStep is the sender's next thing to do: send a message, or wait for a
// batch's layout and send its rows.
type runStep struct {
	msg   *tesserav1.ExportResponse
	batch *runBatch
}

type runBatch struct {
	items []runItem
	// buf holds the stored bytes of the batch's records (a store's own
	// are valid only while its scan is on them); reused with the batch.
	buf  []byte
	done chan struct{} // one token when a worker is through with it
	// Set by the worker: the rows as messages in order, and counts.
	out           []*tesserav1.ExportRows
	cur           []*tesserav1.ExportRows // per table, the message being filled
	records, rows uint64
	err           error
}

type runItem struct {
	rec    *syncengine.Record // decoded by the reader, or
	raw    []byte             // as stored (nil for a decoded record)
	id     syncengine.RecordID
	review string
}

func newExportRun(stream tesserav1connect.ExportServiceExportServerStream, versions []*forms.Form, opts dataset.Options,
	packed bool, matches func(string) bool, exported func(*syncengine.Record) bool) *exportRun {
	workers := min(max(runtime.GOMAXPROCS(0), 1), 4)
	r := &exportRun{
		stream: stream, packed: packed, matches: matches, exported: exported,
		work:       make(chan *runBatch, workers),
		order:      make(chan runStep, 4),
		free:       make(chan *runBatch, workers+6),
		spare:      make(chan *tesserav1.ExportRows, 2*(workers+6)),
		senderDone: make(chan struct{}),
	}
	for range workers {
		l := dataset.NewLayout(versions, opts) // a layout keeps buffers: one each
		r.workers.Add(1)
		go r.layOutAll(l)
	}
	go r.sendAll()
	return r
}

// add queues a record (decoded, or as stored: raw is copied) for layout.
func (r *exportRun) add(rec *syncengine.Record, id syncengine.RecordID, raw []byte, review string) error {
	if r.failed.Load() {
		return errExportSend
	}
	if r.cur == nil {
		r.cur = r.batch()
	}
	b := r.cur
	it := runItem{rec: rec, id: id, review: review}
	if raw != nil {
		start := len(b.buf)
		b.buf = append(b.buf, raw...)
		it.raw = b.buf[start:len(b.buf):len(b.buf)]
	}
	b.items = append(b.items, it)
	if len(b.items) >= exportBatch {
		return r.flush()
	}
	return nil
}

// flush hands the batch being filled to the workers and the sender.
func (r *exportRun) flush() error {
	if r.failed.Load() {
		return errExportSend
	}
	if b := r.cur; b != nil && len(b.items) > 0 {
		r.cur = nil
		r.order <- runStep{batch: b} // first: the sender keeps read order
		r.work <- b
	}
	return nil
}

// send queues a message after the records added so far.
func (r *exportRun) send(m *tesserav1.ExportResponse) error {
	if err := r.flush(); err != nil {
		return err
	}
	r.order <- runStep{msg: m}
	return nil
}

// finish waits for the pipeline to end (a batch still being filled is
// dropped: flush first) and reports the records and rows sent and the
// first failure. Only then may the caller use the stream again.
func (r *exportRun) finish() (records, rows uint64, err error) {
	if !r.finished {
		r.finished = true
		close(r.order)
		close(r.work)
		<-r.senderDone
		r.workers.Wait()
	}
	return r.records, r.rows, r.err
}

func (r *exportRun) batch() *runBatch {
	select {
	case b := <-r.free:
		return b
	default:
		// buf is never nil, so neither is a record's copy (nil raw marks
		// a decoded record).
		return &runBatch{items: make([]runItem, 0, exportBatch), buf: make([]byte, 0, 1<<20), done: make(chan struct{}, 1)}
	}
}

// rowsMsg is an empty message for rows of table ti, reusing a sent one.
func (r *exportRun) rowsMsg(ti int) *tesserav1.ExportRows {
	select {
	case m := <-r.spare:
		*m = tesserav1.ExportRows{Table: uint32(ti), Kinds: m.Kinds[:0], Texts: m.Texts[:0],
			Ints: m.Ints[:0], Decimals: m.Decimals[:0], Bools: m.Bools[:0],
			TextData: m.TextData[:0], TextLens: m.TextLens[:0]}
		return m
	default:
		return &tesserav1.ExportRows{Table: uint32(ti)}
	}
}

func (r *exportRun) layOutAll(l *dataset.Layout) {
	defer r.workers.Done()
	for b := range r.work {
		if !r.failed.Load() {
			r.layOut(l, b)
		}
		b.done <- struct{}{}
	}
}

// layOut turns a batch's records into rows. A panic is the batch's error:
// it would not reach the handler's recover from this goroutine.
func (r *exportRun) layOut(l *dataset.Layout, b *runBatch) {
	defer func() {
		if p := recover(); p != nil {
			b.err = fmt.Errorf("export layout: panic: %v", p)
		}
	}()
	emit := func(row dataset.Row) {
		for len(b.cur) <= row.Table {
			b.cur = append(b.cur, nil)
		}
		m := b.cur[row.Table]
		if m == nil || m.Count >= exportBatch {
			m = r.rowsMsg(row.Table)
			b.cur[row.Table] = m
			b.out = append(b.out, m)
		}
		appendRow(m, row.Cells, r.packed)
		b.rows++
	}
	for i := range b.items {
		it := &b.items[i]
		rec := it.rec
		if it.raw != nil {
			handled, laidOut, err := l.RowsFromStored(it.id, it.raw, dataset.Meta{Review: it.review}, r.matches, emit)
			if err == nil && !handled {
				rec, err = syncengine.UnmarshalRecord(it.id, it.raw)
			}
			if err != nil {
				b.err = fmt.Errorf("export: record %s: %w", it.id, err)
				return
			}
			if handled {
				if laidOut {
					b.records++
				}
				continue
			}
			if !r.exported(rec) {
				continue
			}
		}
		b.records++
		l.Rows(rec, dataset.Meta{Review: it.review}, emit)
	}
}

func (r *exportRun) sendAll() {
	defer close(r.senderDone)
	for st := range r.order {
		if st.msg != nil {
			r.sendMsg(st.msg)
			continue
		}
		b := st.batch
		<-b.done
		if b.err != nil && r.err == nil {
			r.err = b.err
			r.failed.Store(true)
		}
		for _, m := range b.out {
			r.sendMsg(&tesserav1.ExportResponse{Part: &tesserav1.ExportResponse_Rows{Rows: m}})
		}
		if r.err == nil {
			before := r.records
			r.records += b.records
			r.rows += b.rows
			if r.records/5000 != before/5000 {
				r.sendMsg(&tesserav1.ExportResponse{Part: &tesserav1.ExportResponse_Progress{Progress: &tesserav1.ExportProgress{RecordsDone: r.records}}})
			}
		}
		// Sent messages have been marshalled: their slices are free, and
		// growing fresh ones cell by cell cost a fifth of an export's CPU.
		for _, m := range b.out {
			select {
			case r.spare <- m:
			default:
			}
		}
		clear(b.items)
		clear(b.out)
		clear(b.cur)
		b.items, b.buf, b.out, b.cur = b.items[:0], b.buf[:0], b.out[:0], b.cur[:0]
		b.records, b.rows, b.err = 0, 0, nil
		select {
		case r.free <- b:
		default:
		}
	}
}

// sendMsg sends unless the run has failed; a failed send fails the run.
func (r *exportRun) sendMsg(m *tesserav1.ExportResponse) {
	if r.err != nil {
		return
	}
	if err := r.stream.Send(m); err != nil {
		r.err, r.sendErr = errExportSend, err
		r.failed.Store(true)
	}
}
