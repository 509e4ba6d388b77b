// Package dataset flattens a form's records into the tables analysts
// expect from ODK and KoboToolbox: a main table, one table per repeat linked
// by parent key, select_multiple as the raw value plus a 0/1 column per
// choice, geopoints split into latitude/longitude/altitude/accuracy,
// metadata columns, and a conflict flag with the competing values. It knows
// nothing of files or the network: exporters write its rows.
package dataset

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// ColType is a column's type.
type ColType int

const (
	TText ColType = iota
	TInt
	TDecimal
	TBool
)

// Column is one column of a table.
type Column struct {
	Name     string
	Type     ColType
	Geopoint string // for geopoint parts: the question's path
	Part     string // Latitude, Longitude, Altitude or Accuracy
}

// Table is one output table.
type Table struct {
	Name    string
	Parent  string
	Columns []Column
	cols    []colSource
	repeat  *forms.Question // nil for the main table
}

// colSource says where a column's value comes from.
type colSource struct {
	meta   metaID          // metadata column (0: not one)
	q      *forms.Question // question column
	rel    string          // its path below its repeat
	choice string          // select_multiple split column
	part   int             // geopoint part + 1
	slot   int             // main table: index of its answer in the fast path's values
	// same is the kind of answer the cell holds unchanged (Null when
	// none: every answer goes through value).
	same syncengine.Kind
}

// Options shape a layout.
type Options struct {
	// Labels writes choice labels in this language instead of names.
	Labels string
	// Sensitive keeps questions marked sensitive (for leads and admins).
	Sensitive bool
}

// Layout is the tables of a form (the union of its versions' questions).
type Layout struct {
	Tables []Table
	form   *forms.Form
	opts   Options
	buf    []syncengine.Value
	// The fast path's numbering of main-table answers, and their values.
	fastSlot map[string]int
	fastVals []syncengine.Value
	visitor  syncengine.RecordVisitor
	// withheld: the questions (paths) some version marks sensitive, when
	// sensitive answers are not for this export: their concurrent values
	// stay out of _conflict_values too.
	withheld map[string]bool
}

var mainMeta = []Column{
	{Name: "_id"}, {Name: "_form_version"}, {Name: "_status"}, {Name: "_review"}, {Name: "_device"},
	{Name: "_created"}, {Name: "_updated"}, {Name: "_conflict", Type: TBool}, {Name: "_conflict_values"},
}

// metaID names a metadata column, so a row's cells switch on a number,
// not on the column's name.
type metaID int

const (
	metaNone metaID = iota
	metaRecordID
	metaFormVersion
	metaStatus
	metaReview
	metaDevice
	metaCreated
	metaUpdated
	metaConflict
	metaConflictValues
	metaIndex
	metaParentID
)

var metaIDs = map[string]metaID{
	"_id": metaRecordID, "_form_version": metaFormVersion, "_status": metaStatus, "_review": metaReview,
	"_device": metaDevice, "_created": metaCreated, "_updated": metaUpdated, "_conflict": metaConflict,
	"_conflict_values": metaConflictValues, "_index": metaIndex, "_parent_id": metaParentID,
}

var geoParts = []string{"Latitude", "Longitude", "Altitude", "Accuracy"}

