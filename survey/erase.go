package survey

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// Erase is a request to erase one record (a respondent asked, or a
// protection officer decided): its answers and files leave every store.
type Erase struct {
	Record syncengine.RecordID
	Reason string
	Via    string // noted in the audit entry ("the console"), or ""
}

// Erased says what EraseRecord did.
type Erased struct {
	Record  syncengine.RecordID
	Already bool // the record was erased before: nothing written
}

// EraseRecord erases a record on request: a causal write by the server's
// replica that wins over every edit it has not seen (see
// syncengine.ErasedField), so the answers leave this store now and every
// hub's and device's at its next sync, and no edit made offline before it
// brings them back. A lead of the record's project or an admin may; the
// audit entry (who, which record, why, never what it held) commits with
// it. Erasing an erased record writes nothing and is not an error.
func (s *Service) EraseRecord(ctx context.Context, p auth.Principal, in Erase) (Erased, error) {
	out := Erased{Record: in.Record}
	rec, err := s.rep.Record(ctx, in.Record)
	if err != nil {
		return out, err
	}
	if err := s.RequireRecord(ctx, p, rec, auth.Lead); err != nil {
		return out, err
	}
	if strings.TrimSpace(in.Reason) == "" {
		return out, ErrNeedReason
	}
	via := ""
	if in.Via != "" {
		via = " in " + in.Via
	}
	wrote, err := s.rep.EraseWith(ctx, in.Record, func(tx syncengine.Tx, rec *syncengine.Record) error {
		detail := fmt.Sprintf("record %s of form %s%s: %s", in.Record, rec.Form, via, in.Reason)
		if err := s.auth.AuditIn(tx, Actor(p), "record-erased", detail); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	out.Already = !wrote
	if wrote {
		s.poke()
	}
	return out, nil
}

// erasing is the server replica's syncengine.Options.Erasing: besides the
// record's files (media.Store.Eraser), what the server keeps beside an
// erased record goes too: its validation flags (they quote answers), the
// answers kept with its OpenRosa submissions (for diffing edits; the
// instance ids and hashes stay, so a resubmission is still refused), and a
// hub's queue of its files to relay. Its scope stays: it decides who is
// sent the erasure.
func (s *Service) erasing(tx syncengine.Tx, held map[syncengine.RecordID][]syncengine.Value) ([]string, error) {
	keys, err := s.media.Eraser(forms.AttachmentsIn)(tx, held)
	if err != nil {
		return nil, err
	}
	del := func(k string) error {
		keys = append(keys, k)
		return tx.DeleteMeta(k)
	}
	for id := range held {
		if err := del(metaFlags + id.String()); err != nil {
			return nil, err
		}
		relays, err := syncengine.DeleteMetaPrefix(tx, metaRelay+id.String()+"/")
		if err != nil {
			return nil, err
		}
		keys = append(keys, relays...)
	}
	subs := map[string]submissionRec{}
	if err := tx.ScanMeta(metaSubmission, func(k string, v []byte) error {
		var sr submissionRec
		if err := json.Unmarshal(v, &sr); err != nil {
			return fmt.Errorf("submission %s: %w", k, syncengine.ErrCorrupt)
		}
		id, err := syncengine.ParseRecordID(sr.Record)
		if _, ok := held[id]; err == nil && ok && len(sr.Fields) > 0 {
			sr.Fields = nil
			subs[k] = sr
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for k, sr := range subs {
		b, err := json.Marshal(sr)
		if err != nil {
			return nil, err
		}
		if err := tx.SetMeta(k, b); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}
