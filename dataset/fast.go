package dataset

import (
	"errors"
	"strings"

	"github.com/tessera-survey/tessera/syncengine"
)

// The fast path of exports: a stored record laid out straight from its
// encoding (syncengine.RecordVisitor), without building the record, its
// registers and its field map. It covers the common record of a form
// without repeats: no field in conflict and never deleted. Anything else
// goes back to Rows, which remains the one definition of the layout; the
// test compares both on random records.

// errSlow stops a visit: the record needs the full path.
var errSlow = errors.New("dataset: record needs the full layout")

// initFast numbers the main table's answer columns' paths.
func (l *Layout) initFast() {
	if l.fastSlot != nil {
		return
	}
	l.fastSlot = map[string]int{}
	t := &l.Tables[0]
	for i := range t.cols {
		c := &t.cols[i]
		if c.meta != metaNone {
			continue
		}
		s, ok := l.fastSlot[c.rel]
		if !ok {
			s = len(l.fastSlot)
			l.fastSlot[c.rel] = s
		}
		c.slot = s
	}
	l.fastVals = make([]syncengine.Value, len(l.fastSlot))
}

// RowsFromStored lays out the record id stored as b (syncengine's
// encoding) like Rows does, when it can without decoding the record: the
// layout has only the main table, and the record has no field in conflict
// and no delete. handled is false otherwise, and the caller decodes the
// record and uses Rows. A record whose form match rejects is skipped
// (handled, not exported).
func (l *Layout) RowsFromStored(id syncengine.RecordID, b []byte, meta Meta, match func(form string) bool, emit func(Row)) (handled, exported bool, err error) {
	if len(l.Tables) != 1 {
		return false, false, nil
	}
	l.initFast()
	vals := l.fastVals
	clear(vals)
	var lo, hi syncengine.HLC
	var first syncengine.Entry
	status := "draft"
	h, err := l.visitor.Visit(b, func(name []byte, es []syncengine.Entry) error {
		if len(es) > 1 || string(name) == syncengine.DeletedField {
			return errSlow
		}
		if len(es) == 0 {
			return nil
		}
		e := es[0]
		if lo == 0 || e.HLC < lo {
			lo, first = e.HLC, e
		}
		hi = max(hi, e.HLC)
		if string(name) == syncengine.StatusField {
			if e.Value.Kind == syncengine.Text {
				status = e.Value.Str
			}
			return nil
		}
		if s, ok := l.fastSlot[string(name)]; ok {
			vals[s] = e.Value
		}
		return nil
	})
	if errors.Is(err, errSlow) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	if !match(h.Form) {
		return true, false, nil
	}
	hi = max(hi, h.FormHLC)
	device := ""
	if lo != 0 {
		device = first.Dot.Replica.String()
	} else if !h.FirstApplied.IsZero() {
		device = h.FirstApplied.Replica.String()
	}
	_, version, _ := strings.Cut(h.Form, "@")
	mm := rowMeta{id: id.String(), version: version, status: status, review: meta.review(), device: device, lo: lo, hi: hi}
	// cells' loop without its two calls through closures per cell.
	t := &l.Tables[0]
	out := l.row(len(t.cols))
	for i := range t.cols {
		c := &t.cols[i]
		if c.meta != metaNone {
			out[i] = mm.value(c.meta)
		} else {
			out[i] = l.cell(c, vals[c.slot])
		}
	}
	emit(Row{Table: 0, Cells: out})
	return true, true, nil
}