// NewLayout builds the tables of the form versions given (newest first):
// the newest decides the order; questions only older versions had are
// appended, so no answer is dropped.
func NewLayout(versions []*forms.Form, opts Options) *Layout {
	l := &Layout{form: versions[0], opts: opts}
	main := Table{Name: versions[0].ID}
	for _, m := range mainMeta {
		main.Columns = append(main.Columns, m)
		main.cols = append(main.cols, colSource{meta: metaIDs[m.Name]})
	}
	l.Tables = []Table{main}
	index := map[*forms.Question]int{nil: 0} // repeat → table
	seen := map[string]bool{}
	if !opts.Sensitive {
		// A question one version marks sensitive is withheld from every
		// record, whatever other versions say: a record of a version that
		// marks it must not go out through another version's column.
		for _, f := range versions {
			f.Walk(func(q *forms.Question) {
				if q.Sensitive {
					if l.withheld == nil {
						l.withheld = map[string]bool{}
					}
					l.withheld[q.Path()] = true
				}
			})
		}
	}
	for _, f := range versions {
		f.Walk(func(q *forms.Question) {
			if l.withheld[q.Path()] {
				return
			}
			rep := q.Repeat()
			if q.Kind == forms.KRepeat {
				key := q.Path() + "/"
				if seen[key] {
					return
				}
				seen[key] = true
				parent := l.Tables[l.tableOf(index, rep)].Name
				t := Table{Name: versions[0].ID + "_" + strings.ReplaceAll(q.Path(), "/", "_"), Parent: parent, repeat: q}
				for _, m := range []string{"_id", "_parent_id", "_index"} {
					typ := TText
					if m == "_index" {
						typ = TInt
					}
					t.Columns = append(t.Columns, Column{Name: m, Type: typ})
					t.cols = append(t.cols, colSource{meta: metaIDs[m]})
				}
				index[q] = len(l.Tables)
				l.Tables = append(l.Tables, t)
				return
			}
			if !q.Kind.HasAnswer() || seen[q.Path()] {
				return
			}
			seen[q.Path()] = true
			t := &l.Tables[l.tableOf(index, rep)]
			name := relPath(q)
			t.Columns = append(t.Columns, Column{Name: name, Type: colType(q)})
			t.cols = append(t.cols, colSource{q: q, rel: name, same: l.sameKind(q)})
			switch q.Kind {
			case forms.KSelectMultiple:
				for _, c := range f.ChoicesFor(q) {
					t.Columns = append(t.Columns, Column{Name: name + "/" + c.Name, Type: TInt})
					t.cols = append(t.cols, colSource{q: q, rel: name, choice: c.Name})
				}
			case forms.KGeopoint:
				for i, p := range geoParts {
					t.Columns = append(t.Columns, Column{Name: name + "-" + p, Type: TDecimal, Geopoint: name, Part: p})
					t.cols = append(t.cols, colSource{q: q, rel: name, part: i + 1})
				}
			}
		})
	}
	return l
}

func (l *Layout) tableOf(index map[*forms.Question]int, rep *forms.Question) int {
	if i, ok := index[rep]; ok {
		return i
	}
	return 0
}

// relPath is a question's path below its repeat (the whole path outside
// repeats).
func relPath(q *forms.Question) string {
	p := q.Path()
	if r := q.Repeat(); r != nil {
		return strings.TrimPrefix(p, r.Path()+"/")
	}
	return p
}

func colType(q *forms.Question) ColType {
	switch q.Kind {
	case forms.KInteger:
		return TInt
	case forms.KDecimal, forms.KRange:
		return TDecimal
	}
	return TText
}

// Meta is what the server knows of a record beyond its answers.
type Meta struct {
	Review string // received, has issues, approved, rejected
}

// review is the record's review state: "received" until a lead reviews it.
func (m Meta) review() string {
	if m.Review == "" {
		return "received"
	}
	return m.Review
}

// Row is one output row: a table index and cells in column order (the zero
// Value is null).
type Row struct {
	Table int
	Cells []syncengine.Value
}

