package forms

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

var nsmap = []xattr{
	{"xmlns", "http://www.w3.org/2002/xforms"},
	{"xmlns:h", "http://www.w3.org/1999/xhtml"},
	{"xmlns:ev", "http://www.w3.org/2001/xml-events"},
	{"xmlns:xsd", "http://www.w3.org/2001/XMLSchema"},
	{"xmlns:jr", "http://openrosa.org/javarosa"},
	{"xmlns:orx", "http://openrosa.org/xforms"},
	{"xmlns:odk", "http://www.opendatakit.org/xforms"},
}

func (w *xw) document() *xnode {
	w.collectTriggers()
	w.markSearch()
	html := el("h:html")
	for _, a := range nsmap {
		html.set(a.k, a.v)
	}
	for _, ns := range strings.Fields(w.f.Settings["namespaces"]) {
		k, v, ok := strings.Cut(ns, "=")
		if !ok || k == "" || len(strings.Split(ns, "=")) != 2 {
			continue
		}
		v = strings.NewReplacer(`"`, "", "'", "").Replace(v)
		if !w.hasNS("xmlns:" + k) {
			html.set("xmlns:"+k, v)
		}
	}
	if w.entitiesVersion() != "" {
		html.set("xmlns:entities", "http://www.opendatakit.org/xforms/entities")
	}
	model := w.model()
	body := el("h:body", w.controls(w.root)...)
	if s := w.f.Settings["style"]; s != "" {
		body.set("class", s)
	}
	return html.add(el("h:head", textEl("h:title", w.f.Title), model), body)
}

func (w *xw) hasNS(k string) bool {
	for _, a := range nsmap {
		if a.k == k {
			return true
		}
	}
	return false
}

func (w *xw) collectTriggers() {
	w.walk(w.root, func(e *xe) {
		for _, t := range e.triggers {
			calc := ""
			for _, a := range e.bind {
				if a.k == "calculate" {
					calc = a.v
				}
			}
			if e.kind == KBackgroundGeopoint {
				w.setgeos[t] = append(w.setgeos[t], [2]string{e.name, calc})
			} else {
				w.setvals[t] = append(w.setvals[t], [2]string{e.name, calc})
			}
		}
	})
}

var searchRe = regexp.MustCompile(`search\(.*?\)`)

// markSearch: selects whose appearance calls search() list their choices
// in the body (Collect needs them there), not in an itemset.
func (w *xw) markSearch() {
	w.walk(w.root, func(e *xe) {
		if !e.isSelect || e.itemset == "" {
			return
		}
		app := e.controlValue("appearance")
		if len(app) <= 7 || !searchRe.MatchString(app) {
			return
		}
		is := w.listBy[e.itemset]
		e.itemset = ""
		if is != nil {
			is.usedBySearch = true
		}
	})
}

func (w *xw) model() *xnode {
	w.setupTranslations()
	m := el("model").set("odk:xforms-version", "1.0.0")
	if v := w.entitiesVersion(); v != "" {
		m.set("entities:entities-version", v)
	}
	s := w.f.Settings
	if s["submission_url"] != "" || s["public_key"] != "" || s["auto_send"] != "" || s["auto_delete"] != "" || yes(s["client_editable"]) {
		sub := el("submission")
		if u := s["submission_url"]; u != "" {
			sub.set("action", u).set("method", "post")
		}
		if k := s["public_key"]; k != "" {
			sub.set("base64RsaPublicKey", k)
		}
		if v := s["auto_send"]; v != "" {
			sub.set("orx:auto-send", v)
		}
		if v := s["auto_delete"]; v != "" {
			sub.set("orx:auto-delete", v)
		}
		if yes(s["client_editable"]) {
			sub.set("odk:client-editable", "true")
		}
		m.add(sub)
	}
	if len(w.langSeen) > 0 {
		m.add(w.itext())
	}
	m.add(el("instance", w.mainInstance()))
	m.add(w.instances()...)
	w.walk(w.root, func(e *xe) {
		m.add(w.bindNode(e))
		if e.typ != "survey" && e.typ != "group" && e.typ != "repeat" && e.typ != "entity" && e.typ != "label" {
			m.add(w.actionNodes(e, false)...)
		}
	})
	return m
}

