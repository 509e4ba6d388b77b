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
	// pending: how far each pusher's queued or merging pushes reach. A
	// push that follows one of them queues behind it instead of waiting
	// for its commit, and the two merge in one group.
	pending map[ReplicaID]uint64
}

// follows reports whether a push of from starting after `after` follows
// one queued or being merged.
func (g *grouper) follows(from ReplicaID, after uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return after > 0 && g.pending[from] >= after
}

// receiveGrouped merges j, alone or with the pushes that queued while the
// previous group committed.
func (r *Replica) receiveGrouped(ctx context.Context, j *pushJob) {
	g := &r.group
	j.lead = make(chan bool, 1)
	g.mu.Lock()
	if g.pending == nil {
		g.pending = map[ReplicaID]uint64{}
	}
	g.pending[j.p.From] = max(g.pending[j.p.From], j.p.Through)
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
	// In arrival order, stopping at the first that does not fit: a
	// pusher's pushes merge in their order.
	k := 0
	for _, q := range g.queue {
		if len(batch) == maxGroupPushes || n+len(q.p.Changes) > maxGroupChanges {
			break
		}
		batch, n = append(batch, q), n+len(q.p.Changes)
		k++
	}
	rest := copy(g.queue, g.queue[k:])
	clear(g.queue[rest:]) // no pointers kept to jobs taken
	g.queue = g.queue[:rest]
	g.mu.Unlock()

	r.mergeGroup(ctx, batch)
	g.mu.Lock()
	for _, q := range batch {
		if g.pending[q.p.From] == q.p.Through {
			delete(g.pending, q.p.From)
		}
	}
	g.mu.Unlock()
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
