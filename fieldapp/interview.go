package fieldapp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// This file is the interview half of the device API: start an interview,
// answer one question at a time, add and remove repeat instances, and the
// state a screen shows after each answer. The UI (ui.go) is its user; a
// native shell could be another.

// ErrNotQuestion: the field named is not an answerable question of the form.
var ErrNotQuestion = errors.New("not a question of this form")

// Interview is a record with its form, laid out for a screen.
type Interview struct {
	Record *syncengine.Record
	Form   *forms.Form
	In     *forms.Instance
}

// NewInterview starts a draft record of form (a key "id@version", or a bare
// id for its latest version) with the device's metadata and the form's
// default values filled in.
func (d *Device) NewInterview(ctx context.Context, form string) (syncengine.RecordID, error) {
	f, err := d.forms.Form(ctx, d.FormKey(ctx, form))
	if err != nil {
		return syncengine.RecordID{}, fmt.Errorf("new interview: %w", err)
	}
	now := time.Now()
	writes := []syncengine.FieldWrite{{Name: syncengine.StatusField, Value: syncengine.TextValue("draft")}}
	in := forms.NewInstance(f, forms.Answers{}, func() time.Time { return now })
	in.Walk(func(n *forms.INode) bool {
		if n.Q.Kind == forms.KRepeat {
			return false // instances get their defaults when added
		}
		var v syncengine.Value
		switch n.Q.Kind {
		case forms.KStart:
			v = syncengine.TextValue(now.Format(time.RFC3339))
		case forms.KToday:
			v = syncengine.TextValue(now.Format(time.DateOnly))
		case forms.KDeviceID:
			v = syncengine.TextValue("tessera:" + d.rep.ID().String())
		case forms.KUsername, forms.KPhoneNumber, forms.KSimSerial, forms.KSubscriberID, forms.KEmail:
			// What a browser cannot know is written empty: recorded as
			// unavailable, never guessed (Collect leaves these empty when
			// the phone denies them). Empty, not absent, says the device
			// looked.
			writes = append(writes, syncengine.FieldWrite{Name: n.Field, Value: syncengine.TextValue("")})
		default:
			if dv, ok := in.Default(nil, n.Q); ok {
				v = dv
			}
		}
		if v.Kind != syncengine.Null {
			writes = append(writes, syncengine.FieldWrite{Name: n.Field, Value: v})
		}
		return true
	})
	writes = append(writes, auditWrite(f, syncengine.Value{}, auditEvent{event: "form start", start: now})...)
	return d.rep.Create(ctx, f.Key(), writes)
}

// Interview loads a record and its form.
func (d *Device) Interview(ctx context.Context, id syncengine.RecordID) (*Interview, error) {
	rec, err := d.rep.Record(ctx, id)
	if err != nil {
		return nil, err
	}
	f, err := d.forms.Form(ctx, rec.Form)
	if err != nil {
		return nil, fmt.Errorf("form %s is not on this device (sync to fetch it): %w", rec.Form, err)
	}
	return &Interview{Record: rec, Form: f, In: forms.NewInstance(f, forms.Answers(rec.Values()), time.Now)}, nil
}

// Node returns the node of the interview whose field path is field.
func (iv *Interview) Node(field string) *forms.INode {
	var out *forms.INode
	iv.In.Walk(func(n *forms.INode) bool {
		if n.Field == field {
			out = n
		}
		return out == nil
	})
	return out
}

