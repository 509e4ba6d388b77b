package forms

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/tessera-survey/tessera/syncengine"
)

// Form attachments are the files a form names: choice lists
// (select_one_from_file), data files (csv-external, xml-external,
// pulldata()). They are published with the form, kept per version (the
// version lists their names and SHA-256; the bytes are stored once per
// content), and reach devices with the form.

// File is an attachment: its name as the form writes it, and its bytes.
type File struct {
	Name string
	Data []byte
}

// FileInfo describes an attachment of a version.
type FileInfo struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
}

// MaxFileBytes bounds one attachment; MaxFilesBytes all of a version's.
const (
	MaxFileBytes  = 32 << 20
	MaxFilesBytes = 64 << 20
)

const metaAttachment = "form.attachment/" // + sha256 → bytes

// ErrMissingFile: the form names a file that was not published with it.
var ErrMissingFile = errors.New("a file the form names was not published with it")

// FileRef is a file a form names, and the row that names it.
type FileRef struct {
	Name string
	Row  int
}

var pulldataRe = regexp.MustCompile(`pulldata\(\s*['"]([^'"]+)['"]`)

// Files are the attachments the form needs, in form order.
func (f *Form) Files() []FileRef {
	var out []FileRef
	add := func(name string, row int) {
		if !slices.ContainsFunc(out, func(r FileRef) bool { return r.Name == name }) {
			out = append(out, FileRef{name, row})
		}
	}
	f.Walk(func(q *Question) {
		switch {
		case q.ItemsetFile != "":
			add(q.ItemsetFile, q.Row)
		case q.Kind == KExternalData && q.ExternalType == "xml":
			add(q.Name+".xml", q.Row)
		case q.Kind == KExternalData:
			add(q.Name+".csv", q.Row)
		}
		for _, s := range []string{q.Calculation, q.Relevant, q.Constraint, q.Default, q.Required, q.ReadOnly, q.ChoiceFilter} {
			for _, m := range pulldataRe.FindAllStringSubmatch(s, -1) {
				add(m[1]+".csv", q.Row)
			}
		}
		if m := searchRe.FindString(q.Appearance); m != "" {
			if file := searchFile(m); file != "" {
				add(file+".csv", q.Row)
			}
		}
		for _, name := range mediaFiles(q.raw) {
			add(name, q.Row)
		}
	})
	for _, list := range sortedKeys(f.Choices) {
		for _, c := range f.Choices[list] {
			for _, name := range mediaFiles(c.raw) {
				add(name, c.Row)
			}
		}
	}
	return out
}

