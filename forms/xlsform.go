package forms

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/tessera-survey/tessera/forms/xpath"
)

// Problem is one thing wrong with an XLSForm, located by sheet and row.
type Problem struct {
	Sheet string // "" for the workbook as a whole
	Row   int    // 0 when not tied to a row
	Msg   string
}

func (p Problem) String() string {
	switch {
	case p.Row > 0:
		return fmt.Sprintf("[row : %d] On the '%s' sheet, %s", p.Row, p.Sheet, p.Msg)
	case p.Sheet != "":
		return fmt.Sprintf("On the '%s' sheet, %s", p.Sheet, p.Msg)
	}
	return p.Msg
}

// Problems is every problem found in a form; a form with any is rejected
// whole.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return fmt.Sprintf("the form has %d problem(s):\n%s", len(ps), strings.Join(lines, "\n"))
}

// Options tune Import.
type Options struct {
	// RootName is the instance root's name when settings give none
	// (default "data").
	RootName string
	// DefaultID is the form id when settings give none (a file's base
	// name, say).
	DefaultID string
}

// Import reads an XLSForm. It never panics on bad input and never returns a
// partial form: either a complete Form, or Problems listing everything
// wrong, each with its sheet and row.
func Import(wb *Workbook, opts Options) (f *Form, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, Problems{{Msg: fmt.Sprintf("internal error while reading the form: %v", r)}}
		}
	}()
	im := &importer{wb: wb, f: &Form{Choices: map[string][]Choice{}, Settings: map[string]string{}, byName: map[string][]*Question{}}}
	im.run(opts)
	if len(im.probs) > 0 {
		sort.SliceStable(im.probs, func(i, j int) bool {
			a, b := im.probs[i], im.probs[j]
			if a.Sheet != b.Sheet {
				return sheetOrder(a.Sheet) < sheetOrder(b.Sheet)
			}
			return a.Row < b.Row
		})
		return nil, im.probs
	}
	return im.f, nil
}

func sheetOrder(s string) int {
	switch s {
	case "":
		return 0
	case "settings":
		return 1
	case "survey":
		return 2
	}
	return 3
}

type importer struct {
	wb    *Workbook
	f     *Form
	probs Problems
	langs map[string]bool
	lists map[string]map[string]bool // sheet → its list names (sheetLists)
	insts map[string]bool            // secondary instance names (instances)
}

func (im *importer) add(sheet string, row int, f string, a ...any) {
	im.probs = append(im.probs, Problem{Sheet: sheet, Row: row, Msg: fmt.Sprintf(f, a...)})
}

// column is a parsed header cell: "label::French (fr)" → label, "French (fr)".
type column struct {
	base, lang string
	idx        int
	raw        string // the header as written
}

var columnAliases = map[string]string{
	"list name": "list_name", "readonly": "read_only", "calculate": "calculation",
	"jr:constraintmsg": "constraint_message", "jr:requiredmsg": "required_message",
	"constraint message": "constraint_message", "required message": "required_message",
	"choice filter": "choice_filter", "repeat count": "repeat_count",
	"requiredmsg": "required_message", "noapperrorstring": "no_app_error_string",
	"constraining_message": "constraint_message", "relevance": "relevant",
}

// choiceAliases apply on the choices sheet only.
var choiceAliases = map[string]string{"value": "name", "list name": "list_name"}

// surveyAliases apply on the survey sheet only (pyxform's older names).
var surveyAliases = map[string]string{"value": "name", "tag": "name", "caption": "label", "command": "type"}

// parseHeader reads a header row. Translations are "label::French (fr)";
// a sheet with no "::" anywhere uses one colon ("label:french"), as older
// workbooks do and pyxform still reads.
func parseHeader(row []string) []column {
	var cols []column
	delim := ":"
	if slices.ContainsFunc(row, func(h string) bool { return strings.Contains(h, "::") }) {
		delim = "::"
	}
	for i, h := range row {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if a, ok := columnAliases[strings.ToLower(h)]; ok {
			cols = append(cols, column{base: a, idx: i, raw: h})
			continue
		}
		base, lang, _ := strings.Cut(h, delim)
		base = strings.ToLower(strings.TrimSpace(base))
		if a, ok := columnAliases[base]; ok {
			base = a
		}
		cols = append(cols, column{base: base, lang: strings.TrimSpace(lang), idx: i, raw: h})
	}
	return cols
}

// aliasClashes lists header pairs that name one column by two of its
// names ("name" and "value"): which one holds the value is not clear.
func aliasClashes(cols []column) [][2]string {
	var out [][2]string
	first := map[string]column{}
	for _, c := range cols {
		k := c.base + "::" + c.lang
		if p, ok := first[k]; ok && !strings.EqualFold(p.raw, c.raw) {
			out = append(out, [2]string{p.raw, c.raw})
			continue
		}
		first[k] = c
	}
	return out
}

// record is one data row by column.
type record struct {
	row   int
	cells map[string]string // base (untranslated) → value
	texts map[string]Text   // base → translations
}

// smartQuotes are the typographic quotes a spreadsheet program types for
// ' and ": on the survey sheet they are read as the plain ones, as pyxform
// does, so "${a} = ‘yes’" is an expression.
var smartQuotes = strings.NewReplacer("\u2018", "'", "\u2019", "'", "\u201c", `"`, "\u201d", `"`)

func straightenQuotes(r record) {
	for k, v := range r.cells {
		r.cells[k] = smartQuotes.Replace(v)
	}
	for _, t := range r.texts {
		for lang, v := range t {
			t[lang] = smartQuotes.Replace(v)
		}
	}
}

func readRows(s *Sheet) (cols []column, recs []record) {
	if len(s.Rows) == 0 {
		return nil, nil
	}
	cols = parseHeader(s.Rows[0])
	aliases := map[string]string{}
	switch strings.ToLower(strings.TrimSpace(s.Name)) {
	case "choices":
		aliases = choiceAliases
	case "survey":
		aliases = surveyAliases
	}
	for i := range cols {
		if a, ok := aliases[cols[i].base]; ok {
			cols[i].base = a
		}
	}
	for i, row := range s.Rows[1:] {
		r := record{row: i + 2, cells: map[string]string{}, texts: map[string]Text{}}
		empty := true
		for _, c := range cols {
			if c.idx >= len(row) {
				continue
			}
			v := strings.TrimSpace(row[c.idx])
			if v == "" {
				continue
			}
			empty = false
			if c.lang == "" {
				r.cells[c.base] = v
			}
			if r.texts[c.base] == nil {
				r.texts[c.base] = Text{}
			}
			r.texts[c.base][c.lang] = v
		}
		if !empty {
			recs = append(recs, r)
		}
	}
	return cols, recs
}

var nameRe = regexp.MustCompile(`^[\p{L}_][\p{L}\p{N}_.\-]*$`)

func validName(s string) bool { return nameRe.MatchString(s) }