func (w *xw) mainInstance() *xnode {
	n := w.sectionInstance(w.root, false)
	s := w.f.Settings
	for _, k := range sortedKeys(s) {
		if a, ok := strings.CutPrefix(k, "attribute::"); ok {
			n.set(a, s[k])
		}
	}
	n.set("id", w.f.ID)
	if v := s["instance_xmlns"]; v != "" {
		n.set("xmlns", v)
	}
	if v := s["version"]; v != "" {
		n.set("version", v)
	}
	if v := s["prefix"]; v != "" {
		n.set("odk:prefix", v)
	}
	if v := s["delimiter"]; v != "" {
		n.set("odk:delimiter", v)
	}
	return n
}

func (w *xw) sectionInstance(e *xe, appendTemplate bool) *xnode {
	n := el(e.name)
	for _, a := range e.inst {
		n.set(a.k, w.insertXPaths(a.v, e, false, false))
	}
	for _, c := range e.children {
		if c.external {
			continue
		}
		if c.attr {
			n.set(c.name, c.value)
			continue
		}
		if c.flat {
			n.add(w.flatInstance(c)...)
			continue
		}
		var tmpl *xnode
		if c.typ == "repeat" && !appendTemplate {
			appendTemplate = true
			tmpl = w.template(c)
		}
		n.add(w.elInstance(c, appendTemplate))
		if appendTemplate && tmpl != nil {
			appendTemplate = false
			n.kids = append(n.kids[:len(n.kids)-1], tmpl, n.kids[len(n.kids)-1])
		}
	}
	return n
}

func (w *xw) elInstance(e *xe, appendTemplate bool) *xnode {
	if e.typ == "group" || e.typ == "repeat" || e.typ == "entity" {
		return w.sectionInstance(e, appendTemplate)
	}
	var n *xnode
	if e.dflt != "" && !e.dynDefault {
		n = textEl(e.name, e.dflt)
	} else {
		n = el(e.name)
	}
	for _, a := range e.inst {
		n.set(a.k, w.insertXPaths(a.v, e, false, false))
	}
	return n
}

func (w *xw) template(e *xe) *xnode {
	n := el(e.name).set("jr:template", "")
	for _, c := range e.children {
		if c.external {
			continue
		}
		if c.attr {
			n.set(c.name, c.value)
			continue
		}
		if c.typ == "repeat" {
			n.add(w.template(c))
		} else {
			n.add(w.elInstance(c, false))
		}
	}
	return n
}

var rePulldata = regexp.MustCompile(`(pulldata\s*\(\s*)(.*?),`)

type instInfo struct {
	typ, name, src string
	node           *xnode
}

// instances are the secondary instances: pulldata() files, choice files,
// external data, the last saved record, then every choice list; one per
// id (the importer refuses two sources under one id).
func (w *xw) instances() []*xnode {
	var out []*xnode
	seen := map[string]bool{}
	for _, i := range w.allInstances() {
		if seen[i.name] {
			continue
		}
		seen[i.name] = true
		out = append(out, i.node)
	}
	return out
}

// instanceConflicts lists ids given to two different sources (ODK
// clients would read the wrong data), and external data files named twice.
func (w *xw) instanceConflicts() []string {
	var out []string
	prior := map[string]instInfo{}
	externals := map[string]int{}
	for _, i := range w.allInstances() {
		if i.typ == "external" {
			externals[i.name]++
			if externals[i.name] == 2 {
				out = append(out, fmt.Sprintf("Instance names must be unique within a form. The name '%s' was found more than once.", i.name))
			}
		}
		p, ok := prior[i.name]
		if !ok {
			prior[i.name] = i
			continue
		}
		if p.src != i.src {
			out = append(out, fmt.Sprintf("The same instance id will be generated for different external instance source URIs. Please check the form. Instance name: '%s', Existing type: '%s', Existing URI: '%s', Duplicate type: '%s', Duplicate URI: '%s'.", i.name, p.typ, p.src, i.typ, i.src))
		}
	}
	return out
}

