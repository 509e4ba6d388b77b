package ctl

import (
	"bufio"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/cliutil"
)

// cell is one exported value (kind 0 is null).
type cell struct {
	kind tesserav1.CellKind
	s    string
	// bs is the text's bytes when it came packed (a view of the batch's
	// buffer, which nothing writes to): writers that take bytes use it
	// rather than a copy.
	bs []byte
	i  int64
	f  float64
	b  bool
}

// tableWriter writes one table's rows in one format.
type tableWriter interface {
	write(cells []cell) error
	close() error
}

// rowsOf decodes a batch (columnar or row form) into rows of cells, reusing
// one slice, and calls fn for each.
func rowsOf(b *tesserav1.ExportRows, ncols int, fn func([]cell) error) error {
	row := make([]cell, ncols)
	if b.Count == 0 {
		for _, r := range b.Rows {
			for i := range row {
				row[i] = cell{}
				if i < len(r.Cells) {
					row[i] = cellFrom(r.Cells[i])
				}
			}
			if err := fn(row); err != nil {
				return err
			}
		}
		return nil
	}
	if len(b.Kinds) != int(b.Count)*ncols {
		return errors.New("export: a batch of the wrong size")
	}
	// Packed texts are cut from one string (one copy per batch, none per
	// cell); the cuts are checked to fall on whole UTF-8 characters.
	packed := string(b.TextData)
	if !utf8.ValidString(packed) {
		return errors.New("export: a batch with texts not in UTF-8")
	}
	var ti, ii, di, bi, off int
	k := 0
	for range b.Count {
		for i := range row {
			c := cell{kind: b.Kinds[k]}
			k++
			switch c.kind {
			case tesserav1.CellKind_CELL_KIND_TEXT:
				switch {
				case ti < len(b.TextLens):
					n := int(b.TextLens[ti])
					if n > len(packed)-off || (off < len(packed) && !utf8.RuneStart(packed[off])) {
						return errors.New("export: a batch with texts cut wrong")
					}
					c.s, c.bs = packed[off:off+n], b.TextData[off:off+n:off+n]
					off += n
				case ti < len(b.Texts) && len(b.TextLens) == 0:
					c.s = b.Texts[ti]
				default:
					return errors.New("export: a batch short of texts")
				}
				ti++
			case tesserav1.CellKind_CELL_KIND_INT:
				if ii >= len(b.Ints) {
					return errors.New("export: a batch short of integers")
				}
				c.i = b.Ints[ii]
				ii++
			case tesserav1.CellKind_CELL_KIND_DECIMAL:
				if di >= len(b.Decimals) {
					return errors.New("export: a batch short of decimals")
				}
				c.f = b.Decimals[di]
				di++
			case tesserav1.CellKind_CELL_KIND_BOOL:
				if bi >= len(b.Bools) {
					return errors.New("export: a batch short of booleans")
				}
				c.b = b.Bools[bi]
				bi++
			}
			row[i] = c
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	if off != len(packed) {
		return errors.New("export: a batch with texts left over")
	}
	return nil
}

func cellFrom(c *tesserav1.Cell) cell {
	switch v := c.GetValue().(type) {
	case *tesserav1.Cell_Text:
		return cell{kind: tesserav1.CellKind_CELL_KIND_TEXT, s: v.Text}
	case *tesserav1.Cell_Int:
		return cell{kind: tesserav1.CellKind_CELL_KIND_INT, i: v.Int}
	case *tesserav1.Cell_Decimal:
		return cell{kind: tesserav1.CellKind_CELL_KIND_DECIMAL, f: v.Decimal}
	case *tesserav1.Cell_Bool:
		return cell{kind: tesserav1.CellKind_CELL_KIND_BOOL, b: v.Bool}
	}
	return cell{}
}

// exportGC is the collector's target while an export runs (unless GOGC is
// set): batches arrive, are written and dropped, so the live heap stays
// small and collecting four times less often costs ~30 MiB more and saves
// about a fifth of surveyctl's CPU per row.
const exportGC = 400

const exportUsage = `export --form FORM --format csv|jsonl|parquet|geojson (--out DIR [--since CURSOR] | --mirror DIR) [--media DIR] [--approved-only] [--labels LANG]

Streams a form's records (every version) from the server into one file per
table: FORM.EXT for the main table, FORM_GROUP_REPEAT.EXT for each repeat
(rows linked by _parent_id). Columns: metadata (_id, _form_version, _status,
_review, _device, _created, _updated, _conflict, _conflict_values), then the
questions; select_multiple as the raw value and a 0/1 column per choice,
geopoints as -Latitude/-Longitude/-Altitude/-Accuracy. Formats: csv (RFC 4180,
UTF-8; a text cell starting with = + - @, a tab or a carriage return gets a
leading ' so a spreadsheet shows it instead of running it: --raw-csv
writes it as answered), jsonl (one object per row, keys in column order), parquet (typed,
optional columns), geojson (a feature per row with a location). Sensitive
questions come only to leads and admins. Progress shows on a terminal; the
last line printed names the cursor to pass as --since next time.

--media DIR also writes the files answers name (photos, audio, video,
signatures, files) as DIR/RECORD_ID/FILENAME, FILENAME being the value of
the answer's column. Files already there with the same content are not
fetched again, files no answer names any more are removed, and a download
cut short resumes: run it again to keep DIR current. Files of sensitive
questions come only to leads and admins, like their answers.

Flags:`

func (c *cli) export(args []string) error {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(exportGC))
	}
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	form := fs.String("form", "", "form id to export (every version)")
	format := fs.String("format", "csv", "csv, jsonl, parquet or geojson")
	out := fs.String("out", "", "folder to write the tables into (one file per table)")
	approved := fs.Bool("approved-only", false, "only records a lead approved")
	labels := fs.String("labels", "", "write choice labels in this language instead of names")
	since := fs.String("since", "", "only records changed after this cursor (printed by the previous export)")
	mirror := fs.String("mirror", "", "keep this folder a current copy: the first run exports all, later runs fetch only what changed")
	mediaDir := fs.String("media", "", "also write the files answers name into this folder (one folder per record), fetching only new or changed files")
	raw := fs.Bool("raw-csv", false, "csv: write text cells exactly as answered; by default a cell starting with = + - @, a tab or a carriage return gets a leading ' so a spreadsheet does not run it as a formula")
	if _, err := c.parse(fs, exportUsage, args, 0); err != nil {
		return helpOK(err)
	}
	if *mirror != "" {
		if *out != "" || *since != "" {
			return errors.New("export: --mirror keeps its own cursor; leave out --out and --since")
		}
		if *form == "" {
			return errors.New("export: --form is required")
		}
		if err := c.mirror(*mirror, mirrorState{Form: *form, Format: *format, ApprovedOnly: *approved, Labels: *labels, RawCSV: *raw}); err != nil {
			return err
		}
		return c.mediaInto(*form, *mediaDir)
	}
	if *form == "" || *out == "" {
		return errors.New("export: --form and --out (or --mirror) are required")
	}
	switch *format {
	case "csv", "jsonl", "parquet", "geojson":
	default:
		return fmt.Errorf("export: unknown --format %q (csv, jsonl, parquet or geojson)", *format)
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	end, _, err := c.exportInto(&tesserav1.ExportRequest{FormId: *form, ApprovedOnly: *approved, Labels: *labels, Since: *since}, outFormat{*format, *raw}, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "exported %d records (%d rows) of %s into %s\ncursor %s\n", end.Records, end.Rows, *form, *out, end.Cursor)
	return c.mediaInto(*form, *mediaDir)
}

// mediaInto writes a form's files into dir ("": not asked).
func (c *cli) mediaInto(form, dir string) error {
	if dir == "" {
		return nil
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := c.exportMedia(cl, form, dir)
	if err != nil {
		return fmt.Errorf("export --media: %w (run again to resume)", err)
	}
	fmt.Fprintf(c.stdout, "files in %s: %d written (%s), %d unchanged, %d removed", dir, st.written, cliutil.Bytes(st.bytes), st.kept, st.removed)
	if st.missing > 0 {
		fmt.Fprintf(c.stdout, ", %d not on the server yet (their devices have not sent them)", st.missing)
	}
	fmt.Fprintln(c.stdout)
	return nil
}

// outFormat is how tables are written: the format, and for csv whether
// text cells go out raw (a formula is not neutralised).
type outFormat struct {
	name   string
	rawCSV bool
}

// schemaFile, beside a mirror's tables, lists the tables and columns the
// server sent: when they change (a new form version, or sensitive columns
// withheld after the caller's role dropped), the mirror is rebuilt whole.
const schemaFile = ".tessera-schema"

func schemaText(tables []*tesserav1.ExportTable) []byte {
	var b strings.Builder
	for _, t := range tables {
		b.WriteString(t.Name + ":")
		for _, c := range t.Columns {
			b.WriteString(" " + c.Name)
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// exportInto runs one export into dir, one file per table (and its
// schemaFile), and returns its end (with the cursor) and, for an
// incremental export, the ids of the records changed since the cursor.
func (c *cli) exportInto(req *tesserav1.ExportRequest, format outFormat, dir string) (*tesserav1.ExportEnd, map[string]bool, error) {
	cl, err := c.client()
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	req.PackedTexts = true
	stream, err := cl.Export().Export(c.ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	defer stream.Close()
	var tables []*tesserav1.ExportTable
	changed := map[string]bool{}
	writers := map[int]tableWriter{}
	tty := cliutil.IsTerminal(c.stderr)
	closeAll := func() error {
		var first error
		keys := make([]int, 0, len(writers))
		for k := range writers {
			keys = append(keys, k)
		}
		sort.Ints(keys)
		for _, k := range keys {
			if err := writers[k].close(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for {
		msg, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			closeAll()
			return nil, nil, errors.New("export: the server ended the stream early; the files are incomplete")
		}
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("export: %w", err)
		}
		switch p := msg.Part.(type) {
		case *tesserav1.ExportResponse_Schema:
			tables = p.Schema.Tables
			if err := os.WriteFile(filepath.Join(dir, schemaFile), schemaText(tables), 0o600); err != nil {
				return nil, nil, fmt.Errorf("export: %w", err)
			}
		case *tesserav1.ExportResponse_Changed:
			for _, id := range p.Changed.RecordIds {
				changed[id] = true
			}
		case *tesserav1.ExportResponse_Rows:
			ti := int(p.Rows.Table)
			if ti >= len(tables) {
				closeAll()
				return nil, nil, errors.New("export: the server sent rows of an unknown table")
			}
			w := writers[ti]
			if w == nil {
				if w, err = newTableWriter(format, dir, tables[ti]); err != nil {
					closeAll()
					return nil, nil, err
				}
				writers[ti] = w
			}
			if err := rowsOf(p.Rows, len(tables[ti].Columns), w.write); err != nil {
				closeAll()
				return nil, nil, err
			}
		case *tesserav1.ExportResponse_Progress:
			if tty {
				fmt.Fprintf(c.stderr, "\rexported %d records", p.Progress.RecordsDone)
			}
		case *tesserav1.ExportResponse_End:
			if tty {
				fmt.Fprint(c.stderr, "\r\033[K")
			}
			// Tables without rows still get their file, with a header.
			for ti, t := range tables {
				if writers[ti] == nil {
					if w, err := newTableWriter(format, dir, t); err == nil {
						writers[ti] = w
					}
				}
			}
			if err := closeAll(); err != nil {
				return nil, nil, fmt.Errorf("export: %w", err)
			}
			return p.End, changed, nil
		}
	}
}

func newTableWriter(of outFormat, dir string, t *tesserav1.ExportTable) (tableWriter, error) {
	format := of.name
	ext := map[string]string{"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "geojson": ".geojson"}[format]
	// Table names come from the server: a file inside dir, never a path.
	if t.Name == "" || strings.ContainsAny(t.Name, `/\:`) || !filepath.IsLocal(t.Name+ext) {
		return nil, fmt.Errorf("export: the server named a table %q, which is not a file name", t.Name)
	}
	f, err := os.OpenFile(filepath.Join(dir, t.Name+ext), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	switch format {
	case "csv":
		return newCSVWriter(f, t, of.rawCSV)
	case "jsonl":
		return newJSONLWriter(f, t), nil
	case "geojson":
		return newGeoJSONWriter(f, t)
	}
	return newParquetWriter(f, t)
}

// csvWriter writes RFC 4180 CSV in UTF-8 (encoding/csv), header first.
// Unless raw, a text cell a spreadsheet would run as a formula is
// neutralised as OWASP advises (a leading ').
type csvWriter struct {
	f   *os.File
	b   *bufio.Writer
	raw bool
}

func newCSVWriter(f *os.File, t *tesserav1.ExportTable, raw bool) (*csvWriter, error) {
	b := bufio.NewWriterSize(f, 1<<16)
	w := csv.NewWriter(b)
	head := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		head[i] = c.Name
	}
	if err := w.Write(head); err != nil {
		return nil, err
	}
	w.Flush()
	return &csvWriter{f: f, b: b, raw: raw}, w.Error()
}

// write formats a row as encoding/csv would (the same quoting rules, LF
// line ends), straight into the file's buffer: numbers are appended
// without a string per cell. TestCSVLikeEncodingCSV holds it to that.
func (c *csvWriter) write(cells []cell) error {
	line := c.b.AvailableBuffer()
	for i, x := range cells {
		if i > 0 {
			line = append(line, ',')
		}
		if !c.raw && x.kind == tesserav1.CellKind_CELL_KIND_TEXT && formulaLike(x.s) {
			x.s = "'" + x.s
		}
		line = appendCSVCell(line, x)
	}
	line = append(line, '\n')
	_, err := c.b.Write(line)
	return err
}

func appendCSVCell(b []byte, x cell) []byte {
	switch x.kind {
	case tesserav1.CellKind_CELL_KIND_TEXT:
		return appendCSVField(b, x.s)
	case tesserav1.CellKind_CELL_KIND_INT:
		return strconv.AppendInt(b, x.i, 10)
	case tesserav1.CellKind_CELL_KIND_DECIMAL:
		return appendDecimal(b, x.f)
	case tesserav1.CellKind_CELL_KIND_BOOL:
		if x.b {
			return append(b, '1')
		}
		return append(b, '0')
	}
	return b
}

// appendDecimal appends f as strconv.AppendFloat(b, f, 'f', -1, 64) does
// (the shortest decimal that reads back as f), without its general
// algorithm when f has at most two decimals, as survey answers mostly do
// (it took a quarter of surveyctl's CPU in a CSV export). Why it is the
// same: a float equal to n/10^k (n an integer below 2^53, so exact, and
// IEEE division correctly rounded) is what the string of n with k
// decimals reads back as; with no string of fewer decimals doing so
// (checked first), it is the shortest, and the only one of its length.
// TestAppendDecimal holds it to strconv.
func appendDecimal(b []byte, f float64) []byte {
	const limit = 1 << 53
	if f != 0 && -1e13 < f && f < 1e13 {
		neg := f < 0
		a := math.Abs(f)
		for k, p := range [...]float64{1, 10, 100} {
			n := math.Round(a * p)
			if n >= limit || n/p != a {
				continue
			}
			if neg {
				b = append(b, '-')
			}
			u := uint64(n)
			if k == 0 {
				return strconv.AppendUint(b, u, 10)
			}
			pow := uint64(p)
			b = strconv.AppendUint(b, u/pow, 10)
			b = append(b, '.')
			frac := u % pow
			if k == 2 && frac < 10 {
				b = append(b, '0')
			}
			return strconv.AppendUint(b, frac, 10)
		}
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// formulaLike reports whether a spreadsheet would take text as a formula
// (or as the start of one): OWASP's list of leading characters.
func formulaLike(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// appendCSVField quotes a field when encoding/csv would: it holds a comma,
// a quote, a line break, starts with a space, or is \. alone.
func appendCSVField(b []byte, s string) []byte {
	quote := s == `\.`
	for i := 0; i < len(s) && !quote; i++ {
		switch s[i] {
		case ',', '"', '\r', '\n':
			quote = true
		}
	}
	if !quote && s != "" {
		r, _ := utf8.DecodeRuneInString(s)
		quote = unicode.IsSpace(r)
	}
	if !quote {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

func (c *csvWriter) close() error {
	if err := c.b.Flush(); err != nil {
		return err
	}
	return c.f.Close()
}

// jsonlWriter writes one JSON object per row, its keys in column order.
// Rows are formatted straight into the file's buffer (a map and
// json.Marshal per row cost 15 µs a 40-column row); values are written as
// encoding/json writes them (TestJSONValueLikeEncodingJSON).
type jsonlWriter struct {
	f    *os.File
	b    *bufio.Writer
	keys [][]byte // `{"name":` first, then `,"name":`
}

func newJSONLWriter(f *os.File, t *tesserav1.ExportTable) *jsonlWriter {
	j := &jsonlWriter{f: f, b: bufio.NewWriterSize(f, 1<<16)}
	for i, c := range t.Columns {
		k := []byte{','}
		if i == 0 {
			k[0] = '{'
		}
		k = appendJSONString(k, c.Name)
		j.keys = append(j.keys, append(k, ':'))
	}
	return j
}

func (j *jsonlWriter) write(cells []cell) error {
	line := j.b.AvailableBuffer()
	if len(j.keys) == 0 {
		line = append(line, '{')
	}
	for i, k := range j.keys {
		line = append(line, k...)
		var c cell
		if i < len(cells) {
			c = cells[i]
		}
		line = appendJSONValue(line, c)
	}
	line = append(line, "}\n"...)
	_, err := j.b.Write(line)
	return err
}

// appendJSONValue appends a cell as encoding/json writes its Go value
// (string, int64, float64, bool or nil), except that a decimal JSON
// cannot hold (NaN, ±Inf) is null where encoding/json fails.
func appendJSONValue(b []byte, c cell) []byte {
	switch c.kind {
	case tesserav1.CellKind_CELL_KIND_TEXT:
		return appendJSONString(b, c.s)
	case tesserav1.CellKind_CELL_KIND_INT:
		return strconv.AppendInt(b, c.i, 10)
	case tesserav1.CellKind_CELL_KIND_DECIMAL:
		f := c.f
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(b, "null"...)
		}
		// encoding/json's choice: the shortest 'f' form, or 'e' with a
		// two-digit exponent trimmed for very small or large numbers.
		if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
			b = strconv.AppendFloat(b, f, 'e', -1, 64)
			if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
				b[n-2] = b[n-1]
				b = b[:n-1]
			}
			return b
		}
		return appendDecimal(b, f)
	case tesserav1.CellKind_CELL_KIND_BOOL:
		if c.b {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	}
	return append(b, "null"...)
}

// appendJSONString appends s quoted as encoding/json quotes it (HTML
// characters, U+2028 and U+2029 escaped; invalid UTF-8 as U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func (j *jsonlWriter) close() error {
	if err := j.b.Flush(); err != nil {
		return err
	}
	return j.f.Close()
}

// geoJSONWriter writes a FeatureCollection: one feature per row with a
// location (the table's first geopoint), the other columns as properties,
// formatted as the JSON Lines rows are.
type geoJSONWriter struct {
	f        *os.File
	b        *bufio.Writer
	keys     [][]byte // `"name":` of each column
	lat, lon int
	n        int
}

func newGeoJSONWriter(f *os.File, t *tesserav1.ExportTable) (*geoJSONWriter, error) {
	g := &geoJSONWriter{f: f, b: bufio.NewWriterSize(f, 1<<16), lat: -1, lon: -1}
	for i, c := range t.Columns {
		if c.Geopoint != "" && c.Geopoint == firstGeo(t) {
			switch c.Part {
			case "Latitude":
				g.lat = i
			case "Longitude":
				g.lon = i
			}
		}
		g.keys = append(g.keys, append(appendJSONString(nil, c.Name), ':'))
	}
	g.b.WriteString(`{"type":"FeatureCollection","features":[`)
	return g, nil
}

func firstGeo(t *tesserav1.ExportTable) string {
	for _, c := range t.Columns {
		if c.Geopoint != "" {
			return c.Geopoint
		}
	}
	return ""
}

func (g *geoJSONWriter) write(cells []cell) error {
	if g.lat < 0 || g.lon < 0 || max(g.lat, g.lon) >= len(cells) || !isCoordinate(cells[g.lat]) || !isCoordinate(cells[g.lon]) {
		return nil // no location: not a feature
	}
	b := g.b.AvailableBuffer()
	if g.n > 0 {
		b = append(b, ',')
	}
	g.n++
	b = append(b, `{"type":"Feature","geometry":{"type":"Point","coordinates":[`...)
	b = appendJSONValue(b, cells[g.lon])
	b = append(b, ',')
	b = appendJSONValue(b, cells[g.lat])
	b = append(b, `]},"properties":{`...)
	for i, k := range g.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k...)
		var c cell
		if i < len(cells) {
			c = cells[i]
		}
		b = appendJSONValue(b, c)
	}
	b = append(b, "}}"...)
	_, err := g.b.Write(b)
	return err
}

// isCoordinate: a cell that can be a GeoJSON coordinate (a finite number).
func isCoordinate(c cell) bool {
	switch c.kind {
	case tesserav1.CellKind_CELL_KIND_DECIMAL:
		return !math.IsNaN(c.f) && !math.IsInf(c.f, 0)
	case tesserav1.CellKind_CELL_KIND_INT:
		return true
	}
	return false
}

func (g *geoJSONWriter) close() error {
	g.b.WriteString("]}\n")
	if err := g.b.Flush(); err != nil {
		return err
	}
	return g.f.Close()
}

// parquetWriter writes typed, optional columns with parquet-go.
type parquetWriter struct {
	f     *os.File
	w     *parquet.Writer
	index []int // table column → leaf column
	types []tesserav1.ColumnType
	buf   []parquet.Row
}

func newParquetWriter(f *os.File, t *tesserav1.ExportTable) (*parquetWriter, error) {
	group := parquet.Group{}
	for _, c := range t.Columns {
		var n parquet.Node
		switch c.Type {
		case tesserav1.ColumnType_COLUMN_TYPE_INT:
			n = parquet.Int(64)
		case tesserav1.ColumnType_COLUMN_TYPE_DECIMAL:
			n = parquet.Leaf(parquet.DoubleType)
		case tesserav1.ColumnType_COLUMN_TYPE_BOOL:
			n = parquet.Leaf(parquet.BooleanType)
		default:
			n = parquet.String()
		}
		group[c.Name] = parquet.Optional(n)
	}
	schema := parquet.NewSchema(t.Name, group)
	leaf := map[string]int{}
	for i, path := range schema.Columns() {
		leaf[path[0]] = i
	}
	p := &parquetWriter{f: f, w: parquet.NewWriter(f, schema), index: make([]int, len(t.Columns)), types: make([]tesserav1.ColumnType, len(t.Columns))}
	for i, c := range t.Columns {
		p.index[i] = leaf[c.Name]
		p.types[i] = c.Type
	}
	return p, nil
}

func (p *parquetWriter) write(cells []cell) error {
	// Rows are reused after a flush: WriteRows copies what it keeps.
	var row parquet.Row
	if n := len(p.buf); n < cap(p.buf) && len(p.buf[:n+1][n]) == len(p.index) {
		row = p.buf[:n+1][n]
	} else {
		row = make(parquet.Row, len(p.index))
	}
	for i := range p.index {
		col := p.index[i]
		var v parquet.Value
		var c cell
		if i < len(cells) {
			c = cells[i]
		}
		switch c.kind {
		case tesserav1.CellKind_CELL_KIND_TEXT:
			bs := c.bs
			if bs == nil {
				bs = []byte(c.s)
			}
			v = parquet.ByteArrayValue(bs).Level(0, 1, col)
		case tesserav1.CellKind_CELL_KIND_INT:
			v = parquet.Int64Value(c.i).Level(0, 1, col)
		case tesserav1.CellKind_CELL_KIND_DECIMAL:
			v = parquet.DoubleValue(c.f).Level(0, 1, col)
		case tesserav1.CellKind_CELL_KIND_BOOL:
			v = parquet.BooleanValue(c.b).Level(0, 1, col)
		default:
			v = parquet.NullValue().Level(0, 0, col)
		}
		row[col] = v
	}
	p.buf = append(p.buf, row)
	if len(p.buf) >= 1000 {
		return p.flush()
	}
	return nil
}

func (p *parquetWriter) flush() error {
	if len(p.buf) == 0 {
		return nil
	}
	_, err := p.w.WriteRows(p.buf)
	p.buf = p.buf[:0]
	return err
}

func (p *parquetWriter) close() error {
	if err := p.flush(); err != nil {
		return err
	}
	if err := p.w.Close(); err != nil {
		return err
	}
	return p.f.Close()
}
