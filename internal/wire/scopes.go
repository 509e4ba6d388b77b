package wire

import (
	"context"
	"fmt"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/syncengine"
)

// Scope is the project and team a record belongs to, as it travels between
// a hub and its upstream (the server's use cases decide what it means).
type Scope struct {
	Record        syncengine.RecordID
	Project, Team string
}

// ScopeHooks let a relaying hub attach its records' scopes to what it
// pushes and keep those its upstream sends with each page. Out is called
// with a relayed batch; In with a page's scopes before the page is
// returned (so before it is applied: a record never lands unscoped).
type ScopeHooks struct {
	Out func(ctx context.Context, cs []syncengine.Change) ([]Scope, error)
	In  func(ctx context.Context, scopes []Scope) error
}

// SetScopeHooks installs h on the client (before its first sync).
func (c *Client) SetScopeHooks(h ScopeHooks) { c.scopes = h }

// ScopesFrom converts the scopes of a message; a malformed one is an
// ErrInvalid naming it.
func ScopesFrom(ms []*tesserav1.RecordScope) ([]Scope, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	out := make([]Scope, len(ms))
	for i, m := range ms {
		if len(m.GetRecord()) != 16 {
			return nil, fmt.Errorf("%w: scope %d: record id of %d bytes, want 16", syncengine.ErrInvalid, i, len(m.GetRecord()))
		}
		out[i] = Scope{Record: syncengine.RecordID(m.Record), Project: m.Project, Team: m.Team}
	}
	return out, nil
}

// ScopesTo converts scopes to messages.
func ScopesTo(ss []Scope) []*tesserav1.RecordScope {
	if len(ss) == 0 {
		return nil
	}
	out := make([]*tesserav1.RecordScope, len(ss))
	for i, s := range ss {
		out[i] = &tesserav1.RecordScope{Record: s.Record[:], Project: s.Project, Team: s.Team}
	}
	return out
}