// Rows turns one record into rows of every table, main row first. The
// cells slice passed to emit is reused: copy what must outlive the call.
func (l *Layout) Rows(rec *syncengine.Record, meta Meta, emit func(Row)) {
	// One pass over the fields: times, the creating write, conflicts.
	var lo, hi syncengine.HLC
	var first syncengine.Entry
	var conflicts map[string][]any
	for name, f := range rec.Fields {
		for _, e := range f.Entries {
			if lo == 0 || e.HLC < lo {
				lo, first = e.HLC, e
			}
			hi = max(hi, e.HLC)
		}
		if len(f.Entries) > 1 && !syncengine.Reserved(name) && !l.withheld[forms.Path(name).Question()] {
			if conflicts == nil {
				conflicts = map[string][]any{}
			}
			for _, e := range f.Sorted() {
				conflicts[name] = append(conflicts[name], e.Value.Any())
			}
		}
	}
	hi = max(hi, rec.FormHLC)
	device := ""
	if lo != 0 {
		device = first.Dot.Replica.String()
	} else if len(rec.Applied) > 0 {
		device = rec.Applied[0].Replica.String()
	}
	_, version, _ := strings.Cut(rec.Form, "@")
	conflictValues := syncengine.Value{}
	if len(conflicts) > 0 {
		b, _ := json.Marshal(conflicts)
		conflictValues = syncengine.TextValue(string(b))
	}
	id := rec.ID.String()
	mm := rowMeta{id: id, version: version, status: rec.Status(), review: meta.review(), device: device, lo: lo, hi: hi,
		conflict: len(conflicts) > 0 || rec.DeleteConflict(), conflictValues: conflictValues}
	metaOf := mm.value
	answer := func(path string) syncengine.Value {
		if f := rec.Fields[path]; f != nil {
			e, _ := f.Current()
			return e.Value
		}
		return syncengine.Value{}
	}
	emit(Row{Table: 0, Cells: l.cells(0, func(c *colSource) syncengine.Value { return answer(c.rel) }, metaOf)})
	if len(l.Tables) == 1 {
		return
	}
	ans := forms.Answers(rec.Values())
	for ti := 1; ti < len(l.Tables); ti++ {
		t := &l.Tables[ti]
		for _, in := range instancesOf(ans, t.repeat) {
			key, index, parent := id+"/"+in.key, int64(in.index), id+in.parentSuffix()
			meta := func(m metaID) syncengine.Value {
				switch m {
				case metaRecordID:
					return syncengine.TextValue(key)
				case metaIndex:
					return syncengine.IntValue(index)
				case metaParentID:
					return syncengine.TextValue(parent)
				}
				return syncengine.Value{}
			}
			prefix := in.key + "/"
			emit(Row{Table: ti, Cells: l.cells(ti, func(c *colSource) syncengine.Value { return answer(prefix + c.rel) }, meta)})
		}
	}
}

// rowMeta holds a record's metadata columns of the main table.
type rowMeta struct {
	id, version, status, review, device string
	lo, hi                              syncengine.HLC
	conflict                            bool
	conflictValues                      syncengine.Value
}

func (m *rowMeta) value(id metaID) syncengine.Value {
	switch id {
	case metaRecordID:
		return syncengine.TextValue(m.id)
	case metaFormVersion:
		return syncengine.TextValue(m.version)
	case metaStatus:
		return syncengine.TextValue(m.status)
	case metaReview:
		return syncengine.TextValue(m.review)
	case metaDevice:
		return syncengine.TextValue(m.device)
	case metaCreated:
		return stamp(m.lo)
	case metaUpdated:
		return stamp(m.hi)
	case metaConflict:
		return syncengine.BoolValue(m.conflict)
	case metaConflictValues:
		return m.conflictValues
	}
	return syncengine.Value{}
}

