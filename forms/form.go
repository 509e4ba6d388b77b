// Package forms holds Tessera's form definitions: XLSForms (the
// spreadsheet format of ODK and KoboToolbox) imported into a versioned
// Form, and the checks an answered record must pass against it.
package forms

import (
	"sort"
	"strings"

	"github.com/tessera-survey/tessera/forms/xpath"
)

// Text is a translatable string: language → text. The key "" holds the
// text of a column without a language ("label").
type Text map[string]string

// In returns the text in lang, falling back to the default language, the
// untranslated column, then any language.
func (t Text) In(lang, fallback string) string {
	for _, l := range []string{lang, fallback, ""} {
		if s, ok := t[l]; ok && s != "" {
			return s
		}
	}
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if t[k] != "" {
			return t[k]
		}
	}
	return ""
}

// Empty reports whether t has no text in any language.
func (t Text) Empty() bool {
	for _, s := range t {
		if strings.TrimSpace(s) != "" {
			return false
		}
	}
	return true
}

// Kind is a question's type after aliases are resolved.
type Kind string

const (
	KText           Kind = "text"
	KInteger        Kind = "integer"
	KDecimal        Kind = "decimal"
	KSelectOne      Kind = "select_one"
	KSelectMultiple Kind = "select_multiple"
	KDate           Kind = "date"
	KTime           Kind = "time"
	KDateTime       Kind = "dateTime"
	KGeopoint       Kind = "geopoint"
	KNote           Kind = "note"
	KCalculate      Kind = "calculate"
	KAcknowledge    Kind = "acknowledge"
	KHidden         Kind = "hidden"
	KImage          Kind = "image"
	KAudio          Kind = "audio"
	KFile           Kind = "file"
	KGroup          Kind = "group"
	KRepeat         Kind = "repeat"
	KStart          Kind = "start"
	KEnd            Kind = "end"
	KToday          Kind = "today"
	KDeviceID       Kind = "deviceid"
	KUsername       Kind = "username"

	KRange              Kind = "range"    // a number from start to end by step (parameters)
	KRank               Kind = "rank"     // the list's choices in the order the respondent ranks them
	KGeotrace           Kind = "geotrace" // points "lat lon alt acc; ..." (a line)
	KGeoshape           Kind = "geoshape" // a closed line of points (a polygon)
	KBarcode            Kind = "barcode"
	KVideo              Kind = "video"
	KBackgroundAudio    Kind = "background-audio"
	KBackgroundGeopoint Kind = "background-geopoint" // a location taken when its trigger question changes
	KAudit              Kind = "audit"               // ODK's audit log of the interview (audit.csv)
	KStartGeopoint      Kind = "start-geopoint"
	KPhoneNumber        Kind = "phonenumber"
	KSimSerial          Kind = "simserial"
	KSubscriberID       Kind = "subscriberid"
	KEmail              Kind = "email"
	KExternalData       Kind = "external-data" // csv-external, xml-external: a data file the form reads (no answer)
	KOSM                Kind = "osm"           // an OpenStreetMap feature file
)

// IsMeta reports whether k is filled by the device, not the respondent.
func (k Kind) IsMeta() bool {
	switch k {
	case KStart, KEnd, KToday, KDeviceID, KUsername, KPhoneNumber, KSimSerial, KSubscriberID, KEmail,
		KStartGeopoint, KAudit, KBackgroundAudio, KBackgroundGeopoint:
		return true
	}
	return false
}

// HasAnswer reports whether questions of kind k store a value.
func (k Kind) HasAnswer() bool {
	return k != KNote && k != KGroup && k != KRepeat && k != KExternalData
}

// IsMedia reports whether answers of kind k are files.
func (k Kind) IsMedia() bool {
	switch k {
	case KImage, KAudio, KVideo, KFile, KBackgroundAudio, KAudit, KOSM:
		return true
	}
	return false
}

