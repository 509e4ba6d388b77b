package forms

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// XForm writes f as an ODK XForm 1.0 document, the XML that ODK Collect,
// Enketo and ODK Web Forms read, laid out as pyxform 4.5 lays it out (the
// converter those clients are tested with). The bytes depend on the form
// alone: the same version always gives the same XForm, so the md5 an
// OpenRosa server publishes for it never changes.
func (f *Form) XForm() (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("forms: writing the XForm of %s: %v", f.Key(), r)
		}
	}()
	w := newXW(f)
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\"?>\n")
	w.document().write(&b, "")
	return []byte(b.String()), nil
}

// ptext is a label, hint or message as pyxform holds it: one string, or
// translations in column order.
type ptext struct {
	s     string
	langs []string
	by    map[string]string
}

func (t ptext) empty() bool { return t.s == "" && len(t.langs) == 0 }
func (t ptext) dict() bool  { return len(t.langs) > 0 }

type xaction struct {
	name, event, value string
	extra              []xattr
}

// xe is a survey element as pyxform's builder makes it: the survey, a
// group, a repeat or a question, with its bind, control and instance
// attributes in column order.
type xe struct {
	q        *Question
	name     string
	typ      string // "survey", "group", "repeat", or the question's kind
	kind     Kind
	label    ptext
	hint     ptext
	guidance ptext
	media    []mediaText
	cMsg     ptext // constraint message
	rMsg     ptext // required message
	bind     []xattr
	hasBind  bool
	tag      string // body element; "" for none
	control  []xattr
	inst     []xattr
	actions  []xaction
	children []*xe
	parent   *xe
	bodyless bool
	attr     bool   // an attribute of its parent (the entity's dataset, id...)
	flat     bool   // settings flat: a group without its own instance node
	value    string // an attribute's value

	isSelect                                     bool
	osm                                          []*option
	listName, itemset, choiceFilter, dflt, query string
	itemsetRefs                                  bool // select_one ${repeat_question}
	params                                       []xattr
	triggers                                     []string
	dynDefault                                   bool
	external                                     bool // csv-external, xml-external

	xp string
}

type mediaText struct {
	kind string // image, big-image, audio, video
	t    ptext
}

type option struct {
	name  string
	label ptext
	media []mediaText
	extra []xattr
}

type itemset struct {
	name          string
	options       []*option
	requiresItext bool
	usedBySearch  bool
}

// xw writes one form's XForm.
type xw struct {
	f        *Form
	defLang  string
	root     *xe
	byName   map[string]*xe
	lists    []*itemset
	listBy   map[string]*itemset
	setvals  map[string][][2]string // trigger name → (target, value)
	setgeos  map[string][][2]string
	langSeen []string
	trans    map[string]map[string]*tentry // lang → itext id → entry
	transIDs map[string][]string           // lang → ids in order
}

type tentry struct {
	forms []string // "long", "guidance", "image", ...
	by    map[string]tvalue
}

type tvalue struct {
	text string
	ctx  *xe
}

func newXW(f *Form) *xw {
	w := &xw{f: f, defLang: "default", byName: map[string]*xe{}, listBy: map[string]*itemset{},
		setvals: map[string][][2]string{}, setgeos: map[string][][2]string{}}
	if l := f.Settings["default_language"]; l != "" {
		w.defLang = l
	}
	w.readLists()
	w.root = &xe{name: f.RootName, typ: "survey"}
	w.buildChildren(w.root, f.Root)
	if yes(f.Settings["flat"]) {
		w.flatten(w.root.children, "")
	}
	rootEntity := w.addEntities()
	w.addMeta(rootEntity)
	seen := map[string]int{}
	w.walk(w.root, func(e *xe) {
		if e.typ != "survey" && e.typ != "entity" && !e.attr && (e.parent == nil || e.parent.typ != "entity") {
			seen[e.name]++
			w.byName[e.name] = e
		}
	})
	for n, c := range seen {
		if c > 1 {
			delete(w.byName, n)
		}
	}
	return w
}

