package syncengine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Offline sync (bundles carried on a USB stick) is the network sync cut in
// two halves that meet on the server: Outgoing collects what a sync would
// push, without moving anything (the changes stay pending until the
// server's reply says it holds them), and the pull position the server
// answers from; the server merges the pushes and pages its log as for a
// network sync; ApplyReply then does what the sync does with the answers.
// Every step is idempotent: a reply applied twice, late, out of order or
// after the same changes came by network changes nothing more.

// Outgoing is what a replica would send its upstream now.
type Outgoing struct {
	Pushes []Push      // in order; each After is the previous Through
	Pull   PullRequest // where the server's answer should start
	Limit  int         // most changes carried (0: no bound)
	More   bool        // changes were left for a next bundle
}

// Outgoing collects the batches not acknowledged yet, at most limit
// changes in all (0: every one), and the pull position.
func (r *Replica) Outgoing(ctx context.Context, limit int) (Outgoing, error) {
	var out Outgoing
	var ack, acked uint64
	err := r.store.View(ctx, func(tx ReadTx) (err error) {
		if ack, err = metaUint(tx, metaPushAck); err != nil {
			return err
		}
		if acked, err = metaUint(tx, metaPushServer); err != nil {
			return err
		}
		if out.Pull.Cursor, err = metaUint(tx, metaPullCursor); err != nil {
			return err
		}
		out.Pull.CursorDot, err = metaDot(tx, metaPullDot)
		return err
	})
	if err != nil {
		return Outgoing{}, fmt.Errorf("outgoing: %w", err)
	}
	out.Pull.For, out.Limit = r.id, limit
	sent, after, n := ack, acked, 0
	for {
		b := r.outbox(ctx, sent)
		if b.err != nil {
			return Outgoing{}, b.err
		}
		if len(b.changes) == 0 {
			break
		}
		if limit > 0 && n+len(b.changes) > limit && n > 0 {
			out.More = true
			break
		}
		out.Pushes = append(out.Pushes, Push{From: r.id, After: after, Through: b.through, Changes: b.changes, Relay: b.relay})
		n += len(b.changes)
		sent, after = b.through, b.through
	}
	return out, nil
}

// ReplyPage is a page of the server's log with the position it was read
// from: a replica applies it only where its own pull stands there.
type ReplyPage struct {
	From    uint64
	FromDot Dot
	Page    Page
}

// Reply is the server's answer to an Outgoing: what it holds of the
// sender's log after the pushes, and the pages of its log after the pull
// position.
type Reply struct {
	// Acknowledged: the sender's log position the server holds. Resend:
	// the server held less than the first push claimed (it was restored):
	// the next bundle carries everything after Acknowledged.
	Acknowledged uint64
	Resend       bool
	Pages        []ReplyPage
}

// ReplyStats says what ApplyReply did.
type ReplyStats struct {
	Acknowledged bool // the pending position moved
	Pages        int  // pages applied (others were already here, or out of reach)
	Skipped      int
	Applied      int // changes new here
	Reset        bool
	Server       ServerState
	ServerTime   time.Time // of the last page applied
}

// ApplyReply applies a server's reply: the changes it holds stop being
// pending (never past this replica's own log, never backwards), and each
// page applies where the pull stands at its From (a page already applied
// or beyond a gap is skipped: a later bundle or sync brings it).
func (r *Replica) ApplyReply(ctx context.Context, rep Reply) (ReplyStats, error) {
	var st ReplyStats
	err := r.store.Update(ctx, func(tx Tx) error {
		ack, err := metaUint(tx, metaPushAck)
		if err != nil {
			return err
		}
		acked, err := metaUint(tx, metaPushServer)
		if err != nil {
			return err
		}
		head, err := tx.Head()
		if err != nil {
			return err
		}
		if rep.Acknowledged > head {
			return fmt.Errorf("reply: %w: the server acknowledges position %d of a log of %d", ErrInvalid, rep.Acknowledged, head)
		}
		switch {
		case rep.Resend && rep.Acknowledged < acked:
			// The server lost what it had acknowledged: send it again.
			st.Acknowledged = true
			return errJoin(setMetaUint(tx, metaPushAck, rep.Acknowledged), setMetaUint(tx, metaPushServer, rep.Acknowledged))
		case !rep.Resend && rep.Acknowledged > acked:
			st.Acknowledged = true
			if err := setMetaUint(tx, metaPushServer, rep.Acknowledged); err != nil {
				return err
			}
			return setMetaUint(tx, metaPushAck, max(ack, rep.Acknowledged))
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("reply: %w", err)
	}
	for _, p := range rep.Pages {
		var cur uint64
		var dot Dot
		err := r.store.View(ctx, func(tx ReadTx) (err error) {
			if cur, err = metaUint(tx, metaPullCursor); err != nil {
				return err
			}
			dot, err = metaDot(tx, metaPullDot)
			return err
		})
		if err != nil {
			return st, fmt.Errorf("reply: %w", err)
		}
		if p.Page.Reset && p.From == cur {
			st.Reset = true
			return st, r.startOver(ctx)
		}
		if p.From != cur || p.FromDot != dot || p.Page.Cursor < cur {
			st.Skipped++
			continue
		}
		for i := range p.Page.Changes {
			if err := p.Page.Changes[i].Validate(); err != nil {
				return st, fmt.Errorf("reply: change %d: %w", i, err)
			}
		}
		page := p.Page
		n, changed, err := r.applyPage(ctx, &page)
		if err != nil {
			return st, fmt.Errorf("reply: %w", err)
		}
		r.observeAll(page.Changes)
		r.notify(changed)
		st.Pages++
		st.Applied += n
		st.Server, st.ServerTime = page.Server, page.ServerTime
	}
	return st, nil
}

func errJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// OldestPending returns when the oldest change awaiting a push was made
// (zero when nothing waits): how long a camp's data has been waiting to go
// up.
func (r *Replica) OldestPending(ctx context.Context) (time.Time, error) {
	var at time.Time
	err := r.store.View(ctx, func(tx ReadTx) error {
		ack, err := metaUint(tx, metaPushAck)
		if err != nil {
			return err
		}
		relay, err := metaUint(tx, metaRelayThrough)
		if err != nil {
			return err
		}
		return tx.ScanLog(ack, func(e LogEntry, _ int) error {
			if e.Origin != Upstream || e.Seq <= relay {
				at = time.UnixMilli(e.Change.HLC.Millis())
				return ErrStop
			}
			return nil
		})
	})
	if errors.Is(err, ErrStop) {
		err = nil
	}
	return at, err
}