// mediaFiles are the image, audio and video files a row's labels name
// (every language).
func mediaFiles(r *record) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, base := range []string{"image", "big-image", "audio", "video", "media"} {
		for _, lang := range sortedKeys(r.texts[base]) {
			if v := strings.TrimSpace(r.texts[base][lang]); v != "" && !strings.Contains(v, "${") && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

var searchArgRe = regexp.MustCompile(`^search\(\s*['"]([^'"]+)['"]`)

// searchFile is the CSV a search('name', ...) appearance reads ("" when
// it names none).
func searchFile(call string) string {
	if m := searchArgRe.FindStringSubmatch(call); m != nil {
		return m[1]
	}
	return ""
}

// checkFiles matches a version's attachments with what the form names: a
// missing one is a problem at its row; one the form does not name, or a
// choices file that does not parse, is refused too.
func checkFiles(f *Form, files []File) ([]FileInfo, error) {
	var ps Problems
	byName := map[string][]byte{}
	total := 0
	for _, file := range files {
		name := filepath.Base(file.Name)
		if name != file.Name || name == "" || strings.HasPrefix(name, ".") {
			return nil, fmt.Errorf("%w: attachment %q: a file name, not a path", syncengine.ErrInvalid, file.Name)
		}
		if len(file.Data) > MaxFileBytes {
			return nil, fmt.Errorf("%w: attachment %s is over %d MiB", syncengine.ErrTooLarge, name, MaxFileBytes>>20)
		}
		if total += len(file.Data); total > MaxFilesBytes {
			return nil, fmt.Errorf("%w: the attachments are over %d MiB", syncengine.ErrTooLarge, MaxFilesBytes>>20)
		}
		byName[name] = file.Data
	}
	var out []FileInfo
	named := map[string]bool{}
	for _, ref := range f.Files() {
		named[ref.Name] = true
		data, ok := byName[ref.Name]
		if !ok {
			ps = append(ps, Problem{Sheet: "survey", Row: ref.Row, Msg: fmt.Sprintf("the file '%s' this row names was not published with the form: give it after the form (surveyctl form publish FORM.xlsx %s)", ref.Name, ref.Name)})
			continue
		}
		if err := checkFile(f, ref.Name, data); err != nil {
			ps = append(ps, Problem{Sheet: "survey", Row: ref.Row, Msg: fmt.Sprintf("the file '%s' does not read: %v", ref.Name, err)})
			continue
		}
		sum := sha256.Sum256(data)
		out = append(out, FileInfo{Name: ref.Name, SHA256: hex.EncodeToString(sum[:]), Size: len(data)})
	}
	for name := range byName {
		if !named[name] {
			return nil, fmt.Errorf("%w: the form names no file %q", syncengine.ErrInvalid, name)
		}
	}
	if len(ps) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrMissingFile, ps)
	}
	slices.SortFunc(out, func(a, b FileInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// readChoicesCSV reads a choices file: a header row naming its columns
// (name and label by default; the question's value and label parameters
// name others), then one choice per row.
func readChoicesCSV(data []byte, valueCol, labelCol string) ([]Choice, error) {
	if valueCol == "" {
		valueCol = "name"
	}
	if labelCol == "" {
		labelCol = "label"
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("no header row: %w", err)
	}
	vi, labels := -1, map[int]string{}
	for i, h := range head {
		h = strings.TrimSpace(h)
		base, lang, _ := strings.Cut(h, "::")
		switch {
		case h == valueCol:
			vi = i
		case base == labelCol:
			labels[i] = strings.TrimSpace(lang)
		}
	}
	if vi < 0 {
		return nil, fmt.Errorf("no %q column", valueCol)
	}
	var out []Choice
	for row := 2; ; row++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if vi >= len(rec) || strings.TrimSpace(rec[vi]) == "" {
			continue
		}
		c := Choice{Row: row, Name: strings.TrimSpace(rec[vi]), Label: Text{}}
		for i, lang := range labels {
			if i < len(rec) {
				c.Label[lang] = rec[i]
			}
		}
		out = append(out, c)
	}
}

// File returns an attachment's bytes by content hash.
func (r *Registry) File(ctx context.Context, sha string) ([]byte, error) {
	var b []byte
	err := r.store.View(ctx, func(tx syncengine.ReadTx) (err error) { b, err = tx.Meta(metaAttachment + sha); return })
	if errors.Is(err, syncengine.ErrNotFound) && r.files != nil {
		b, err = r.files.Bytes(ctx, sha)
	}
	if errors.Is(err, syncengine.ErrNotFound) {
		return nil, fmt.Errorf("%w: attachment %s", ErrUnknownForm, sha)
	}
	return b, err
}

// checkFile reads an attachment as its users will: choices files as
// choices (with the questions' value and label columns), CSV data as a
// table.
func checkFile(f *Form, name string, data []byte) error {
	used := false
	var err error
	f.Walk(func(q *Question) {
		if q.ItemsetFile == name && err == nil {
			used = true
			_, err = readChoicesFile(name, data, q.Parameters["value"], q.Parameters["label"])
		}
	})
	if err != nil || used {
		return err
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		_, err = readTable(data)
	case ".xml":
		_, err = parseXML(data)
	case ".geojson":
		if !json.Valid(data) {
			err = errors.New("not JSON")
		}
	}
	return err
}

// loadFileChoices reads a stored form's attachments: choices files into
// FileChoices, CSV data files into the tables pulldata() reads.
func (r *Registry) loadFileChoices(ctx context.Context, f *Form, info Info) error {
	for _, fi := range info.Files {
		csvFile := strings.EqualFold(filepath.Ext(fi.Name), ".csv")
		var users []*Question
		f.Walk(func(q *Question) {
			if q.ItemsetFile == fi.Name {
				users = append(users, q)
			}
		})
		if !csvFile && len(users) == 0 {
			continue // media and other files: the form does not read them
		}
		data, err := r.File(ctx, fi.SHA256)
		if err != nil {
			return err
		}
		if csvFile {
			t, err := readTable(data)
			if err != nil {
				return fmt.Errorf("attachment %s: %w", fi.Name, err)
			}
			if f.tables == nil {
				f.tables = map[string]*table{}
			}
			f.tables[strings.TrimSuffix(fi.Name, filepath.Ext(fi.Name))] = t
		}
		if csvFile {
			f.searchChoices(strings.TrimSuffix(fi.Name, filepath.Ext(fi.Name)))
		}
		for _, q := range users {
			cs, err := readChoicesFile(fi.Name, data, q.Parameters["value"], q.Parameters["label"])
			if err != nil {
				return fmt.Errorf("attachment %s: %w", fi.Name, err)
			}
			if f.FileChoices == nil {
				f.FileChoices = map[*Question][]Choice{}
			}
			f.FileChoices[q] = cs
		}
	}
	return nil
}

// searchChoices gives the selects whose appearance is search('file', ...)
// the file's rows as choices: the list's one row names the value column
// (its name) and the label column (its label), as ODK reads it. The
// search's filter depends on answers and narrows them on screen.
func (f *Form) searchChoices(file string) {
	t := f.tables[file]
	if t == nil {
		return
	}
	f.Walk(func(q *Question) {
		m := searchRe.FindString(q.Appearance)
		if m == "" || searchFile(m) != file || len(f.Choices[q.ListName]) == 0 {
			return
		}
		spec := f.Choices[q.ListName][0]
		vi := slices.Index(t.cols, spec.Name)
		if vi < 0 {
			return
		}
		li := slices.Index(t.cols, spec.Label.In(f.DefaultLanguage, ""))
		var cs []Choice
		for i, r := range t.rows {
			if vi >= len(r) || strings.TrimSpace(r[vi]) == "" {
				continue
			}
			c := Choice{Row: i + 2, Name: strings.TrimSpace(r[vi]), Label: Text{}}
			if li >= 0 && li < len(r) {
				c.Label[""] = r[li]
			}
			cs = append(cs, c)
		}
		if f.FileChoices == nil {
			f.FileChoices = map[*Question][]Choice{}
		}
		f.FileChoices[q] = cs
	})
}

// AttachmentsIn is the set of files (hex SHA-256) that some published
// version names as an attachment, read in tx: files an erasure of a
// record must not take away.
func AttachmentsIn(tx syncengine.ReadTx) (map[string]bool, error) {
	out := map[string]bool{}
	err := tx.ScanMeta(metaFormInfo, func(_ string, v []byte) error {
		var i Info
		if err := json.Unmarshal(v, &i); err != nil {
			return fmt.Errorf("form info: %w", syncengine.ErrCorrupt)
		}
		for _, f := range i.Files {
			out[f.SHA256] = true
		}
		return nil
	})
	return out, err
}
