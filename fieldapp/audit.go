package fieldapp

import (
	"bytes"
	"context"
	"encoding/csv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// auditEvent is one line of ODK's audit log (audit.csv): what happened,
// to which node, when, and (with track-changes) the answer before and
// after.
type auditEvent struct {
	event, node string
	start, end  time.Time
	old, new    string
}

// auditQuestion is the form's audit question, nil when it has none.
func auditQuestion(f *forms.Form) *forms.Question {
	var q *forms.Question
	f.Walk(func(x *forms.Question) {
		if x.Kind == forms.KAudit && q == nil {
			q = x
		}
	})
	return q
}

// auditWrite appends events to the record's audit log (the audit
// question's answer: audit.csv's text, as ODK writes it), or returns
// nothing when the form keeps no audit. current is the log so far.
func auditWrite(f *forms.Form, current syncengine.Value, evs ...auditEvent) []syncengine.FieldWrite {
	q := auditQuestion(f)
	if q == nil || len(evs) == 0 {
		return nil
	}
	changes := strings.EqualFold(q.Parameters["track-changes"], "true")
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	text := ""
	if current.Kind == syncengine.Text {
		text = current.Str
	}
	if text == "" {
		head := []string{"event", "node", "start", "end"}
		if changes {
			head = append(head, "old-value", "new-value")
		}
		w.Write(head)
	}
	ms := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	for _, e := range evs {
		line := []string{e.event, e.node, ms(e.start), ms(e.end)}
		if changes {
			line = append(line, e.old, e.new)
		}
		w.Write(line)
	}
	w.Flush()
	return []syncengine.FieldWrite{{Name: q.Path(), Value: syncengine.TextValue(text + b.String())}}
}

// auditNode is the XPath ODK names a field by: /root/group/question, a
// repeat instance's id in brackets as Tessera keeps it.
func auditNode(f *forms.Form, field string) string {
	if field == "" {
		return ""
	}
	return "/" + f.RootName + "/" + field
}

// audited writes fields to a record with the audit events they make
// ("question" per answer changed, old and new values when the form
// tracks changes) and the events given.
func (d *Device) audited(ctx context.Context, id syncengine.RecordID, fields []syncengine.FieldWrite, evs ...auditEvent) error {
	rec, err := d.rep.Record(ctx, id)
	if err != nil {
		return d.rep.Set(ctx, id, fields) // the engine reports why
	}
	f, err := d.forms.Form(ctx, rec.Form)
	if err != nil {
		return d.rep.Set(ctx, id, fields)
	}
	aq := auditQuestion(f)
	if aq == nil {
		return d.rep.Set(ctx, id, fields)
	}
	now := time.Now()
	vals := rec.Values()
	var all []auditEvent
	for _, fw := range fields {
		if syncengine.Reserved(fw.Name) || fw.Name == aq.Path() {
			continue
		}
		old, had := vals[fw.Name]
		if had && old.Equal(fw.Value) {
			continue
		}
		oldText := ""
		if had {
			oldText = old.String()
		}
		all = append(all, auditEvent{event: "question", node: auditNode(f, fw.Name), start: now, end: now, old: oldText, new: valueText(fw.Value)})
	}
	all = append(all, evs...)
	fields = slices.Clip(fields)
	return d.rep.Set(ctx, id, append(fields, auditWrite(f, vals[aq.Path()], all...)...))
}

func valueText(v syncengine.Value) string {
	if v.Kind == syncengine.Null {
		return ""
	}
	return v.String()
}
