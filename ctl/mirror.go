package ctl

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
)

// mirrorState is what a mirror folder remembers between runs.
type mirrorState struct {
	Form         string `json:"form"`
	Format       string `json:"format"`
	ApprovedOnly bool   `json:"approved_only"`
	Labels       string `json:"labels,omitempty"`
	RawCSV       bool   `json:"raw_csv,omitempty"`
	Cursor       string `json:"cursor"`
}

const mirrorStateFile = ".tessera-mirror.json"

// mirror keeps dir a current copy of a form's dataset: the first run
// exports everything; each later run asks only for what changed after the
// saved cursor and rewrites the rows of those records in place. The
// cursor is saved last, so a run cut short is simply done again. It is
// long on purpose: one sequence of steps (state, export, decide whether to
// rebuild, merge, save), each depending on the one before.
func (c *cli) mirror(dir string, want mirrorState) error {
	// CSV and JSON lines are rewritten in place, row by row; Parquet and
	// GeoJSON files are written whole, so they are exported again when
	// anything changed (and left as they are when nothing did).
	lineWise := want.Format == "csv" || want.Format == "jsonl"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var st mirrorState
	b, err := os.ReadFile(filepath.Join(dir, mirrorStateFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("export --mirror: %s is damaged (%v); remove it to start the mirror again", mirrorStateFile, err)
		}
		cur := st
		cur.Cursor = ""
		if cur != want {
			return fmt.Errorf("export --mirror: %s already mirrors form %q as %s (approved only %v, labels %q); use another folder",
				dir, st.Form, st.Format, st.ApprovedOnly, st.Labels)
		}
	case errors.Is(err, os.ErrNotExist):
		// Tolerate what an interrupted first run leaves: its incoming
		// folder and table files, which this run replaces.
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.Name() != ".incoming" && e.Name() != schemaFile && !strings.HasSuffix(e.Name(), "."+want.Format) {
				return fmt.Errorf("export --mirror: %s holds %s and is not a mirror; use an empty or new folder", dir, e.Name())
			}
		}
	default:
		return err
	}
	incoming := filepath.Join(dir, ".incoming")
	defer os.RemoveAll(incoming)
	req := &tesserav1.ExportRequest{FormId: want.Form, ApprovedOnly: want.ApprovedOnly, Labels: want.Labels}
	var end *tesserav1.ExportEnd
	var files []os.DirEntry
	// exportSince exports into an empty incoming folder.
	exportSince := func(cursor string) (changed map[string]bool, err error) {
		if err := os.RemoveAll(incoming); err != nil {
			return nil, err
		}
		if err := os.Mkdir(incoming, 0o700); err != nil {
			return nil, err
		}
		req.Since = cursor
		if end, changed, err = c.exportInto(req, outFormat{want.Format, want.RawCSV}, incoming); err != nil {
			return nil, err
		}
		files, err = os.ReadDir(incoming)
		return changed, err
	}
	changed, err := exportSince(st.Cursor)
	if err != nil {
		return err
	}
	first := st.Cursor == ""
	full := first
	nChanged := len(changed)
	unchanged := !full && !lineWise && nChanged == 0
	if !full && !lineWise && nChanged > 0 {
		fmt.Fprintf(c.stderr, "%d records changed: writing the %s files again\n", nChanged, want.Format)
		if _, err := exportSince(""); err != nil {
			return err
		}
		full = true
	}
	if !full && lineWise {
		// A new form version can add columns, and a role that dropped
		// withholds some: then the whole copy is exported again rather
		// than mixing two headers in one file, or keeping rows with
		// columns the caller may no longer receive.
		if same, err := sameFile(filepath.Join(dir, schemaFile), filepath.Join(incoming, schemaFile)); err != nil {
			return err
		} else if !same {
			full = true
		}
		for _, f := range files {
			same, err := sameHeader(filepath.Join(dir, f.Name()), filepath.Join(incoming, f.Name()), want.Format)
			if err != nil {
				return err
			}
			if !same {
				full = true
			}
		}
		if full {
			fmt.Fprintln(c.stderr, "the form's columns changed: exporting the whole dataset again")
			if _, err := exportSince(""); err != nil {
				return err
			}
		}
	}
	if unchanged {
		files = nil // the whole-file formats stay as they are
	}
	for _, f := range files {
		dst, src := filepath.Join(dir, f.Name()), filepath.Join(incoming, f.Name())
		if f.Name() == schemaFile {
			if err := os.Rename(src, dst); err != nil {
				return err
			}
			continue
		}
		if full {
			if err := os.Rename(src, dst); err != nil {
				return err
			}
			continue
		}
		if err := mergeTable(dst, src, want.Format, changed); err != nil {
			return fmt.Errorf("export --mirror: %s: %w", f.Name(), err)
		}
	}
	st = want
	st.Cursor = end.Cursor
	b, _ = json.MarshalIndent(st, "", "  ")
	tmp := filepath.Join(dir, mirrorStateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, mirrorStateFile)); err != nil {
		return err
	}
	what := fmt.Sprintf("%d records changed", nChanged)
	switch {
	case first || (full && lineWise):
		what = fmt.Sprintf("full export, %d records", end.Records)
	case full:
		what = fmt.Sprintf("%d records changed, files written again with %d records", nChanged, end.Records)
	}
	fmt.Fprintf(c.stdout, "mirror of %s in %s is current (%s, %d rows written)\ncursor %s\n", want.Form, dir, what, end.Rows, end.Cursor)
	return nil
}

