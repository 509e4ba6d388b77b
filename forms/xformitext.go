package forms

import "strings"

// put records one translated text: lang → itext id → form ("long",
// "guidance", "image", ...), each kept in first-seen order as pyxform's
// dictionaries keep them.
func (w *xw) put(lang, id, form, text string, ctx *xe) {
	if w.trans == nil {
		w.trans = map[string]map[string]*tentry{}
		w.transIDs = map[string][]string{}
	}
	byID := w.trans[lang]
	if byID == nil {
		byID = map[string]*tentry{}
		w.trans[lang] = byID
		w.langSeen = append(w.langSeen, lang)
	}
	t := byID[id]
	if t == nil {
		t = &tentry{by: map[string]tvalue{}}
		byID[id] = t
		w.transIDs[lang] = append(w.transIDs[lang], id)
	}
	if _, ok := t.by[form]; !ok {
		t.forms = append(t.forms, form)
	}
	t.by[form] = tvalue{text, ctx}
}

func (w *xw) putText(t ptext, id, form string, ctx *xe, plainToo bool) {
	if t.dict() {
		for _, l := range t.langs {
			w.put(l, id, form, t.by[l], ctx)
		}
	} else if plainToo && t.s != "" {
		w.put(w.defLang, id, form, t.s, ctx)
	}
}

// setupTranslations gathers the itext: choice lists that need it, then
// each element's messages, labels and hints, then media; finally every
// language gets every text ("-" where one has none).
func (w *xw) setupTranslations() {
	for _, is := range w.lists {
		if !is.requiresItext {
			continue
		}
		for i, o := range is.options {
			id := is.name + "-" + itoa(i)
			w.putText(o.label, id, "long", nil, true)
			for _, m := range o.media {
				w.putText(m.t, id, m.kind, nil, true)
			}
		}
	}
	w.walk(w.root, func(e *xe) {
		p := e.xpath()
		if e.bindHas("jr:constraintMsg") {
			w.putText(e.cMsg, p+":jr:constraintMsg", "long", e, strings.Contains(e.cMsg.s, "${"))
		}
		if e.bindHas("jr:requiredMsg") {
			w.putText(e.rMsg, p+":jr:requiredMsg", "long", e, strings.Contains(e.rMsg.s, "${"))
		}
		w.putText(e.label, p+":label", "long", e, e.needsItext())
		w.putText(e.hint, p+":hint", "long", e, !e.guidance.empty())
		w.putText(e.guidance, p+":hint", "guidance", e, true)
	})
	w.walk(w.root, func(e *xe) {
		for _, m := range e.media {
			w.putText(m.t, e.xpath()+":label", m.kind, e, true)
		}
	})
	w.addEmptyTranslations()
}

func (w *xw) addEmptyTranslations() {
	var ids []string
	forms := map[string][]string{}
	for _, l := range w.langSeen {
		for _, id := range w.transIDs[l] {
			if _, ok := forms[id]; !ok {
				ids = append(ids, id)
			}
			for _, f := range w.trans[l][id].forms {
				if !containsStr(forms[id], f) {
					forms[id] = append(forms[id], f)
				}
			}
		}
	}
	for _, l := range w.langSeen {
		for _, id := range ids {
			for _, f := range forms[id] {
				if t := w.trans[l][id]; t == nil || !containsStr(t.forms, f) {
					w.put(l, id, f, "-", nil)
				}
			}
		}
	}
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func (w *xw) itext() *xnode {
	it := el("itext")
	for _, l := range w.langSeen {
		tr := el("translation").set("lang", l)
		if l == w.defLang {
			tr.set("default", "true()")
		}
		for _, id := range w.transIDs[l] {
			t := w.trans[l][id]
			_, kind, _ := strings.Cut(id, ":")
			txt := el("text").set("id", id)
			for _, f := range t.forms {
				v := t.by[f]
				vals := w.outputs(v.text, v.ctx)
				switch {
				case kind == "hint" && f == "guidance":
					txt.add(el("value", vals...).set("form", "guidance"))
				case kind == "hint" || f == "long":
					txt.add(el("value", vals...))
				case v.text == "-":
				case f == "image" || f == "big-image":
					txt.add(el("value", w.outputs("jr://images/"+v.text, v.ctx)...).set("form", f))
				default:
					txt.add(el("value", w.outputs("jr://"+f+"/"+v.text, v.ctx)...).set("form", f))
				}
			}
			tr.add(txt)
		}
		it.add(tr)
	}
	return it
}
