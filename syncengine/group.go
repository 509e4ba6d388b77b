package syncengine

import (
	"context"
	"sync"
)

// Concurrent pushes (several devices syncing, ODK Collect submissions
// arriving at once) merge in one store transaction. A durable commit
// costs a sync of the disk, a millisecond or more, while merging a small
// push costs far less; with one commit per push the server takes what
// many devices send at the speed of its disk. A group commits them
// together, in arrival order, exactly as if each had been merged alone
// after the one before it.
//
// One push's refusal (its guard, an invalid change) would fail the whole
// group's transaction, so a group that fails is merged again one push at
// a time: the others land and only that push gets its error.

// Bounds of one group: together no larger than the largest single push,
// so a group never meets a store's transaction limit a push would not.
const (
	maxGroupPushes  = 16
	maxGroupChanges = MaxBatchChanges
)

// pushJob is one push waiting for, or in, a group.
type pushJob struct {
	p       Push
	guard   func(Tx, []Change) error
	res     PushResult
	changed merged
	err     error
	// lead receives true when this job is to lead the next group (its
	// own push first), false when a group that held it has committed.
	lead chan bool
}

type grouper struct {
	mu      sync.Mutex
	leading bool // a group is being merged; new jobs queue
	queue   []*pushJob
}

// receiveGrouped merges j, alone or with the pushes that queued while the
// previous group committed.
func (r *Replica) receiveGrouped(ctx context.Context, j *pushJob) {
	g := &r.group
	j.lead = make(chan bool, 1)
	g.mu.Lock()
	if g.leading {
		g.queue = append(g.queue, j)
		g.mu.Unlock()
		if !<-j.lead {
			return
		}
		g.mu.Lock()
	}
	g.leading = true
	batch, n := []*pushJob{j}, len(j.p.Changes)
	rest := g.queue[:0]
	for _, q := range g.queue {
		if len(batch) < maxGroupPushes && n+len(q.p.Changes) <= maxGroupChanges {
			batch, n = append(batch, q), n+len(q.p.Changes)
		} else {
			rest = append(rest, q)
		}
	}
	clear(g.queue[len(rest):])
	g.queue = rest
	g.mu.Unlock()

	r.mergeGroup(ctx, batch)
	for _, q := range batch[1:] {
		q.lead <- false
	}

	g.mu.Lock()
	if len(g.queue) == 0 {
		g.leading = false
		g.mu.Unlock()
		return
	}
	next := g.queue[0]
	g.queue = g.queue[1:]
	g.mu.Unlock()
	next.lead <- true
}

// mergeGroup merges a group's pushes in one transaction, or each in its
// own when that fails.
func (r *Replica) mergeGroup(ctx context.Context, batch []*pushJob) {
	if len(batch) > 1 {
		// The leader's cancellation must not fail the others' pushes.
		gctx := context.WithoutCancel(ctx)
		err := r.store.Update(gctx, func(tx Tx) error {
			for _, j := range batch {
				if err := r.receiveTx(tx, j); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			return
		}
		ctx = gctx
	}
	for _, j := range batch {
		j.err = r.store.Update(ctx, func(tx Tx) error { return r.receiveTx(tx, j) })
	}
}
