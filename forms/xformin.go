package forms

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// ErrNotXForm: the bytes are not an ODK XForm Tessera can read.
var ErrNotXForm = errors.New("not an ODK XForm")

const (
	nsXForms = "http://www.w3.org/2002/xforms"
	nsHTML   = "http://www.w3.org/1999/xhtml"
	nsJR     = "http://openrosa.org/javarosa"
	nsODK    = "http://www.opendatakit.org/xforms"
	nsORX    = "http://openrosa.org/xforms"
	nsEnt    = "http://www.opendatakit.org/xforms/entities"
)

var nsPrefix = map[string]string{nsJR: "jr", nsODK: "odk", nsORX: "orx", nsEnt: "entities"}

// IsXForm reports whether b looks like an XForm (XML), not a workbook.
func IsXForm(b []byte) bool {
	b = bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	return bytes.HasPrefix(b, []byte("<"))
}

// XFormToXLSX reads an ODK XForm and writes the XLSForm it amounts to, the
// form Tessera keeps (devices and every reader downstream take .xlsx).
func XFormToXLSX(b []byte) ([]byte, error) {
	wb, err := ReadXForm(b)
	if err != nil {
		return nil, err
	}
	return WorkbookToXLSX(wb, "Tessera (from an XForm)")
}

// xn is a parsed XML element.
type xn struct {
	space, local string
	attrs        []xml.Attr
	kids         []*xn
	text         strings.Builder // character data directly inside
	parts        []xpart         // text and <output/> in order (labels)
	line         int
}

type xpart struct {
	text   string
	output string // an <output value=...>
}

func (n *xn) attr(local string) string {
	for _, a := range n.attrs {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == nsXForms) {
			return a.Value
		}
	}
	return ""
}

func (n *xn) attrNS(space, local string) string {
	for _, a := range n.attrs {
		if a.Name.Local == local && a.Name.Space == space {
			return a.Value
		}
	}
	return ""
}

func (n *xn) child(local string) *xn {
	for _, k := range n.kids {
		if k.local == local {
			return k
		}
	}
	return nil
}

func (n *xn) children(local string) []*xn {
	var out []*xn
	for _, k := range n.kids {
		if k.local == local {
			out = append(out, k)
		}
	}
	return out
}

// Limits on what an XForm may hold: far above real forms (the WHO verbal
// autopsy form has ~550 questions), far below what would hurt the server.
const (
	maxXFormDepth    = 64
	maxXFormElements = 500_000
)

func parseXML(b []byte) (*xn, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	var stack []*xn
	var root *xn
	count := 0
	for {
		line, _ := d.InputPos()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrNotXForm, line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if count++; count > maxXFormElements || len(stack) >= maxXFormDepth {
				return nil, fmt.Errorf("%w: line %d: too large or too deeply nested", ErrNotXForm, line)
			}
			n := &xn{space: t.Name.Space, local: t.Name.Local, attrs: t.Attr, line: line}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
				if n.local == "output" {
					p.parts = append(p.parts, xpart{output: n.attr("value")})
				}
			} else if root == nil {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.text.Write(t)
				p.parts = append(p.parts, xpart{text: string(t)})
			}
		case xml.Directive:
			return nil, fmt.Errorf("%w: line %d: a DOCTYPE or entity declaration is not allowed", ErrNotXForm, line)
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no element", ErrNotXForm)
	}
	return root, nil
}

// xreader turns a parsed XForm into XLSForm sheets.
type xreader struct {
	root     *xn
	model    *xn
	rootName string
	binds    map[string]*xn
	controls map[string]*xn                          // body element by the node it refers to
	labels   map[string]*xn                          // a repeat's outer group (its label)
	itext    map[string]map[string]map[string]string // lang → id → form → text
	langs    []string
	defLang  string
	lists    map[string]bool // secondary instances read as choice lists
	listRows [][]string
	listCols []string
	names    map[string]string      // node path → question name
	setvals  map[string]*xn         // target path → setvalue of form load
	triggers map[string][][2]string // target path → (trigger path, value)
	survey   []map[string]string
	err      error

	instanceName string
	geoTriggered map[string]bool
	osmRows      [][]string
	entities     []map[string]string // rows of the entities sheet
	saves        []savedAt
}

