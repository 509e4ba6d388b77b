package survey

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/syncengine"
)

// Device clocks are bounded by the server's at receipt. A device dated
// 1970 once gave its records that creation date, and one dated years ahead
// won every conflict's provisional value. A write whose clock reading lies
// outside [floor, receipt + ClockAhead] is kept as sent, then written again
// by the server (syncengine.Restamp): the value and any conflict stay, the
// clock reading becomes the server's. Nothing is refused: a device whose
// clock was wrong while it worked offline must not be left unable to push.
//
// The floor is the device's enrollment (a day of slack for its own clock's
// error; a device cannot have written before it was enrolled), else
// clockFloor. A hub bounds its own devices' writes the same way at its
// receipt, so what it relays is not bounded again (two servers re-stamping
// one write would make two concurrent copies of one value).
const ClockAhead = time.Hour // the engine lets no clock pull a replica's further ahead

var clockFloor = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// metaRestamp + record id → the dots (24 bytes each) to write again.
const metaRestamp = "restamp/"

// clockBounds are the trusted clock readings of p's writes, in Unix ms
// (ok false: not bounded here).
func (s *Service) clockBounds(p auth.Principal) (lo, hi int64, ok bool) {
	if p.Device != nil && p.Device.Hub {
		return 0, 0, false
	}
	lo = clockFloor.UnixMilli()
	if p.Device != nil && p.Device.Enrolled > 0 {
		lo = max(lo, p.Device.Enrolled-(24*time.Hour).Milliseconds())
	}
	return lo, s.now().Add(ClockAhead).UnixMilli(), true
}

// markClocks notes, in the push's transaction, the writes of cs whose
// clock is out of bounds; it returns the records marked.
func (s *Service) markClocks(tx syncengine.Tx, p auth.Principal, cs []syncengine.Change) ([]syncengine.RecordID, error) {
	lo, hi, ok := s.clockBounds(p)
	if !ok {
		return nil, nil
	}
	var marked []syncengine.RecordID
	dots := map[syncengine.RecordID]syncengine.DotSet{}
	for i := range cs {
		ms := cs[i].HLC.Millis()
		if ms >= lo && ms <= hi {
			continue
		}
		id := cs[i].Record
		if _, seen := dots[id]; !seen {
			b, err := tx.Meta(metaRestamp + id.String())
			if err != nil && !errors.Is(err, syncengine.ErrNotFound) {
				return nil, err
			}
			dots[id] = decodeDots(b)
			marked = append(marked, id)
		}
		dots[id] = dots[id].Add(cs[i].Dot)
	}
	for _, id := range marked {
		if err := tx.SetMeta(metaRestamp+id.String(), encodeDots(dots[id])); err != nil {
			return nil, err
		}
	}
	return marked, nil
}

// restamp writes again the marked writes of records ids and drops their
// marks (a crash between leaves a mark whose writes are no longer
// current: doing it again changes nothing).
func (s *Service) restamp(ctx context.Context, ids []syncengine.RecordID) error {
	for _, id := range ids {
		key := metaRestamp + id.String()
		var b []byte
		err := s.store.View(ctx, func(tx syncengine.ReadTx) (err error) { b, err = tx.Meta(key); return })
		if errors.Is(err, syncengine.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		n, err := s.rep.Restamp(ctx, id, decodeDots(b))
		if err != nil {
			return fmt.Errorf("record %s: re-stamp: %w", id, err)
		}
		if err := s.store.Update(ctx, func(tx syncengine.Tx) error { return tx.DeleteMeta(key) }); err != nil {
			return err
		}
		if n > 0 {
			s.log.Warn("writes dated outside the device clock bounds were re-stamped with the server's clock", "record", id, "writes", n)
		}
	}
	return nil
}

// restampLeftovers finishes the re-stamps a stop interrupted.
func (s *Service) restampLeftovers(ctx context.Context) error {
	var ids []syncengine.RecordID
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		return tx.ScanMeta(metaRestamp, func(k string, _ []byte) error {
			id, err := syncengine.ParseRecordID(k[len(metaRestamp):])
			if err == nil {
				ids = append(ids, id)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	return s.restamp(ctx, ids)
}

func encodeDots(ds syncengine.DotSet) []byte {
	b := make([]byte, 0, 24*len(ds))
	for _, d := range ds {
		b = append(b, d.Replica[:]...)
		b = binary.BigEndian.AppendUint64(b, d.Counter)
	}
	return b
}

func decodeDots(b []byte) syncengine.DotSet {
	var ds syncengine.DotSet
	for ; len(b) >= 24; b = b[24:] {
		var d syncengine.Dot
		copy(d.Replica[:], b)
		d.Counter = binary.BigEndian.Uint64(b[16:24])
		ds = ds.Add(d)
	}
	return ds
}
