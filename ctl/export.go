package ctl

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/parquet-go/parquet-go"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
)

// tableWriter writes one table's rows in one format.
type tableWriter interface {
	write(cells []*tesserav1.Cell) error
	close() error
}

func (c *cli) export(args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	form := fs.String("form", "", "form id to export (every version)")
	format := fs.String("format", "csv", "csv, jsonl, parquet or geojson")
	out := fs.String("out", "", "folder to write the tables into (one file per table)")
	approved := fs.Bool("approved-only", false, "only records a lead approved")
	labels := fs.String("labels", "", "write choice labels in this language instead of names")
	since := fs.String("since", "", "only records changed after this cursor (printed by the previous export)")
	if _, err := c.parse(fs, "export --form FORM --format csv|jsonl|parquet|geojson --out DIR [--approved-only] [--labels LANG] [--since CURSOR]", args, 0); err != nil {
		return helpOK(err)
	}
	if *form == "" || *out == "" {
		return errors.New("export: --form and --out are required")
	}
	switch *format {
	case "csv", "jsonl", "parquet", "geojson":
	default:
		return fmt.Errorf("export: unknown --format %q (csv, jsonl, parquet or geojson)", *format)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	stream, err := cl.Export().Export(c.ctx, &tesserav1.ExportRequest{FormId: *form, ApprovedOnly: *approved, Labels: *labels, Since: *since})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer stream.Close()
	var tables []*tesserav1.ExportTable
	writers := map[int]tableWriter{}
	tty := isTerminal(c.stderr)
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
			return errors.New("export: the server ended the stream early; the files are incomplete")
		}
		if err != nil {
			closeAll()
			return fmt.Errorf("export: %w", err)
		}
		switch p := msg.Part.(type) {
		case *tesserav1.ExportResponse_Schema:
			tables = p.Schema.Tables
		case *tesserav1.ExportResponse_Rows:
			ti := int(p.Rows.Table)
			if ti >= len(tables) {
				closeAll()
				return errors.New("export: the server sent rows of an unknown table")
			}
			w := writers[ti]
			if w == nil {
				if w, err = newTableWriter(*format, *out, tables[ti]); err != nil {
					closeAll()
					return err
				}
				writers[ti] = w
			}
			for _, r := range p.Rows.Rows {
				if err := w.write(r.Cells); err != nil {
					closeAll()
					return err
				}
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
					if w, err := newTableWriter(*format, *out, t); err == nil {
						writers[ti] = w
					}
				}
			}
			if err := closeAll(); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			fmt.Fprintf(c.stdout, "exported %d records (%d rows) of %s into %s\ncursor %s\n", p.End.Records, p.End.Rows, *form, *out, p.End.Cursor)
			return nil
		}
	}
}

func cellAny(c *tesserav1.Cell) any {
	switch v := c.GetValue().(type) {
	case *tesserav1.Cell_Text:
		return v.Text
	case *tesserav1.Cell_Int:
		return v.Int
	case *tesserav1.Cell_Decimal:
		return v.Decimal
	case *tesserav1.Cell_Bool:
		return v.Bool
	}
	return nil
}

func cellText(c *tesserav1.Cell) string {
	switch v := c.GetValue().(type) {
	case *tesserav1.Cell_Text:
		return v.Text
	case *tesserav1.Cell_Int:
		return strconv.FormatInt(v.Int, 10)
	case *tesserav1.Cell_Decimal:
		return strconv.FormatFloat(v.Decimal, 'f', -1, 64)
	case *tesserav1.Cell_Bool:
		if v.Bool {
			return "1"
		}
		return "0"
	}
	return ""
}

