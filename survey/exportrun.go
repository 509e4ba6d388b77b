package survey

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/tessera-survey/tessera/dataset"
	"github.com/tessera-survey/tessera/syncengine"
)

// errSinkFailed stops reading once the sink has failed; the sink's own
// error is what the export returns.
var errSinkFailed = errors.New("export: the sink failed")

// exportRun is an export's pipeline behind the store scan. The reader
// (in the export's read transaction) fills batches of records; layout
// workers, one per core up to four, turn batches into rows at the same
// time; one sender hands every batch's rows to the sink in the order the
// records were read, with the other parts (progress, changed ids) in their
// places. Laying out was the slowest stage and a single goroutine could
// not use more than one core.
type exportRun struct {
	sink Sink
	exp  *export

	cur        *runBatch      // being filled by the reader
	work       chan *runBatch // to the layout workers
	order      chan runStep   // to the sender, in read order
	free       chan *runBatch // batches back from the sender
	workers    sync.WaitGroup
	senderDone chan struct{}
	failed     atomic.Bool // a send or a layout failed: the reader stops
	finished   bool

	// The sender's, read after senderDone.
	records, rows uint64
	err           error // the first failure: a layout error, or the sink's
}

// runStep is the sender's next thing to do: pass changed ids on, or wait
// for a batch's layout and pass its rows.
type runStep struct {
	changed []string
	batch   *runBatch
}

type runBatch struct {
	items []runItem
	// buf holds the stored bytes of the batch's records (a store's own
	// are valid only while its scan is on them); reused with the batch.
	buf  []byte
	done chan struct{} // one token when a worker is through with it
	// Set by the worker: the rows in order, and counts.
	out           []Rows
	cur           []Rows // per table, the batch being filled
	records, rows uint64
	err           error
}

type runItem struct {
	rec    *syncengine.Record // decoded by the reader, or
	raw    []byte             // as stored (nil for a decoded record)
	id     syncengine.RecordID
	review string
}

func newExportRun(sink Sink, e *export) *exportRun {
	workers := min(max(runtime.GOMAXPROCS(0), 1), 4)
	r := &exportRun{
		sink: sink, exp: e,
		work:       make(chan *runBatch, workers),
		order:      make(chan runStep, 4),
		free:       make(chan *runBatch, workers+6),
		senderDone: make(chan struct{}),
	}
	for range workers {
		l := dataset.NewLayout(e.versions, e.options()) // a layout keeps buffers: one each
		r.workers.Add(1)
		go r.layOutAll(l)
	}
	go r.sendAll()
	return r
}

// add queues a record (decoded, or as stored: raw is copied) for layout.
func (r *exportRun) add(rec *syncengine.Record, id syncengine.RecordID, raw []byte, review string) error {
	if r.failed.Load() {
		return errSinkFailed
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
		return errSinkFailed
	}
	if b := r.cur; b != nil && len(b.items) > 0 {
		r.cur = nil
		r.order <- runStep{batch: b} // first: the sender keeps read order
		r.work <- b
	}
	return nil
}

// changed queues changed ids after the records added so far.
func (r *exportRun) changed(ids []string) error {
	if err := r.flush(); err != nil {
		return err
	}
	r.order <- runStep{changed: ids}
	return nil
}

// finish waits for the pipeline to end (a batch still being filled is
// dropped: flush first) and reports the records and rows sent and the
// first failure.
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
// it would not reach a handler's recover from this goroutine.
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
		if m == nil || m.Len() >= exportBatch {
			m = r.sink.NewRows(row.Table)
			b.cur[row.Table] = m
			b.out = append(b.out, m)
		}
		m.Append(row.Cells)
		b.rows++
	}
	for i := range b.items {
		it := &b.items[i]
		rec := it.rec
		if it.raw != nil {
			handled, laidOut, err := l.RowsFromStored(it.id, it.raw, dataset.Meta{Review: it.review}, r.exp.matches, emit)
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
			if !r.exp.exported(rec) {
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
		if st.batch == nil {
			r.pass(func() error { return r.sink.Changed(st.changed) })
			continue
		}
		b := st.batch
		<-b.done
		if b.err != nil && r.err == nil {
			r.err = b.err
			r.failed.Store(true)
		}
		for _, m := range b.out {
			r.pass(func() error { return r.sink.Rows(m) })
		}
		if r.err == nil {
			before := r.records
			r.records += b.records
			r.rows += b.rows
			if r.records/5000 != before/5000 {
				r.pass(func() error { return r.sink.Progress(r.records) })
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

// pass hands a part to the sink unless the run has failed; a failure of
// the sink fails the run.
func (r *exportRun) pass(send func() error) {
	if r.err != nil {
		return
	}
	if err := send(); err != nil {
		r.err = err
		r.failed.Store(true)
	}
}
