// Package wire converts between the domain types (sync engine changes and
// pages, form descriptions, export schemas and rows) and the protobuf
// messages of the Tessera API, and holds the Connect client: a
// syncengine.Remote with the server's other services, its transport
// (compression, byte counting, authorization) and the forms step of a
// sync. It is the only place the two meet: each value-kind enum is mapped
// here once.
package wire

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect/v2"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/gen/tessera/v1/tesserav1connect"
	"github.com/tessera-survey/tessera/syncengine"
)

func replicaFrom(b []byte, what string) (syncengine.ReplicaID, error) {
	var r syncengine.ReplicaID
	if len(b) != 16 {
		return r, fmt.Errorf("%w: %s: replica id of %d bytes, want 16", syncengine.ErrInvalid, what, len(b))
	}
	copy(r[:], b)
	if r.IsZero() {
		return r, fmt.Errorf("%w: %s: zero replica id", syncengine.ErrInvalid, what)
	}
	return r, nil
}

// DotFrom converts a dot; nil is the zero dot.
func DotFrom(d *tesserav1.Dot, what string) (syncengine.Dot, error) {
	if d == nil || (len(d.Replica) == 0 && d.Counter == 0) {
		return syncengine.Dot{}, nil
	}
	r, err := replicaFrom(d.Replica, what)
	return syncengine.Dot{Replica: r, Counter: d.Counter}, err
}

// DotTo converts a dot; the zero dot becomes nil.
func DotTo(d syncengine.Dot) *tesserav1.Dot {
	if d.IsZero() {
		return nil
	}
	return &tesserav1.Dot{Replica: d.Replica[:], Counter: d.Counter}
}

// KindTo is the one mapping of a value's kind to its enum on the wire
// (an unknown kind is a null, as the zero Value is).
func KindTo(k syncengine.Kind) tesserav1.Kind {
	switch k {
	case syncengine.Text:
		return tesserav1.Kind_KIND_TEXT
	case syncengine.Int:
		return tesserav1.Kind_KIND_INT
	case syncengine.Decimal:
		return tesserav1.Kind_KIND_DECIMAL
	case syncengine.Bool:
		return tesserav1.Kind_KIND_BOOL
	}
	return tesserav1.Kind_KIND_UNSPECIFIED
}

// FieldTo converts one written field.
func FieldTo(name string, v syncengine.Value) *tesserav1.Field {
	f := &tesserav1.Field{Name: name, Kind: KindTo(v.Kind)}
	switch v.Kind {
	case syncengine.Text:
		f.Text = v.Str
	case syncengine.Int:
		f.Int = v.Int
	case syncengine.Decimal:
		f.Decimal = v.Num
	case syncengine.Bool:
		f.Bool = v.Bool
	}
	return f
}

// ValueFrom converts the value of a field message; an unknown kind is an
// error, not a silent null.
func ValueFrom(f *tesserav1.Field) (syncengine.Value, error) {
	switch f.GetKind() {
	case tesserav1.Kind_KIND_UNSPECIFIED:
		return syncengine.Value{}, nil
	case tesserav1.Kind_KIND_TEXT:
		return syncengine.TextValue(f.Text), nil
	case tesserav1.Kind_KIND_INT:
		return syncengine.IntValue(f.Int), nil
	case tesserav1.Kind_KIND_DECIMAL:
		return syncengine.DecimalValue(f.Decimal), nil
	case tesserav1.Kind_KIND_BOOL:
		return syncengine.BoolValue(f.Bool), nil
	}
	return syncengine.Value{}, fmt.Errorf("%w: field %q has unknown kind %d", syncengine.ErrInvalid, f.GetName(), f.GetKind())
}

// ChangeTo converts a change to its message.
func ChangeTo(c *syncengine.Change) *tesserav1.Change {
	m := &tesserav1.Change{
		Record: append([]byte(nil), c.Record[:]...),
		Form:   c.Form,
		Dot:    DotTo(c.Dot),
		Hlc:    uint64(c.HLC),
		Fields: make([]*tesserav1.Field, len(c.Fields)),
	}
	if len(c.Context) > 0 {
		m.Context = make([]*tesserav1.Dot, len(c.Context))
		for i, d := range c.Context {
			m.Context[i] = DotTo(d)
		}
	}
	for i, f := range c.Fields {
		m.Fields[i] = FieldTo(f.Name, f.Value)
	}
	return m
}