// Answer saves one answer, given as the text a screen holds ("" clears it;
// select_multiple answers are the choice names separated by spaces). It is
// written at once, so an interview interrupted anywhere keeps every answer
// given before. Repeats whose repeat_count grew get their new instances in
// the same write. It reports whether instances were added.
func (d *Device) Answer(ctx context.Context, id syncengine.RecordID, field, text string) (added bool, err error) {
	iv, err := d.Interview(ctx, id)
	if err != nil {
		return false, err
	}
	n := iv.Node(field)
	if n == nil || !n.Q.Kind.HasAnswer() || n.Q.Kind == forms.KRepeat {
		return false, fmt.Errorf("answer %s: %w", field, ErrNotQuestion)
	}
	switch n.Q.Kind {
	case forms.KText: // as typed, spaces included
	case forms.KSelectMultiple:
		text = strings.Join(strings.Fields(text), " ")
	default:
		text = strings.TrimSpace(text)
	}
	v := forms.Typed(n.Q.Kind, text)
	ans := forms.Answers(iv.Record.Values())
	if old, ok := ans[field]; (ok && old.Equal(v)) || (!ok && v.Kind == syncengine.Null) {
		return false, nil // nothing new: no write, nothing to sync
	}
	ans[field] = v
	in := forms.NewInstance(iv.Form, ans, time.Now)
	more := instanceWrites(in, ans)
	// An answer its own constraint rejects ("40" where at most 30 people
	// may live) must not make 40 household members appear.
	if len(more) > 0 && rejects(in, field) {
		more = nil
	}
	writes := append([]syncengine.FieldWrite{{Name: field, Value: v}}, more...)
	if aq := auditQuestion(iv.Form); aq != nil {
		now := time.Now()
		old := ""
		if o, ok := iv.Record.Values()[field]; ok {
			old = valueText(o)
		}
		writes = append(writes, auditWrite(iv.Form, iv.Record.Values()[aq.Path()],
			auditEvent{event: "question", node: auditNode(iv.Form, field), start: now, end: now, old: old, new: valueText(v)})...)
	}
	return len(more) > 0, d.rep.Set(ctx, id, writes)
}

// rejects reports whether field's answer breaks a rule of its question
// other than being required.
func rejects(in *forms.Instance, field string) bool {
	for _, v := range in.Validate("") {
		if v.Field == field && v.Code != "required" {
			return true
		}
	}
	return false
}

// instanceWrites adds the instances a repeat_count asks for and a repeat
// lacks. Instances are never removed that way: a lowered count leaves the
// extra instances (and their answers) for the enumerator to remove.
func instanceWrites(in *forms.Instance, ans forms.Answers) []syncengine.FieldWrite {
	var out []syncengine.FieldWrite
	visit := func(parent *forms.INode, prefix string, qs []*forms.Question, have map[string]int, last map[string]int64) {
		for _, q := range qs {
			if q.Kind != forms.KRepeat {
				continue
			}
			want, ok := in.RepeatCount(parent, q)
			if !ok {
				continue
			}
			for i := have[q.Name]; i < want; i++ {
				last[q.Name]++
				key := prefix + string(forms.Path(q.Name).At(newInstanceID()))
				out = append(out, syncengine.FieldWrite{Name: key, Value: syncengine.IntValue(last[q.Name])})
				out = append(out, defaultsOf(in, q, key+"/")...)
			}
		}
	}
	var walk func(n *forms.INode, g *forms.Question, prefix string)
	walk = func(n *forms.INode, g *forms.Question, prefix string) {
		have, last := map[string]int{}, map[string]int64{}
		for _, k := range n.Children() {
			c := k.(*forms.INode)
			if c.Q.Kind == forms.KRepeat {
				have[c.Q.Name]++
				last[c.Q.Name] = max(last[c.Q.Name], orderValue(ans[c.Field]))
			}
		}
		if n.Q == nil || n == in.Root || in.Relevant(n) {
			visit(n, prefix, g.Children, have, last)
		}
		for _, k := range n.Children() {
			c := k.(*forms.INode)
			if c.Q.Kind == forms.KGroup || c.Q.Kind == forms.KRepeat {
				walk(c, c.Q, c.Field+"/")
			}
		}
	}
	walk(in.Root, in.Form.Root, "")
	return out
}

// orderValue is the order of a repeat instance (its stored value).
func orderValue(v syncengine.Value) int64 {
	switch v.Kind {
	case syncengine.Int:
		return v.Int
	case syncengine.Decimal:
		return int64(v.Num)
	}
	var o int64
	fmt.Sscan(v.Str, &o)
	return o
}

// defaultsOf returns the default answers of a new instance of repeat q.
func defaultsOf(in *forms.Instance, q *forms.Question, prefix string) []syncengine.FieldWrite {
	var out []syncengine.FieldWrite
	var walk func(qs []*forms.Question, prefix string)
	walk = func(qs []*forms.Question, prefix string) {
		for _, c := range qs {
			switch c.Kind {
			case forms.KGroup:
				walk(c.Children, prefix+c.Name+"/")
			case forms.KRepeat:
			default:
				if v, ok := in.Default(nil, c); ok {
					out = append(out, syncengine.FieldWrite{Name: prefix + c.Name, Value: v})
				}
			}
		}
	}
	walk(q.Children, prefix)
	return out
}

