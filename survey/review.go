package survey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/syncengine"
)

// ReviewStates are a record's review states, in the order a lead meets
// them; "received" until a lead reviews it.
var ReviewStates = []string{"received", "has_issues", "approved", "rejected"}

// ValidReviewState reports whether s is one of ReviewStates.
func ValidReviewState(s string) bool { return slices.Contains(ReviewStates, s) }

const (
	metaReview    = "review/"
	metaReviewSeq = "reviewseq"
	metaReviewLog = "reviewlog/" // + 16 hex digits of the review sequence → record id
)

type review struct {
	State   string `json:"state"`
	Comment string `json:"comment,omitempty"`
	By      string `json:"by"`
	At      int64  `json:"at"`
}

// Review is a lead's verdict on a record.
type Review struct {
	Record  syncengine.RecordID
	State   string
	Comment string
	Via     string // noted in the audit entry ("console"), or ""
}

// SetReview saves a record's review (a lead of its project) and audits it
// in the same transaction.
func (s *Service) SetReview(ctx context.Context, p auth.Principal, in Review) error {
	if !ValidReviewState(in.State) {
		return ErrReviewState
	}
	rec, err := s.rep.Record(ctx, in.Record)
	if err != nil {
		return err
	}
	if err := s.RequireRecord(ctx, p, rec, auth.Lead); err != nil {
		return err
	}
	detail := fmt.Sprintf("record %s: %s %s", in.Record, in.State, in.Comment)
	if in.Via != "" {
		detail += " (" + in.Via + ")"
	}
	rv := review{State: in.State, Comment: in.Comment, By: Actor(p), At: s.now().UnixMilli()}
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		if err := setReview(tx, in.Record, rv); err != nil {
			return err
		}
		return s.auth.AuditIn(tx, Actor(p), "review", detail)
	})
}

// setReview saves a record's review and logs it under the next review
// sequence number: reviews are not changes to the record, but an
// incremental export must still see that a record became approved (or
// stopped being). The export cursor carries both positions.
func setReview(tx syncengine.Tx, id syncengine.RecordID, rv review) error {
	b, err := json.Marshal(rv)
	if err != nil {
		return err
	}
	seq, err := reviewSeq(tx)
	if err != nil {
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
}

// reviewHead is the last review sequence number.
func reviewSeq(tx syncengine.ReadTx) (uint64, error) {
	v, err := tx.Meta(metaReviewSeq)
	if errors.Is(err, syncengine.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("review sequence: %w", syncengine.ErrCorrupt)
	}
	return n, nil
}

// reviewState is a record's review state ("received" until a lead
// reviews it).
func reviewState(tx syncengine.ReadTx, id syncengine.RecordID) (string, error) {
	b, err := tx.Meta(metaReview + id.String())
	if errors.Is(err, syncengine.ErrNotFound) {
		return "received", nil
	}
	if err != nil {
		return "", err
	}
	return decodeReview(b)
}

func decodeReview(b []byte) (string, error) {
	var rv review
	if err := json.Unmarshal(b, &rv); err != nil {
		return "", fmt.Errorf("review: %w", syncengine.ErrCorrupt)
	}
	if rv.State == "" {
		return "received", nil
	}
	return rv.State, nil
}

// reviewLookup returns a record's stored review, if any.
type reviewLookup func(syncengine.RecordID) ([]byte, bool, error)

func lookupReview(tx syncengine.ReadTx) reviewLookup {
	return func(id syncengine.RecordID) ([]byte, bool, error) {
		b, err := tx.Meta(metaReview + id.String())
		if errors.Is(err, syncengine.ErrNotFound) {
			return nil, false, nil
		}
		return b, err == nil, err
	}
}

// mergedReviews reads review states for a scan of records in id order by
// walking the review entries alongside (they are kept in the same order)
// instead of one lookup per record. Should a store ever list them in
// another order, it notices and falls back to lookups, so no review is
// missed; a failed scan of the reviews is the lookup's error.
func mergedReviews(tx syncengine.ReadTx) (reviewLookup, func()) {
	lookup := lookupReview(tx)
	var scanErr error
	next, stop := iter.Pull2(func(yield func(string, []byte) bool) {
		err := tx.ScanMeta(metaReview, func(k string, v []byte) error {
			if !yield(k, v) {
				return syncengine.ErrStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, syncengine.ErrStop) {
			scanErr = err
		}
	})
	key, val, ok := next()
	ordered := true
	var last string
	return func(id syncengine.RecordID) ([]byte, bool, error) {
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
		if !ok && scanErr != nil {
			return nil, false, fmt.Errorf("reviews: %w", scanErr)
		}
		if ok && key == want {
			return val, true, nil
		}
		return nil, false, nil
	}, stop
}
