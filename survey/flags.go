package survey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// The server never throws an enumerator's data away: a finalized record
// that fails validation is stored like any other and flagged here, with the
// reasons, for the project lead.
const metaFlags = "flags/"

// Flags are a record's validation problems at its last check.
type Flags struct {
	Record     syncengine.RecordID `json:"-"`
	RecordKey  string              `json:"record"`
	Form       string              `json:"form"`
	Violations []forms.Violation   `json:"violations"`
	CheckedAt  int64               `json:"checked_at"`
}

// ListFlags returns the flagged records of a form ("" for every form) in
// projects where p is at least an analyst.
func (s *Service) ListFlags(ctx context.Context, p auth.Principal, form string) ([]Flags, error) {
	var out []Flags
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		return tx.ScanMeta(metaFlags, func(_ string, v []byte) error {
			f, err := decodeFlags(v)
			if err != nil {
				return err
			}
			if form != "" && formID(f.Form) != form {
				return nil
			}
			project, err := s.recordProject(ctx, tx, f.Record, f.Form)
			if err != nil {
				return err
			}
			if !s.mayRecord(p, project, auth.Analyst) {
				return nil
			}
			f.Violations = s.flagsFor(ctx, p, project, f.Form, f.Violations)
			out = append(out, f)
			return nil
		})
	})
	return out, err
}

// WithheldMessage stands for a message about a sensitive answer, for whom
// sensitive answers are not (messages may quote the answer).
const WithheldMessage = "(about a sensitive answer: withheld for your role)"

// flagsFor is the violations as p may read them.
func (s *Service) flagsFor(ctx context.Context, p auth.Principal, project, form string, vs []forms.Violation) []forms.Violation {
	withheld := s.withheld(ctx, p, project, form)
	out := make([]forms.Violation, len(vs))
	for i, v := range vs {
		if v.Field != "" && withheld(v.Field) {
			v.Message = WithheldMessage
		}
		out[i] = v
	}
	return out
}

func decodeFlags(v []byte) (Flags, error) {
	var f Flags
	if err := json.Unmarshal(v, &f); err != nil {
		return f, fmt.Errorf("flags: %w", syncengine.ErrCorrupt)
	}
	id, err := syncengine.ParseRecordID(f.RecordKey)
	if err != nil {
		return f, fmt.Errorf("flags: %w", syncengine.ErrCorrupt)
	}
	f.Record = id
	return f, nil
}

// flagsOf returns a record's flags (none when it has no problem).
func flagsOf(tx syncengine.ReadTx, id syncengine.RecordID) ([]forms.Violation, error) {
	b, err := tx.Meta(metaFlags + id.String())
	if errors.Is(err, syncengine.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f, err := decodeFlags(b)
	return f.Violations, err
}

func formID(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '@' {
			return key[:i]
		}
	}
	return key
}

// checker re-validates finalized records after they change, off the sync
// path: the merge only hands over the record ids.
type checker struct {
	s     *Service
	queue chan syncengine.RecordID
	done  chan struct{}
}

func startChecker(s *Service) *checker {
	c := &checker{s: s, queue: make(chan syncengine.RecordID, 4096), done: make(chan struct{})}
	go c.run()
	return c
}

// finalized is the replica's hook: queue finalized records for a check.
func (c *checker) finalized(ids []syncengine.RecordID) {
	for _, id := range ids {
		c.queue <- id
	}
}

func (c *checker) stop() {
	close(c.queue)
	<-c.done
}

// checkBatch bounds how many records one pass of the checker validates
// and writes the flags of in one transaction.
const checkBatch = 256

func (c *checker) run() {
	defer close(c.done)
	for id := range c.queue {
		// Take what else is queued: a device's push of thousands of
		// finalized records is then a few flag transactions, not one
		// durable commit per record competing with the merges.
		ids := []syncengine.RecordID{id}
	drain:
		for len(ids) < checkBatch {
			select {
			case id, ok := <-c.queue:
				if !ok {
					break drain
				}
				ids = append(ids, id)
			default:
				break drain
			}
		}
		if err := c.s.check(context.Background(), ids); err != nil {
			c.s.log.Error("validating records", "records", len(ids), "err", err)
		}
	}
}

// Check validates one record now and keeps or clears its flags.
func (s *Service) Check(ctx context.Context, id syncengine.RecordID) error {
	return s.check(ctx, []syncengine.RecordID{id})
}

// check validates records and writes what changed of their flags in one
// transaction: a record without violations and without flags costs no
// write.
func (s *Service) check(ctx context.Context, ids []syncengine.RecordID) error {
	flags := make(map[syncengine.RecordID]Flags, len(ids))
	var errs []error
	for _, id := range ids {
		if _, done := flags[id]; done {
			continue
		}
		f, err := s.validate(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("record %s: %w", id, err))
			continue
		}
		flags[id] = f
	}
	if len(flags) > 0 {
		errs = append(errs, s.store.Update(ctx, func(tx syncengine.Tx) error {
			for id, flag := range flags {
				if err := writeFlags(tx, id, flag); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	return errors.Join(errs...)
}

// validate checks a record against its form.
func (s *Service) validate(ctx context.Context, id syncengine.RecordID) (Flags, error) {
	rec, err := s.rep.Record(ctx, id)
	if err != nil {
		return Flags{}, err
	}
	flag := Flags{RecordKey: id.String(), Form: rec.Form, CheckedAt: s.now().UnixMilli()}
	if rec.Status() == "finalized" && !rec.Deleted() {
		f, err := s.forms.Form(ctx, rec.Form)
		switch {
		case errors.Is(err, forms.ErrUnknownForm):
			flag.Violations = []forms.Violation{{Code: "form", Message: fmt.Sprintf("form %s is not published on this server", rec.Form)}}
		case err != nil:
			return Flags{}, err
		default:
			in := forms.NewInstance(f, forms.Answers(rec.Values()), s.now)
			flag.Violations = append(in.CheckCalculations(), forms.NewInstance(f, forms.Answers(rec.Values()), s.now).Validate(f.DefaultLanguage)...)
		}
	}
	return flag, nil
}

// writeFlags keeps a record's flags, or drops them when it has none.
func writeFlags(tx syncengine.Tx, id syncengine.RecordID, flag Flags) error {
	key := metaFlags + id.String()
	if len(flag.Violations) == 0 {
		if _, err := tx.Meta(key); errors.Is(err, syncengine.ErrNotFound) {
			return nil // nothing to clear
		} else if err != nil {
			return err
		}
		return tx.DeleteMeta(key)
	}
	b, err := json.Marshal(flag)
	if err != nil {
		return err
	}
	return tx.SetMeta(key, b)
}