// ChangeFrom converts a change message. It checks the shape of ids; the
// model's rules are checked once, by the engine that merges the change.
func ChangeFrom(m *tesserav1.Change) (syncengine.Change, error) {
	var c syncengine.Change
	if len(m.GetRecord()) != 16 {
		return c, fmt.Errorf("%w: record id of %d bytes, want 16", syncengine.ErrInvalid, len(m.GetRecord()))
	}
	copy(c.Record[:], m.Record)
	var err error
	if c.Dot, err = DotFrom(m.Dot, "dot"); err != nil {
		return c, err
	}
	c.Form, c.HLC = m.Form, syncengine.HLC(m.Hlc)
	if len(m.Context) > 0 {
		c.Context = make(syncengine.DotSet, len(m.Context))
		for i, d := range m.Context {
			if c.Context[i], err = DotFrom(d, "context"); err != nil {
				return c, err
			}
		}
	}
	c.Fields = make([]syncengine.FieldWrite, len(m.Fields))
	for i, f := range m.Fields {
		v, err := ValueFrom(f)
		if err != nil {
			return c, err
		}
		c.Fields[i] = syncengine.FieldWrite{Name: f.GetName(), Value: v}
	}
	return c, nil
}

// changesFrom converts a list of change messages, naming the bad one.
func changesFrom(ms []*tesserav1.Change) ([]syncengine.Change, error) {
	out := make([]syncengine.Change, len(ms))
	for i, m := range ms {
		var err error
		if out[i], err = ChangeFrom(m); err != nil {
			return nil, fmt.Errorf("push: change %d: %w", i, err)
		}
	}
	return out, nil
}

func changesTo(cs []syncengine.Change) []*tesserav1.Change {
	out := make([]*tesserav1.Change, len(cs))
	for i := range cs {
		out[i] = ChangeTo(&cs[i])
	}
	return out
}

// PushFrom converts a push request.
func PushFrom(m *tesserav1.PushRequest) (syncengine.Push, error) {
	from, err := replicaFrom(m.Replica, "push")
	if err != nil {
		return syncengine.Push{}, err
	}
	if len(m.Changes) > syncengine.MaxBatchChanges {
		return syncengine.Push{}, fmt.Errorf("%w: %d changes, at most %d", syncengine.ErrTooLarge, len(m.Changes), syncengine.MaxBatchChanges)
	}
	if m.Batch != nil && len(m.Changes) > 0 {
		return syncengine.Push{}, fmt.Errorf("%w: push: send changes or batch, not both", syncengine.ErrInvalid)
	}
	var cs []syncengine.Change
	if m.Batch != nil {
		cs, err = DecodeBatch(m.Batch)
	} else {
		cs, err = changesFrom(m.Changes)
	}
	if err != nil {
		return syncengine.Push{}, err
	}
	return syncengine.Push{From: from, After: m.After, Through: m.Through, Changes: cs, Relay: m.Relay}, nil
}

// PushResultTo converts a push result.
func PushResultTo(r syncengine.PushResult) *tesserav1.PushResponse {
	return &tesserav1.PushResponse{Acknowledged: r.Acknowledged, Resend: r.Resend, Applied: uint32(r.Applied), ServerTime: r.ServerTime.UnixMilli()}
}

// PullFrom converts a pull request.
func PullFrom(m *tesserav1.PullRequest) (syncengine.PullRequest, error) {
	from, err := replicaFrom(m.Replica, "pull")
	if err != nil {
		return syncengine.PullRequest{}, err
	}
	dot, err := DotFrom(m.CursorDot, "cursor dot")
	return syncengine.PullRequest{For: from, Cursor: m.Cursor, CursorDot: dot, Limit: int(min(m.Limit, 1<<20)), Assignments: m.Assignments}, err
}

// PageTo converts a page, in columnar form when asked.
func PageTo(p syncengine.Page, columnar bool) *tesserav1.PullResponse {
	res := &tesserav1.PullResponse{
		Cursor: p.Cursor, CursorDot: DotTo(p.CursorDot), More: p.More,
		StartOver: p.Reset, ServerTime: p.ServerTime.UnixMilli(), Head: p.Head,
		FormsDigest: p.Server.FormsDigest, Wipe: p.Server.Wipe,
	}
	if p.Server.DeleteAfterSend || p.Server.RetentionDays > 0 || p.Server.TeamRecords {
		res.Policy = &tesserav1.DevicePolicy{DeleteAfterSend: p.Server.DeleteAfterSend, RetentionDays: uint32(p.Server.RetentionDays), TeamRecords: p.Server.TeamRecords}
	}
	if columnar {
		res.Batch = EncodeBatch(p.Changes)
	} else {
		res.Changes = changesTo(p.Changes)
	}
	return res
}

// Client is a syncengine.Remote over a Connect client, and the form
// service of the same server.
type Client struct {
	svc    tesserav1connect.SyncServiceClient
	forms  tesserav1connect.FormServiceClient
	auth   tesserav1connect.AuthServiceClient
	admin  tesserav1connect.AdminServiceClient
	export tesserav1connect.ExportServiceClient
	review tesserav1connect.ReviewServiceClient
	media  tesserav1connect.MediaServiceClient
	close  func()
	scopes ScopeHooks
}

// Auth returns the server's auth service.
func (c *Client) Auth() tesserav1connect.AuthServiceClient { return c.auth }

// Export returns the server's export service.
func (c *Client) Export() tesserav1connect.ExportServiceClient { return c.export }