func newTableWriter(format, dir string, t *tesserav1.ExportTable) (tableWriter, error) {
	ext := map[string]string{"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "geojson": ".geojson"}[format]
	f, err := os.Create(filepath.Join(dir, t.Name+ext))
	if err != nil {
		return nil, err
	}
	switch format {
	case "csv":
		return newCSVWriter(f, t)
	case "jsonl":
		return &jsonlWriter{f: f, b: bufio.NewWriterSize(f, 1<<16), t: t}, nil
	case "geojson":
		return newGeoJSONWriter(f, t)
	}
	return newParquetWriter(f, t)
}

// csvWriter writes RFC 4180 CSV in UTF-8 (encoding/csv), header first.
type csvWriter struct {
	f   *os.File
	b   *bufio.Writer
	w   *csv.Writer
	rec []string
}

func newCSVWriter(f *os.File, t *tesserav1.ExportTable) (*csvWriter, error) {
	b := bufio.NewWriterSize(f, 1<<16)
	w := csv.NewWriter(b)
	head := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		head[i] = c.Name
	}
	if err := w.Write(head); err != nil {
		return nil, err
	}
	return &csvWriter{f: f, b: b, w: w, rec: make([]string, len(t.Columns))}, nil
}

func (c *csvWriter) write(cells []*tesserav1.Cell) error {
	for i := range c.rec {
		c.rec[i] = ""
		if i < len(cells) {
			c.rec[i] = cellText(cells[i])
		}
	}
	return c.w.Write(c.rec)
}

func (c *csvWriter) close() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	if err := c.b.Flush(); err != nil {
		return err
	}
	return c.f.Close()
}

type jsonlWriter struct {
	f *os.File
	b *bufio.Writer
	t *tesserav1.ExportTable
}

func (j *jsonlWriter) write(cells []*tesserav1.Cell) error {
	m := make(map[string]any, len(cells))
	for i, c := range cells {
		if i < len(j.t.Columns) {
			m[j.t.Columns[i].Name] = cellAny(c)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	j.b.Write(b)
	return j.b.WriteByte('\n')
}

func (j *jsonlWriter) close() error {
	if err := j.b.Flush(); err != nil {
		return err
	}
	return j.f.Close()
}

// geoJSONWriter writes a FeatureCollection: one feature per row with a
// location (the table's first geopoint), the other columns as properties.
type geoJSONWriter struct {
	f        *os.File
	b        *bufio.Writer
	t        *tesserav1.ExportTable
	lat, lon int
	n        int
}

func newGeoJSONWriter(f *os.File, t *tesserav1.ExportTable) (*geoJSONWriter, error) {
	g := &geoJSONWriter{f: f, b: bufio.NewWriterSize(f, 1<<16), t: t, lat: -1, lon: -1}
	for i, c := range t.Columns {
		if c.Geopoint != "" && c.Geopoint == firstGeo(t) {
			switch c.Part {
			case "Latitude":
				g.lat = i
			case "Longitude":
				g.lon = i
			}
		}
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

func (g *geoJSONWriter) write(cells []*tesserav1.Cell) error {
	if g.lat < 0 || g.lon < 0 || cellAny(cells[g.lat]) == nil || cellAny(cells[g.lon]) == nil {
		return nil // no location: not a feature
	}
	props := make(map[string]any, len(cells))
	for i, c := range cells {
		if i < len(g.t.Columns) {
			props[g.t.Columns[i].Name] = cellAny(c)
		}
	}
	feat := map[string]any{"type": "Feature",
		"geometry":   map[string]any{"type": "Point", "coordinates": []any{cellAny(cells[g.lon]), cellAny(cells[g.lat])}},
		"properties": props}
	b, err := json.Marshal(feat)
	if err != nil {
		return err
	}
	if g.n > 0 {
		g.b.WriteByte(',')
	}
	g.n++
	_, err = g.b.Write(b)
	return err
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

func (p *parquetWriter) write(cells []*tesserav1.Cell) error {
	row := make(parquet.Row, len(p.index))
	for i := range p.index {
		col := p.index[i]
		var v parquet.Value
		var c *tesserav1.Cell
		if i < len(cells) {
			c = cells[i]
		}
		switch x := c.GetValue().(type) {
		case *tesserav1.Cell_Text:
			v = parquet.ByteArrayValue([]byte(x.Text)).Level(0, 1, col)
		case *tesserav1.Cell_Int:
			v = parquet.Int64Value(x.Int).Level(0, 1, col)
		case *tesserav1.Cell_Decimal:
			v = parquet.DoubleValue(x.Decimal).Level(0, 1, col)
		case *tesserav1.Cell_Bool:
			v = parquet.BooleanValue(x.Bool).Level(0, 1, col)
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

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