func (w *xw) allInstances() []instInfo {
	var all []instInfo
	lastSaved := false
	file := func(typ, name, src string) instInfo {
		return instInfo{typ, name, src, el("instance").set("id", name).set("src", src)}
	}
	w.walk(w.root, func(e *xe) {
		if e.typ == "survey" {
			return
		}
		if e.external {
			if e.q != nil && e.q.ExternalType == "xml" {
				all = append(all, file("external", e.name, "jr://file/"+e.name+".xml"))
			} else {
				all = append(all, file("external", e.name, "jr://file-csv/"+e.name+".csv"))
			}
			return
		}
		for _, expr := range w.pulldataUses(e) {
			for _, m := range rePulldata.FindAllStringSubmatch(expr, -1) {
				id := strings.TrimSpace(strings.NewReplacer("'", "", `"`, "").Replace(m[2]))
				all = append(all, file("pulldata", id, "jr://file-csv/"+id+".csv"))
			}
		}
		if e.typ == "group" || e.typ == "repeat" {
			return
		}
		if e.isSelect && e.itemset != "" {
			ext := filepath.Ext(e.itemset)
			if ext == ".csv" || ext == ".xml" || ext == ".geojson" {
				scheme := "file"
				if ext == ".csv" {
					scheme = "file-csv"
				}
				all = append(all, file("file", strings.TrimSuffix(e.itemset, ext), "jr://"+scheme+"/"+e.itemset))
			}
		}
		if !lastSaved && w.usesLastSaved(e) {
			lastSaved = true
		}
	})
	if lastSaved {
		all = append(all, file("instance", "__last-saved", "jr://instance/last-saved"))
	}
	for _, is := range w.lists {
		if is.usedBySearch {
			continue
		}
		root := el("root")
		for i, o := range is.options {
			item := el("item")
			if is.requiresItext {
				item.add(textEl("itextId", is.name+"-"+itoa(i)))
			}
			item.add(textEl("name", o.name))
			if !is.requiresItext && !o.label.dict() && o.label.s != "" {
				item.add(textEl("label", o.label.s))
			}
			for _, x := range o.extra {
				item.add(textEl(x.k, x.v))
			}
			root.add(item)
		}
		all = append(all, instInfo{"choice", is.name, "", el("instance", root).set("id", is.name)})
	}
	return all
}

var exprBinds = map[string]bool{"calculate": true, "constraint": true, "readonly": true, "required": true, "relevant": true}

func (w *xw) pulldataUses(e *xe) []string {
	var out []string
	for _, a := range e.bind {
		if exprBinds[a.k] && strings.Contains(a.v, "pulldata(") {
			out = append(out, a.v)
		}
	}
	if strings.Contains(e.choiceFilter, "pulldata(") {
		out = append(out, e.choiceFilter)
	}
	if strings.Contains(e.dflt, "pulldata(") {
		out = append(out, e.dflt)
	}
	return out
}

func (w *xw) usesLastSaved(e *xe) bool {
	if strings.Contains(e.dflt, "${last-saved#") || strings.Contains(e.choiceFilter, "${last-saved#") {
		return true
	}
	for _, a := range e.bind {
		if exprBinds[a.k] && strings.Contains(a.v, "${last-saved#") {
			return true
		}
	}
	return false
}

var bindConversions = map[string]string{
	"yes": "true()", "Yes": "true()", "YES": "true()", "true": "true()", "True": "true()", "TRUE": "true()",
	"no": "false()", "No": "false()", "NO": "false()", "false": "false()", "False": "false()", "FALSE": "false()",
}

func (w *xw) bindNode(e *xe) *xnode {
	if !e.hasBind || e.typ == "survey" || e.flat {
		return nil
	}
	n := el("bind").set("nodeset", e.xpath())
	for _, a := range e.bind {
		v := a.v
		switch {
		case a.k == "calculate" && len(e.triggers) > 0:
			continue // set by the trigger's setvalue
		case exprBinds[a.k]:
			if c, ok := bindConversions[v]; ok {
				v = c
			}
		case a.k == "jr:constraintMsg" && !e.cMsg.empty():
			v = w.msgRef(e, e.cMsg, "jr:constraintMsg")
		case a.k == "jr:requiredMsg" && !e.rMsg.empty():
			v = w.msgRef(e, e.rMsg, "jr:requiredMsg")
		case a.k == "entities:saveto":
			if _, prop, ok := strings.Cut(v, "#"); ok {
				v = prop // the list is the entity's
			}
		}
		n.set(a.k, w.insertXPaths(v, e, false, false))
	}
	return n
}