// rawParts is an element's text with its <output/> elements as markup.
func rawParts(n *xn) string {
	var b strings.Builder
	for _, p := range n.parts {
		if p.output != "" {
			b.WriteString(`<output value="` + p.output + `"/>`)
		} else {
			b.WriteString(p.text)
		}
	}
	s := b.String()
	if len(n.parts) > 1 {
		s = strings.TrimPrefix(strings.TrimSuffix(s, " "), " ")
	}
	return s
}

// ReadXForm reads an ODK XForm (as pyxform writes them, and most other
// tools) into the XLSForm workbook it amounts to: survey, choices and
// settings sheets.
func ReadXForm(b []byte) (*Workbook, error) {
	root, err := parseXML(b)
	if err != nil {
		return nil, err
	}
	if root.local != "html" {
		return nil, fmt.Errorf("%w: the document is <%s>, not <h:html>", ErrNotXForm, root.local)
	}
	r := &xreader{root: root, binds: map[string]*xn{}, controls: map[string]*xn{}, labels: map[string]*xn{},
		itext: map[string]map[string]map[string]string{}, lists: map[string]bool{}, names: map[string]string{},
		setvals: map[string]*xn{}, triggers: map[string][][2]string{}, geoTriggered: map[string]bool{}}
	head := root.child("head")
	if head == nil || head.child("model") == nil {
		return nil, fmt.Errorf("%w: no <h:head><model>", ErrNotXForm)
	}
	r.model = head.child("model")
	var primary *xn
	for _, inst := range r.model.children("instance") {
		if inst.attr("id") == "" && primary == nil {
			for _, k := range inst.kids {
				primary = k
				break
			}
		}
	}
	if primary == nil {
		return nil, fmt.Errorf("%w: the model has no primary instance", ErrNotXForm)
	}
	r.rootName = primary.local
	r.nameNodes(primary, "")
	r.readItext()
	r.readBinds()
	if body := root.child("body"); body != nil {
		r.readBody(body, "/"+r.rootName)
	}
	r.readLists()
	r.rows(primary, "/"+r.rootName)
	r.orOther()
	r.tableLists()
	r.externals()
	r.prefixSaves()
	if r.err != nil {
		return nil, r.err
	}
	return r.workbook(head, primary), nil
}

func (r *xreader) readItext() {
	it := r.model.child("itext")
	if it == nil {
		return
	}
	for _, tr := range it.children("translation") {
		lang := tr.attr("lang")
		if tr.attr("default") != "" && lang != "default" {
			r.defLang = lang
		}
		r.langs = append(r.langs, lang)
		byID := map[string]map[string]string{}
		for _, t := range tr.children("text") {
			forms := map[string]string{}
			for _, v := range t.children("value") {
				f := v.attr("form")
				if f == "" {
					f = "long"
				}
				forms[f] = rawParts(v) // <output/> kept until the context is known
			}
			byID[t.attr("id")] = forms
		}
		r.itext[lang] = byID
	}
}

func (r *xreader) readBinds() {
	for _, b := range r.model.children("bind") {
		r.binds[b.attr("nodeset")] = b
	}
	for _, k := range r.model.kids {
		if k.local == "setvalue" && k.attr("event") == "odk-instance-first-load" {
			r.setvals[k.attr("ref")] = k
		}
	}
}