func (im *importer) run(opts Options) {
	f := im.f
	im.langs = map[string]bool{}
	f.RootName = opts.RootName
	if f.RootName == "" {
		f.RootName = "data"
	}
	if s := im.wb.Sheet("settings"); s != nil {
		_, recs := readRows(s)
		if len(recs) > 0 {
			for k, v := range recs[0].cells {
				f.Settings[k] = v
			}
			for lang, v := range recs[0].texts["attribute"] {
				if lang != "" {
					f.Settings["attribute::"+lang] = v // extra attributes of the XForm's instance root
				}
			}
		}
		if n := f.Settings["name"]; n != "" {
			if !validName(n) {
				im.add("settings", 1, "the 'name' value is invalid. Names must begin with a letter or underscore; after the first character, names may contain letters, digits, underscores, hyphens, or periods.")
			} else {
				f.RootName = n
			}
		}
	}
	if !validName(f.RootName) {
		im.add("", 0, "The 'form_name' value %q is invalid. Names must begin with a letter or underscore; after the first character, names may contain letters, digits, underscores, hyphens, or periods.", f.RootName)
	}
	f.ID = firstOf(f.Settings["form_id"], f.Settings["id_string"], opts.DefaultID, f.RootName)
	f.Title = firstOf(f.Settings["form_title"], f.Settings["title"], f.ID)
	f.Version = f.Settings["version"]
	f.DefaultLanguage = f.Settings["default_language"]
	if strings.ContainsAny(f.ID, "@\n") {
		im.add("settings", 0, "the form_id %q may not contain '@'", f.ID)
	} else if !validName(f.ID) {
		// A form id names files (exports, mirrors): never a path.
		im.add("settings", 0, "the form_id %q is invalid: it must begin with a letter or underscore; after the first character, it may contain letters, digits, underscores, hyphens, or periods", f.ID)
	}
	if strings.ContainsAny(f.Version, "@\n") {
		im.add("settings", 0, "the version %q may not contain '@'", f.Version)
	}

	im.readChoices()
	im.readExternalChoices()

	survey := im.wb.Sheet("survey")
	if survey == nil && len(im.wb.Sheets) == 1 && !knownSheets[strings.ToLower(strings.TrimSpace(im.wb.Sheets[0].Name))] {
		survey = &im.wb.Sheets[0] // a workbook of one sheet is its survey, as pyxform reads it
	}
	if survey == nil {
		im.add("", 0, "You must have a sheet named 'survey'.")
		return
	}
	cols, recs := readRows(survey)
	for _, r := range recs {
		straightenQuotes(r)
	}
	for _, c := range aliasClashes(cols) {
		im.add("", 0, "Invalid headers provided for sheet: 'survey'. Headers that are different names for the same column were found: '%s', '%s'. Rename or remove one of these columns.", c[0], c[1])
	}
	if len(cols) == 0 {
		im.add("survey", 1, "the header row is missing: it needs at least the columns 'type' and 'name'.")
		return
	}
	f.surveyCols = cols
	hasCol := map[string]bool{}
	for _, c := range cols {
		hasCol[c.base] = true
		if c.lang != "" && isTextColumn(c.base) {
			im.langs[c.lang] = true
		}
	}
	if !hasCol["type"] {
		im.add("survey", 1, "the 'type' column is missing.")
		return
	}
	im.buildTree(recs)
	im.expandLoops(f.Root)
	if saves := im.collectSaves(recs); len(saves) > 0 || im.wb.Sheet("entities") != nil {
		im.readEntities(saves)
	}
	im.checkReferences()
	im.checkCycles()
	im.checkTriggers()
	im.checkSearchLists()
	im.compile()
	if len(im.probs) == 0 && mayCollide(f) {
		// Secondary instance ids are the XForm's: two sources under one
		// id would give ODK clients the wrong data.
		for _, msg := range newXW(f).instanceConflicts() {
			im.add("survey", 0, "%s", msg)
		}
	}
	for l := range im.langs {
		f.Languages = append(f.Languages, l)
	}
	sort.Strings(f.Languages)
	if f.Version == "" {
		f.Version = "auto-" + im.fingerprint()
	}
}

var knownSheets = map[string]bool{"survey": true, "choices": true, "settings": true, "external_choices": true, "entities": true, "osm": true}

// mayCollide: only files (choices, external data, pulldata()) and the
// last-saved instance can take an id a choice list or another file has.
func mayCollide(f *Form) bool {
	found := false
	f.Walk(func(q *Question) {
		if q.ItemsetFile != "" || q.Kind == KExternalData {
			found = true
		}
		for _, s := range []string{q.Calculation, q.Constraint, q.Relevant, q.Required, q.ReadOnly, q.ChoiceFilter, q.Default} {
			if strings.Contains(s, "pulldata") || strings.Contains(s, "last-saved#") {
				found = true
			}
		}
	})
	return found
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func isTextColumn(base string) bool {
	switch base {
	case "label", "hint", "constraint_message", "required_message", "guidance_hint":
		return true
	}
	return false
}

func (im *importer) readChoices() {
	s := im.wb.Sheet("choices")
	if s == nil {
		return
	}
	cols, recs := readRows(s)
	im.f.choiceCols = cols
	for _, c := range cols {
		if c.base == "label" && c.lang != "" {
			im.langs[c.lang] = true
		}
	}
	dupOK := yes(im.f.Settings["allow_choice_duplicates"])
	seen := map[string]map[string]bool{}
	for _, r := range recs {
		list := r.cells["list_name"]
		if list == "" {
			continue
		}
		name := r.cells["name"]
		if name == "" {
			im.add("choices", r.row, "the 'name' value is invalid. Choices must have a name.")
			continue
		}
		if seen[list] == nil {
			seen[list] = map[string]bool{}
		}
		if seen[list][name] && !dupOK {
			im.add("choices", r.row, "the 'name' value is invalid. Choice names must be unique for each choice list: %q appears twice in list %q (set allow_choice_duplicates to yes on the settings sheet if this is intentional).", name, list)
			continue
		}
		seen[list][name] = true
		c := Choice{Row: r.row, Name: name, Label: r.texts["label"], Extra: map[string]string{}, media: map[string]Text{}, raw: &r}
		for _, m := range mediaColumns {
			if t := r.texts[m]; t != nil {
				c.media[m] = t
			}
		}
		for k, v := range r.cells {
			if k != "list_name" && k != "name" && k != "label" {
				c.Extra[k] = v
			}
		}
		im.f.Choices[list] = append(im.f.Choices[list], c)
	}
}

// readExternalChoices keeps the external_choices sheet's lists: every
// column but list_name, name and label is one a choice filter may read.
func (im *importer) readExternalChoices() {
	s := im.wb.Sheet("external_choices")
	if s == nil {
		return
	}
	_, recs := readRows(s)
	for _, r := range recs {
		list, name := r.cells["list_name"], r.cells["name"]
		if list == "" || name == "" {
			continue
		}
		c := Choice{Row: r.row, Name: name, Label: r.texts["label"], Extra: map[string]string{}}
		for k, v := range r.cells {
			if k != "list_name" && k != "name" && k != "label" {
				c.Extra[k] = v
			}
		}
		if im.f.ExternalChoices == nil {
			im.f.ExternalChoices = map[string][]Choice{}
		}
		im.f.ExternalChoices[list] = append(im.f.ExternalChoices[list], c)
	}
}

func yes(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "true", "true()", "1":
		return true
	}
	return false
}

