package forms

import (
	"sort"
	"strings"
)

// cnode is one container on a question's path: the survey, a group or a
// repeat.
type cnode struct {
	q   *Question
	typ Kind // KGroup, KRepeat; "" for the survey
}

// cpath is a container path from the survey down, as pyxform's entity
// allocation reasons about it.
type cpath []cnode

func (p cpath) key() string {
	var b strings.Builder
	for _, n := range p {
		b.WriteString("/")
		if n.typ == "" {
			b.WriteString("survey")
		} else {
			b.WriteString(n.q.Name)
		}
	}
	return b.String()
}

func (p cpath) String() string { return p.key() }

// boundary is the path to the nearest repeat (or the survey): the scope an
// entity made here is made once per instance of.
func (p cpath) boundary() cpath {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i].typ == KRepeat || p[i].typ == "" {
			return p[:i+1]
		}
	}
	return p[:1]
}

func (p cpath) repeats() int {
	n := 0
	for _, c := range p[1:] {
		if c.typ == KRepeat {
			n++
		}
	}
	return n
}

// sub counts the groups between the path's end and its boundary.
func (p cpath) sub() int {
	n := 0
	for i := len(p) - 1; i >= 0; i-- {
		if p[i].typ == KRepeat || p[i].typ == "" {
			break
		}
		n++
	}
	return n
}

func (p cpath) has(prefix cpath) bool {
	return len(p) >= len(prefix) && p[:len(prefix)].key() == prefix.key()
}

