package syncengine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Batch limits of the protocol. A push over them is refused whole; a page is
// cut to them.
const (
	MaxBatchChanges = 1000
	MaxBatchBytes   = 4 << 20
	pageBytes       = 1 << 20
)

// Push is one batch a replica sends to its server.
type Push struct {
	From    ReplicaID
	After   uint64 // the sender's log position the server acknowledged last
	Through uint64 // the sender's log position this batch reaches
	Changes []Change
	Relay   bool // changes may carry other replicas' dots
}

// Guard runs inside a push's merge transaction before anything is applied:
// an error refuses the whole batch. A server checks and stamps record
// scopes with it, reading what it needs through tx.
type Guard func(tx Tx, changes []Change) error

// Filter decides, inside a pull's read transaction, whether the puller may
// receive a change. An error fails the pull: the cursor does not move past
// a change the filter could not decide, so none is skipped by accident.
type Filter func(tx ReadTx, c *Change) (bool, error)

// ServeOption is server policy for Receive and Page. Policy is given by the
// server's use cases, never carried in a protocol message.
type ServeOption func(*serveOptions)

type serveOptions struct {
	guard  Guard
	filter Filter
	expand Expand
}

// WithGuard checks a pushed batch (Receive).
func WithGuard(g Guard) ServeOption { return func(o *serveOptions) { o.guard = g } }

// WithFilter hides changes from a puller (Page).
func WithFilter(f Filter) ServeOption { return func(o *serveOptions) { o.filter = f } }

// Expand returns changes to send along with a change of the log, whether
// the filter lets that one through or not, from anywhere in the log: an assignment made after a puller's
// cursor passed a record brings the record's earlier changes. Duplicates
// are harmless (a replica applies a dot once).
type Expand func(tx ReadTx, c *Change) ([]Change, error)

// WithExpand sets the expansion of a Page.
func WithExpand(x Expand) ServeOption { return func(o *serveOptions) { o.expand = x } }