// sameHeader compares a CSV file's header with the mirror's copy (JSONL
// rows name their columns, so any set of columns mixes).
// sameFile reports whether two files hold the same bytes (a missing old
// one differs: a mirror made before schema files is rebuilt once).
func sameFile(old, incoming string) (bool, error) {
	a, err := os.ReadFile(old)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	b, err := os.ReadFile(incoming)
	if err != nil {
		return false, err
	}
	return string(a) == string(b), nil
}

func sameHeader(old, incoming, format string) (bool, error) {
	if format != "csv" {
		return true, nil
	}
	a, err := csvHeader(old)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil // a new table: copied as it is
	}
	if err != nil {
		return false, err
	}
	b, err := csvHeader(incoming)
	if err != nil {
		return false, err
	}
	return slices.Equal(a, b), nil
}

func csvHeader(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := csv.NewReader(bufio.NewReader(f)).Read()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	return h, err
}

// recordOf is the record a row belongs to: a main row's _id is the record
// id; a repeat row's _id starts with it ("record/path[instance]").
func recordOf(id string) string {
	r, _, _ := strings.Cut(id, "/")
	return r
}

// mergeTable rewrites dst without the rows of changed records, then adds
// every row of src; it streams both files, so memory holds only the ids.
func mergeTable(dst, src, format string, changed map[string]bool) error {
	if _, err := os.Stat(dst); errors.Is(err, os.ErrNotExist) {
		return os.Rename(src, dst)
	}
	in, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer in.Close()
	add, err := os.Open(src)
	if err != nil {
		return err
	}
	defer add.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	w := bufio.NewWriterSize(out, 1<<16)
	if format == "csv" {
		err = mergeCSV(w, in, add, changed)
	} else {
		err = mergeJSONL(w, in, add, changed)
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func mergeCSV(w io.Writer, old, add io.Reader, changed map[string]bool) error {
	r := csv.NewReader(bufio.NewReaderSize(old, 1<<16))
	r.ReuseRecord = true
	cw := csv.NewWriter(w)
	head, err := r.Read()
	if errors.Is(err, io.EOF) {
		_, err = io.Copy(w, add)
		return err
	}
	if err != nil {
		return err
	}
	idCol := slices.Index(head, "_id")
	if idCol < 0 {
		return errors.New("no _id column in the mirror's copy")
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if !changed[recordOf(rec[idCol])] {
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	ar := csv.NewReader(bufio.NewReaderSize(add, 1<<16))
	ar.ReuseRecord = true
	if _, err := ar.Read(); err != nil && !errors.Is(err, io.EOF) { // its header
		return err
	}
	for {
		rec, err := ar.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func mergeJSONL(w io.Writer, old, add io.Reader, changed map[string]bool) error {
	sc := bufio.NewScanner(old)
	sc.Buffer(make([]byte, 0, 1<<16), 64<<20)
	for sc.Scan() {
		var row struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return fmt.Errorf("the mirror's copy has a damaged line: %w", err)
		}
		if changed[recordOf(row.ID)] {
			continue
		}
		if _, err := w.Write(sc.Bytes()); err != nil {
			return err
		}
		if _, err := w.Write([]byte{'\n'}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	_, err := io.Copy(w, add)
	return err
}