// Media returns the server's media service.
func (c *Client) Media() tesserav1connect.MediaServiceClient { return c.media }

// Review returns the server's review service.
func (c *Client) Review() tesserav1connect.ReviewServiceClient { return c.review }

// Admin returns the server's admin service.
func (c *Client) Admin() tesserav1connect.AdminServiceClient { return c.admin }

// Sync returns the server's sync service (Push and Pull go through the
// client's own methods).
func (c *Client) Sync() tesserav1connect.SyncServiceClient { return c.svc }

// ReplicaFrom reads a replica id of 16 bytes.
func ReplicaFrom(b []byte) (syncengine.ReplicaID, error) { return replicaFrom(b, "replica") }

// Forms returns the server's form service.
func (c *Client) Forms() tesserav1connect.FormServiceClient { return c.forms }

// Close releases idle connections (a device's sync is short-lived; a held
// keep-alive connection only ties up the server).
func (c *Client) Close() {
	if c.close != nil {
		c.close()
	}
}

var _ syncengine.Remote = (*Client)(nil)

// NewClient wraps a Connect client (transport and interceptors chosen by
// the caller).
func NewClient(c *connect.Client) *Client {
	return &Client{svc: tesserav1connect.NewSyncServiceClient(c), forms: tesserav1connect.NewFormServiceClient(c),
		media: tesserav1connect.NewMediaServiceClient(c)}
}

// Push implements syncengine.Remote.
func (c *Client) Push(ctx context.Context, p syncengine.Push) (syncengine.PushResult, error) {
	req := &tesserav1.PushRequest{
		Replica: p.From[:], After: p.After, Through: p.Through, Batch: EncodeBatch(p.Changes), Relay: p.Relay,
	}
	if p.Relay && c.scopes.Out != nil {
		ss, err := c.scopes.Out(ctx, p.Changes)
		if err != nil {
			return syncengine.PushResult{}, err
		}
		req.Scopes = ScopesTo(ss)
	}
	res, err := c.svc.Push(ctx, req)
	if err != nil {
		return syncengine.PushResult{}, err
	}
	return syncengine.PushResult{
		Acknowledged: res.Acknowledged, Resend: res.Resend, Applied: int(res.Applied),
		ServerTime: time.UnixMilli(res.ServerTime),
	}, nil
}

// ErasuresAsDeletes rewrites the erasures of page as deletes, for a
// puller that does not merge erasures (see PullRequest.erasures): an
// older device refuses a change with a reserved field it does not know,
// and would stop syncing.
func ErasuresAsDeletes(page *syncengine.Page) {
	for i := range page.Changes {
		if c := &page.Changes[i]; c.Erases() {
			c.Fields = []syncengine.FieldWrite{{Name: syncengine.DeletedField, Value: syncengine.BoolValue(true)}}
		}
	}
}

// Pull implements syncengine.Remote.
func (c *Client) Pull(ctx context.Context, r syncengine.PullRequest) (syncengine.Page, error) {
	res, err := c.svc.Pull(ctx, &tesserav1.PullRequest{
		Replica: r.For[:], Cursor: r.Cursor, CursorDot: DotTo(r.CursorDot), Limit: uint32(max(r.Limit, 0)), Columnar: true,
		DeviceTime: time.Now().UnixMilli(), Erasures: true, Assignments: true,
	})
	if err != nil {
		return syncengine.Page{}, err
	}
	page, err := PageFrom(res)
	if err != nil {
		return syncengine.Page{}, fmt.Errorf("server sent %w", err)
	}
	if c.scopes.In != nil {
		ss, err := ScopesFrom(res.Scopes)
		if err != nil {
			return syncengine.Page{}, fmt.Errorf("server sent %w", err)
		}
		if err := c.scopes.In(ctx, ss); err != nil {
			return syncengine.Page{}, err
		}
	}
	return page, nil
}

// PageFrom converts a pull response.
func PageFrom(res *tesserav1.PullResponse) (syncengine.Page, error) {
	dot, err := DotFrom(res.GetCursorDot(), "cursor dot")
	if err != nil {
		return syncengine.Page{}, err
	}
	var cs []syncengine.Change
	if res.GetBatch() != nil {
		cs, err = DecodeBatch(res.Batch)
	} else {
		cs, err = changesFrom(res.GetChanges())
	}
	if err != nil {
		return syncengine.Page{}, err
	}
	return syncengine.Page{
		Changes: cs, Cursor: res.GetCursor(), CursorDot: dot, More: res.GetMore(), Reset: res.GetStartOver(),
		Head: res.GetHead(), ServerTime: time.UnixMilli(res.GetServerTime()),
		Server: syncengine.ServerState{FormsDigest: res.GetFormsDigest(), Wipe: res.GetWipe(),
			DeleteAfterSend: res.GetPolicy().GetDeleteAfterSend(), RetentionDays: int(min(res.GetPolicy().GetRetentionDays(), 1<<20)),
			TeamRecords: res.GetPolicy().GetTeamRecords()},
	}, nil
}