var typeAliases = map[string]Kind{
	"text": KText, "string": KText, "integer": KInteger, "int": KInteger, "decimal": KDecimal,
	"date": KDate, "time": KTime, "datetime": KDateTime, "dateTime": KDateTime,
	"geopoint": KGeopoint, "gps": KGeopoint, "note": KNote, "calculate": KCalculate,
	"acknowledge": KAcknowledge, "trigger": KAcknowledge, "hidden": KHidden,
	"image": KImage, "photo": KImage, "audio": KAudio, "file": KFile,
	"start": KStart, "end": KEnd, "today": KToday, "deviceid": KDeviceID, "imei": KDeviceID, "username": KUsername,
	"range": KRange, "geotrace": KGeotrace, "geoshape": KGeoshape, "barcode": KBarcode, "video": KVideo,
	"background-audio": KBackgroundAudio, "background-geopoint": KBackgroundGeopoint, "audit": KAudit,
	"start-geopoint": KStartGeopoint, "phonenumber": KPhoneNumber, "simserial": KSimSerial,
	"subscriberid": KSubscriberID, "email": KEmail, "csv-external": KExternalData, "xml-external": KExternalData,
	"osm": KOSM,
	// The older spellings pyxform still reads (its question type dictionary).
	"add note prompt": KNote, "q note": KNote, "add text prompt": KText, "q string": KText,
	"add integer prompt": KInteger, "q int": KInteger, "add decimal prompt": KDecimal, "q decimal": KDecimal,
	"add date prompt": KDate, "q date": KDate, "add date time prompt": KDateTime, "add dateTime prompt": KDateTime,
	"q date time": KDateTime, "q dateTime": KDateTime, "date time": KDateTime,
	"add location prompt": KGeopoint, "q location": KGeopoint, "q geopoint": KGeopoint, "location": KGeopoint,
	"add image prompt": KImage, "q image": KImage, "q picture": KImage, "add audio prompt": KAudio, "q audio": KAudio,
	"add video prompt": KVideo, "q video": KVideo, "add barcode prompt": KBarcode, "q barcode": KBarcode,
	"add acknowledge prompt": KAcknowledge, "q acknowledge": KAcknowledge,
	"add calculate prompt": KCalculate, "q calculate": KCalculate,
	"get start time": KStart, "start time": KStart, "get end time": KEnd, "end time": KEnd, "get today": KToday,
	"get device id": KDeviceID, "device id": KDeviceID, "uri:deviceid": KDeviceID,
	"get subscriber id": KSubscriberID, "subscriber id": KSubscriberID, "uri:subscriberid": KSubscriberID,
	"get sim id": KSimSerial, "sim id": KSimSerial, "uri:simserial": KSimSerial,
	"get phone number": KPhoneNumber, "phone number": KText, "uri:phonenumber": KPhoneNumber, "uri:username": KUsername, "uri:email": KEmail,
}

// kLoop is a legacy loop ("begin loop over LIST" ... "end loop"): the
// questions inside are asked once per choice of LIST, each time in a group
// named after the choice, with "%(label)s" in their texts standing for the
// choice's label (pyxform's expansion). It never survives the import.
const kLoop Kind = "loop"

// expandLoops replaces every loop under q by its groups.
func (im *importer) expandLoops(q *Question) {
	var out []*Question
	for _, c := range q.Children {
		if c.Kind != kLoop {
			im.expandLoops(c)
			out = append(out, c)
			continue
		}
		for _, t := range c.Children {
			im.unname(t)
			if r := firstRepeat(t); r != nil && len(im.f.Choices[c.ListName]) > 1 {
				im.add("survey", r.Row, "the 'name' value '%s' is invalid. Repeat names must unique anywhere in the survey, at all levels of group or repeat nesting (it is asked once per choice of loop '%s').", r.Name, c.Name)
			}
		}
		// The loop stays a group (pyxform's layout, so Collect's answers
		// have the same paths), holding a group per choice.
		templates, list := c.Children, c.ListName
		c.Kind, c.Children, c.ListName = KGroup, nil, ""
		for _, ch := range im.f.Choices[list] {
			if ch.Name == "none" {
				continue
			}
			g := &Question{Row: c.Row, Kind: KGroup, Name: ch.Name, Label: ch.Label, Parent: c}
			for _, t := range templates {
				g.Children = append(g.Children, im.cloneForChoice(t, g, ch))
			}
			im.expandLoops(g)
			c.Children = append(c.Children, g)
		}
		out = append(out, c)
	}
	q.Children = out
}

func firstRepeat(q *Question) *Question {
	if q.Kind == KRepeat {
		return q
	}
	for _, c := range q.Children {
		if r := firstRepeat(c); r != nil {
			return r
		}
	}
	return nil
}

// unname drops a loop's template questions from the name index (their
// copies are indexed instead).
func (im *importer) unname(q *Question) {
	im.f.byName[q.Name] = slices.DeleteFunc(im.f.byName[q.Name], func(x *Question) bool { return x == q })
	if len(im.f.byName[q.Name]) == 0 {
		delete(im.f.byName, q.Name)
	}
	for _, c := range q.Children {
		im.unname(c)
	}
}

func (im *importer) cloneForChoice(t, parent *Question, ch Choice) *Question {
	c := *t
	c.Parent, c.Children = parent, nil
	c.Label, c.Hint = withChoiceLabel(t.Label, ch), withChoiceLabel(t.Hint, ch)
	if t.raw != nil {
		r := record{row: t.raw.row, cells: t.raw.cells, texts: maps.Clone(t.raw.texts)}
		r.texts["label"], r.texts["hint"] = c.Label, c.Hint
		if len(c.Hint) == 0 {
			delete(r.texts, "hint")
		}
		if len(c.Label) == 0 {
			delete(r.texts, "label")
		}
		c.raw = &r
	}
	for _, k := range t.Children {
		c.Children = append(c.Children, im.cloneForChoice(k, &c, ch))
	}
	if c.Name != "" {
		im.f.byName[c.Name] = append(im.f.byName[c.Name], &c)
	}
	return &c
}

func withChoiceLabel(t Text, ch Choice) Text {
	if len(t) == 0 {
		return t
	}
	out := Text{}
	for lang, s := range t {
		out[lang] = strings.ReplaceAll(s, "%(label)s", ch.Label.In(lang, ""))
	}
	return out
}

