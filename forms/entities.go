package forms

import (
	"slices"
	"sort"
	"strings"
)

// Entity is one declaration of the entities sheet (ODK's entity
// management): the list the interview creates or updates an entity in,
// and which answers become its properties (the survey's save_to column).
// Declarations are parsed, checked as pyxform checks them, and kept with
// the form version.
type Entity struct {
	Row                                 int
	List                                string
	Label, EntityID, CreateIf, UpdateIf string
	// Properties: property name → the question path saved to it.
	Properties map[string]string
	// Scope is the repeat the entity is made in, once per instance ("" for
	// the survey: once per interview).
	Scope string
	// container holds the entity's meta block (the survey, a group or a
	// repeat), as allocated; nil for the survey.
	container *Question
}

var entityColumns = map[string]bool{"list_name": true, "label": true, "entity_id": true, "create_if": true, "update_if": true}

// readEntities parses the entities sheet, then the survey's save_to
// column against it.
func (im *importer) readEntities(saves []saveTo) {
	s := im.wb.Sheet("entities")
	if s == nil {
		for _, sv := range saves {
			im.add("survey", sv.q.Row, "the 'save_to' value is invalid. To save entity properties using the save_to column, add an entities sheet and declare an entity.")
		}
		return
	}
	cols, recs := readRows(s)
	var unknown []string
	for _, c := range cols {
		if c.base == "dataset" {
			continue
		}
		if !entityColumns[c.base] {
			unknown = append(unknown, c.base)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		im.add("entities", 1, "one or more column names are invalid. The following column(s) are not supported: '%s'.", strings.Join(unknown, "', '"))
		return
	}
	seen := map[string]bool{}
	for _, r := range recs {
		e := Entity{Row: r.row, List: firstOf(r.cells["list_name"], r.cells["dataset"]), Label: r.cells["label"],
			EntityID: r.cells["entity_id"], CreateIf: r.cells["create_if"], UpdateIf: r.cells["update_if"], Properties: map[string]string{}}
		col := "list_name"
		if r.cells["list_name"] == "" && r.cells["dataset"] != "" {
			col = "dataset"
		}
		switch {
		case e.List == "":
			im.add("entities", r.row, "the 'list_name' value is invalid. Entity lists must have a name.")
			continue
		case !validName(e.List):
			im.add("entities", r.row, "the '%s' value is invalid. Names must begin with a letter or underscore. After the first character, names may contain letters, digits, underscores, hyphens, or periods.", col)
		case strings.Contains(e.List, "."):
			im.add("entities", r.row, "the '%s' value is invalid. Names used here must not contain a period.", col)
		case strings.HasPrefix(e.List, "__"):
			im.add("entities", r.row, "the '%s' value is invalid. Names used here must not begin with two underscores.", col)
		case seen[e.List]:
			im.add("entities", r.row, "the 'list_name' value is invalid. The 'list_name' column must not have any duplicate names.")
		}
		seen[e.List] = true
		creating := e.EntityID == "" // with an entity_id, create_if makes an upsert, which needs no label
		switch {
		case creating && e.Label == "":
			im.add("entities", r.row, "the entity declaration is invalid. The entity list name '%s' does not have a label, but a 'label' is required when creating entities.", e.List)
		case e.UpdateIf != "" && e.EntityID == "":
			im.add("entities", r.row, "the entity declaration is invalid. The entity list name '%s' does not have an 'entity_id' expression, but an 'entity_id' is required when updating entities.", e.List)
		case e.CreateIf != "" && e.EntityID != "" && e.UpdateIf == "":
			im.add("entities", r.row, "the entity declaration is invalid. The entity list name '%s' does not have an 'update_if' expression, but an 'update_if' is required when upserting entities.", e.List)
		}
		im.f.Entities = append(im.f.Entities, e)
	}
	im.assignSaves(saves)
	im.scopeEntities(saves)
}

// saveTo is a survey row's save_to cell.
type saveTo struct {
	q     *Question
	value string
}

func (im *importer) assignSaves(saves []saveTo) {
	owner := map[string]int{} // list#property → row
	for _, sv := range saves {
		q, v := sv.q, sv.value
		bad := func(f string, a ...any) {
			im.add("survey", q.Row, "the 'save_to' value is invalid. "+f, a...)
		}
		if q.Kind == KGroup || q.Kind == KRepeat {
			bad("Groups and repeats can't be saved as entity properties. Either remove or move the save_to value in this row.")
			continue
		}
		if strings.Count(v, "#") > 1 {
			bad("A 'save_to' value must have at most one '#' delimiter character. Please check the spelling of this 'save_to' value.")
			continue
		}
		list, prop, prefixed := strings.Cut(v, "#")
		if !prefixed {
			prop, list = v, ""
			if len(im.f.Entities) != 1 {
				bad("When there is more than one entity declaration, 'save_to' names must be prefixed with the entity 'list_name' that the property belongs to (my_list#my_save_to).")
				continue
			}
			list = im.f.Entities[0].List
		}
		i := slices.IndexFunc(im.f.Entities, func(e Entity) bool { return e.List == list })
		switch {
		case i < 0:
			bad("The entity list name '%s' was not found on the entities sheet.", list)
			continue
		case !validName(prop):
			bad("Names must begin with a letter or underscore. After the first character, names may contain letters, digits, underscores, hyphens, or periods.")
			continue
		case strings.EqualFold(prop, "name") || strings.EqualFold(prop, "label"):
			bad("Names used here must not be 'name' or 'label' (case-insensitive).")
			continue
		case strings.HasPrefix(prop, "__"):
			bad("Names used here must not begin with two underscores.")
			continue
		}
		key := list + "#" + prop
		if row, dup := owner[key]; dup {
			bad("The save_to property '%s' is already assigned by row '%d'. Either remove or change one of these duplicate save_to property names.", prop, row)
			continue
		}
		owner[key] = q.Row
		im.f.Entities[i].Properties[prop] = q.Path()
	}
}

// scopeEntities gives each entity the repeat it is made in: that of the
// questions saved to it, else the deepest its expressions reference. A
// reference from inside a repeat the entity is not in is refused, as are
// two entities made in one container.
func (im *importer) scopeEntities(saves []saveTo) {
	var plans []plan
	for i := range im.f.Entities {
		e := &im.f.Entities[i]
		var saved []*Question
		for _, sv := range saves {
			if l, _, ok := strings.Cut(sv.value, "#"); (ok && l == e.List) || (!ok && len(im.f.Entities) == 1) {
				saved = append(saved, sv.q)
			}
		}
		var refs []*Question
		for _, s := range []string{e.Label, e.EntityID, e.CreateIf, e.UpdateIf} {
			for _, m := range refRe.FindAllStringSubmatch(s, -1) {
				name := strings.TrimSpace(m[1])
				if qs := im.f.byName[name]; len(qs) == 1 {
					refs = append(refs, qs[0])
				} else if len(qs) == 0 && !metaRefs[name] {
					im.add("entities", e.Row, "the 'label' value is invalid. Reference variables must contain a name from the 'survey' sheet. Could not find the name '%s'.", name)
				}
			}
		}
		scope, ok := "", true
		for _, q := range saved {
			s := repeatScope(q)
			if scope != "" && s != scope {
				im.add("survey", q.Row, "the 'save_to' value is invalid. The entity list name '%s' has a reference in container scope '%s' which is not compatible with this 'save_to' reference.", e.List, s)
				ok = false
			}
			scope = max(scope, s)
		}
		if len(saved) == 0 {
			for _, q := range refs {
				if s := repeatScope(q); len(s) > len(scope) {
					scope = s
				}
			}
		}
		for _, q := range refs {
			if s := repeatScope(q); !within(scope, s) {
				im.add("entities", e.Row, "the entity declaration is invalid. The entity list name '%s' has a reference in container scope '%s' which is not compatible with the variable scope '%s'.", e.List, s, scope)
				ok = false
			}
		}
		if !ok {
			continue
		}
		e.Scope = scope
		plans = append(plans, plan{e, pinnedTo(saved)})
	}
	im.allocate(plans)
}

// plan is an entity waiting for its container: the one its save_to
// questions pin it to, else any free one of its repeat.
type plan struct {
	e   *Entity
	pin *Question // nil: not pinned
}

// allocate gives each entity its own container (the survey, a group or a
// repeat: ODK keeps one entity's meta per container), pinned ones first.
func (im *importer) allocate(plans []plan) {
	taken := map[*Question]int{}
	where := func(c *Question) string { return "/survey" + strings.TrimSuffix("/"+c.Path(), "/") }
	for _, p := range plans {
		if p.pin == nil {
			continue
		}
		if row, dup := taken[p.pin]; dup {
			im.add("entities", p.e.Row, "the entity declaration is invalid. Each container (survey, group, repeat) may have only one entity declaration, but there are no valid containers available in the scope: '%s', which has been allocated to the entity on row '%d'.", where(p.pin), row)
			continue
		}
		taken[p.pin] = p.e.Row
		p.e.container = p.pin
	}
	for _, p := range plans {
		if p.pin != nil {
			continue
		}
		free := slices.IndexFunc(im.containers(p.e.Scope), func(c *Question) bool { _, t := taken[c]; return !t })
		if free < 0 {
			top := im.containers(p.e.Scope)[0]
			im.add("entities", p.e.Row, "the entity declaration is invalid. Each container (survey, group, repeat) may have only one entity declaration, but there are no valid containers available in the scope: '%s', which has been allocated to the entity on row '%d'.", where(top), taken[top])
			continue
		}
		c := im.containers(p.e.Scope)[free]
		taken[c] = p.e.Row
		p.e.container = c
	}
}

// containers of a repeat scope ("" the survey): the repeat (or the root)
// and the groups inside it, not inside a deeper repeat, in form order.
func (im *importer) containers(scope string) []*Question {
	top := im.f.Root
	if scope != "" {
		im.f.Walk(func(q *Question) {
			if q.Kind == KRepeat && q.Path() == scope {
				top = q
			}
		})
	}
	out := []*Question{top}
	var walk func(q *Question)
	walk = func(q *Question) {
		for _, c := range q.Children {
			if c.Kind == KGroup {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(top)
	return out
}

// pinnedTo is the container (group, repeat or the root) of the first
// question saved to an entity.
func pinnedTo(saved []*Question) *Question {
	if len(saved) == 0 {
		return nil
	}
	p := saved[0].Parent
	for p.Parent != nil && p.Kind != KGroup && p.Kind != KRepeat {
		p = p.Parent
	}
	return p
}

// repeatScope is the path of q's nearest repeat ("" for none).
func repeatScope(q *Question) string {
	if r := q.Repeat(); r != nil {
		return r.Path()
	}
	if q.Kind == KRepeat {
		return q.Path()
	}
	return ""
}

// within: a reference from scope s may be used by an entity of scope e
// (s is e or one of its ancestors).
func within(e, s string) bool { return s == "" || s == e || strings.HasPrefix(e, s+"/") }

// collectSaves reads the save_to cells of the survey rows built into the
// tree.
func (im *importer) collectSaves(recs []record) []saveTo {
	byRow := map[int]*Question{}
	im.f.Walk(func(q *Question) { byRow[q.Row] = q })
	var out []saveTo
	for _, r := range recs {
		if v := r.cells["save_to"]; v != "" {
			if q := byRow[r.row]; q != nil {
				out = append(out, saveTo{q, v})
			}
		}
	}
	return out
}