func (w *xw) walk(e *xe, fn func(*xe)) {
	fn(e)
	for _, c := range e.children {
		w.walk(c, fn)
	}
}

func (e *xe) xpath() string {
	if e.xp == "" {
		e.xp = e.xpathFrom(nil)
	}
	return e.xp
}

// xpathFrom is the element's path below ancestor (the whole path when
// ancestor is nil).
func (e *xe) xpathFrom(ancestor *xe) string {
	var names []string
	for p := e; p != nil && p != ancestor; p = p.parent {
		if p.flat {
			continue
		} else if p.attr {
			names = append(names, "@"+p.name)
		} else {
			names = append(names, p.name)
		}
	}
	slices.Reverse(names)
	return "/" + strings.Join(names, "/")
}

// text turns an imported translatable column into pyxform's form: a plain
// string when only the untranslated column is filled, else translations
// in the order of the sheet's columns, the untranslated one under the
// default language.
func (w *xw) text(t Text, base string, cols []column) ptext {
	if len(t) == 0 {
		return ptext{}
	}
	if len(t) == 1 {
		if s, ok := t[""]; ok {
			return ptext{s: s}
		}
	}
	out := ptext{by: map[string]string{}}
	addLang := func(l, s string) {
		if _, ok := out.by[l]; !ok {
			out.langs = append(out.langs, l)
		}
		out.by[l] = s
	}
	for _, c := range cols {
		if c.base != base {
			continue
		}
		s, ok := t[c.lang]
		if !ok {
			continue
		}
		if c.lang == "" {
			if _, explicit := t[w.defLang]; explicit {
				continue
			}
			addLang(w.defLang, s)
		} else {
			addLang(c.lang, s)
		}
	}
	for _, l := range sortedKeys(t) { // texts made by the importer (loops)
		if _, ok := out.by[l]; !ok && l != "" {
			addLang(l, t[l])
		}
	}
	if len(out.langs) == 0 {
		return ptext{s: t[""]}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// mediaOf reads the image, big-image, audio and video columns (also
// spelled media::image).
func (w *xw) mediaOf(r *record, cols []column) []mediaText {
	if r == nil {
		return nil
	}
	var out []mediaText
	for _, kind := range []string{"image", "big-image", "audio", "video"} {
		t := Text{}
		var mcols []column
		for _, c := range cols {
			switch {
			case c.base == kind:
				if v, ok := r.texts[kind][c.lang]; ok {
					t[c.lang] = v
					mcols = append(mcols, column{base: kind, lang: c.lang})
				}
			case c.base == "media":
				k, lang, _ := strings.Cut(c.lang, "::")
				if k == kind {
					if v, ok := r.texts["media"][c.lang]; ok {
						t[lang] = v
						mcols = append(mcols, column{base: kind, lang: lang})
					}
				}
			}
		}
		if len(t) > 0 {
			out = append(out, mediaText{kind, w.text(t, kind, mcols)})
		}
	}
	return out
}

// readLists makes the survey's itemsets from the choices sheet, in the
// order lists first appear there.
func (w *xw) readLists() {
	names := sortedKeys(w.f.Choices)
	first := func(n string) int {
		if cs := w.f.Choices[n]; len(cs) > 0 {
			return cs[0].Row
		}
		return 0
	}
	sort.SliceStable(names, func(i, j int) bool { return first(names[i]) < first(names[j]) })
	for _, n := range names {
		is := &itemset{name: n}
		for _, c := range w.f.Choices[n] {
			o := w.option(c)
			is.options = append(is.options, o)
			if len(o.media) > 0 || o.label.dict() || (o.label.s != "" && strings.Contains(o.label.s, "${")) {
				is.requiresItext = true
			}
		}
		w.lists = append(w.lists, is)
		w.listBy[n] = is
	}
}

var optionFields = map[string]bool{"list_name": true, "name": true, "label": true, "image": true, "big-image": true,
	"audio": true, "video": true, "media": true, "sms_option": true}

func (w *xw) option(c Choice) *option {
	o := &option{name: c.Name}
	if c.raw == nil {
		o.label = w.text(c.Label, "label", nil)
		return o
	}
	o.label = w.text(c.raw.texts["label"], "label", w.f.choiceCols)
	o.media = w.mediaOf(c.raw, w.f.choiceCols)
	for _, col := range w.f.choiceCols {
		if optionFields[col.base] || col.lang != "" || !validName(col.base) {
			continue // pyxform drops columns that cannot be XML names (notes to the authors)
		}
		if v, ok := c.raw.cells[col.base]; ok {
			o.extra = append(o.extra, xattr{col.base, v})
		}
	}
	return o
}

// qtd is pyxform's question type dictionary: the body element, its media
// type and the bind each kind starts from.
type qtdEntry struct {
	tag, mediatype string
	bind           []xattr
}

func qtd(k Kind) qtdEntry {
	s := func(t string) []xattr { return []xattr{{"type", t}} }
	prop := func(p string) []xattr {
		return []xattr{{"jr:preload", "property"}, {"type", "string"}, {"jr:preloadParams", p}}
	}
	switch k {
	case KText:
		return qtdEntry{tag: "input", bind: s("string")}
	case KInteger:
		return qtdEntry{tag: "input", bind: s("int")}
	case KDecimal:
		return qtdEntry{tag: "input", bind: s("decimal")}
	case KSelectOne:
		return qtdEntry{tag: "select1", bind: s("string")}
	case KSelectMultiple:
		return qtdEntry{tag: "select", bind: s("string")}
	case KRank:
		return qtdEntry{tag: "odk:rank", bind: s("odk:rank")}
	case KDate, KTime, KDateTime, KGeopoint, KGeotrace, KGeoshape, KBarcode:
		return qtdEntry{tag: "input", bind: s(string(k))}
	case KNote:
		return qtdEntry{tag: "input", bind: []xattr{{"readonly", "true()"}, {"type", "string"}}}
	case KCalculate, KHidden:
		return qtdEntry{bind: s("string")}
	case KAcknowledge:
		return qtdEntry{tag: "trigger", bind: s("string")}
	case KImage:
		return qtdEntry{tag: "upload", mediatype: "image/*", bind: s("binary")}
	case KAudio:
		return qtdEntry{tag: "upload", mediatype: "audio/*", bind: s("binary")}
	case KVideo:
		return qtdEntry{tag: "upload", mediatype: "video/*", bind: s("binary")}
	case KFile:
		return qtdEntry{tag: "upload", mediatype: "application/*", bind: s("binary")}
	case KOSM:
		return qtdEntry{tag: "upload", mediatype: "osm/*", bind: s("binary")}
	case KRange:
		return qtdEntry{tag: "range", bind: s("int")}
	case KStart, KEnd:
		return qtdEntry{bind: []xattr{{"jr:preload", "timestamp"}, {"type", "dateTime"}, {"jr:preloadParams", string(k)}}}
	case KToday:
		return qtdEntry{bind: []xattr{{"jr:preload", "date"}, {"type", "date"}, {"jr:preloadParams", "today"}}}
	case KDeviceID, KUsername, KPhoneNumber, KSimSerial, KSubscriberID, KEmail:
		return qtdEntry{bind: prop(string(k))}
	case KAudit:
		return qtdEntry{bind: s("binary")}
	case KStartGeopoint:
		return qtdEntry{bind: s("geopoint")}
	case KBackgroundAudio:
		return qtdEntry{bind: s("binary")}
	case KBackgroundGeopoint:
		return qtdEntry{tag: "trigger", bind: s("geopoint")}
	}
	return qtdEntry{}
}

// bindColumns map survey columns to bind attributes.
var bindColumns = map[string]string{
	"relevant": "relevant", "required": "required", "constraint": "constraint",
	"calculation": "calculate", "read_only": "readonly", "constraint_message": "jr:constraintMsg",
	"required_message": "jr:requiredMsg", "save_to": "entities:saveto", "no_app_error_string": "jr:noAppErrorString",
}

func (w *xw) buildChildren(parent *xe, q *Question) {
	for _, c := range q.Children {
		if c.Kind == KAudit {
			continue // in meta
		}
		for _, e := range w.build(c) {
			e.parent = parent
			parent.children = append(parent.children, e)
		}
	}
}

// build makes the elements of one row: the question, and for select ...
// or_other its "specify other" text question.
func (w *xw) build(q *Question) []*xe {
	e := &xe{q: q, name: q.Name, kind: q.Kind, typ: string(q.Kind)}
	cols := w.f.surveyCols
	r := q.raw
	if r == nil {
		r = &record{cells: map[string]string{}, texts: map[string]Text{}}
		if !q.Label.Empty() {
			r.texts["label"] = q.Label
		}
		if !q.Hint.Empty() {
			r.texts["hint"] = q.Hint
		}
	}
	e.label = w.text(r.texts["label"], "label", cols)
	e.hint = w.text(r.texts["hint"], "hint", cols)
	e.guidance = w.text(r.texts["guidance_hint"], "guidance_hint", cols)
	e.media = w.mediaOf(r, cols)
	e.cMsg = w.text(r.texts["constraint_message"], "constraint_message", cols)
	e.rMsg = w.text(r.texts["required_message"], "required_message", cols)

	d := qtd(q.Kind)
	switch q.Kind {
	case KGroup, KRepeat:
		e.typ = string(q.Kind)
	case KExternalData:
		e.external = true
	case KSelectOne:
		if q.External {
			d.tag = "input"
		}
	}
	if t := strings.TrimSpace(r.cells["type"]); strings.HasPrefix(t, "uri:") && q.Kind.IsMeta() {
		for i := range d.bind {
			if d.bind[i].k == "jr:preloadParams" {
				d.bind = slices.Clone(d.bind)
				d.bind[i].v = t // uri:deviceid, uri:email...: the spelling is the parameter
			}
		}
	}
	if strings.EqualFold(strings.TrimSpace(r.cells["type"]), "trigger") {
		d.bind = nil // pyxform's "trigger" type has a body, no bind
	}
	if q.Kind != KGroup && q.Kind != KRepeat {
		e.bind = slices.Clone(d.bind)
		e.hasBind = d.bind != nil
		e.tag = d.tag
		if d.mediatype != "" {
			e.control = append(e.control, xattr{"mediatype", d.mediatype})
		}
	}
	w.columns(e, q, r, cols)
	w.parameters(e, q, r)
	w.defaults(e, q, r)
	if q.Kind == KGroup || q.Kind == KRepeat {
		w.buildChildren(e, q)
		if q.Kind == KRepeat {
			if rc := q.RepeatCount; rc != "" && !isBareRef(rc) {
				gen := &xe{name: q.Name + "_count", typ: "calculate", kind: KCalculate, hasBind: true,
					bind: []xattr{{"type", "string"}, {"readonly", "true()"}, {"calculate", rc}}}
				e.setControl("jr:count", "${"+gen.name+"}")
				return []*xe{gen, e}
			}
		}
		if q.Kind == KGroup {
			if out := w.tableList(e); out != nil {
				return out
			}
		}
	}
	out := []*xe{e}
	if q.OrOther && (q.Kind == KSelectOne || q.Kind == KSelectMultiple) {
		w.addOther(q.ListName)
		out = append(out, &xe{name: q.Name + "_other", typ: "text", kind: KText, label: ptext{s: "Specify other."},
			tag: "input", hasBind: true,
			bind: []xattr{{"type", "string"}, {"relevant", fmt.Sprintf("selected(../%s, 'other')", q.Name)}}})
	}
	return out
}

func (e *xe) setBind(k, v string) {
	e.hasBind = true
	for i := range e.bind {
		if e.bind[i].k == k {
			e.bind[i].v = v
			return
		}
	}
	e.bind = append(e.bind, xattr{k, v})
}

func (e *xe) setControl(k, v string) {
	for i := range e.control {
		if e.control[i].k == k {
			e.control[i].v = v
			return
		}
	}
	e.control = append(e.control, xattr{k, v})
}

func (e *xe) controlValue(k string) string {
	for _, a := range e.control {
		if a.k == k {
			return a.v
		}
	}
	return ""
}

// columns copies the row's bind, body and instance columns in sheet order.
func (w *xw) columns(e *xe, q *Question, r *record, cols []column) {
	seen := map[string]bool{}
	for _, c := range cols {
		key := c.base + "::" + c.lang
		if seen[key] {
			continue
		}
		seen[key] = true
		if b, ok := bindColumns[c.base]; ok {
			if c.base == "constraint_message" || c.base == "required_message" {
				if _, has := r.texts[c.base][c.lang]; has && !e.bindHas(b) {
					e.setBind(b, "") // resolved when written
				}
				continue
			}
			if c.lang == "" {
				if v, ok := r.cells[c.base]; ok {
					e.setBind(b, v)
				}
			}
			continue
		}
		v, ok := r.texts[c.base][c.lang]
		if !ok {
			continue
		}
		switch c.base {
		case "bind", "body", "control", "instance":
			if !w.declared(c.lang) {
				continue // a prefix no namespace declares: no client could read the attribute
			}
		}
		switch c.base {
		case "bind":
			e.setBind(c.lang, v)
		case "body", "control":
			e.setControl(c.lang, v)
		case "instance":
			e.inst = append(e.inst, xattr{c.lang, v})
		case "appearance", "autoplay", "rows", "intent":
			if c.lang == "" {
				e.setControl(c.base, v)
			}
		case "repeat_count", "count", "jr:count":
			if c.lang == "" && q.Kind == KRepeat {
				e.setControl("jr:count", v)
			}
		case "choice_filter":
			e.choiceFilter = v
		}
	}
	if q.Trigger != "" {
		for _, m := range refPattern.FindAllStringSubmatch(q.Trigger, -1) {
			e.triggers = append(e.triggers, m[2])
		}
	}
}

func (e *xe) bindHas(k string) bool {
	for _, a := range e.bind {
		if a.k == k {
			return true
		}
	}
	return false
}

// orderedParams parses a parameters cell keeping its order.
func orderedParams(s string) []xattr {
	var out []xattr
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		k, v, _ := strings.Cut(part, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if k != "label" && k != "value" && k != "seed" {
			v = strings.ToLower(v) // as pyxform reads them
		}
		out = append(out, xattr{k, v})
	}
	return out
}

func paramOf(ps []xattr, k string) (string, bool) {
	for _, p := range ps {
		if p.k == k {
			return p.v, true
		}
	}
	return "", false
}

// parameters turns the parameters column into attributes, per kind.
func (w *xw) parameters(e *xe, q *Question, r *record) {
	ps := orderedParams(r.cells["parameters"])
	e.params = ps
	get := func(k string) (string, bool) { return paramOf(ps, k) }
	switch q.Kind {
	case KText:
		if v, ok := get("rows"); ok {
			e.setControl("rows", v)
		}
	case KImage:
		if v, ok := get("max-pixels"); ok {
			e.setBind("orx:max-pixels", v)
		}
		if v, ok := get("app"); ok {
			if a := e.controlValue("appearance"); a == "" || a == "annotate" {
				e.setControl("intent", v)
			}
		}
	case KAudio:
		if v, ok := get("quality"); ok {
			e.setBind("odk:quality", v)
		}
	case KBackgroundAudio:
		a := xaction{name: "odk:recordaudio", event: "odk-instance-load"}
		if v, ok := get("quality"); ok {
			a.extra = append(a.extra, xattr{"odk:quality", v})
		}
		e.actions = append(e.actions, a)
	case KStartGeopoint:
		e.actions = append(e.actions, xaction{name: "odk:setgeopoint", event: "odk-instance-first-load"})
	case KGeopoint, KGeotrace, KGeoshape:
		if q.Kind == KGeopoint {
			if v, ok := get("capture-accuracy"); ok {
				e.setControl("accuracyThreshold", v)
			}
			if v, ok := get("warning-accuracy"); ok {
				e.setControl("unacceptableAccuracyThreshold", v)
			}
		} else if _, ok := get("incremental"); ok {
			e.setControl("incremental", "true")
		}
		if v, ok := get("allow-mock-accuracy"); ok {
			e.setBind("odk:allow-mock-accuracy", v)
		}
		if v, ok := get("reference-geometry"); ok {
			e.itemset = v
		}
	case KRange:
		w.rangeParams(e, ps)
	}
}

func (w *xw) rangeParams(e *xe, ps []xattr) {
	out := []xattr{{"start", "1"}, {"end", "10"}, {"step", "1"}}
	var tick, placeholder *xattr
	decimal := false
	for _, p := range ps {
		switch p.k {
		case "start", "end", "step":
			for i := range out {
				if out[i].k == p.k {
					out[i].v = p.v
				}
			}
		case "tick_interval":
			tick = &xattr{"odk:tick-interval", p.v}
		case "placeholder":
			placeholder = &xattr{"odk:placeholder", p.v}
		case "tick_labelset":
			e.itemset = p.v
		}
		if strings.Contains(p.v, ".") && p.k != "tick_labelset" {
			if f, err := strconv.ParseFloat(p.v, 64); err == nil && f != float64(int64(f)) {
				decimal = true
			}
		}
	}
	for _, p := range out {
		e.setControl(p.k, p.v)
	}
	if tick != nil {
		e.setControl(tick.k, tick.v)
	}
	if placeholder != nil {
		e.setControl(placeholder.k, placeholder.v)
	}
	if decimal {
		e.setBind("type", "decimal")
	}
}

// defaults sets the initial value: static in the instance, or computed
// by setvalue actions when the form loads (and each new repeat instance).
func (w *xw) defaults(e *xe, q *Question, r *record) {
	def := r.cells["default"]
	if q.Kind == KSelectOne || q.Kind == KSelectMultiple || q.Kind == KRank {
		e.isSelect = true
		e.listName = q.ListName
		e.itemset = q.ListName
		if q.ItemsetFile != "" {
			e.itemset = q.ItemsetFile
		}
		if q.External && e.choiceFilter != "" {
			e.query = q.ListName
			e.itemset = ""
		}
		if q.External && e.choiceFilter == "" {
			e.itemset = ""
		}
		e.itemsetRefs = strings.Contains(e.itemset, "${")
	}
	if q.Kind == KOSM {
		for _, c := range w.f.osmTags[q.ListName] {
			e.osm = append(e.osm, &option{name: c.Name, label: w.text(c.Label, "label", w.f.osmCols)})
		}
	}
	if def == "" {
		return
	}
	if q.Kind == KImage && !strings.Contains(def, "jr://images/") {
		def = "jr://images/" + def
	}
	e.dflt = def
	if defaultIsDynamic(def, q.Kind) {
		e.dynDefault = true
		e.actions = append(e.actions, xaction{name: "setvalue", event: "odk-instance-first-load"})
		if q.Repeat() != nil {
			e.actions = append(e.actions, xaction{name: "setvalue", event: "odk-new-repeat"})
		}
	}
}

func (w *xw) addOther(list string) {
	is := w.listBy[list]
	if is == nil {
		return
	}
	for _, o := range is.options {
		if o.name == "other" {
			return
		}
	}
	o := &option{name: "other", label: ptext{s: "Other"}}
	var langs []string
	for _, x := range is.options {
		for _, l := range x.label.langs {
			if !slices.Contains(langs, l) {
				langs = append(langs, l)
			}
		}
	}
	if len(langs) > 0 {
		o.label = ptext{langs: langs, by: map[string]string{}}
		for _, l := range langs {
			o.label.by[l] = "Other"
		}
	}
	is.options = append(is.options, o)
}

// tableList rewrites a group with appearance table-list as pyxform does:
// a field-list whose label is a note and whose first select is a row of
// labels.
func (w *xw) tableList(g *xe) []*xe {
	app := g.controlValue("appearance")
	words := strings.Fields(app)
	if !slices.Contains(words, "table-list") {
		return nil
	}
	s := "field-list"
	for _, x := range words {
		if x != "table-list" {
			s += " " + x
		}
	}
	g.setControl("appearance", s)
	var head []*xe
	if !g.label.empty() || !g.hint.empty() {
		n := &xe{name: fmt.Sprintf("generated_table_list_label_%d", g.q.Row), typ: "note", kind: KNote,
			label: g.label, hint: g.hint, tag: "input", hasBind: true, parent: g,
			bind: []xattr{{"readonly", "true()"}, {"type", "string"}}}
		g.label, g.hint = ptext{}, ptext{}
		head = append(head, n)
	}
	var list string
	for _, c := range g.children {
		if c.kind == KSelectOne || c.kind == KSelectMultiple {
			if list == "" {
				list = c.listName
				hdr := &xe{name: fmt.Sprintf("reserved_name_for_field_list_labels_%d", c.q.Row), typ: c.typ, kind: c.kind,
					tag: c.tag, hasBind: true, bind: []xattr{{"type", "string"}}, parent: g,
					control: []xattr{{"appearance", "label"}}, itemset: list, listName: list, label: ptext{s: " "}, isSelect: true}
				head = append(head, hdr)
			}
			c.setControl("appearance", "list-nolabel")
		}
	}
	g.children = append(head, g.children...)
	return []*xe{g}
}

// addMeta adds the meta group: the survey's entity, the audit,
// instanceID and instanceName.
func (w *xw) addMeta(entity *xe) {
	meta := &xe{name: "meta", typ: "group", bodyless: true, parent: w.root}
	if entity != nil {
		entity.parent = meta
		meta.children = append(meta.children, entity)
	}
	w.f.Walk(func(q *Question) {
		if q.Kind == KAudit {
			for _, e := range w.build(q) {
				e.parent = meta
				w.auditParams(e)
				meta.children = append(meta.children, e)
			}
		}
	})
	s := w.f.Settings
	if !yes(s["omit_instanceid"]) && !yes(s["omit_instanceID"]) {
		pre := s["instance_id"]
		if pre == "" {
			pre = "uid"
		}
		meta.children = append(meta.children, &xe{name: "instanceID", typ: "calculate", kind: KCalculate, parent: meta,
			hasBind: true, bind: []xattr{{"type", "string"}, {"readonly", "true()"}, {"jr:preload", pre}}})
	}
	if n := s["instance_name"]; n != "" {
		meta.children = append(meta.children, &xe{name: "instanceName", typ: "calculate", kind: KCalculate, parent: meta,
			hasBind: true, bind: []xattr{{"type", "string"}, {"calculate", n}}})
	}
	if len(meta.children) > 0 {
		w.root.children = append(w.root.children, meta)
	}
}

func (w *xw) auditParams(e *xe) {
	for _, k := range []string{"track-changes", "track-changes-reasons", "identify-user"} {
		if v, ok := paramOf(e.params, k); ok {
			e.setBind("odk:"+k, v)
		}
	}
	if _, ok := paramOf(e.params, "location-priority"); ok {
		for _, k := range []string{"location-max-age", "location-min-interval", "location-priority"} {
			v, _ := paramOf(e.params, k)
			e.setBind("odk:"+k, v)
		}
	}
}

// addEntities makes each entity declaration's <entity> element in a meta
// block of its container; the survey's is returned for the survey's meta.
func (w *xw) addEntities() (rootEntity *xe) {
	for _, ent := range w.f.Entities {
		e := w.entity(ent)
		var box *xe
		if ent.container != nil && ent.container.Parent != nil {
			w.walk(w.root, func(x *xe) {
				if x.q == ent.container && (x.typ == "group" || x.typ == "repeat") {
					box = x
				}
			})
		}
		if box == nil {
			rootEntity = e
			continue
		}
		if nearestRepeat(&xe{parent: box}) != nil || box.typ == "repeat" {
			for _, c := range e.children {
				if c.name == "id" && len(c.actions) == 1 {
					c.actions = append(c.actions, xaction{name: "setvalue", event: "odk-new-repeat", value: c.actions[0].value})
				}
			}
		}
		meta := &xe{name: "meta", typ: "group", bodyless: true, parent: box}
		e.parent = meta
		meta.children = []*xe{e}
		box.children = append(box.children, meta)
	}
	return rootEntity
}

func (w *xw) entity(ent Entity) *xe {
	e := &xe{name: "entity", typ: "entity"}
	attr := func(name, value string, bind ...xattr) *xe {
		a := &xe{name: name, typ: "attribute", attr: true, value: value, parent: e, bind: bind, hasBind: len(bind) > 0}
		e.children = append(e.children, a)
		return a
	}
	calc := func(x string) []xattr { return []xattr{{"calculate", x}, {"readonly", "true()"}, {"type", "string"}} }
	attr("dataset", ent.List)
	id := &xe{name: "id", typ: "attribute", attr: true, hasBind: true, bind: []xattr{{"readonly", "true()"}, {"type", "string"}}}
	if ent.EntityID == "" || ent.CreateIf != "" {
		if ent.CreateIf != "" {
			attr("create", "1", calc(ent.CreateIf)...)
		} else {
			attr("create", "1")
		}
		if ent.EntityID == "" {
			id.actions = append(id.actions, xaction{name: "setvalue", event: "odk-instance-first-load", value: "uuid()"})
		}
	}
	if ent.EntityID != "" {
		if ent.UpdateIf != "" {
			attr("update", "1", calc(ent.UpdateIf)...)
		} else {
			attr("update", "1")
		}
		id.bind = append(id.bind, xattr{"calculate", ent.EntityID})
		expr := "instance('" + ent.List + "')/root/item[name=" + ent.EntityID + "]"
		attr("baseVersion", "", calc(expr+"/__version")...)
		attr("trunkVersion", "", calc(expr+"/__trunkVersion")...)
		attr("branchId", "", calc(expr+"/__branchId")...)
	}
	id.parent = e
	e.children = append(e.children, id)
	if ent.Label != "" {
		e.children = append(e.children, &xe{name: "label", typ: "label", parent: e, hasBind: true, bind: calc(ent.Label)})
	}
	return e
}

// flatten applies the old "flat" setting (ODK Tables): groups leave no
// node of their own, and their relevance joins their questions'.
func (w *xw) flatten(es []*xe, parentRel string) {
	for _, e := range es {
		own := ""
		for _, a := range e.bind {
			if a.k == "relevant" {
				own = a.v
			}
		}
		rel := own
		if parentRel != "" {
			rel = parentRel
			if own != "" {
				rel += " and (" + own + ")"
			}
		}
		if len(e.children) > 0 {
			e.flat = true
			w.flatten(e.children, rel)
		} else if rel != "" {
			e.setBind("relevant", rel)
		}
	}
}

// declared reports whether an attribute name's prefix (if any) is one the
// XForm declares: its own namespaces and the settings' namespaces.
func (w *xw) declared(name string) bool {
	prefix, _, ok := strings.Cut(name, ":")
	if !ok {
		return validName(name)
	}
	switch prefix {
	case "jr", "odk", "orx", "h", "ev", "xsd", "entities":
		return true
	}
	for _, ns := range strings.Fields(w.f.Settings["namespaces"]) {
		if k, _, ok := strings.Cut(ns, "="); ok && k == prefix {
			return true
		}
	}
	return false
}

// ClientEditable is an XForm as served to OpenRosa clients: with
// odk:client-editable="true" on its <submission> (added when the form has
// none), so Collect lets enumerators edit forms already sent; the edits
// merge answer by answer. The same XForm always gives the same bytes.
func ClientEditable(x []byte) []byte {
	s := string(x)
	if strings.Contains(s, "odk:client-editable") {
		return x
	}
	i := strings.Index(s, "<model ")
	if i < 0 {
		return x
	}
	j := strings.Index(s[i:], ">")
	if j < 0 {
		return x
	}
	at := i + j + 1
	line := "\n      <submission odk:client-editable=\"true\"/>"
	if k := strings.Index(s[at:], "<submission "); k >= 0 && strings.TrimSpace(s[at:at+k]) == "" {
		// A <submission> of the form's own (action, key, auto-send): mark it.
		return []byte(s[:at+k] + "<submission odk:client-editable=\"true\" " + s[at+k+len("<submission "):])
	}
	return []byte(s[:at] + line + s[at:])
}