// typeCell is a type cell read: the kind, its choice list or choices
// file, or_other, and whether it begins or ends a group or repeat.
type typeCell struct {
	kind       Kind
	list, file string
	external   bool
	orOther    bool
	begin, end bool
}

// listTypes are the type cells followed by a choice list name (or, for
// the from_file ones, a file name), longest spelling first.
var listTypes = []struct {
	prefix   string
	kind     Kind
	file     bool
	external bool
}{
	{"select_one_from_file ", KSelectOne, true, false}, {"select_multiple_from_file ", KSelectMultiple, true, false},
	{"select_one_external ", KSelectOne, false, true}, {"select one external ", KSelectOne, false, true},
	{"add select one prompt using ", KSelectOne, false, false}, {"add select multiple prompt using ", KSelectMultiple, false, false},
	{"select all that apply from ", KSelectMultiple, false, false}, {"select multiple from ", KSelectMultiple, false, false},
	{"select one using ", KSelectOne, false, false}, {"select multiple using ", KSelectMultiple, false, false},
	{"select one from ", KSelectOne, false, false},
	{"select_one ", KSelectOne, false, false}, {"select one ", KSelectOne, false, false},
	{"select_multiple ", KSelectMultiple, false, false}, {"select multiple ", KSelectMultiple, false, false},
	{"q select1 ", KSelectOne, false, false}, {"q select ", KSelectMultiple, false, false},
	{"rank ", KRank, false, false}, {"osm ", KOSM, false, false},
}

// choiceFileExt: the files select_*_from_file reads.
var choiceFileExt = []string{".csv", ".xml", ".geojson"}

func parseType(raw string) (typeCell, error) {
	t := strings.Join(strings.Fields(raw), " ")
	low := strings.ToLower(t)
	switch strings.ReplaceAll(low, "_", " ") {
	case "begin group":
		return typeCell{kind: KGroup, begin: true}, nil
	case "end group":
		return typeCell{kind: KGroup, end: true}, nil
	case "begin repeat":
		return typeCell{kind: KRepeat, begin: true}, nil
	case "end repeat":
		return typeCell{kind: KRepeat, end: true}, nil
	case "end loop":
		return typeCell{kind: kLoop, end: true}, nil
	}
	if p := "begin loop over "; len(t) > len(p) && strings.ReplaceAll(low[:len(p)], "_", " ") == p {
		rest := strings.TrimSpace(t[len(p):]) // "begin_loop over" is as long
		if rest == "" || strings.Contains(rest, " ") {
			return typeCell{}, fmt.Errorf("the 'type' value %q is invalid: give one choice list name after begin loop over", raw)
		}
		return typeCell{kind: kLoop, list: rest, begin: true}, nil
	}
	for _, p := range listTypes {
		if !strings.HasPrefix(low, p.prefix) {
			continue
		}
		c := typeCell{kind: p.kind, external: p.external}
		rest := strings.TrimSpace(t[len(p.prefix):])
		if f := strings.Fields(rest); len(f) == 2 && (f[1] == "or_other" || f[1] == "or other") {
			rest, c.orOther = f[0], true
		} else if l, ok := strings.CutSuffix(rest, " or specify other"); ok {
			rest, c.orOther = l, true // an older spelling of or_other
		}
		if rest == "" || strings.ContainsAny(rest, " ") {
			return c, fmt.Errorf("the 'type' value %q is invalid: give one choice list name after %s", raw, strings.TrimSpace(p.prefix))
		}
		if p.file {
			ext := strings.ToLower(filepath.Ext(rest))
			if !slices.Contains(choiceFileExt, ext) {
				return c, fmt.Errorf("the 'type' value %q is invalid: the choices file must be .csv, .xml or .geojson (%q)", raw, rest)
			}
			c.file = rest
			return c, nil
		}
		c.list = rest
		return c, nil
	}
	if low == "select_one" || low == "select_multiple" || low == "rank" {
		return typeCell{}, fmt.Errorf("the 'type' value %q is invalid: it needs a choice list name", raw)
	}
	if k, ok := typeAliases[t]; ok {
		return typeCell{kind: k}, nil
	}
	if k, ok := typeAliases[low]; ok {
		return typeCell{kind: k}, nil
	}
	return typeCell{}, fmt.Errorf("the 'type' value %q is not a question type Tessera supports", raw)
}

func (im *importer) buildTree(recs []record) {
	f := im.f
	f.Root = &Question{Kind: KGroup, Name: f.RootName}
	stack := []*Question{f.Root}
	repeatNames := map[string]int{}
	for _, r := range recs {
		rawType := r.cells["type"]
		if rawType == "" && r.cells["name"] == "" {
			continue // a row of notes to the form's authors, as pyxform reads it
		}
		if rawType == "" {
			im.add("survey", r.row, "the 'type' value is missing: every row with content needs a type.")
			continue
		}
		tc, err := parseType(rawType)
		kind, list, orOther, begin, end := tc.kind, tc.list, tc.orOther, tc.begin, tc.end
		if err != nil {
			im.add("survey", r.row, "%v", err)
			continue
		}
		top := stack[len(stack)-1]
		if end {
			if len(stack) == 1 || top.Kind != kind {
				name := r.cells["name"]
				if name == "" {
					name = "unknown"
				}
				im.add("survey", r.row, "Unmatched 'end_%s'. No matching 'begin_%s' was found for the name '%s'.", kind, kind, name)
				continue
			}
			stack = stack[:len(stack)-1]
			if r.cells["save_to"] != "" {
				im.add("survey", r.row, "the 'save_to' value is invalid. Groups and repeats can't be saved as entity properties. Either remove or move the save_to value in this row.")
			}
			continue
		}
		q := &Question{
			Row: r.row, Kind: kind, Name: r.cells["name"], ListName: list, OrOther: orOther, Parent: top,
			ItemsetFile: tc.file, External: tc.external, Trigger: r.cells["trigger"],
			ExternalType: map[bool]string{true: "xml", false: "csv"}[strings.HasPrefix(strings.ToLower(strings.TrimSpace(rawType)), "xml")],
			Label:        r.texts["label"], Hint: r.texts["hint"],
			RequiredMessage: r.texts["required_message"], ConstraintMessage: r.texts["constraint_message"],
			Required: r.cells["required"], Relevant: r.cells["relevant"], Constraint: r.cells["constraint"],
			Calculation: r.cells["calculation"], ChoiceFilter: r.cells["choice_filter"], RepeatCount: r.cells["repeat_count"],
			ReadOnly: r.cells["read_only"], Default: r.cells["default"], Appearance: r.cells["appearance"],
			Sensitive: yes(r.cells["sensitive"]), raw: &r,
		}
		im.checkQuestion(q, r, top, repeatNames)
		top.Children = append(top.Children, q)
		if q.Name != "" {
			f.byName[q.Name] = append(f.byName[q.Name], q)
		}
		if begin {
			stack = append(stack, q)
		}
	}
	for _, open := range stack[1:] {
		im.add("survey", open.Row, "Unmatched 'begin_%s'. No matching 'end_%s' was found for the name '%s'.", open.Kind, open.Kind, open.Name)
	}
	// A repeat_count that is not a plain reference makes a generated
	// "<repeat>_count" calculate beside the repeat (as ODK does), which
	// must not collide with a question of that name.
	f.Walk(func(q *Question) {
		if q.Kind != KRepeat || q.RepeatCount == "" || isBareRef(q.RepeatCount) {
			return
		}
		gen := q.Name + "_count"
		for _, sib := range q.Parent.Children {
			if sib.Name == gen {
				im.add("survey", sib.Row, "the 'name' value '%s' is invalid. It is taken by the count of repeat '%s' (from its repeat_count): questions, groups, and repeats must be unique within their nearest parent group or repeat.", gen, q.Name)
			}
		}
	})
}