// Question is one row of the survey sheet: a question, a group or a repeat
// (with its children).
type Question struct {
	Row      int // the spreadsheet row, for messages
	Kind     Kind
	Name     string
	ListName string // select questions
	OrOther  bool
	// ItemsetFile: the choices come from this attachment (CSV, XML or
	// GeoJSON) of the form (select_one_from_file).
	ItemsetFile string
	// External: the choices come from the external_choices sheet
	// (select_one_external).
	External bool
	// ExternalType of an external-data question: "csv" or "xml".
	ExternalType string
	// Trigger names the question whose change sets this one (${name}):
	// a background-geopoint, or a calculation run when it changes.
	Trigger string

	Label, Hint, RequiredMessage, ConstraintMessage Text

	Required, Relevant, Constraint, Calculation, ChoiceFilter, RepeatCount, ReadOnly string
	Default, Appearance                                                              string
	Parameters                                                                       map[string]string
	// Sensitive questions (column "sensitive" = yes) are left out of
	// exports unless the caller's role allows them.
	Sensitive bool

	Children []*Question // groups and repeats
	Parent   *Question

	// Compiled expressions (nil when the column is empty or a constant).
	relevant, constraint, calculation, choiceFilter, repeatCount, required, readOnly *xpath.Expr

	// raw is the row as read, for the columns only the XForm writer uses
	// (bind::, body::, instance::, media, guidance_hint...); nil for
	// questions the importer makes.
	raw *record
}

// Path returns the question's names from the root, joined by "/".
func (q *Question) Path() string {
	var parts []string
	for p := q; p != nil && p.Parent != nil; p = p.Parent {
		parts = append(parts, p.Name)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// Repeat returns the nearest enclosing repeat, or nil.
func (q *Question) Repeat() *Question {
	for p := q.Parent; p != nil; p = p.Parent {
		if p.Kind == KRepeat {
			return p
		}
	}
	return nil
}

// Choice is one option of a choice list.
type Choice struct {
	Row   int
	Name  string
	Label Text
	// Extra columns (used by choice filters), by column name.
	Extra map[string]string
	media map[string]Text
	raw   *record // the row as read (the XForm writer's column order)
}

// Form is an imported form definition.
type Form struct {
	ID, Version, Title string
	DefaultLanguage    string
	Languages          []string // every language used, sorted; "" not included
	RootName           string
	Root               *Question // a group holding the survey
	Choices            map[string][]Choice
	Settings           map[string]string
	Project            string // set by the registry: the project it was published for
	Entities           []Entity
	// FileChoices are the choices of select_*_from_file questions, read
	// from the version's attachments when the registry loads it.
	FileChoices map[*Question][]Choice
	// ExternalChoices: the external_choices sheet's lists, offered by
	// select_one_external questions (ODK writes them to itemsets.csv).
	ExternalChoices map[string][]Choice

	byName map[string][]*Question
	// The header rows as read, in column order: the XForm writer keeps
	// pyxform's attribute and language order from them.
	surveyCols, choiceCols []column
	osmTags                map[string][]Choice // the osm sheet, by list
	tables                 map[string]*table   // CSV attachments by base name, for pulldata()
	osmCols                []column
}

// Key is "form_id@version", how records name the form version they
// answer.
func (f *Form) Key() string { return f.ID + "@" + f.Version }

// Question returns the question with the given name (names referenced with
// ${} are unique), or nil.
func (f *Form) Question(name string) *Question {
	if qs := f.byName[name]; len(qs) == 1 {
		return qs[0]
	}
	return nil
}

// Walk calls fn for every question in form order, groups before their
// children.
func (f *Form) Walk(fn func(*Question)) {
	var walk func(q *Question)
	walk = func(q *Question) {
		for _, c := range q.Children {
			fn(c)
			walk(c)
		}
	}
	walk(f.Root)
}

// Count returns how many questions (groups and repeats included) f has.
func (f *Form) Count() int {
	n := 0
	f.Walk(func(*Question) { n++ })
	return n
}

// ChoicesFor returns the choices a select question offers (before any
// choice filter): its list's, or its choices file's.
func (f *Form) ChoicesFor(q *Question) []Choice {
	if cs, ok := f.FileChoices[q]; ok || q.ItemsetFile != "" {
		return cs // a choices file's, or a search() appearance's
	}
	if q.External {
		return f.ExternalChoices[q.ListName]
	}
	return f.Choices[q.ListName]
}

// LabelMedia is the attachment shown with the question's label: kind is
// "image", "big-image", "audio" or "video" (the XLSForm column, or
// media::KIND::LANG), in lang or else def; "" when none.
func (q *Question) LabelMedia(kind, lang, def string) string {
	if q.raw == nil {
		return ""
	}
	t := Text{}
	for l, v := range q.raw.texts[kind] { // the image or image::LANG column
		t[l] = v
	}
	for k, v := range q.raw.texts["media"] { // media::image or media::image::LANG
		if k == kind {
			t[""] = v
		} else if l, ok := strings.CutPrefix(k, kind+"::"); ok {
			t[l] = v
		}
	}
	return strings.TrimSpace(t.In(lang, def))
}
