package forms

import (
	"encoding/xml"
	"fmt"
	"html"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// rows writes the survey rows of a section of the primary instance.
func (r *xreader) rows(n *xn, path string) {
	seen := map[string]bool{}
	for _, k := range n.kids {
		p := path + "/" + k.local
		if seen[k.local] {
			continue // a repeat's instance after its template
		}
		seen[k.local] = true
		if k.local == "meta" && (path == "/"+r.rootName || k.child("entity") != nil) {
			r.meta(k, p)
			continue
		}
		if r.generatedCount(p) {
			continue
		}
		ctl := r.controls[p]
		if len(k.kids) > 0 || (ctl != nil && (ctl.local == "group" || ctl.local == "repeat")) {
			r.section(k, p, ctl)
			continue
		}
		r.leaf(k, p, ctl)
	}
}

// generatedCount: the "<repeat>_count" calculate pyxform makes for a
// repeat_count expression is not a row of its own.
func (r *xreader) generatedCount(p string) bool {
	rep, ok := strings.CutSuffix(p, "_count")
	if !ok {
		return false
	}
	c := r.controls[rep]
	return c != nil && c.local == "repeat" && resolvePath(c.attrNS(nsJR, "count"), rep) == p
}

func (r *xreader) add(row map[string]string) {
	r.survey = append(r.survey, row)
}

func (r *xreader) section(k *xn, p string, ctl *xn) {
	kind := "group"
	if k.attrNS(nsJR, "template") != "" || (ctl != nil && ctl.local == "repeat") {
		kind = "repeat"
	}
	row := map[string]string{"type": "begin_" + kind, "name": k.local}
	labelled := ctl
	if kind == "repeat" {
		labelled = r.labels[p]
	}
	if labelled != nil {
		r.labelCells(row, labelled, p)
	}
	if ctl != nil {
		for _, a := range ctl.attrs {
			switch name := attrName(a); name {
			case "ref", "nodeset":
			case "appearance", "intent":
				row[name] = a.Value
			case "jr:count":
				count := resolvePath(a.Value, p)
				if calc := r.binds[count]; calc != nil && r.generatedCount(count) {
					row["repeat_count"] = r.expr(calc.attr("calculate"), count)
				} else {
					row["repeat_count"] = r.expr(a.Value, p)
				}
			default:
				row["body::"+name] = a.Value
			}
		}
	}
	r.bindCells(row, p, "")
	r.instanceCells(row, k, p)
	r.add(row)
	r.rows(k, p)
	r.add(map[string]string{"type": "end_" + kind})
}

func attrName(a xml.Attr) string {
	if p, ok := nsPrefix[a.Name.Space]; ok {
		return p + ":" + a.Name.Local
	}
	return a.Name.Local
}

// leaf writes one question.
func (r *xreader) leaf(k *xn, p string, ctl *xn) {
	row := map[string]string{"name": k.local}
	b := r.binds[p]
	btype := ""
	if b != nil {
		btype = b.attr("type")
	}
	typ := r.leafType(row, p, ctl, b, btype)
	row["type"] = typ
	if ctl != nil {
		r.labelCells(row, ctl, p)
		r.controlCells(row, ctl, p, typ)
	}
	r.bindCells(row, p, typ)
	r.instanceCells(row, k, p)
	if d := strings.TrimSpace(k.text.String()); d != "" {
		row["default"] = strings.TrimPrefix(d, "jr://images/")
	}
	if sv := r.setvals[p]; sv != nil && sv.attr("value") != "" {
		row["default"] = r.expr(sv.attr("value"), p)
	}
	if ts := r.triggers[p]; len(ts) > 0 {
		var refs []string
		for _, t := range ts {
			refs = append(refs, "${"+r.names[t[0]]+"}")
		}
		row["trigger"] = strings.Join(refs, ", ")
		if ts[0][1] != "" {
			row["calculation"] = r.expr(ts[0][1], ts[0][0])
		}
	}
	r.add(row)
}

var preloadTypes = map[string]string{
	"start": "start", "end": "end", "today": "today", "deviceid": "deviceid", "username": "username",
	"phonenumber": "phonenumber", "simserial": "simserial", "subscriberid": "subscriberid", "email": "email",
}

func (r *xreader) leafType(row map[string]string, p string, ctl, b *xn, btype string) string {
	if ctl == nil {
		if r.geoTriggered[p] {
			return "background-geopoint"
		}
		_, triggered := r.triggers[p]
		if triggered || (b != nil && b.attr("calculate") != "") {
			switch btype { // a typed calculation: no body, its bind's type
			case "int":
				return "integer"
			case "decimal", "date", "time", "dateTime", "geopoint", "geotrace", "geoshape":
				return btype
			}
		}
		if triggered {
			return "calculate"
		}
		if b != nil {
			if pre := b.attrNS(nsJR, "preloadParams"); pre != "" {
				if t, ok := preloadTypes[pre]; ok {
					return t
				}
				if strings.HasPrefix(pre, "uri:") {
					return pre
				}
			}
			if b.attr("calculate") != "" {
				return "calculate"
			}
		}
		for _, a := range r.model.kids {
			if resolvePath(a.attr("ref"), "/") == p {
				switch a.local {
				case "setgeopoint":
					return "start-geopoint"
				case "recordaudio":
					if q := a.attrNS(nsODK, "quality"); q != "" {
						row["parameters"] = "quality=" + q
					}
					return "background-audio"
				}
			}
		}
		if _, ok := r.setvals[p]; ok && btype == "string" {
			return "calculate"
		}
		return "hidden"
	}
	switch ctl.local {
	case "select1", "select", "rank":
		return r.selectType(row, ctl, p)
	case "upload":
		switch mt := ctl.attr("mediatype"); {
		case strings.HasPrefix(mt, "image"):
			return "image"
		case strings.HasPrefix(mt, "audio"):
			return "audio"
		case strings.HasPrefix(mt, "video"):
			return "video"
		case strings.HasPrefix(mt, "osm"):
			if tags := ctl.children("tag"); len(tags) > 0 {
				list := r.uniqueList(row["name"] + "_tags")
				for _, t := range tags {
					tag := []string{list, t.attr("key"), ""}
					if l := t.child("label"); l != nil {
						tag[2] = strings.TrimSpace(r.partsText(l, p))
					}
					r.osmRows = append(r.osmRows, tag)
				}
				return "osm " + list
			}
			return "osm"
		}
		return "file"
	case "trigger":
		if btype == "geopoint" {
			return "background-geopoint"
		}
		return "acknowledge"
	case "range":
		return "range"
	}
	if q := ctl.attr("query"); q != "" {
		list, filter := splitItemset(q)
		row["choice_filter"] = r.expr(filter, p)
		return "select_one_external " + list
	}
	switch btype {
	case "int":
		return "integer"
	case "decimal", "date", "time", "dateTime", "geopoint", "geotrace", "geoshape", "barcode":
		return btype
	}
	if b != nil && isNoteBind(b) {
		return "note"
	}
	return "text"
}

var reItemset = regexp.MustCompile(`^instance\(\s*['"]([^'"]+)['"]\s*\)/root/item(?:\[(.*)\])?$`)

func splitItemset(s string) (list, filter string) {
	if m := reItemset.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
		return m[1], m[2]
	}
	return "", ""
}

