package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tessera-survey/tessera/syncengine"
)

// AuditEntry is one line of the audit trail. Each entry's hash covers its
// content and the previous entry's hash, so editing or removing any entry
// breaks every hash after it.
type AuditEntry struct {
	Seq    uint64 `json:"seq"`
	Time   int64  `json:"time"`
	Actor  string `json:"actor"`
	Action string `json:"action"`
	Detail string `json:"detail,omitempty"`
	Prev   string `json:"prev"`
	Hash   string `json:"hash"`
}

const (
	keyAudit     = "audit/"
	keyAuditHead = "audit.head"
)

// ErrTampered: the audit trail does not verify.
var ErrTampered = errors.New("audit trail tampered with")

func auditKey(seq uint64) string { return fmt.Sprintf("%s%016d", keyAudit, seq) }

// hashEntry computes an entry's hash from its content and Prev.
func hashEntry(e AuditEntry) string {
	e.Hash = ""
	b, _ := json.Marshal(e)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// AuditIn adds an entry within tx, the action's own transaction: the action
// and its audit entry commit together or not at all.
func (s *Service) AuditIn(tx syncengine.Tx, actor, action, detail string) error {
	return s.appendAudit(tx, actor, action, detail)
}

// appendAudit adds an entry within tx (so the action and its record commit
// together).
func (s *Service) appendAudit(tx syncengine.Tx, actor, action, detail string) error {
	var head AuditHead
	if b, err := tx.Meta(keyAuditHead); err == nil {
		if err := json.Unmarshal(b, &head); err != nil {
			return fmt.Errorf("audit head: %w", syncengine.ErrCorrupt)
		}
	} else if !errors.Is(err, syncengine.ErrNotFound) {
		return err
	}
	e := AuditEntry{Seq: head.Seq + 1, Time: s.now().UnixMilli(), Actor: actor, Action: action, Detail: detail, Prev: head.Hash}
	e.Hash = hashEntry(e)
	if err := put(tx, auditKey(e.Seq), e); err != nil {
		return err
	}
	return put(tx, keyAuditHead, AuditHead{Seq: e.Seq, Hash: e.Hash})
}

// Audit records a security-relevant action (conflict resolutions, review
// changes and exports go here too).
func (s *Service) Audit(ctx context.Context, actor, action, detail string) error {
	return s.store.Update(ctx, func(tx syncengine.Tx) error { return s.appendAudit(tx, actor, action, detail) })
}

// MaxAuditPage bounds one page of the audit trail.
const MaxAuditPage = 5000

// AuditTrail returns up to limit entries after seq `after`, in order, the
// recorded head, and whether more entries follow.
func (s *Service) AuditTrail(ctx context.Context, after uint64, limit int) (entries []AuditEntry, head AuditHead, more bool, err error) {
	if limit <= 0 || limit > MaxAuditPage {
		limit = MaxAuditPage
	}
	from := auditKey(after)
	err = s.store.View(ctx, func(tx syncengine.ReadTx) error {
		entries, more = entries[:0], false
		if b, err := tx.Meta(keyAuditHead); err == nil {
			if err := json.Unmarshal(b, &head); err != nil {
				return fmt.Errorf("%w: unreadable head", ErrTampered)
			}
		} else if !errors.Is(err, syncengine.ErrNotFound) {
			return err
		}
		err := tx.ScanMeta(keyAudit, func(k string, v []byte) error {
			if after > 0 && k <= from {
				return nil // keys are zero-padded: they sort by number
			}
			if len(entries) == limit {
				more = true
				return syncengine.ErrStop
			}
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("%w: unreadable entry", ErrTampered)
			}
			entries = append(entries, e)
			return nil
		})
		if errors.Is(err, syncengine.ErrStop) {
			err = nil
		}
		return err
	})
	return entries, head, more, err
}

// AuditHead is the last entry's number and hash, as the server recorded it.
type AuditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// TrailVerifier checks a trail page by page: numbering without gaps, each
// entry's hash, each link to the previous entry, and (End) the head
// naming the last entry, so a removed tail is noticed too.
type TrailVerifier struct {
	n    uint64
	prev string
}

// Add checks the next entries.
func (v *TrailVerifier) Add(entries []AuditEntry) error {
	for _, e := range entries {
		v.n++
		if e.Seq != v.n {
			return fmt.Errorf("%w: entry %d is missing (found %d)", ErrTampered, v.n, e.Seq)
		}
		if e.Prev != v.prev {
			return fmt.Errorf("%w: entry %d does not follow entry %d", ErrTampered, e.Seq, e.Seq-1)
		}
		if hashEntry(e) != e.Hash {
			return fmt.Errorf("%w: entry %d was edited", ErrTampered, e.Seq)
		}
		v.prev = e.Hash
	}
	return nil
}

// End checks the trail ended where its head says; it returns the count.
func (v *TrailVerifier) End(head AuditHead) (uint64, error) {
	if v.n != head.Seq || v.prev != head.Hash {
		return v.n, fmt.Errorf("%w: the trail ends at %d but its head says %d", ErrTampered, v.n, head.Seq)
	}
	return v.n, nil
}

// VerifyTrail checks a whole trail against its head.
func VerifyTrail(entries []AuditEntry, headSeq uint64, headHash string) error {
	var v TrailVerifier
	if err := v.Add(entries); err != nil {
		return err
	}
	_, err := v.End(AuditHead{headSeq, headHash})
	return err
}

// VerifyAudit checks the stored trail, page by page.
func (s *Service) VerifyAudit(ctx context.Context) (int, error) {
	var v TrailVerifier
	var after uint64
	for {
		entries, head, more, err := s.AuditTrail(ctx, after, MaxAuditPage)
		if err != nil {
			return 0, err
		}
		if err := v.Add(entries); err != nil {
			return 0, err
		}
		if !more {
			n, err := v.End(head)
			return int(n), err
		}
		after = entries[len(entries)-1].Seq
	}
}