func (r *xreader) readBody(n *xn, ctx string) {
	for _, c := range n.kids {
		ref := c.attr("ref")
		if ref == "" {
			ref = c.attr("nodeset")
		}
		path := resolvePath(ref, ctx)
		switch c.local {
		case "group":
			if rep := c.child("repeat"); rep != nil && len(c.children("repeat")) == 1 {
				rp := resolvePath(rep.attr("nodeset"), ctx)
				r.labels[rp] = c
				r.controls[rp] = rep
				r.readBody(rep, rp)
				continue
			}
			if ref != "" {
				r.controls[path] = c
				r.readBody(c, path)
			} else {
				r.readBody(c, ctx)
			}
		case "repeat":
			r.controls[path] = c
			r.readBody(c, path)
		case "label", "hint", "setvalue", "odk:setgeopoint":
		default:
			if ref != "" {
				r.controls[path] = c
				for _, sv := range c.kids {
					if (sv.local == "setvalue" || sv.local == "setgeopoint") && sv.attr("event") == "xforms-value-changed" {
						t := resolvePath(sv.attr("ref"), path)
						r.triggers[t] = append(r.triggers[t], [2]string{path, sv.attr("value")})
						if sv.local == "setgeopoint" {
							r.geoTriggered[resolvePath(sv.attr("ref"), path)] = true
						}
					}
				}
			}
		}
	}
}

// resolvePath makes an absolute path of ref (absolute, or relative to
// ctx).
func resolvePath(ref, ctx string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" || strings.HasPrefix(ref, "/") {
		return ref
	}
	parts := strings.Split(ctx, "/")
	for _, p := range strings.Split(ref, "/") {
		switch p {
		case ".", "":
		case "..":
			if len(parts) > 1 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}

// nameNodes indexes the instance's nodes by path, for turning paths in
// expressions back into ${name}.
func (r *xreader) nameNodes(n *xn, parent string) {
	p := parent + "/" + n.local
	if parent != "" {
		r.names[p] = n.local
	}
	for _, k := range n.kids {
		r.nameNodes(k, p)
	}
}

func (r *xreader) readLists() {
	for _, inst := range r.model.children("instance") {
		id := inst.attr("id")
		if id == "" || inst.attr("src") != "" {
			continue
		}
		root := inst.child("root")
		if root == nil {
			continue
		}
		r.lists[id] = true
		for _, item := range root.children("item") {
			row := map[string]string{"list_name": id}
			for _, f := range item.kids {
				v := strings.TrimSpace(f.text.String())
				switch f.local {
				case "itextId":
					r.itextCells(row, "label", v, "long")
					for _, m := range []string{"image", "audio", "video", "big-image"} {
						r.itextCells(row, m, v, m)
					}
				default:
					row[f.local] = v
				}
			}
			r.addListRow(row)
		}
	}
}

func (r *xreader) addListRow(row map[string]string) {
	line := make([]string, len(r.listCols))
	keys := sortedKeys(row)
	base := func(k string) int {
		switch b, _, _ := strings.Cut(k, "::"); b {
		case "list_name":
			return 0
		case "name":
			return 1
		case "label":
			return 2
		}
		return 3
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if base(keys[i]) != base(keys[j]) {
			return base(keys[i]) < base(keys[j])
		}
		_, li, _ := strings.Cut(keys[i], "::")
		_, lj, _ := strings.Cut(keys[j], "::")
		return slices.Index(r.langs, li) < slices.Index(r.langs, lj)
	})
	for _, k := range keys {
		i := slices.Index(r.listCols, k)
		if i < 0 {
			r.listCols = append(r.listCols, k)
			line = append(line, "")
			i = len(r.listCols) - 1
		}
		line[i] = row[k]
	}
	r.listRows = append(r.listRows, line)
}

// itextCells copies an itext entry into column base: "base" for the
// "default" language, "base::LANG" for the others.
func (r *xreader) itextCells(row map[string]string, base, id, form string) {
	r.itextCellsAt(row, base, id, form, "")
}

func (r *xreader) itextCellsAt(row map[string]string, base, id, form, ctx string) {
	for _, lang := range r.langs {
		v, ok := r.itext[lang][id][form]
		if !ok || v == "-" || v == "" {
			continue
		}
		if form != "long" && form != "guidance" {
			v = mediaName(v)
		} else {
			v = r.labelRefs(v, ctx)
		}
		col := base
		if lang != "default" {
			col = base + "::" + lang
		}
		row[col] = v
	}
}

func mediaName(v string) string {
	for _, p := range []string{"jr://images/", "jr://audio/", "jr://video/", "jr://big-image/"} {
		v = strings.TrimPrefix(v, p)
	}
	return v
}