func (w *xw) msgRef(e *xe, t ptext, kind string) string {
	if t.dict() || strings.Contains(t.s, "${") {
		return "jr:itext('" + e.xpath() + ":" + kind + "')"
	}
	return t.s
}

// actionNodes are the element's setvalue/setgeopoint/recordaudio
// actions: those of form load (in the model) or of a new repeat instance
// (in the repeat's body).
func (w *xw) actionNodes(e *xe, inRepeat bool) []*xnode {
	var out []*xnode
	for _, a := range e.actions {
		if (a.event == "odk-new-repeat") != inRepeat {
			continue
		}
		n := el(a.name).set("ref", e.xpath()).set("event", a.event)
		if a.name == "setvalue" {
			v := e.dflt
			if a.value != "" {
				v = a.value
			} else if e.dynDefault {
				v = w.insertXPaths(e.dflt, e, false, false)
			}
			if v != "" {
				n.set("value", v)
			}
		}
		for _, x := range a.extra {
			n.set(x.k, x.v)
		}
		out = append(out, n)
	}
	return out
}

func (w *xw) controls(s *xe) []*xnode {
	var out []*xnode
	for _, c := range s.children {
		if n := w.control(c); n != nil {
			out = append(out, n)
		}
	}
	return out
}

func (w *xw) control(e *xe) *xnode {
	switch e.typ {
	case "group":
		return w.groupControl(e)
	case "repeat":
		return w.repeatControl(e)
	}
	if e.external || e.kind == KCalculate {
		return nil
	}
	if (e.bindHas("calculate") || len(e.triggers) > 0) && e.label.empty() && e.hint.empty() {
		return nil
	}
	if e.tag == "" || e.tag == "action" {
		return nil
	}
	n := el(e.tag, w.labelAndHint(e)...).set("ref", e.xpath())
	for _, a := range e.control {
		n.set(a.k, w.insertXPaths(a.v, e, false, false))
	}
	switch {
	case e.query != "":
		q := "instance('" + e.query + "')/root/item"
		if e.choiceFilter != "" {
			q += "[" + w.insertXPaths(e.choiceFilter, e, true, false) + "]"
		}
		n.set("query", q)
	case e.isSelect && e.itemset != "":
		n.add(w.itemsetNode(e))
	case e.isSelect:
		n.add(w.searchItems(e)...)
	case e.kind == KRange && e.itemset != "":
		n.add(w.listItemset(e).node())
	case (e.kind == KGeopoint || e.kind == KGeotrace || e.kind == KGeoshape) && e.itemset != "":
		n.add(w.itemsetNode(e))
	case e.kind == KOSM:
		for _, t := range e.osm {
			l := el("label")
			if t.label.s != "" {
				l = el("label", w.outputs(t.label.s, e)...)
			}
			n.add(el("tag", l).set("key", t.name))
		}
	}
	for _, sv := range w.setvals[e.name] {
		t := w.byName[sv[0]]
		if t == nil {
			continue
		}
		a := el("setvalue").set("ref", t.xpath()).set("event", "xforms-value-changed")
		if v := w.insertXPaths(sv[1], e, false, false); v != "" {
			a.set("value", v)
		}
		n.add(a)
	}
	for _, sg := range w.setgeos[e.name] {
		if t := w.byName[sg[0]]; t != nil {
			n.add(el("odk:setgeopoint").set("ref", t.xpath()).set("event", "xforms-value-changed"))
		}
	}
	return n
}

func (w *xw) groupControl(e *xe) *xnode {
	if e.bodyless {
		return nil
	}
	n := el("group")
	for _, a := range e.control {
		v := a.v
		if a.k != "appearance" {
			v = w.insertXPaths(v, e, false, false)
		}
		n.set(a.k, v)
	}
	if !e.flat {
		n.set("ref", e.xpath())
	}
	if !e.label.empty() {
		n.add(w.label(e))
	}
	return n.add(w.controls(e)...)
}