var bareRefRe = regexp.MustCompile(`^\$\{[^}]+\}$`)

func isBareRef(s string) bool { return bareRefRe.MatchString(strings.TrimSpace(s)) }

func (im *importer) checkQuestion(q *Question, r record, parent *Question, repeatNames map[string]int) {
	row := r.row
	if q.Kind == KAudit {
		if q.Name != "" && q.Name != "audit" {
			im.add("survey", row, "Audits must always be named 'audit'. The name column should be left blank.")
		}
		q.Name = "audit"
	}
	if q.Name == "" && q.Kind == KNote {
		q.Name = fmt.Sprintf("generated_note_name_%d", row) // as pyxform names them
	}
	if q.Name == "" {
		im.add("survey", row, "Question or group with no name.")
		return
	}
	if !validName(q.Name) {
		im.add("survey", row, "the 'name' value is invalid. Names must begin with a letter or underscore. After the first character, names may contain letters, digits, underscores, hyphens, or periods. (%q)", q.Name)
		return
	}
	if q.Name == "meta" {
		im.add("survey", row, "the 'name' value 'meta' is invalid. The name 'meta' is reserved for form metadata.")
	}
	for _, sib := range parent.Children {
		if sib.Name == q.Name {
			im.add("survey", row, "the 'name' value '%s' is invalid. Questions, groups, and repeats must be unique within their nearest parent group or repeat, or the survey if not inside a group or repeat.", q.Name)
			break
		}
	}
	if q.Kind == KRepeat {
		if q.Name == im.f.RootName {
			im.add("survey", row, "the 'name' value '%s' is invalid. Repeat names must not be the same as the survey root (which defaults to 'data').", q.Name)
		}
		if prev, ok := repeatNames[q.Name]; ok {
			im.add("survey", row, "the 'name' value '%s' is invalid. Repeat names must unique anywhere in the survey, at all levels of group or repeat nesting (first at row %d).", q.Name, prev)
		}
		repeatNames[q.Name] = row
	}
	if q.Kind == KCalculate && q.Calculation == "" && !IsDynamic(q.Default) {
		im.add("survey", row, "Missing calculation.")
	}
	if t := r.texts["media"]; len(t) > 0 {
		bigOnly := true
		for k := range t {
			bigOnly = bigOnly && strings.HasPrefix(k, "big-image")
		}
		if bigOnly && len(r.texts["image"]) == 0 {
			im.add("survey", row, "To use big-image, you must also specify an image for the survey element named %s.", q.Name)
		}
	}
	if needsLabel(q) && q.Label.Empty() && q.Hint.Empty() && !hasMediaLabel(r) {
		im.add("survey", row, "The survey element named '%s' has no label or hint.", q.Name)
	}
	if q.OrOther && q.ChoiceFilter != "" {
		im.add("survey", row, "Choice filter not supported with or_other.")
	}
	if q.ListName != "" && !isBareRef(q.ListName) {
		if q.Kind == KOSM {
			if !im.sheetLists("osm")[q.ListName] {
				im.add("survey", row, "the 'type' value is invalid: the list %q is not on the 'osm' sheet.", q.ListName)
			} else {
				im.readOSM()
			}
		} else if q.External {
			if !im.sheetLists("external_choices")[q.ListName] {
				im.add("survey", row, "the 'type' value is invalid: the choice list %q is not on the 'external_choices' sheet.", q.ListName)
			}
		} else if _, ok := im.f.Choices[q.ListName]; !ok {
			im.add("survey", row, "the 'type' value is invalid: the choice list %q is not on the 'choices' sheet.", q.ListName)
		}
	}
	if p := r.cells["parameters"]; p != "" {
		q.Parameters = parseParameters(p)
		if !wellFormedParameters(p) {
			im.add("survey", row, "the 'parameters' value is invalid. Parameters must be in the form of 'key1=value1 key2=value2'.")
			return
		}
		im.checkParameters(q, row)
		if q.Kind == KRange {
			im.checkRange(q, row)
		}
		if q.Kind == KAudit {
			im.checkAuditLocation(q, row)
		}
	}
}

// checkAuditLocation: an audit that records locations names all three of
// their parameters, the oldest fix no younger than the interval.
func (im *importer) checkAuditLocation(q *Question, row int) {
	p := q.Parameters
	n := 0
	for _, k := range []string{"location-priority", "location-min-interval", "location-max-age"} {
		if _, ok := p[k]; ok {
			n++
		}
	}
	if n == 0 {
		return
	}
	if n < 3 {
		im.add("survey", row, "To include location information in the audit, 'location-priority', 'location-min-interval', and 'location-max-age' are required parameters.")
		return
	}
	lo, err1 := strconv.ParseFloat(p["location-min-interval"], 64)
	hi, err2 := strconv.ParseFloat(p["location-max-age"], 64)
	if err1 == nil && err2 == nil && hi < lo {
		im.add("survey", row, "Parameter location-max-age must be greater than or equal to location-min-interval.")
	}
}

var triggerRefRe = regexp.MustCompile(`^\$\{([^}]+)\}$`)

// checkTriggers: a trigger cell is a comma-separated list of ${name}
// references to questions a person answers; a background-geopoint needs
// one and takes no calculation.
func (im *importer) checkTriggers() {
	im.f.Walk(func(q *Question) {
		if q.Kind == KBackgroundGeopoint {
			if q.Trigger == "" {
				im.add("survey", q.Row, "For 'background-geopoint' questions, the 'trigger' column must not be empty.")
			}
			if q.Calculation != "" {
				im.add("survey", q.Row, "For 'background-geopoint' questions, the 'calculation' column must be empty.")
			}
		}
		if q.Trigger == "" {
			return
		}
		for _, part := range strings.Split(q.Trigger, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			m := triggerRefRe.FindStringSubmatch(part)
			switch {
			case m == nil && strings.Count(part, "${") > 1:
				im.add("survey", q.Row, "the 'trigger' value is invalid. Reference variable lists must have a comma between each variable.")
				return
			case m == nil:
				im.add("survey", q.Row, "the 'trigger' value is invalid. Reference variables must start with '${', then a question name, and end with '}'.")
				return
			}
			qs := im.f.byName[strings.TrimSpace(m[1])]
			if len(qs) == 0 {
				im.add("survey", q.Row, "the 'trigger' value is invalid. Reference variables must contain a name from the 'survey' sheet. Could not find the name '%s'.", m[1])
				return
			}
			// Without a body control (a calculation, or any question with a
			// calculation and no label or hint) nothing can be changed to
			// trigger it.
			if t := qs[0]; t.Kind == KCalculate || t.Kind == KHidden || t.Kind.IsMeta() ||
				(t.Calculation != "" && t.Label.Empty() && t.Hint.Empty()) {
				im.add("survey", q.Row, "The question ${%s} is not user-visible so it can't be used as a calculation trigger for question ${%s}.", t.Name, q.Name)
			}
		}
	})
}