func containerPath(q *Question) cpath {
	var out cpath
	for p := q.Parent; p != nil; p = p.Parent {
		if p.Parent == nil {
			out = append(out, cnode{q: p})
		} else {
			out = append(out, cnode{q: p, typ: p.Kind})
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

type entityRef struct {
	path     cpath
	row      int
	property string // a save_to; "" for a variable reference
	question string
}

type allocRequest struct {
	e         *Entity
	scope     cpath
	requested cpath
	lineages  []cpath
}

// scopeEntities places each entity's meta block as pyxform 4.5 does: in
// the container its save_to questions share (else where its expressions
// reach deepest), one entity per container, refusing references from
// repeats the entity is not made in.
func (im *importer) scopeEntities(saves []saveTo) {
	refs := map[*Entity][]entityRef{}
	varRefs := map[string][]*Entity{}
	for i := range im.f.Entities {
		e := &im.f.Entities[i]
		for _, s := range []string{e.Label, e.EntityID, e.CreateIf, e.UpdateIf} {
			for _, m := range refRe.FindAllStringSubmatch(s, -1) {
				name := strings.TrimSpace(m[1])
				if qs := im.f.byName[name]; len(qs) == 0 && !metaRefs[name] {
					im.add("entities", e.Row, "the 'label' value is invalid. Reference variables must contain a name from the 'survey' sheet. Could not find the name '%s'.", name)
				}
				if !containsEnt(varRefs[name], e) {
					varRefs[name] = append(varRefs[name], e)
				}
			}
		}
	}
	savesOf := map[*Question]string{}
	for _, sv := range saves {
		savesOf[sv.q] = sv.value
	}
	im.f.Walk(func(q *Question) {
		if v, ok := savesOf[q]; ok {
			if e := im.entityOf(v); e != nil {
				_, prop, cut := strings.Cut(v, "#")
				if !cut {
					prop = v
				}
				refs[e] = append(refs[e], entityRef{path: containerPath(q), row: q.Row, property: prop})
			}
		}
		for _, e := range varRefs[q.Name] {
			refs[e] = append(refs[e], entityRef{path: containerPath(q), row: q.Row, question: q.Name})
		}
	})
	survey := cpath{{q: im.f.Root}}
	var reqs []allocRequest
	for i := range im.f.Entities {
		e := &im.f.Entities[i]
		if len(refs[e]) == 0 {
			reqs = append(reqs, allocRequest{e: e, scope: survey, requested: survey})
			continue
		}
		if r, ok := im.allocationRequest(e, refs[e]); ok {
			reqs = append(reqs, r)
		}
	}
	im.allocateEntities(reqs)
}

func containsEnt(es []*Entity, e *Entity) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
}

func (im *importer) entityOf(saveTo string) *Entity {
	list, _, cut := strings.Cut(saveTo, "#")
	if !cut {
		if len(im.f.Entities) != 1 {
			return nil
		}
		return &im.f.Entities[0]
	}
	for i := range im.f.Entities {
		if im.f.Entities[i].List == list {
			return &im.f.Entities[i]
		}
	}
	return nil
}

// allocationRequest is pyxform's get_allocation_request: the deepest
// scope referenced, and the container asked for.
func (im *importer) allocationRequest(e *Entity, refs []entityRef) (allocRequest, bool) {
	var deepScopeRef, deepContainer, deepSave *entityRef
	var deepScope cpath
	deepScopeN, deepContainerSub, deepSaveSub := 0, 0, 0
	var lineages []cpath
	seenLineage := map[string]bool{}
	type bref struct {
		ref      *entityRef
		boundary cpath
	}
	var bounds []bref
	for i := range refs {
		ref := &refs[i]
		sub := ref.path.sub()
		b := ref.path.boundary()
		bn := b.repeats()
		if deepScope == nil || bn > deepScopeN {
			if deepScope == nil || b.key() != deepScope.key() {
				deepContainer, deepContainerSub = ref, sub
				if ref.property != "" {
					deepSave, deepSaveSub = ref, sub
				}
			}
			deepScope, deepScopeN, deepScopeRef = b, bn, ref
		}
		bounds = append(bounds, bref{ref, b})
		if deepContainer == nil || (b.key() == deepScope.key() && sub > deepContainerSub) {
			deepContainer, deepContainerSub = ref, sub
		}
		if ref.property != "" {
			if !seenLineage[ref.path.key()] {
				seenLineage[ref.path.key()] = true
				lineages = append(lineages, ref.path)
			}
			if deepSave == nil || (b.key() == deepScope.key() && sub > deepSaveSub) {
				deepSave, deepSaveSub = ref, sub
			}
		}
	}
	requested := deepContainer.path
	if deepSave != nil {
		requested = deepSave.path
	}
	if len(lineages) > 0 {
		minLen := len(lineages[0])
		for _, l := range lineages {
			minLen = min(minLen, len(l))
		}
		common := lineages[0][:minLen]
		if len(lineages) > 1 {
		outer:
			for i := 0; i < minLen; i++ {
				for _, l := range lineages {
					if l[i].q != lineages[0][i].q {
						common = lineages[0][:i]
						break outer
					}
				}
			}
			a := deepSave.path.boundary()
			if common.repeats() > a.repeats() || (common.repeats() == a.repeats() && common.sub() > a.sub()) {
				requested = common
			} else {
				requested = a
			}
		} else {
			requested = common
		}
	}
	reqScope := requested.boundary()
	for _, br := range bounds {
		if !deepScope.has(br.boundary) {
			if br.ref.property != "" {
				im.add("survey", br.ref.row, "the 'save_to' value is invalid. The entity list name '%s' has a reference in container scope '%s' which is not compatible with this 'save_to' reference in scope '%s'.", e.List, deepScopeRef.path, br.ref.path)
			} else {
				im.add("entities", e.Row, "the entity declaration is invalid. The entity list name '%s' has a reference in container scope '%s' which is not compatible with the variable reference to '%s' in scope '%s'.", e.List, deepScopeRef.path, br.ref.question, br.ref.path)
			}
			return allocRequest{}, false
		}
		if br.ref.property != "" && reqScope.key() != br.boundary.key() {
			im.add("survey", br.ref.row, "the 'save_to' value is invalid. The entity list name '%s' has a reference in container scope '%s' which is not compatible with this 'save_to' reference in scope '%s'.", e.List, requested, br.ref.path)
			return allocRequest{}, false
		}
	}
	return allocRequest{e: e, scope: deepScope, requested: requested, lineages: lineages}, true
}

// allocateEntities gives each request the deepest free container on its
// requested path within its scope (pyxform's allocate_entities_to_containers).
func (im *importer) allocateEntities(reqs []allocRequest) {
	byScope := map[string][]allocRequest{}
	var scopes []string
	for _, r := range reqs {
		k := r.scope.key()
		if _, ok := byScope[k]; !ok {
			scopes = append(scopes, k)
		}
		byScope[k] = append(byScope[k], r)
	}
	if len(scopes) == 1 && len(reqs) == 1 && len(reqs[0].scope) == 1 {
		reqs[0].e.container = reqs[0].scope[0].q // one entity of the survey: the survey's meta
		return
	}
	alloc := map[string]*Entity{}
	reserved := map[string]*Entity{}
	for _, k := range scopes {
		rs := byScope[k]
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].e.Row < rs[j].e.Row })
		for _, r := range rs {
			limit := len(r.scope) - 1
			var conflict *Entity
			for depth := len(r.requested); depth > limit; depth-- {
				cur := r.requested[:depth]
				conflict = alloc[cur.key()]
				if conflict == nil {
					conflict = reserved[cur.key()]
				}
				if conflict != nil {
					var bySave *Entity
					for _, l := range r.lineages {
						if x := reserved[l.key()]; x != nil {
							bySave = x
							break
						}
					}
					if bySave != nil {
						conflict = bySave
						break
					}
					continue
				}
				alloc[cur.key()], reserved[cur.key()] = r.e, r.e
				for _, l := range r.lineages {
					for i := len(l); i > len(cur)-1; i-- {
						reserved[l[:i].key()] = r.e
					}
				}
				r.e.container = cur[len(cur)-1].q
				if b := r.scope[len(r.scope)-1]; b.typ == KRepeat {
					r.e.Scope = b.q.Path()
				}
				break
			}
			if conflict != nil {
				im.add("entities", r.e.Row, "the entity declaration is invalid. Each container (survey, group, repeat) may have only one entity declaration, but there are no valid containers available in the scope: '%s', which has been allocated to the entity on row '%d'.", r.scope, conflict.Row)
			}
		}
	}
}