var reDotPath = regexp.MustCompile(`\./[\p{L}_][\p{L}\p{N}_.\-]*`)

var reRandomize = regexp.MustCompile(`^randomize\((.*?)(?:,\s*([^,()]+))?\)$`)

// selectType reads a select's choices: a list (secondary instance), a
// file, another question's answers, or items written in the body.
func (r *xreader) selectType(row map[string]string, ctl *xn, p string) string {
	cmd := map[string]string{"select1": "select_one", "select": "select_multiple", "rank": "rank"}[ctl.local]
	is := ctl.child("itemset")
	if is == nil {
		list := r.uniqueList(row["name"])
		for _, it := range ctl.children("item") {
			c := map[string]string{"list_name": list}
			if v := it.child("value"); v != nil {
				c["name"] = strings.TrimSpace(v.text.String())
			}
			if l := it.child("label"); l != nil {
				r.textCells(c, "label", l, p)
			}
			r.addListRow(c)
		}
		if ctl.local == "select1" {
			if app := ctl.attr("appearance"); strings.Contains(app, "search(") {
				return cmd + " " + list
			}
		}
		return cmd + " " + list
	}
	ns := is.attr("nodeset")
	var params []string
	if m := reRandomize.FindStringSubmatch(ns); m != nil {
		ns = m[1]
		params = append(params, "randomize=true")
		if m[2] != "" {
			params = append(params, "seed="+r.expr(m[2], p))
		}
	}
	value, label := "name", "label"
	if v := is.child("value"); v != nil {
		value = v.attr("ref")
	}
	if l := is.child("label"); l != nil {
		label = l.attr("ref")
	}
	list, filter := splitItemset(ns)
	if list == "" { // another question's answers: /data/rep[./q != '']
		base, pred, _ := strings.Cut(ns, "[")
		base = resolvePath(strings.TrimSpace(base), p)
		q := r.names[base+"/"+value]
		if q == "" {
			q = value
		}
		pred = strings.TrimSuffix(strings.TrimSpace(pred), "]")
		if pred != "" && strings.Join(strings.Fields(pred), " ") != "./"+value+" != ''" {
			// ./x names a question of the repeat listed.
			pred = reDotPath.ReplaceAllStringFunc(pred, func(m string) string {
				name := strings.TrimPrefix(strings.TrimSpace(m), "./")
				if n, ok := r.names[base+"/"+name]; ok {
					return strings.Replace(m, "./"+name, "${"+n+"}", 1)
				}
				return m
			})
			row["choice_filter"] = r.expr(pred, p)
		}
		return cmd + " ${" + q + "}"
	}
	if filter != "" {
		row["choice_filter"] = r.expr(filter, p)
	}
	if src := r.instanceSrc(list); src != "" {
		ext := filepath.Ext(src)
		if ext == ".geojson" {
			if value != "id" {
				params = append(params, "value="+value)
			}
			if label != "title" {
				params = append(params, "label="+label)
			}
		} else {
			if value != "name" {
				params = append(params, "value="+value)
			}
			if label != "label" {
				params = append(params, "label="+label)
			}
		}
		if len(params) > 0 {
			row["parameters"] = strings.Join(params, " ")
		}
		return cmd + "_from_file " + list + ext
	}
	if len(params) > 0 {
		row["parameters"] = strings.Join(params, " ")
	}
	return cmd + " " + list
}