// checkSearchLists: a list a search() select lists in its body cannot
// also be another select's itemset (ODK reads one or the other).
func (im *importer) checkSearchLists() {
	search := map[string][]string{}
	other := map[string][]string{}
	var order []string
	im.f.Walk(func(q *Question) {
		if (q.Kind != KSelectOne && q.Kind != KSelectMultiple) || q.ListName == "" || q.ItemsetFile != "" {
			return
		}
		if searchCall.MatchString(q.Appearance) {
			if _, ok := search[q.ListName]; !ok {
				order = append(order, q.ListName)
			}
			search[q.ListName] = append(search[q.ListName], q.Name)
		} else {
			other[q.ListName] = append(other[q.ListName], "'"+q.Name+"'")
		}
	})
	for _, l := range order {
		if len(other[l]) > 0 {
			im.add("survey", 0, "Question '%s' uses 'search()', and its select type references the choice list name '%s'. This choice list name is referenced by at least one other question that is not using 'search()', which will not work: %s. Either 1) use 'search()' for all questions using this choice list name, or 2) use a different choice list name for the question using 'search()'.", search[l][0], l, strings.Join(other[l], ", "))
		}
	}
}

var searchCall = regexp.MustCompile(`search\(.*?\)`)

// wellFormedParameters: every part is key=value.
func wellFormedParameters(s string) bool {
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || unicode.IsSpace(r) }) {
		if k, _, ok := strings.Cut(part, "="); !ok || strings.TrimSpace(k) == "" {
			return false
		}
	}
	return true
}

// checkRange checks a range's parameters as ODK reads them: numbers, a
// step and tick interval that fit the range, a placeholder on a step, and
// tick labels on the ticks.
func (im *importer) checkRange(q *Question, row int) {
	bad := func(f string, a ...any) {
		im.add("survey", row, "the 'parameters' value is invalid. For the 'range' question type, "+f, a...)
	}
	p := q.Parameters
	num := map[string]float64{"start": 1, "end": 10, "step": 1}
	for _, k := range []string{"start", "end", "step", "tick_interval", "placeholder"} {
		v, ok := p[k]
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			bad("the parameter '%s' must be a number.", k)
			return
		}
		num[k] = f
	}
	start, end, step := num["start"], num["end"], num["step"]
	span := math.Abs(end - start)
	multiple := func(x, of float64) bool {
		k := x / of
		return math.Abs(k-math.Round(k)) < 1e-9
	}
	if step == 0 {
		bad("the parameter 'step' must not be '0' (zero).")
		return
	}
	if math.Abs(step) > span && span > 0 {
		bad("the parameter 'step' must not be larger than the range (the difference between 'start' and 'end').")
	}
	_, hasTick := p["tick_interval"]
	_, hasPlace := p["placeholder"]
	labels, hasLabels := p["tick_labelset"]
	tickedLook := !slices.ContainsFunc(strings.Fields(q.Appearance), func(a string) bool { return a != "vertical" && a != "no-ticks" })
	if (hasTick || hasPlace || hasLabels) && !tickedLook {
		bad("the parameters 'tick_interval', 'placeholder', and 'tick_labelset' are only supported for the appearances 'vertical', 'no-ticks', 'vertical no-ticks', and the default (empty) horizontal.")
		return
	}
	tick := step
	if hasTick {
		tick = num["tick_interval"]
		switch {
		case tick == 0:
			bad("the parameter 'tick_interval' must not be '0' (zero).")
			return
		case math.Abs(tick) > span:
			bad("the parameter 'tick_interval' must not be larger than the range (the difference between 'start' and 'end').")
		case !multiple(tick, step):
			bad("the parameter 'tick_interval' must be a multiple of 'step'.")
		}
	}
	lo, hi := min(start, end), max(start, end)
	if hasPlace {
		ph := num["placeholder"]
		if ph < lo || ph > hi {
			bad("the parameter 'placeholder' must be between the 'start' and 'end' values, inclusive).")
		} else if !multiple(ph-start, step) {
			bad("the parameter 'placeholder' must be a multiple of 'step'.")
		}
	}
	if !hasLabels {
		return
	}
	cs, ok := im.f.Choices[labels]
	if !ok {
		bad("the parameter 'tick_labelset' must be a choice list name from the 'list_name' column on the choices sheet.")
		return
	}
	noTicks := strings.Contains(q.Appearance, "no-ticks")
	distinct := map[string]bool{}
	for _, c := range cs {
		distinct[c.Name] = true
	}
	if noTicks && len(distinct) != 2 {
		bad("the parameter 'tick_labelset' choice list must have only 2 items when the 'appearance' is 'no-ticks'.")
		return
	}
	for _, c := range cs {
		v, err := strconv.ParseFloat(c.Name, 64)
		switch {
		case err != nil:
			bad("the parameter 'tick_labelset' choice values must all be numbers.")
		case v < lo || v > hi:
			bad("the parameter 'tick_labelset' choices must be between the 'start' and 'end' values, inclusive.")
		case noTicks && v != start && v != end:
			bad("the parameter 'tick_labelset' choice list values may only match the range 'start' and 'end' values when the 'appearance' is 'no-ticks'.")
		case !noTicks && !multiple(v-start, tick):
			what := "step"
			if hasTick {
				what = "tick_interval"
			}
			bad("the parameter 'tick_labelset' choices' values must be equal to the start of the range plus a multiple of '%s'.", what)
		default:
			continue
		}
		return
	}
}

// hasMediaLabel: an image, audio or video shown as the question's label
// (the image column, or media::image::LANG).
func hasMediaLabel(r record) bool {
	for _, k := range []string{"image", "audio", "video", "big-image", "media"} {
		if len(r.texts[k]) > 0 {
			return true
		}
	}
	return false
}

func needsLabel(q *Question) bool {
	if q.Calculation != "" || q.Trigger != "" {
		return false // a calculated question shows no control
	}
	switch q.Kind {
	case KCalculate, KHidden, KGroup, KRepeat, KExternalData, kLoop:
		return false
	}
	return !q.Kind.IsMeta()
}

