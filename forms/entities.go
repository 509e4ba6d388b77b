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