func (r *xreader) instanceSrc(id string) string {
	for _, inst := range r.model.children("instance") {
		if inst.attr("id") == id {
			return inst.attr("src")
		}
	}
	return ""
}

func (r *xreader) uniqueList(name string) string {
	list := name
	for i := 2; r.lists[list]; i++ {
		list = fmt.Sprintf("%s_%d", name, i)
	}
	r.lists[list] = true
	return list
}

// labelCells reads a control's label and hint (inline, or translations by
// an itext reference).
func (r *xreader) labelCells(row map[string]string, ctl *xn, p string) {
	if l := ctl.child("label"); l != nil {
		r.textCells(row, "label", l, p)
		if id, ok := itextID(l.attr("ref")); ok {
			for _, m := range []string{"image", "audio", "video", "big-image"} {
				r.itextCells(row, m, id, m)
			}
		}
	}
	if h := ctl.child("hint"); h != nil {
		r.textCells(row, "hint", h, p)
		if id, ok := itextID(h.attr("ref")); ok {
			r.itextCellsAt(row, "guidance_hint", id, "guidance", p)
		}
	}
}

var reItextRef = regexp.MustCompile(`^jr:itext\(\s*'([^']+)'\s*\)$`)

func itextID(ref string) (string, bool) {
	m := reItextRef.FindStringSubmatch(strings.TrimSpace(ref))
	if m == nil {
		return "", false
	}
	return m[1], true
}