// sheetLists are the list names of a sheet (osm, external_choices,
// entities), read once per import.
// readOSM keeps the osm sheet's tags (the XForm lists them in the
// question).
func (im *importer) readOSM() {
	if im.f.osmTags != nil {
		return
	}
	im.f.osmTags = map[string][]Choice{}
	s := im.wb.Sheet("osm")
	cols, recs := readRows(s)
	im.f.osmCols = cols
	for _, r := range recs {
		if l, n := r.cells["list_name"], r.cells["name"]; l != "" && n != "" {
			im.f.osmTags[l] = append(im.f.osmTags[l], Choice{Row: r.row, Name: n, Label: r.texts["label"], raw: &r})
		}
	}
}

func (im *importer) sheetLists(sheet string) map[string]bool {
	if out, ok := im.lists[sheet]; ok {
		return out
	}
	out := map[string]bool{}
	if s := im.wb.Sheet(sheet); s != nil {
		_, recs := readRows(s)
		for _, r := range recs {
			if l := r.cells["list_name"]; l != "" {
				out[l] = true
			}
		}
	}
	if im.lists == nil {
		im.lists = map[string]map[string]bool{}
	}
	im.lists[sheet] = out
	return out
}

// instances are the names of the form's secondary instances besides its
// choice lists: csv-external/xml-external questions, choices files (by
// base name) and entity lists. Read once per import: reference-geometry
// parameters ask for them row by row.
func (im *importer) instances() map[string]bool {
	if im.insts != nil {
		return im.insts
	}
	im.insts = maps.Clone(im.sheetLists("entities"))
	if s := im.wb.Sheet("survey"); s != nil {
		_, recs := readRows(s)
		for _, r := range recs {
			tc, err := parseType(r.cells["type"])
			switch {
			case err != nil:
			case tc.kind == KExternalData:
				im.insts[r.cells["name"]] = true
			case tc.file != "":
				im.insts[strings.TrimSuffix(tc.file, filepath.Ext(tc.file))] = true
			}
		}
	}
	return im.insts
}

