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

type auditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// AuditIn adds an entry within tx, the action's own transaction: the action
// and its audit entry commit together or not at all.
func (s *Service) AuditIn(tx syncengine.Tx, actor, action, detail string) error {
	return s.appendAudit(tx, actor, action, detail)
}

// appendAudit adds an entry within tx (so the action and its record commit
// together).
func (s *Service) appendAudit(tx syncengine.Tx, actor, action, detail string) error {
	var head auditHead
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
	return put(tx, keyAuditHead, auditHead{Seq: e.Seq, Hash: e.Hash})
}

// Audit records a security-relevant action (conflict resolutions, review
// changes and exports go here too).
func (s *Service) Audit(ctx context.Context, actor, action, detail string) error {
	return s.store.Update(ctx, func(tx syncengine.Tx) error { return s.appendAudit(tx, actor, action, detail) })
}

// AuditTrail returns every entry in order and the recorded head.
func (s *Service) AuditTrail(ctx context.Context) ([]AuditEntry, uint64, string, error) {
	var out []AuditEntry
	var head auditHead
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		if b, err := tx.Meta(keyAuditHead); err == nil {
			if err := json.Unmarshal(b, &head); err != nil {
				return fmt.Errorf("%w: unreadable head", ErrTampered)
			}
		} else if !errors.Is(err, syncengine.ErrNotFound) {
			return err
		}
		return tx.ScanMeta(keyAudit, func(_ string, v []byte) error {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("%w: unreadable entry", ErrTampered)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, head.Seq, head.Hash, err
}

// VerifyTrail checks a trail against its head: numbering without gaps,
// each entry's hash, each link to the previous entry, and the head naming
// the last entry (so a removed tail is noticed too).
func VerifyTrail(entries []AuditEntry, headSeq uint64, headHash string) error {
	prev := ""
	for i, e := range entries {
		if e.Seq != uint64(i+1) {
			return fmt.Errorf("%w: entry %d is missing (found %d)", ErrTampered, i+1, e.Seq)
		}
		if e.Prev != prev {
			return fmt.Errorf("%w: entry %d does not follow entry %d", ErrTampered, e.Seq, e.Seq-1)
		}
		if hashEntry(e) != e.Hash {
			return fmt.Errorf("%w: entry %d was edited", ErrTampered, e.Seq)
		}
		prev = e.Hash
	}
	if uint64(len(entries)) != headSeq || prev != headHash {
		return fmt.Errorf("%w: the trail ends at %d but its head says %d", ErrTampered, len(entries), headSeq)
	}
	return nil
}

// VerifyAudit checks the stored trail.
func (s *Service) VerifyAudit(ctx context.Context) (int, error) {
	entries, seq, hash, err := s.AuditTrail(ctx)
	if err != nil {
		return 0, err
	}
	return len(entries), VerifyTrail(entries, seq, hash)
}