func newInstanceID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// AddInstance adds an instance to the repeat at path ("roster", or
// "household/roster", or "roster[ab12cd34]/visits" for a nested one) and
// returns the new instance's key.
func (d *Device) AddInstance(ctx context.Context, id syncengine.RecordID, path string) (string, error) {
	iv, err := d.Interview(ctx, id)
	if err != nil {
		return "", err
	}
	q := repeatAt(iv.Form, path)
	if q == nil {
		return "", fmt.Errorf("add %s: %w", path, ErrNotQuestion)
	}
	var last int64
	for k := range iv.Record.Values() {
		if base, _, ok := forms.Path(k).Instance(); ok && string(base) == path {
			last = max(last, orderValue(iv.Record.Values()[k]))
		}
	}
	key := string(forms.Path(path).At(newInstanceID()))
	writes := append([]syncengine.FieldWrite{{Name: key, Value: syncengine.IntValue(last + 1)}}, defaultsOf(iv.In, q, key+"/")...)
	now := time.Now()
	writes = append(writes, auditWrite(iv.Form, iv.Record.Values()[auditPath(iv.Form)], auditEvent{event: "add repeat", node: auditNode(iv.Form, key), start: now, end: now})...)
	return key, d.rep.Set(ctx, id, writes)
}

func auditPath(f *forms.Form) string {
	if q := auditQuestion(f); q != nil {
		return q.Path()
	}
	return ""
}

// repeatAt returns the repeat question a path names (instance ids and
// group names along it are checked against the form's tree).
func repeatAt(f *forms.Form, path string) *forms.Question {
	g := f.Root
	parts := strings.Split(path, "/")
	for i, p := range parts {
		name, _, _ := strings.Cut(p, "[")
		var next *forms.Question
		for _, c := range g.Children {
			if c.Name == name {
				next = c
			}
		}
		if next == nil {
			return nil
		}
		if i == len(parts)-1 {
			if next.Kind != forms.KRepeat || strings.Contains(p, "[") {
				return nil
			}
			return next
		}
		if (next.Kind == forms.KRepeat) != strings.Contains(p, "[") {
			return nil
		}
		g = next
	}
	return nil
}

// RemoveInstance removes a repeat instance (its key "roster[ab12cd34]").
// Its answers stay in the record's history; exports leave them out.
func (d *Device) RemoveInstance(ctx context.Context, id syncengine.RecordID, key string) error {
	iv, err := d.Interview(ctx, id)
	if err != nil {
		return err
	}
	if n := iv.Node(key); n == nil || n.Q.Kind != forms.KRepeat {
		return fmt.Errorf("remove %s: %w", key, ErrNotQuestion)
	}
	now := time.Now()
	writes := []syncengine.FieldWrite{{Name: key, Value: syncengine.Value{}}}
	writes = append(writes, auditWrite(iv.Form, iv.Record.Values()[auditPath(iv.Form)], auditEvent{event: "delete repeat", node: auditNode(iv.Form, key), start: now, end: now})...)
	return d.rep.Set(ctx, id, writes)
}

// State is what a screen needs after an answer: which nodes are relevant,
// the messages of the questions answered wrongly, calculated values and
// the choices left after choice filters.
type State struct {
	Relevant map[string]bool     `json:"relevant"`
	Messages map[string]string   `json:"messages"`
	Values   map[string]string   `json:"values,omitempty"`
	Choices  map[string][]string `json:"choices,omitempty"`
	Texts    map[string]string   `json:"texts,omitempty"` // labels with ${name} in them, filled in
	Reload   bool                `json:"reload,omitempty"`
}