func serveOpts(opts []ServeOption) serveOptions {
	var o serveOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// PushResult is the server's answer to a Push.
type PushResult struct {
	Acknowledged uint64
	Resend       bool // the server holds less than After: resend from Acknowledged
	Applied      int
	ServerTime   time.Time
}

// PullRequest asks for a page of the server's log.
type PullRequest struct {
	For       ReplicaID // whose own changes to leave out
	Cursor    uint64
	CursorDot Dot
	Limit     int
	// Assignments: the puller merges assignments (AssignedField). Older
	// devices refuse a change with a reserved field they do not know; a
	// server's filter leaves those out for them.
	Assignments bool
}

// Page is a page of a server's log.
type Page struct {
	Changes    []Change
	Cursor     uint64
	CursorDot  Dot
	More       bool
	Reset      bool // the cursor does not match the server's history
	Head       uint64
	ServerTime time.Time
	// Server is what the server says of the puller beyond its log (set by
	// the server's adapter; a sync reports the last page's).
	Server ServerState
}

// ServerState is what a server tells a puller besides the log: the digest
// of the forms it offers (fetch them when it changed) and whether the
// device must wipe itself.
type ServerState struct {
	FormsDigest string
	Wipe        bool
	// What the device's project asks it to keep of what it sent (see
	// Replica.Forget): answers of finalized interviews leave it once
	// acknowledged; records whose last change is older than RetentionDays
	// leave it (0: kept).
	DeleteAfterSend bool
	RetentionDays   int
	// TeamRecords: the project's devices receive their whole team's
	// records (a hub passes it on to the devices it serves).
	TeamRecords bool
}

// Remote is a server as seen by a syncing replica. The Connect client in
// package wire implements it; tests may connect two Replicas directly.
type Remote interface {
	Push(ctx context.Context, p Push) (PushResult, error)
	Pull(ctx context.Context, req PullRequest) (Page, error)
}

// Receive merges a pushed batch in one transaction (server side). Nothing of
// a batch with an invalid change is applied.
func (r *Replica) Receive(ctx context.Context, p Push, opts ...ServeOption) (PushResult, error) {
	guard := serveOpts(opts).guard
	if p.From.IsZero() {
		return PushResult{}, fmt.Errorf("push: %w: no replica id", ErrInvalid)
	}
	if p.From == r.id {
		return PushResult{}, fmt.Errorf("push: %w: replica %s is this server's own id", ErrInvalid, p.From)
	}
	if len(p.Changes) > MaxBatchChanges {
		return PushResult{}, fmt.Errorf("push: %w: %d changes, at most %d", ErrTooLarge, len(p.Changes), MaxBatchChanges)
	}
	if p.Through < p.After || (len(p.Changes) > 0 && p.Through == p.After) {
		return PushResult{}, fmt.Errorf("push: %w: through %d must pass after %d", ErrInvalid, p.Through, p.After)
	}
	for i := range p.Changes {
		c := &p.Changes[i]
		if err := c.Validate(); err != nil {
			return PushResult{}, fmt.Errorf("push: change %d: %w", i, err)
		}
		if !p.Relay && c.Dot.Replica != p.From {
			return PushResult{}, fmt.Errorf("push: change %d: %w: dot of replica %s pushed by %s without relay",
				i, ErrInvalid, c.Dot.Replica, p.From)
		}
	}
	// A client keeps two batches in flight; if the second reaches us before
	// the first is merged, wait for it (briefly) rather than ask for a
	// resend. A server that truly lost data answers resend after the wait.
	key := metaPeerPrefix + p.From.String()
	if !r.group.follows(p.From, p.After) {
		if err := r.awaitPeer(ctx, key, p.After); err != nil {
			return PushResult{}, err
		}
	}
	defer r.broadcast()
	j := &pushJob{p: p, guard: guard}
	r.receiveGrouped(ctx, j)
	res, changed, err := j.res, j.changed, j.err
	if err == nil {
		err = r.finishErasures(ctx)
	}
	if err != nil {
		return PushResult{}, fmt.Errorf("push: %w", err)
	}
	if !res.Resend {
		r.observeAll(p.Changes)
		r.notify(changed)
	}
	res.ServerTime = r.clock()
	return res, nil
}

// receiveTx merges one push in tx: its pusher's acknowledgement, the
// guard, the changes and the conflicts they settle.
func (r *Replica) receiveTx(tx Tx, j *pushJob) error {
	p := j.p
	key := metaPeerPrefix + p.From.String()
	held, err := metaUint(tx, key)
	if err != nil {
		return err
	}
	if p.After > held {
		j.res, j.changed = PushResult{Acknowledged: held, Resend: true}, merged{}
		return nil
	}
	if j.guard != nil {
		if err := j.guard(tx, p.Changes); err != nil {
			return err
		}
	}
	n, recs, rs, err := r.applyAll(tx, Downstream, p.Changes)
	if err != nil {
		return err
	}
	if err := r.settle(tx, rs); err != nil {
		return err
	}
	j.res, j.changed = PushResult{Acknowledged: max(held, p.Through), Applied: n}, recs
	return setMetaUint(tx, key, j.res.Acknowledged)
}

// scanBatch reads the log after `after` into a batch of at most limit
// changes and about pageBytes, keeping the entries keep accepts. It returns
// the last entry scanned (kept or not) and whether entries remain.
func scanBatch(tx ReadTx, after uint64, limit int, keep func(*LogEntry) (bool, error), opts ...ScanOption) (cs []Change, last LogEntry, more bool, err error) {
	size := 0
	err = tx.ScanLog(after, func(e LogEntry, n int) error {
		if len(cs) >= limit || (size+n > pageBytes && len(cs) > 0) {
			more = true
			return ErrStop
		}
		if err := Resolve(tx, &e); err != nil {
			return err
		}
		ok, err := keep(&e)
		if err != nil {
			return err
		}
		last = e
		if ok {
			cs = append(cs, e.Change)
			size += n
		}
		return nil
	}, opts...)
	if errors.Is(err, ErrStop) {
		err = nil
	}
	return cs, last, more, err
}

// pushOrderWait bounds how long a push waits for its predecessor.
const pushOrderWait = 500 * time.Millisecond

// awaitPeer waits until the server holds a pusher's log through `after`,
// or pushOrderWait passes.
func (r *Replica) awaitPeer(ctx context.Context, key string, after uint64) error {
	if after == 0 {
		return nil
	}
	timeout := time.NewTimer(pushOrderWait)
	defer timeout.Stop()
	for {
		sig := r.signal()
		var held uint64
		if err := r.store.View(ctx, func(tx ReadTx) (err error) { held, err = metaUint(tx, key); return }); err != nil {
			return fmt.Errorf("push: %w", err)
		}
		if after <= held {
			return nil
		}
		select {
		case <-sig:
		case <-timeout.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// signal returns a channel closed at the next broadcast.
func (r *Replica) signal() <-chan struct{} {
	r.sigMu.Lock()
	defer r.sigMu.Unlock()
	if r.sig == nil {
		r.sig = make(chan struct{})
	}
	return r.sig
}

// broadcast wakes every push waiting for its predecessor.
func (r *Replica) broadcast() {
	r.sigMu.Lock()
	defer r.sigMu.Unlock()
	if r.sig != nil {
		close(r.sig)
		r.sig = nil
	}
}

// Page returns the log after a puller's cursor (server side), leaving out
// the puller's own changes and those a filter option hides.
func (r *Replica) Page(ctx context.Context, req PullRequest, opts ...ServeOption) (Page, error) {
	so := serveOpts(opts)
	filter, expand := so.filter, so.expand
	limit := req.Limit
	if limit <= 0 || limit > MaxBatchChanges {
		limit = MaxBatchChanges
	}
	var p Page
	err := r.store.View(ctx, func(tx ReadTx) error {
		head, err := tx.Head()
		if err != nil {
			return err
		}
		p = Page{Cursor: req.Cursor, CursorDot: req.CursorDot, Head: head}
		if req.Cursor > 0 {
			e, err := tx.LogEntry(req.Cursor)
			if errors.Is(err, ErrNotFound) || (err == nil && e.Change.Dot != req.CursorDot) {
				p = Page{Reset: true, Head: head}
				return nil
			}
			if err != nil {
				return err
			}
		}
		var last LogEntry
		var extra []Change
		p.Changes, last, p.More, err = scanBatch(tx, req.Cursor, limit, func(e *LogEntry) (bool, error) {
			if e.Change.Dot.Replica == req.For {
				return false, nil
			}
			if expand != nil {
				more, err := expand(tx, &e.Change)
				if err != nil {
					return false, err
				}
				extra = append(extra, more...)
			}
			if filter == nil {
				return true, nil
			}
			return filter(tx, &e.Change)
		}, ScanOption{Skip: req.For})
		p.Changes = append(p.Changes, extra...)
		if last.Seq > 0 {
			p.Cursor, p.CursorDot = last.Seq, last.Change.Dot
		}
		return err
	})
	if err != nil {
		return Page{}, fmt.Errorf("pull: %w", err)
	}
	p.ServerTime = r.clock()
	return p, nil
}

// SyncStats says what one sync moved.
type SyncStats struct {
	Pushed     int           // changes sent
	Pulled     int           // changes received
	Applied    int           // received changes that were new here
	RoundTrips int           // requests made
	Resent     bool          // the server had lost data and everything was resent
	ServerTime time.Time     // from the last response
	ClockSkew  time.Duration // server time minus ours, at the last response
	Server     ServerState   // what the last page said besides the log
}

// SyncOptions tune Sync.
type SyncOptions struct {
	// Progress, when set, is called after every round trip.
	Progress func(SyncStats)
	// PageLimit caps changes per pull page (0: the server's maximum).
	PageLimit int
}

// Sync pushes what the upstream has not acknowledged, then pulls what is new
// (client side). Every step is durable before the next starts, so a sync cut
// at any point resumes where it stopped and sends or applies nothing twice.
func (r *Replica) Sync(ctx context.Context, remote Remote, opts SyncOptions) (SyncStats, error) {
	var st SyncStats
	progress := func(t time.Time) {
		st.RoundTrips++
		st.ServerTime = t
		st.ClockSkew = t.Sub(r.clock()).Round(time.Millisecond)
		if opts.Progress != nil {
			opts.Progress(st)
		}
	}
	for attempt := 0; ; attempt++ {
		if err := r.push(ctx, remote, &st, progress); err != nil {
			return st, err
		}
		reset, err := r.pull(ctx, remote, opts.PageLimit, &st, progress)
		if err != nil {
			return st, err
		}
		if !reset {
			return st, nil
		}
		if attempt > 0 {
			return st, fmt.Errorf("sync: server history changed again during resync")
		}
		st.Resent = true
	}
}

// pushWindow is how many batches may be in flight at once: while the server
// merges one, the next are already on their way and being decoded, so the
// two sides work in parallel instead of taking turns, and the server merges
// those that queued behind it in one transaction (see group.go).
const pushWindow = 3

// PushBatch is how many changes a push batch carries: small enough that
// the batches in flight keep both sides busy and a cut link wastes
// little, large enough to amortize a request and an fsync.
const PushBatch = 500

type flight struct {
	b     batch
	after uint64
	res   chan pushResult
}

type pushResult struct {
	res PushResult
	err error
}

// push sends what the upstream has not acknowledged, pushWindow batches in
// flight. It is long on purpose: the window, the resend after a server
// lost data and the durable acknowledgement are one state machine over
// the same few variables, clearer read in one place than split.
func (r *Replica) push(ctx context.Context, remote Remote, st *SyncStats, progress func(time.Time)) error {
	// ack is how far our log needs no more pushing (it may pass entries that
	// came from upstream); acked is what the server itself acknowledged,
	// which is what it compares with what it holds.
	var ack, acked uint64
	err := r.store.View(ctx, func(tx ReadTx) (err error) {
		if ack, err = metaUint(tx, metaPushAck); err != nil {
			return err
		}
		acked, err = metaUint(tx, metaPushServer)
		return err
	})
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	save := func(pos, server uint64) error {
		err := r.store.Update(ctx, func(tx Tx) error {
			if err := setMetaUint(tx, metaPushAck, pos); err != nil {
				return err
			}
			return setMetaUint(tx, metaPushServer, server)
		})
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		return nil
	}
	var window []flight
	// Flights share a context that is canceled when one fails, so that a
	// successor waiting at the server for a lost predecessor gives up at
	// once instead of after the server's wait.
	fctx, cancel := context.WithCancel(ctx)
	defer func() { cancel() }()
	drain := func() {
		cancel()
		for _, f := range window {
			<-f.res
		}
		window = nil
		fctx, cancel = context.WithCancel(ctx)
	}
	sent, tail := ack, ack // log position sent through; scanned through
	after := acked         // the After of the next flight
	for resends := 0; ; {
		for len(window) < pushWindow {
			b := r.outbox(ctx, sent)
			if b.err != nil {
				drain()
				return b.err
			}
			tail = b.through
			if len(b.changes) == 0 {
				break
			}
			f := flight{b: b, after: after, res: make(chan pushResult, 1)}
			go func(ctx context.Context) {
				res, err := remote.Push(ctx, Push{From: r.id, After: f.after, Through: f.b.through, Changes: f.b.changes, Relay: f.b.relay})
				f.res <- pushResult{res, err}
			}(fctx)
			window = append(window, f)
			sent, after = b.through, b.through
		}
		if len(window) == 0 {
			// Only entries that came from upstream were left: nothing to
			// send, but the position moves past them.
			if tail > ack {
				return save(tail, acked)
			}
			return nil
		}
		f := window[0]
		window = window[1:]
		pr := <-f.res
		if pr.err != nil {
			drain()
			return fmt.Errorf("push: %w", pr.err)
		}
		progress(pr.res.ServerTime)
		if pr.res.Resend {
			// The server holds less than we thought (it lost data, or a
			// batch overtook its predecessor): go back to what it holds.
			drain()
			if pr.res.Acknowledged >= f.after || resends > 4 {
				return fmt.Errorf("push: server asked to resend from %d after %d", pr.res.Acknowledged, f.after)
			}
			resends++
			ack, acked = pr.res.Acknowledged, pr.res.Acknowledged
			sent, after = ack, ack
			if err := save(ack, acked); err != nil {
				return err
			}
			continue
		}
		if pr.res.Acknowledged < f.b.through {
			drain()
			return fmt.Errorf("push: server acknowledged %d of %d", pr.res.Acknowledged, f.b.through)
		}
		ack, acked = f.b.through, f.b.through
		st.Pushed += len(f.b.changes)
		if err := save(ack, acked); err != nil {
			drain()
			return err
		}
	}
}

type batch struct {
	changes []Change
	through uint64
	relay   bool
	err     error
}

// outbox returns the next batch to push after log position ack: everything
// that did not come from upstream, and everything up to the relay mark.
func (r *Replica) outbox(ctx context.Context, ack uint64) (b batch) {
	b.through = ack
	err := r.store.View(ctx, func(tx ReadTx) error {
		relayThrough, err := metaUint(tx, metaRelayThrough)
		if err != nil {
			return err
		}
		var last LogEntry
		b.changes, last, _, err = scanBatch(tx, ack, PushBatch, func(e *LogEntry) (bool, error) {
			if e.Origin == Upstream && e.Seq > relayThrough {
				return false, nil
			}
			b.relay = b.relay || e.Change.Dot.Replica != r.id
			return true, nil
		})
		b.through = max(ack, last.Seq)
		return err
	})
	if err != nil {
		return batch{err: fmt.Errorf("outbox: %w", err)}
	}
	return b
}

type pageResult struct {
	page Page
	err  error
}

func (r *Replica) pull(ctx context.Context, remote Remote, limit int, st *SyncStats, progress func(time.Time)) (reset bool, err error) {
	var req PullRequest
	err = r.store.View(ctx, func(tx ReadTx) (err error) {
		if req.Cursor, err = metaUint(tx, metaPullCursor); err != nil {
			return err
		}
		req.CursorDot, err = metaDot(tx, metaPullDot)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("pull: %w", err)
	}
	req.For, req.Limit = r.id, limit
	// The next page is fetched while this one is applied, so the server's
	// work and the network overlap the device's writes. A prefetched page
	// is dropped if applying this one fails: the cursor decides.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetch := func(req PullRequest) <-chan pageResult {
		ch := make(chan pageResult, 1)
		go func() {
			p, err := remote.Pull(ctx, req)
			ch <- pageResult{p, err}
		}()
		return ch
	}
	next := fetch(req)
	for {
		res := <-next
		if res.err != nil {
			return false, fmt.Errorf("pull: %w", res.err)
		}
		page := res.page
		st.Server = page.Server
		progress(page.ServerTime)
		if page.Reset {
			// The server's history is not the one we followed: it was
			// restored from a backup or replaced. Resend all we have and
			// pull everything again; merging makes both harmless.
			return true, r.startOver(ctx)
		}
		if page.Cursor < req.Cursor {
			return false, fmt.Errorf("pull: server cursor went back from %d to %d", req.Cursor, page.Cursor)
		}
		prev := req
		req.Cursor, req.CursorDot = page.Cursor, page.CursorDot
		if page.More {
			next = fetch(req)
		}
		for i := range page.Changes {
			if err := page.Changes[i].Validate(); err != nil {
				return false, fmt.Errorf("pull: change %d from server: %w", i, err)
			}
		}
		n, changed, err := r.applyPage(ctx, &page)
		if errors.Is(err, ErrTooLarge) && len(page.Changes) > 1 {
			// The page does not fit in one transaction of this store (a
			// phone's small memtables, records with many fields): ask
			// again from the same cursor for half as many.
			if page.More {
				<-next
			}
			req = prev
			req.Limit = len(page.Changes) / 2
			next = fetch(req)
			continue
		}
		if err != nil {
			return false, fmt.Errorf("pull: %w", err)
		}
		r.observeAll(page.Changes)
		r.notify(changed)
		st.Pulled += len(page.Changes)
		st.Applied += n
		if !page.More {
			return false, nil
		}
	}
}

// startOver forgets what the server acknowledged and where the pull was,
// after the server's history changed (restored from a backup, replaced).
func (r *Replica) startOver(ctx context.Context) error {
	return r.store.Update(ctx, func(tx Tx) error {
		head, err := tx.Head()
		if err != nil {
			return err
		}
		for _, kv := range []struct {
			k string
			v uint64
		}{{metaPushAck, 0}, {metaPushServer, 0}, {metaRelayThrough, head}, {metaPullCursor, 0}} {
			if err := setMetaUint(tx, kv.k, kv.v); err != nil {
				return err
			}
		}
		return setMetaDot(tx, metaPullDot, Dot{})
	})
}

// applyPage merges a pulled page and moves the pull cursor past it, in one
// transaction. It returns how many changes were new here and what they
// changed.
func (r *Replica) applyPage(ctx context.Context, page *Page) (n int, changed merged, err error) {
	err = r.store.Update(ctx, func(tx Tx) error {
		// When everything before this page was pushed, the page's own
		// entries (which came from upstream) need no push either: move
		// the push position past them so the next sync does not scan
		// them again.
		ack, err := metaUint(tx, metaPushAck)
		if err != nil {
			return err
		}
		head, err := tx.Head()
		if err != nil {
			return err
		}
		relay, err := metaUint(tx, metaRelayThrough)
		if err != nil {
			return err
		}
		var settled []Resolution
		if n, changed, settled, err = r.applyAll(tx, Upstream, page.Changes); err != nil {
			return err
		}
		if err := r.settle(tx, settled); err != nil {
			return err
		}
		if ack == head && relay <= ack {
			newHead, err := tx.Head()
			if err != nil {
				return err
			}
			if err := setMetaUint(tx, metaPushAck, newHead); err != nil {
				return err
			}
		}
		if err := setMetaUint(tx, metaPullCursor, page.Cursor); err != nil {
			return err
		}
		return setMetaDot(tx, metaPullDot, page.CursorDot)
	})
	if err == nil {
		err = r.finishErasures(ctx)
	}
	return n, changed, err
}

// Pending returns how many changes await a push to the upstream.
func (r *Replica) Pending(ctx context.Context) (int, error) {
	n := 0
	err := r.store.View(ctx, func(tx ReadTx) error {
		ack, err := metaUint(tx, metaPushAck)
		if err != nil {
			return err
		}
		relay, err := metaUint(tx, metaRelayThrough)
		if err != nil {
			return err
		}
		count := func(seq uint64, o Origin) error {
			if o != Upstream || seq <= relay {
				n++
			}
			return nil
		}
		if los, ok := tx.(LogOriginScanner); ok {
			return los.ScanLogOrigins(ack, count)
		}
		return tx.ScanLog(ack, func(e LogEntry, _ int) error { return count(e.Seq, e.Origin) })
	})
	return n, err
}

// Unsent returns a test telling whether a record holds one of this
// replica's writes that the upstream has not acknowledged yet. The
// replica's own counters grow with its log, so the first unacknowledged
// local entry's counter splits sent from unsent for every record, and a
// screen listing records needs no scan of the log per record.
func (r *Replica) Unsent(ctx context.Context) (func(*Record) bool, error) {
	from := uint64(math.MaxUint64)
	err := r.store.View(ctx, func(tx ReadTx) error {
		ack, err := metaUint(tx, metaPushAck)
		if err != nil {
			return err
		}
		return tx.ScanLog(ack, func(e LogEntry, _ int) error {
			if e.Change.Dot.Replica == r.id {
				from = e.Change.Dot.Counter
				return ErrStop
			}
			return nil
		})
	})
	if errors.Is(err, ErrStop) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return func(rec *Record) bool {
		for _, d := range rec.Applied {
			if d.Replica == r.id && d.Counter >= from {
				return true
			}
		}
		return false
	}, nil
}