func (w *xw) repeatControl(e *xe) *xnode {
	r := el("repeat").set("nodeset", e.xpath())
	for _, a := range e.control {
		r.set(a.k, w.insertXPaths(a.v, e, false, false))
	}
	r.add(w.controls(e)...)
	w.walk(e, func(d *xe) {
		if d == e || d.typ == "group" || d.typ == "repeat" {
			return
		}
		if d.parent == e || nearestRepeat(d) == e {
			r.add(w.actionNodes(d, true)...)
		}
	})
	return el("group", w.label(e), r).set("ref", e.xpath())
}

func (w *xw) labelAndHint(e *xe) []*xnode {
	var out []*xnode
	if !e.label.empty() || len(e.media) > 0 {
		out = append(out, w.label(e))
	}
	if !e.hint.empty() || !e.guidance.empty() {
		if len(out) == 0 {
			out = append(out, w.label(e))
		}
		out = append(out, w.hint(e))
	}
	return out
}

func (e *xe) needsItext() bool { return e.label.dict() || len(e.media) > 0 }

func (w *xw) label(e *xe) *xnode {
	switch {
	case e.needsItext():
		return el("label").set("ref", "jr:itext('"+e.xpath()+":label')")
	case e.label.s != "":
		return el("label", w.outputs(e.label.s, e)...)
	}
	return el("label")
}

func (w *xw) hint(e *xe) *xnode {
	switch {
	case e.hint.dict() || !e.guidance.empty():
		return el("hint").set("ref", "jr:itext('"+e.xpath()+":hint')")
	case e.hint.s != "":
		return el("hint", w.outputs(e.hint.s, e)...)
	}
	return el("hint")
}

// outputs splits text at its instance() expressions and ${} references,
// each an <output/>.
func (w *xw) outputs(text string, ctx *xe) []*xnode {
	if text == "-" || (!strings.Contains(text, "${") && !strings.Contains(text, "instance(")) {
		return []*xnode{{text: text}}
	}
	var out []*xnode
	addText := func(s string) {
		if s == "" {
			return
		}
		if n := len(out); n > 0 && out[n-1].name == "" {
			out[n-1].text += s
			return
		}
		out = append(out, &xnode{text: s})
	}
	refs := func(s string) {
		last := 0
		for _, m := range refPattern.FindAllStringSubmatchIndex(s, -1) {
			addText(s[last:m[0]])
			out = append(out, el("output").set("value", w.refXPath(s, m, ctx, false, false)))
			last = m[1]
		}
		addText(s[last:])
	}
	last := 0
	for _, b := range instanceExprBounds(text) {
		refs(text[last:b[0]])
		// pyxform escapes the label before it finds the expression, so
		// its attribute holds "<" as "&amp;lt;", which ODK Web Forms
		// cannot parse (TestODKWebFormsLoadsOurXForms): written once here.
		out = append(out, el("output").set("value", w.insertXPaths(text[b[0]:b[1]], ctx, false, false)))
		last = b[1]
	}
	refs(text[last:])
	return out
}

// instanceExprBounds finds instance('id')/path[predicate]/... expressions
// in a label: ODK shows their value, as pyxform writes them in <output/>.
func instanceExprBounds(s string) [][2]int {
	var out [][2]int
	for i := 0; i < len(s); {
		k := strings.Index(s[i:], "instance(")
		if k < 0 {
			break
		}
		start := i + k
		j := start + len("instance(")
		if j >= len(s) || (s[j] != '\'' && s[j] != '"') {
			i = j
			continue
		}
		q := strings.IndexByte(s[j+1:], s[j])
		if q < 0 || j+1+q+1 >= len(s) || s[j+1+q+1] != ')' {
			i = j
			continue
		}
		j = j + 1 + q + 2
		for j < len(s) && s[j] == '/' {
			j++
			for j < len(s) && isPathChar(s[j]) {
				j++
			}
			if j < len(s) && s[j] == '[' {
				depth, quote := 0, byte(0)
				for ; j < len(s); j++ {
					c := s[j]
					if quote != 0 {
						if c == quote {
							quote = 0
						}
						continue
					}
					if c == '\'' || c == '"' {
						quote = c
					} else if c == '[' {
						depth++
					} else if c == ']' {
						depth--
						if depth == 0 {
							j++
							break
						}
					}
				}
			}
		}
		out = append(out, [2]int{start, j})
		i = j
	}
	return out
}