func (r *xreader) textCells(row map[string]string, base string, n *xn, p string) {
	if id, ok := itextID(n.attr("ref")); ok {
		r.itextCellsAt(row, base, id, "long", p)
		return
	}
	if s := r.partsText(n, p); strings.TrimSpace(s) != "" {
		row[base] = strings.TrimSpace(s)
	}
}

// partsText is an element's text with each <output value=...> as the
// ${name} it shows.
func (r *xreader) partsText(n *xn, ctx string) string {
	var b strings.Builder
	for _, part := range n.parts {
		if part.output != "" {
			b.WriteString(r.outputRef(part.output, ctx))
		} else {
			b.WriteString(part.text)
		}
	}
	s := b.String()
	if len(n.parts) > 1 { // pyxform pads mixed content with a space each side
		s = strings.TrimPrefix(strings.TrimSuffix(s, " "), " ")
	}
	return s
}

func (r *xreader) outputRef(v, ctx string) string {
	if strings.HasPrefix(strings.TrimSpace(v), "instance(") {
		// An instance() expression in a label, which ODK shows: pyxform
		// writes it escaped once more than XML needs.
		return r.expr(html.UnescapeString(v), ctx)
	}
	e := strings.TrimSpace(r.expr(v, ctx))
	if strings.HasPrefix(e, "${") && strings.HasSuffix(e, "}") && !strings.Contains(e[2:], "${") {
		return e
	}
	return "<output value=\"" + v + "\"/>" // an expression ODK shows: kept as written
}

// labelRefs turns the <output/> markup left in itext text into ${}.
var reOutputMarkup = regexp.MustCompile(`<output value="([^"]*)"\s*/>`)

func (r *xreader) labelRefs(s, ctx string) string {
	return reOutputMarkup.ReplaceAllStringFunc(s, func(m string) string {
		return r.outputRef(reOutputMarkup.FindStringSubmatch(m)[1], ctx)
	})
}

var controlParams = map[string]string{
	"rows": "rows", "accuracyThreshold": "capture-accuracy", "unacceptableAccuracyThreshold": "warning-accuracy",
	"start": "start", "end": "end", "step": "step", "odk:tick-interval": "tick_interval", "odk:placeholder": "placeholder",
}

func (r *xreader) controlCells(row map[string]string, ctl *xn, p, typ string) {
	var params []string
	if s := row["parameters"]; s != "" {
		params = append(params, s)
	}
	for _, a := range ctl.attrs {
		name := attrName(a)
		if pn, ok := controlParams[name]; ok {
			params = append(params, pn+"="+a.Value)
			continue
		}
		switch name {
		case "ref", "mediatype", "query":
		case "appearance", "autoplay":
			row[name] = a.Value
		case "incremental":
			params = append(params, "incremental=true")
		case "intent":
			if typ == "image" {
				params = append(params, "app="+a.Value)
			} else {
				row["body::intent"] = a.Value
			}
		default:
			row["body::"+name] = a.Value
		}
	}
	if typ == "range" {
		if is := ctl.child("itemset"); is != nil {
			if list, _ := splitItemset(is.attr("nodeset")); list != "" {
				params = append(params, "tick_labelset="+list)
			}
		}
	}
	if is := ctl.child("itemset"); is != nil && strings.HasPrefix(typ, "geo") {
		if list, filter := splitItemset(is.attr("nodeset")); list != "" {
			params = append(params, "reference-geometry="+list)
			if filter != "" {
				row["choice_filter"] = r.expr(filter, p)
			}
		} else {
			base, _, _ := strings.Cut(is.attr("nodeset"), "[")
			params = append(params, "reference-geometry="+r.expr(base, p))
		}
	}
	if len(params) > 0 {
		row["parameters"] = strings.Join(params, " ")
	}
}

