package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/syncengine"
)

// Record scopes: a record belongs to the project (and team) of the device
// that first pushed it. An enrolled device may push only to records of its
// own project and team and pulls only those; forms it receives are its
// project's (and the ones published for every project).
const metaScope = "scope/"

type scope struct{ project, team string }

func (s scope) encode() []byte { return []byte(s.project + "\x00" + s.team) }

func decodeScope(b []byte) scope {
	p, t, _ := strings.Cut(string(b), "\x00")
	return scope{p, t}
}

// scopes caches record scopes (they never change once stamped).
type scopes struct {
	mu sync.RWMutex
	m  map[syncengine.RecordID]scope
}

func (sc *scopes) get(tx syncengine.ReadTx, id syncengine.RecordID) (scope, bool, error) {
	sc.mu.RLock()
	v, ok := sc.m[id]
	sc.mu.RUnlock()
	if ok {
		return v, true, nil
	}
	b, err := tx.Meta(metaScope + id.String())
	if errors.Is(err, syncengine.ErrNotFound) {
		return scope{}, false, nil
	}
	if err != nil {
		return scope{}, false, err
	}
	v = decodeScope(b)
	sc.mu.Lock()
	if sc.m == nil {
		sc.m = map[syncengine.RecordID]scope{}
	}
	sc.m[id] = v
	sc.mu.Unlock()
	return v, true, nil
}

// allows reports whether a device may see or write a record of scope v.
func allows(d *auth.Device, v scope) bool {
	return v.project == d.Project && (d.Team == "" || v.team == d.Team)
}

// pushGuard checks a device's batch against record scopes and stamps new
// records with the device's scope, inside the merge transaction.
func (s *Server) pushGuard(ctx context.Context, d *auth.Device) func(tx syncengine.Tx, cs []syncengine.Change) error {
	return func(tx syncengine.Tx, cs []syncengine.Change) error {
		stamped := map[syncengine.RecordID]bool{}
		formProject := map[string]string{} // per batch: forms repeat
		projectOf := func(form string) string {
			p, ok := formProject[form]
			if !ok {
				if f, err := s.forms.Form(ctx, form); err == nil {
					p = f.Project
				}
				formProject[form] = p
			}
			return p
		}
		for i := range cs {
			c := &cs[i]
			if stamped[c.Record] {
				continue
			}
			v, ok, err := s.scopes.get(tx, c.Record)
			if err != nil {
				return err
			}
			if ok {
				if !allows(d, v) {
					return fmt.Errorf("%w: record %s belongs to another project or team; nothing of this batch was applied", auth.ErrDenied, c.Record)
				}
				continue
			}
			if p := projectOf(c.Form); p != "" && p != d.Project {
				return fmt.Errorf("%w: form %s belongs to project %s; nothing of this batch was applied", auth.ErrDenied, c.Form, p)
			}
			if err := tx.SetMeta(metaScope+c.Record.String(), scope{d.Project, d.Team}.encode()); err != nil {
				return err
			}
			stamped[c.Record] = true
		}
		return nil
	}
}

// pullFilter hides records outside a device's scope.
func (s *Server) pullFilter(d *auth.Device) syncengine.Filter {
	return func(tx syncengine.ReadTx, c *syncengine.Change) (bool, error) {
		v, ok, err := s.scopes.get(tx, c.Record)
		return ok && allows(d, v), err
	}
}