// parseParameters reads "key=value key2=value2" (also ";" or "," separated).
func parseParameters(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || unicode.IsSpace(r) }) {
		k, v, _ := strings.Cut(part, "=")
		out[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return out
}

var paramKeys = map[Kind][]string{
	KGeopoint:        {"allow-mock-accuracy", "capture-accuracy", "reference-geometry", "warning-accuracy"},
	KGeotrace:        {"allow-mock-accuracy", "incremental", "reference-geometry"},
	KGeoshape:        {"allow-mock-accuracy", "incremental", "reference-geometry"},
	KRange:           {"end", "placeholder", "start", "step", "tick_interval", "tick_labelset"},
	KRank:            {"randomize", "seed"},
	KImage:           {"app", "max-pixels"},
	KAudio:           {"quality"},
	KBackgroundAudio: {"quality"},
	KAudit: {"identify-user", "location-max-age", "location-min-interval", "location-priority",
		"track-changes", "track-changes-reasons"},
	KText:           {"rows"},
	KSelectOne:      {"randomize", "seed"},
	KSelectMultiple: {"randomize", "seed"},
}

var packageRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$`)

func (im *importer) checkParameters(q *Question, row int) {
	allowed, known := paramKeys[q.Kind]
	if !known {
		return
	}
	if q.ItemsetFile != "" {
		allowed = append(slices.Clip(allowed), "label", "value") // the file's columns
	}
	var unknown []string
	for k := range q.Parameters {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		im.add("survey", row, "the 'parameters' value is invalid. The accepted parameter keys for this question type are '%s'. The following are invalid: '%s'.",
			strings.Join(allowed, ", "), strings.Join(unknown, ", "))
		return
	}
	p := q.Parameters
	isNum := func(s string) bool { _, err := strconv.ParseFloat(s, 64); return err == nil }
	isInt := func(s string) bool { _, err := strconv.Atoi(s); return err == nil }
	for k, v := range p {
		switch k {
		case "incremental":
			if lv := strings.ToLower(v); lv != "true" && lv != "yes" && lv != "true()" {
				im.add("survey", row, "the 'parameters' value is invalid. For geoshape and geotrace questions, the 'incremental' parameter may either be 'true' or not included.")
			}
		case "label", "value":
			if q.ItemsetFile != "" && !validName(v) {
				im.add("survey", row, "the 'parameters (%s)' value is invalid. Names must begin with a letter or underscore. After the first character, names may contain letters, digits, underscores, hyphens, or periods.", k)
			}
		case "allow-mock-accuracy":
			if v != "true" && v != "false" {
				im.add("survey", row, "the 'parameters' value is invalid. The 'allow-mock-accuracy' parameter must be either 'true' or 'false'.")
			}
		case "capture-accuracy", "warning-accuracy":
			if !isNum(v) {
				im.add("survey", row, "the 'parameters' value is invalid. The '%s' parameter must have a numeric value.", k)
			}
		case "max-pixels", "rows":
			if !isInt(v) {
				im.add("survey", row, "Parameter %s must have an integer value.", k)
			}
		case "app":
			// ODK ignores the app for appearances that draw in place.
			if (q.Appearance == "" || q.Appearance == "annotate") && !packageRe.MatchString(v) {
				im.add("survey", row, "Parameter 'app' has an invalid Android package name - the package name must have at least one '.' separator.")
			}
		case "reference-geometry":
			if _, ok := im.f.Choices[v]; !ok && !isBareRef(v) && !im.instances()[v] {
				im.add("survey", row, "the 'parameters' value is invalid. The 'reference-geometry' parameter must match a choice list name (%q is not one).", v)
			}
		case "location-priority":
			if !slices.Contains([]string{"no-power", "low-power", "balanced", "high-accuracy"}, v) {
				im.add("survey", row, "Parameter location-priority must be set to no-power, low-power, balanced, or high-accuracy: '%s' is an invalid value.", v)
			}
		case "location-min-interval", "location-max-age":
			if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 {
				im.add("survey", row, "Parameter %s must be greater than or equal to zero.", k)
			}
		case "track-changes", "identify-user":
			if v != "true" && v != "false" {
				im.add("survey", row, "%s must be set to true or false: '%s' is an invalid value.", k, v)
			}
		case "track-changes-reasons":
			if v != "on-form-edit" {
				im.add("survey", row, "track-changes-reasons must be set to on-form-edit.")
			}
		case "quality":
			ok := v == "normal" || v == "low" || v == "voice-only" || (v == "external" && q.Kind == KAudio)
			if !ok {
				im.add("survey", row, "Invalid value for quality: %q (normal, low, voice-only%s).", v, map[bool]string{true: " or external", false: ""}[q.Kind == KAudio])
			}
		case "randomize":
			if lv := strings.ToLower(v); lv != "true" && lv != "false" {
				im.add("survey", row, "randomize must be set to true or false: '%s' is an invalid value", v)
			}
		case "seed":
			if !isNum(v) && !isBareRef(v) {
				im.add("survey", row, "seed value must be a number or a reference to another field.")
			} else if strings.ToLower(p["randomize"]) != "true" {
				im.add("survey", row, "Parameters must include randomize=true to use a seed.")
			}
		}
	}
}

var refRe = regexp.MustCompile(`\$\{([^}]*)\}`)

// checkCycles refuses calculations that depend on themselves, directly or
// through others (ODK's engine stops at them: "cycle detected"); the
// message names the questions in the cycle, at the row of the first.
func (im *importer) checkCycles() {
	deps := map[*Question][]*Question{}
	var order []*Question
	im.f.Walk(func(q *Question) {
		if q.Calculation == "" {
			return
		}
		order = append(order, q)
		for _, m := range refRe.FindAllStringSubmatch(q.Calculation, -1) {
			if qs := im.f.byName[strings.TrimSpace(m[1])]; len(qs) == 1 && qs[0].Calculation != "" {
				deps[q] = append(deps[q], qs[0])
			}
		}
	})
	const (
		unseen = iota
		onPath
		done
	)
	state := map[*Question]int{}
	var path []*Question
	var visit func(q *Question) bool
	visit = func(q *Question) bool {
		state[q] = onPath
		path = append(path, q)
		for _, d := range deps[q] {
			switch state[d] {
			case onPath:
				cycle := path[slices.Index(path, d):]
				names := make([]string, 0, len(cycle)+1)
				for _, c := range cycle {
					names = append(names, "${"+c.Name+"}")
				}
				names = append(names, "${"+d.Name+"}")
				im.add("survey", d.Row, "the 'calculation' value is invalid: the calculation of '%s' depends on itself (%s).", d.Name, strings.Join(names, " → "))
				return true
			case unseen:
				if visit(d) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		state[q] = done
		return false
	}
	for _, q := range order {
		if state[q] == unseen && visit(q) {
			return // one cycle is reported: its nodes stay on the path
		}
	}
}

// checkReferences checks every ${name}: it must name a question, and one
// that is unique in the survey.
func (im *importer) checkReferences() {
	check := func(sheet string, row int, col, s string) {
		for _, m := range refRe.FindAllStringSubmatch(s, -1) {
			name := strings.TrimSpace(m[1])
			name = strings.TrimPrefix(name, "last-saved#")
			if metaRefs[name] && !yes(im.f.Settings["omit_instanceid"]) {
				continue
			}
			switch qs := im.f.byName[name]; {
			case len(qs) == 0:
				im.add(sheet, row, "the '%s' value is invalid. Reference variables must contain a name from the 'survey' sheet. Could not find the name '%s'.", col, name)
			case len(qs) > 1:
				im.add(sheet, row, "the '%s' value is invalid. Reference variables names must be unique anywhere in the 'survey'. The name '%s' appears more than once.", col, name)
			}
		}
	}
	texts := func(sheet string, row int, col string, t Text) {
		for lang, s := range t {
			c := col
			if lang != "" {
				c += "::" + lang
			}
			check(sheet, row, c, s)
		}
	}
	im.f.Walk(func(q *Question) {
		texts("survey", q.Row, "label", q.Label)
		texts("survey", q.Row, "hint", q.Hint)
		texts("survey", q.Row, "constraint_message", q.ConstraintMessage)
		texts("survey", q.Row, "required_message", q.RequiredMessage)
		for col, s := range map[string]string{"required": q.Required, "relevant": q.Relevant, "constraint": q.Constraint,
			"calculation": q.Calculation, "choice_filter": q.ChoiceFilter, "repeat_count": q.RepeatCount,
			"read_only": q.ReadOnly, "default": q.Default} {
			check("survey", q.Row, col, s)
		}
	})
	lists := make([]string, 0, len(im.f.Choices))
	for l := range im.f.Choices {
		lists = append(lists, l)
	}
	sort.Strings(lists)
	for _, l := range lists {
		for _, c := range im.f.Choices[l] {
			texts("choices", c.Row, "label", c.Label)
			for col, t := range c.media {
				texts("choices", c.Row, col, t)
			}
		}
	}
	for col, v := range im.f.Settings {
		check("settings", 2, col, v)
	}
	im.f.Walk(func(q *Question) {
		if isBareRef(q.ListName) {
			check("survey", q.Row, "type", q.ListName)
		}
	})
}

// metaRefs are names a form may reference without defining them.
var metaRefs = map[string]bool{"instanceID": true}

// mediaColumns of the choices sheet may hold ${} references (unlike other
// extra columns, which are data for choice filters).
var mediaColumns = []string{"audio", "image", "video", "big-image", "media"}

// IsDynamic reports whether a default is an expression evaluated when the
// record is created (rather than a literal value).
func IsDynamic(def string) bool {
	d := strings.TrimSpace(def)
	return strings.Contains(d, "${") || strings.Contains(d, "(") || strings.HasPrefix(d, "/") || strings.HasPrefix(d, "./") || strings.HasPrefix(d, "../")
}

// compile parses every expression column so that a form whose logic cannot
// run is rejected at import, not in the field.
func (im *importer) compile() {
	im.f.Walk(func(q *Question) {
		parse := func(col, s string, boolish bool) *xpath.Expr {
			s = strings.TrimSpace(s)
			if s == "" || (boolish && isYesNo(s)) {
				return nil
			}
			e, err := xpath.Parse(s)
			if err != nil {
				im.add("survey", q.Row, "the '%s' value is invalid: %v", col, err)
				return nil
			}
			for _, fn := range e.Functions() {
				if !xpath.Known(fn) && !extraFuncs[fn] {
					im.add("survey", q.Row, "the '%s' value is invalid: unknown function %s()", col, fn)
				}
			}
			return e
		}
		q.relevant = parse("relevant", q.Relevant, false)
		q.constraint = parse("constraint", q.Constraint, false)
		q.calculation = parse("calculation", q.Calculation, false)
		q.choiceFilter = parse("choice_filter", q.ChoiceFilter, false)
		q.required = parse("required", q.Required, true)
		q.readOnly = parse("read_only", q.ReadOnly, true)
		if q.RepeatCount != "" {
			if _, err := strconv.Atoi(q.RepeatCount); err != nil {
				q.repeatCount = parse("repeat_count", q.RepeatCount, false)
			}
		}
	})
}

// Functions the form engine provides beyond the expression library.
var extraFuncs = map[string]bool{"jr:choice-name": true, "jr:itext": true, "indexed-repeat": true, "instance": true, "pulldata": true, "version": true, "property": true}

func isYesNo(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "no", "true", "false", "true()", "false()":
		return true
	}
	return false
}

// fingerprint is a short hash of the form's content, the version of a form
// whose settings give none.
func (im *importer) fingerprint() string {
	h := sha256.New()
	for _, s := range im.wb.Sheets {
		fmt.Fprintf(h, "%s\x00", s.Name)
		for _, r := range s.Rows {
			fmt.Fprintf(h, "%q\x00", r)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:10]
}