var bindParams = map[string]string{
	"orx:max-pixels": "max-pixels", "odk:quality": "quality", "odk:allow-mock-accuracy": "allow-mock-accuracy",
	"odk:track-changes": "track-changes", "odk:track-changes-reasons": "track-changes-reasons", "odk:identify-user": "identify-user",
	"odk:location-priority": "location-priority", "odk:location-min-interval": "location-min-interval", "odk:location-max-age": "location-max-age",
}

var bindExprs = map[string]string{"relevant": "relevant", "required": "required", "constraint": "constraint", "calculate": "calculation", "readonly": "read_only"}

func (r *xreader) bindCells(row map[string]string, p, typ string) {
	b := r.binds[p]
	if b == nil {
		return
	}
	var params []string
	if s := row["parameters"]; s != "" {
		params = append(params, s)
	}
	for _, a := range b.attrs {
		name := attrName(a)
		if col, ok := bindExprs[name]; ok {
			v := a.Value
			switch {
			case name == "readonly" && typ == "note" && v == "true()":
				continue
			case (name == "required" || name == "readonly") && v == "true()":
				v = "yes"
			case (name == "required" || name == "readonly") && v == "false()":
				continue
			case name == "calculate" && row["trigger"] != "":
				continue
			default:
				v = r.expr(v, p)
			}
			row[col] = v
			continue
		}
		if pn, ok := bindParams[name]; ok {
			params = append(params, pn+"="+a.Value)
			continue
		}
		switch name {
		case "nodeset", "type", "jr:preload", "jr:preloadParams":
		case "jr:constraintMsg", "jr:requiredMsg", "jr:noAppErrorString":
			col := map[string]string{"jr:constraintMsg": "constraint_message", "jr:requiredMsg": "required_message", "jr:noAppErrorString": "no_app_error_string"}[name]
			if id, ok := itextID(a.Value); ok {
				r.itextCellsAt(row, col, id, "long", p)
			} else {
				row[col] = a.Value
			}
		case "entities:saveto":
			row["save_to"] = a.Value
			r.saves = append(r.saves, savedAt{row, p})
		default:
			row["bind::"+name] = a.Value
		}
	}
	if len(params) > 0 {
		row["parameters"] = strings.Join(params, " ")
	}
}

func (r *xreader) instanceCells(row map[string]string, k *xn, p string) {
	for _, a := range k.attrs {
		name := attrName(a)
		if name == "jr:template" || a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
			continue
		}
		row["instance::"+name] = a.Value
	}
}

// meta reads the meta block: the instance name and the audit become the
// settings and rows that make them.
func (r *xreader) meta(k *xn, p string) {
	for _, m := range k.kids {
		mp := p + "/" + m.local
		switch m.local {
		case "instanceName":
			if b := r.binds[mp]; b != nil {
				r.instanceName = r.expr(b.attr("calculate"), mp)
			}
		case "audit":
			row := map[string]string{"type": "audit", "name": "audit"}
			r.bindCells(row, mp, "audit")
			r.add(row)
		case "entity":
			r.entity(m, mp)
		}
	}
}

// entity reads an entity declaration back into its row of the entities
// sheet: the attributes pyxform sets to "1" and the binds that compute
// them, as it writes them for each combination of entity_id, create_if
// and update_if.
func (r *xreader) entity(m *xn, mp string) {
	calc := func(sub string) (string, bool) {
		b := r.binds[mp+"/"+sub]
		if b == nil || b.attr("calculate") == "" {
			return "", false
		}
		return r.expr(b.attr("calculate"), mp+"/"+sub), true
	}
	row := map[string]string{"list_name": m.attr("dataset")}
	row["label"], _ = calc("label")
	row["entity_id"], _ = calc("@id")
	if v, ok := calc("@create"); ok {
		row["create_if"] = v
	}
	if v, ok := calc("@update"); ok {
		row["update_if"] = v
	}
	row["@container"] = strings.TrimSuffix(mp, "/meta/entity")
	r.entities = append(r.entities, row)
}