// State computes the screen state in lang. Required answers are not
// reported as missing here (an interview is answered in any order);
// finalize reports them.
func (iv *Interview) State(lang string) State {
	st := State{Relevant: map[string]bool{}, Messages: map[string]string{}, Values: map[string]string{}, Choices: map[string][]string{}, Texts: map[string]string{}}
	in := iv.In
	if calc, err := in.Calculate(); err == nil {
		for k, v := range calc {
			st.Values[k] = forms.ValueText(v)
		}
	}
	in.Walk(func(n *forms.INode) bool {
		st.Relevant[n.Field] = in.Relevant(n)
		if n.Q.ChoiceFilter != "" {
			for _, c := range in.Choices(n) {
				st.Choices[n.Field] = append(st.Choices[n.Field], c.Name)
			}
		}
		if strings.Contains(n.Q.Label.In(lang, iv.Form.DefaultLanguage), "${") {
			st.Texts[n.Field] = in.Text(n, n.Q.Label, lang)
		}
		return true
	})
	for _, v := range in.Validate(lang) {
		if v.Code != "required" {
			st.Messages[v.Field] = v.Message
		}
	}
	return st
}

// Summary is one line of the list of saved interviews.
type Summary struct {
	ID       string
	Form     string
	Title    string
	Status   string // draft or finalized
	Sent     bool   // every write acknowledged by the server
	Conflict bool   // some answer has concurrent values
	Started  string
}

// Interviews lists up to limit records, newest first (record ids grow
// with time), older than the id before (zero: from the newest), and the id
// to continue from ("" at the end). Deleted records are left out, and
// those whose answers left the device after they were sent.
func (d *Device) Interviews(ctx context.Context, before syncengine.RecordID, limit int) ([]Summary, string, error) {
	unsent, err := d.rep.Unsent(ctx)
	if err != nil {
		return nil, "", err
	}
	removed, err := d.rep.Forgotten(ctx)
	if err != nil {
		return nil, "", err
	}
	titles := map[string]string{}
	var out []Summary
	next := ""
	each := func(r *syncengine.Record) error {
		if r.Deleted() || (removed[r.ID] && len(r.FieldNames()) == 0) {
			return nil // deleted, or sent and removed from this device
		}
		if len(out) == limit {
			next = out[len(out)-1].ID
			return syncengine.ErrStop
		}
		t, ok := titles[r.Form]
		if !ok {
			if f, err := d.forms.Form(ctx, r.Form); err == nil {
				t = f.Title
			}
			titles[r.Form] = t
		}
		vals := r.Values()
		out = append(out, Summary{ID: r.ID.String(), Form: r.Form, Title: t, Status: r.Status(), Sent: !unsent(r),
			Conflict: len(r.Conflicts()) > 0 || r.DeleteConflict(), Started: vals["started"].Str})
		return nil
	}
	err = d.rep.Store().View(ctx, func(tx syncengine.ReadTx) error {
		rev, ok := tx.(syncengine.ReverseRecordScanner)
		if !ok {
			return errors.New("interviews: this store cannot list newest first")
		}
		return rev.ScanRecordsReverse(before, each)
	})
	if errors.Is(err, syncengine.ErrStop) {
		err = nil
	}
	return out, next, err
}

// ResolveAnswer settles a field in conflict on the value at index i of its
// concurrent values (as View lists them), or on text when i < 0.
func (d *Device) ResolveAnswer(ctx context.Context, id syncengine.RecordID, field string, i int, text string) error {
	rec, err := d.rep.Record(ctx, id)
	if err != nil {
		return err
	}
	reg, ok := rec.Fields[field]
	if !ok {
		return fmt.Errorf("resolve %s: %w", field, ErrNotQuestion)
	}
	var v syncengine.Value
	if i >= 0 {
		es := reg.Sorted()
		if i >= len(es) {
			return fmt.Errorf("resolve %s: no value %d", field, i)
		}
		v = es[i].Value
	} else {
		v = syncengine.ParseValue(text)
		if iv, err := d.Interview(ctx, id); err == nil {
			if n := iv.Node(field); n != nil {
				v = forms.Typed(n.Q.Kind, text)
			}
		}
	}
	return d.rep.Resolve(ctx, id, []syncengine.FieldWrite{{Name: field, Value: v}})
}

// Languages returns every language of the forms on the device, sorted.
func (d *Device) Languages(ctx context.Context) ([]string, error) {
	infos, err := d.forms.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, i := range infos {
		for _, l := range i.Languages {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