func isPathChar(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c == ':' || c == '@' || c == '*' || c >= '0' && c <= '9' ||
		c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

type itemsetRef struct {
	value, label, nodeset, filter string
}

func (i itemsetRef) node() *xnode {
	return el("itemset", el("value").set("ref", i.value), el("label").set("ref", i.label)).set("nodeset", i.nodeset)
}

func (w *xw) listItemset(e *xe) itemsetRef {
	label := "label"
	if is := w.listBy[e.itemset]; is != nil && is.requiresItext {
		label = "jr:itext(itextId)"
	}
	return itemsetRef{value: "name", label: label, nodeset: "instance('" + e.itemset + "')/root/item"}
}

func (w *xw) itemsetNode(e *xe) *xnode {
	var it itemsetRef
	ext := filepath.Ext(e.itemset)
	geo := e.kind == KGeopoint || e.kind == KGeotrace || e.kind == KGeoshape
	switch {
	case ext == ".csv" || ext == ".xml" || ext == ".geojson":
		it = itemsetRef{value: "name", label: "label", nodeset: "instance('" + strings.TrimSuffix(e.itemset, ext) + "')/root/item"}
		if ext == ".geojson" {
			it.value, it.label = "id", "title"
		}
		if v, ok := paramOf(e.params, "value"); ok {
			it.value = v
		}
		if v, ok := paramOf(e.params, "label"); ok {
			it.label = v
		}
	case e.itemsetRefs || (geo && strings.Contains(e.itemset, "${")):
		p := strings.TrimSpace(w.insertXPaths(e.itemset, e, false, true))
		if geo {
			it = itemsetRef{value: "geometry", label: "geometry", nodeset: p, filter: "./geometry != ''"}
		} else {
			parts := strings.Split(p, "/")
			leaf := parts[len(parts)-1]
			it = itemsetRef{value: leaf, label: leaf, nodeset: strings.Join(parts[:len(parts)-1], "/"), filter: "./" + leaf + " != ''"}
		}
	default:
		it = w.listItemset(e)
	}
	if e.choiceFilter != "" {
		cf := w.insertXPaths(e.choiceFilter, e, true, e.itemsetRefs)
		if e.itemsetRefs {
			cf = strings.ReplaceAll(cf, "current()/"+it.nodeset, ".")
			cf = strings.ReplaceAll(cf, it.nodeset, ".")
		}
		it.filter = cf
	}
	if it.filter != "" {
		it.nodeset += "[" + it.filter + "]"
	}
	if v, ok := paramOf(e.params, "randomize"); ok && v == "true" {
		if seed, ok := paramOf(e.params, "seed"); ok {
			it.nodeset = "randomize(" + it.nodeset + ", " + strings.TrimSpace(w.insertXPaths(seed, e, false, false)) + ")"
		} else {
			it.nodeset = "randomize(" + it.nodeset + ")"
		}
	}
	return it.node()
}

func (w *xw) searchItems(e *xe) []*xnode {
	is := w.listBy[e.listName]
	if is == nil || !is.usedBySearch {
		return nil
	}
	var out []*xnode
	for i, o := range is.options {
		var l *xnode
		switch {
		case is.requiresItext:
			l = el("label").set("ref", "jr:itext('"+is.name+"-"+itoa(i)+"')")
		case !e.label.empty():
			l = el("label", w.outputs(o.label.s, nil)...)
		default:
			l = el("label")
		}
		out = append(out, el("item", l, textEl("value", o.name)))
	}
	return out
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// entitiesVersion is the ODK entities spec version the form needs: the
// 2025 one for several entities or one made in a repeat.
func (w *xw) entitiesVersion() string {
	ents := w.f.Entities
	switch {
	case len(ents) == 0:
		return ""
	case len(ents) > 1 || ents[0].Scope != "":
		return "2025.1.0"
	}
	return "2024.1.0"
}

func (w *xw) flatInstance(e *xe) []*xnode {
	var out []*xnode
	for _, c := range e.children {
		if c.flat {
			out = append(out, w.flatInstance(c)...)
		} else {
			out = append(out, w.elInstance(c, false))
		}
	}
	return out
}