// savedAt is a survey row with a save_to, and its node's path.
type savedAt struct {
	row  map[string]string
	path string
}

// prefixSaves names the entity of each save_to when a form declares
// several, as the entities sheet must: the XForm names only the property,
// and the entity is the one whose meta block is nearest the question.
func (r *xreader) prefixSaves() {
	if len(r.entities) < 2 {
		return
	}
	for _, sv := range r.saves {
		best := -1
		for i, e := range r.entities {
			c := e["@container"]
			if strings.HasPrefix(sv.path, c+"/") && (best < 0 || len(c) > len(r.entities[best]["@container"])) {
				best = i
			}
		}
		if best >= 0 && !strings.Contains(sv.row["save_to"], "#") {
			sv.row["save_to"] = r.entities[best]["list_name"] + "#" + sv.row["save_to"]
		}
	}
}

// exprPath finds the node paths in an expression: absolute (/data/q),
// relative (../q, current()/../q) or of the last saved instance.
var exprPath = regexp.MustCompile(`(?:instance\('__last-saved'\))?(?:current\(\)/)?(?:(?:\.\./)*\.\.(?:/[\p{L}_][\p{L}\p{N}_.\-]*)+|(?:/[\p{L}_][\p{L}\p{N}_.\-]*)+)`)

// expr turns the paths of an XPath expression back into ${name}
// references (those naming a question of the form), undoing the space
// pyxform puts either side where the text around shows it is padding.
func (r *xreader) expr(s, ctx string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	last := 0
	for _, m := range exprPath.FindAllStringIndex(s, -1) {
		ref, ok := r.pathRef(s[m[0]:m[1]], ctx)
		if !ok {
			continue
		}
		start, end := m[0], m[1]
		if start > 0 && s[start-1] == ' ' && end < len(s) && s[end] == ' ' &&
			padBoundary(s, start-2, true) && padBoundary(s, end+1, false) {
			start, end = start-1, end+1
		}
		if start < last {
			start = last
		}
		b.WriteString(s[last:start])
		b.WriteString(ref)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

// padBoundary: the character at i (before the padding when before) lets
// the padding go without joining tokens: a space, a bracket, a comma, or
// the end of the text.
func padBoundary(s string, i int, before bool) bool {
	if i < 0 || i >= len(s) {
		return true
	}
	switch c := s[i]; {
	case c == ' ', c == ',':
		return true
	case before && (c == '(' || c == '['):
		return true
	case !before && (c == ')' || c == ']'):
		return true
	}
	return false
}

func (r *xreader) pathRef(core, ctx string) (string, bool) {
	last := strings.HasPrefix(core, "instance('__last-saved')")
	core = strings.TrimPrefix(core, "instance('__last-saved')")
	core = strings.TrimPrefix(core, "current()/")
	path := core
	if !strings.HasPrefix(core, "/") {
		path = resolvePath(core, ctx)
	}
	name, ok := r.names[path]
	if !ok || !strings.HasPrefix(path, "/"+r.rootName+"/") {
		return "", false
	}
	if last {
		return "${last-saved#" + name + "}", true
	}
	return "${" + name + "}", true
}

// workbook lays the rows out as sheets.
func (r *xreader) workbook(head, primary *xn) *Workbook {
	first := []string{"type", "name", "label"}
	later := []string{"hint", "guidance_hint", "required", "required_message", "relevant", "constraint", "constraint_message",
		"calculation", "trigger", "read_only", "default", "appearance", "choice_filter", "repeat_count", "parameters", "save_to"}
	cols := append([]string{}, first...)
	seen := map[string]bool{}
	for _, c := range cols {
		seen[c] = true
	}
	var rest []string
	for _, row := range r.survey {
		for k := range row {
			if !seen[k] {
				seen[k] = true
				rest = append(rest, k)
			}
		}
	}
	rank := func(c string) (int, string) {
		base, lang, _ := strings.Cut(c, "::")
		if i := slices.Index(first, base); i >= 0 {
			return i, lang
		}
		if i := slices.Index(later, base); i >= 0 {
			return 10 + i, lang
		}
		return 100, c
	}
	langAt := func(l string) int { // the XForm's order of languages
		if i := slices.Index(r.langs, l); i >= 0 {
			return i
		}
		return len(r.langs)
	}
	sort.SliceStable(rest, func(i, j int) bool {
		a, al := rank(rest[i])
		b, bl := rank(rest[j])
		if a != b {
			return a < b
		}
		if langAt(al) != langAt(bl) {
			return langAt(al) < langAt(bl)
		}
		return al < bl
	})
	cols = append(cols, rest...)
	survey := Sheet{Name: "survey", Rows: [][]string{cols}}
	for _, row := range r.survey {
		line := make([]string, len(cols))
		for i, c := range cols {
			line[i] = row[c]
		}
		survey.Rows = append(survey.Rows, line)
	}
	wb := &Workbook{Sheets: []Sheet{survey}}
	if len(r.listRows) > 0 {
		ch := Sheet{Name: "choices", Rows: [][]string{r.listCols}}
		for _, l := range r.listRows {
			for len(l) < len(r.listCols) {
				l = append(l, "")
			}
			ch.Rows = append(ch.Rows, l)
		}
		wb.Sheets = append(wb.Sheets, ch)
	}
	if len(r.entities) > 0 {
		cols := []string{"list_name", "label", "entity_id", "create_if", "update_if"}
		sh := Sheet{Name: "entities", Rows: [][]string{cols}}
		for _, e := range r.entities {
			line := make([]string, len(cols))
			for i, c := range cols {
				line[i] = e[c]
			}
			sh.Rows = append(sh.Rows, line)
		}
		wb.Sheets = append(wb.Sheets, sh)
	}
	if len(r.osmRows) > 0 {
		wb.Sheets = append(wb.Sheets, Sheet{Name: "osm", Rows: append([][]string{{"list_name", "name", "label"}}, r.osmRows...)})
	}
	settings := map[string]string{}
	if t := head.child("title"); t != nil {
		settings["form_title"] = strings.TrimSpace(t.text.String())
	}
	settings["form_id"] = primary.attr("id")
	settings["version"] = primary.attr("version")
	if r.rootName != "data" {
		settings["name"] = r.rootName
	}
	settings["default_language"] = r.defLang
	settings["instance_name"] = r.instanceName
	if body := r.root.child("body"); body != nil {
		settings["style"] = body.attr("class")
	}
	if sub := r.model.child("submission"); sub != nil {
		settings["submission_url"] = sub.attr("action")
		settings["public_key"] = sub.attr("base64RsaPublicKey")
		settings["auto_send"] = sub.attrNS(nsORX, "auto-send")
		settings["auto_delete"] = sub.attrNS(nsORX, "auto-delete")
	}
	var hdr, vals []string
	for _, k := range sortedKeys(settings) {
		if settings[k] != "" {
			hdr, vals = append(hdr, k), append(vals, settings[k])
		}
	}
	wb.Sheets = append(wb.Sheets, Sheet{Name: "settings", Rows: [][]string{hdr, vals}})
	return wb
}

// externals writes the external data files (csv-external, xml-external)
// no select or pulldata() accounts for.
func (r *xreader) externals() {
	used := map[string]bool{}
	for _, row := range r.survey {
		if f, ok := strings.CutPrefix(row["type"], "select_one_from_file "); ok {
			used[strings.TrimSuffix(f, filepath.Ext(f))] = true
		}
		if f, ok := strings.CutPrefix(row["type"], "select_multiple_from_file "); ok {
			used[strings.TrimSuffix(f, filepath.Ext(f))] = true
		}
		for _, v := range row {
			for _, m := range rePulldata.FindAllStringSubmatch(v, -1) {
				used[strings.Trim(strings.TrimSpace(m[2]), `'"`)] = true
			}
		}
	}
	for _, inst := range r.model.children("instance") {
		id, src := inst.attr("id"), inst.attr("src")
		if id == "" || src == "" || used[id] || id == "__last-saved" {
			continue
		}
		switch {
		case src == "jr://file-csv/"+id+".csv":
			r.add(map[string]string{"type": "csv-external", "name": id})
		case src == "jr://file/"+id+".xml":
			r.add(map[string]string{"type": "xml-external", "name": id})
		}
	}
}

// isNoteBind: pyxform writes a note's bind readonly first (its type
// dictionary's order), a read-only text's after its type.
func isNoteBind(b *xn) bool {
	var names []string
	for _, a := range b.attrs {
		if n := attrName(a); n != "nodeset" {
			names = append(names, n)
		}
	}
	return len(names) >= 2 && names[0] == "readonly" && names[1] == "type" && b.attr("readonly") == "true()"
}

// orOther folds pyxform's expansion of "select_one LIST or_other" back:
// the "NAME_other" text question after the select, and the "other" choice
// it added to the list.
func (r *xreader) orOther() {
	var out []map[string]string
	lists := map[string]bool{}
	for i := 0; i < len(r.survey); i++ {
		row := r.survey[i]
		out = append(out, row)
		cmd, list, ok := strings.Cut(row["type"], " ")
		if !ok || (cmd != "select_one" && cmd != "select_multiple") || strings.Contains(list, " ") || i+1 == len(r.survey) {
			continue
		}
		next := r.survey[i+1]
		if next["type"] == "text" && next["name"] == row["name"]+"_other" && next["label"] == "Specify other." &&
			strings.Join(strings.Fields(next["relevant"]), "") == "selected(${"+row["name"]+"},'other')" {
			row["type"] += " or_other"
			lists[list] = true
			i++
		}
	}
	r.survey = out
	if len(lists) == 0 {
		return
	}
	li, ni := slices.Index(r.listCols, "list_name"), slices.Index(r.listCols, "name")
	var rows [][]string
	for _, l := range r.listRows {
		if li >= 0 && ni >= 0 && lists[l[li]] && l[ni] == "other" {
			continue
		}
		rows = append(rows, l)
	}
	r.listRows = rows
}

// tableLists folds pyxform's expansion of a table-list group back: the
// note holding the group's label, the row of choice labels, and the
// list-nolabel appearance of its selects.
func (r *xreader) tableLists() {
	var out []map[string]string
	var inTable []bool
	for i := 0; i < len(r.survey); i++ {
		row := r.survey[i]
		if strings.HasPrefix(row["name"], "reserved_name_for_field_list_labels_") {
			continue // pyxform's row of choice labels: made again from table-list
		}
		switch {
		case strings.HasPrefix(row["type"], "begin_"):
			table := false
			app := strings.Fields(row["appearance"])
			if row["type"] == "begin_group" && len(app) > 0 && app[0] == "field-list" && i+1 < len(r.survey) {
				next := r.survey[i+1]
				if strings.HasPrefix(next["name"], "generated_table_list_label_") && next["type"] == "note" {
					for k, v := range next {
						if k == "label" || k == "hint" || strings.HasPrefix(k, "label::") || strings.HasPrefix(k, "hint::") {
							row[k] = v
						}
					}
					i++
					table = true
				} else if strings.HasPrefix(next["name"], "reserved_name_for_field_list_labels_") {
					table = true
				}
				if table {
					row["appearance"] = strings.Join(append([]string{"table-list"}, app[1:]...), " ")
				}
			}
			inTable = append(inTable, table)
		case strings.HasPrefix(row["type"], "end_") && len(inTable) > 0:
			inTable = inTable[:len(inTable)-1]
		case len(inTable) > 0 && inTable[len(inTable)-1]:
			if strings.HasPrefix(row["name"], "reserved_name_for_field_list_labels_") {
				continue
			}
			if row["appearance"] == "list-nolabel" {
				delete(row, "appearance")
			}
		}
		out = append(out, row)
	}
	r.survey = out
}