func stamp(h syncengine.HLC) syncengine.Value {
	if h == 0 {
		return syncengine.Value{}
	}
	t := time.UnixMilli(h.Millis()).UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return syncengine.TextValue(t.Format("2006-01-02T15:04:05.000Z"))
	}
	hh, mm, ss := t.Clock()
	// "2006-01-02T15:04:05.000Z" by hand: time.Format took a seventh of a
	// row's layout on the export's fast path.
	var b [24]byte
	put := func(i, v, n int) {
		for k := i + n - 1; k >= i; k-- {
			b[k] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	put(5, int(mo), 2)
	put(8, d, 2)
	put(11, hh, 2)
	put(14, mm, 2)
	put(17, ss, 2)
	put(20, t.Nanosecond()/1e6, 3)
	b[4], b[7], b[10], b[13], b[16], b[19], b[23] = '-', '-', 'T', ':', ':', '.', 'Z'
	return syncengine.TextValue(string(b[:]))
}

func (l *Layout) cells(ti int, answer func(*colSource) syncengine.Value, meta func(metaID) syncengine.Value) []syncengine.Value {
	t := &l.Tables[ti]
	out := l.row(len(t.cols))
	for i := range t.cols {
		c := &t.cols[i]
		if c.meta != metaNone {
			out[i] = meta(c.meta)
		} else {
			out[i] = l.cell(c, answer(c))
		}
	}
	return out
}

// row returns the reused cells slice, n long.
func (l *Layout) row(n int) []syncengine.Value {
	if cap(l.buf) < n {
		l.buf = make([]syncengine.Value, n)
	}
	return l.buf[:n]
}

// cell is an answer column's cell for the answer v of its question.
func (l *Layout) cell(c *colSource, v syncengine.Value) syncengine.Value {
	switch {
	case c.choice != "":
		if v.Kind == syncengine.Null {
			return syncengine.Value{}
		}
		n := int64(0)
		for _, s := range strings.Fields(v.String()) {
			if s == c.choice {
				n = 1
			}
		}
		return syncengine.IntValue(n)
	case c.part > 0:
		if f := strings.Fields(v.String()); v.Kind != syncengine.Null && len(f) >= c.part {
			if x, err := strconv.ParseFloat(f[c.part-1], 64); err == nil {
				return syncengine.DecimalValue(x)
			}
		}
		return syncengine.Value{}
	case v.Kind == c.same:
		return v // already in the column's type, nothing to convert
	}
	return l.value(c.q, v)
}

// sameKind is the kind of answer to q that value returns unchanged.
func (l *Layout) sameKind(q *forms.Question) syncengine.Kind {
	switch colType(q) {
	case TInt:
		return syncengine.Int
	case TDecimal:
		return syncengine.Decimal
	}
	if l.opts.Labels != "" && (q.Kind == forms.KSelectOne || q.Kind == forms.KSelectMultiple) {
		return syncengine.Null // names become labels
	}
	if q.Kind.IsMedia() {
		return syncengine.Null // a file reference becomes the file's name
	}
	return syncengine.Text
}

// value writes an answer in its column's type, with labels if asked.
func (l *Layout) value(q *forms.Question, v syncengine.Value) syncengine.Value {
	if v.Kind == syncengine.Null {
		return v
	}
	switch colType(q) {
	case TInt:
		if v.Kind == syncengine.Int {
			return v
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v.String()), 10, 64); err == nil {
			return syncengine.IntValue(n)
		}
		return syncengine.Value{}
	case TDecimal:
		switch v.Kind {
		case syncengine.Decimal:
			return v
		case syncengine.Int:
			return syncengine.DecimalValue(float64(v.Int))
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v.String()), 64); err == nil {
			return syncengine.DecimalValue(f)
		}
		return syncengine.Value{}
	}
	s := v.String()
	if q.Kind.IsMedia() {
		// The name the file is exported under (--media), as ODK and
		// Kobo exports write it.
		if r, err := media.ParseRef(s); err == nil {
			s = r.FileName()
		}
	}
	if l.opts.Labels != "" && (q.Kind == forms.KSelectOne || q.Kind == forms.KSelectMultiple) {
		var parts []string
		for _, name := range strings.Fields(s) {
			label := name
			for _, c := range l.form.ChoicesFor(q) {
				if c.Name == name {
					label = c.Label.In(l.opts.Labels, l.form.DefaultLanguage)
				}
			}
			parts = append(parts, label)
		}
		s = strings.Join(parts, " ")
	}
	return syncengine.TextValue(s)
}

type instance struct {
	key    string // "household/roster[ID]"
	index  int
	parent string // the enclosing instance key, "" at top
}

func (in instance) parentSuffix() string {
	if in.parent == "" {
		return ""
	}
	return "/" + in.parent
}

// instancesOf lists a repeat's instances in a record, in order.
func instancesOf(ans forms.Answers, rep *forms.Question) []instance {
	var out []instance
	type keyed struct {
		key, parent string
		order       float64
		id          string
	}
	groups := map[string][]keyed{}
	for k, v := range ans {
		if v.Kind == syncengine.Null {
			continue
		}
		b, id, ok := forms.Path(k).Instance()
		base := string(b)
		if !ok || stripIDs(base) != rep.Path() {
			continue
		}
		parent := ""
		if j := strings.LastIndexByte(base, ']'); j > 0 {
			parent = base[:j+1]
		}
		o, _ := strconv.ParseFloat(v.String(), 64)
		groups[parent] = append(groups[parent], keyed{key: k, parent: parent, order: o, id: id})
	}
	parents := make([]string, 0, len(groups))
	for p := range groups {
		parents = append(parents, p)
	}
	sort.Strings(parents)
	for _, p := range parents {
		g := groups[p]
		sort.Slice(g, func(a, b int) bool {
			if g[a].order != g[b].order {
				return g[a].order < g[b].order
			}
			return g[a].id < g[b].id
		})
		for i, k := range g {
			out = append(out, instance{key: k.key, index: i + 1, parent: k.parent})
		}
	}
	return out
}

// stripIDs turns "household/roster[x]/visits" into "household/roster/visits".
func stripIDs(p string) string { return forms.Path(p).Question() }
