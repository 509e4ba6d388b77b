package forms

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/richardlehane/mscfb"
	"github.com/xuri/excelize/v2"
)

// Legacy .xls workbooks (BIFF8, Excel 97–2003) are read here: many teams'
// questionnaires still are, some saved with an .xlsx name. No maintained
// Go reader exists (extrame/xls dates from 2016; shakinm/xlsReader pins a
// 2019 x/text), and an XLSForm needs little of the format: sheet names and
// cell text. The compound-file container is read with mscfb, already a
// dependency of excelize; the records are parsed below, bounds-checked
// (fuzzed: FuzzReadXLS).

// ErrNotWorkbook: a file that is neither an .xlsx nor an .xls workbook.
var ErrNotWorkbook = errors.New("not an Excel workbook (.xlsx or .xls)")

var (
	zipMagic = []byte("PK\x03\x04")
	cfbMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
)

// ReadWorkbook reads an .xlsx or a legacy .xls workbook, telling them apart
// by content, not by name.
func ReadWorkbook(b []byte) (*Workbook, error) {
	switch {
	case bytes.HasPrefix(b, zipMagic):
		return ReadXLSX(bytes.NewReader(b))
	case bytes.HasPrefix(b, cfbMagic):
		return ReadXLS(b)
	case IsXForm(b):
		return ReadXForm(b)
	}
	return nil, fmt.Errorf("%w: %w", ErrNotXLSX, ErrNotWorkbook)
}

// BIFF8 record types read here.
const (
	recBOF        = 0x0809
	recEOF        = 0x000A
	recBoundSheet = 0x0085
	recSST        = 0x00FC
	recContinue   = 0x003C
	recLabelSST   = 0x00FD
	recLabel      = 0x0204
	recRString    = 0x00D6
	recNumber     = 0x0203
	recRK         = 0x027E
	recMulRK      = 0x00BD
	recFormula    = 0x0006
	recString     = 0x0207
	recBoolErr    = 0x0205
	recFormat     = 0x041E
	recXF         = 0x00E0
	recDateMode   = 0x0022
)

// Bounds of the format (BIFF8: 65,536 rows, 256 columns).
const (
	xlsMaxRows = 1 << 16
	xlsMaxCols = 1 << 8
)

// ReadXLS reads a BIFF8 workbook's sheets as text.
func ReadXLS(b []byte) (wb *Workbook, err error) {
	if len(b) > MaxXLSXBytes {
		return nil, fmt.Errorf("%w: the workbook is over %d MiB", ErrNotXLSX, MaxXLSXBytes>>20)
	}
	defer func() {
		if r := recover(); r != nil { // a malformed container: never a crash
			wb, err = nil, fmt.Errorf("%w: the .xls file is damaged", ErrNotXLSX)
		}
	}()
	stream, err := workbookStream(b)
	if err != nil {
		return nil, err
	}
	recs, err := splitRecords(stream)
	if err != nil {
		return nil, err
	}
	return parseBIFF(stream, recs)
}

// workbookStream is the "Workbook" stream of the compound file.
func workbookStream(b []byte) ([]byte, error) {
	doc, err := mscfb.New(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: the .xls container cannot be read (%v)", ErrNotXLSX, err)
	}
	for f, err := doc.Next(); err == nil; f, err = doc.Next() {
		switch f.Name {
		case "Workbook":
			if f.Size > MaxXLSXBytes {
				return nil, fmt.Errorf("%w: the workbook is over %d MiB", ErrNotXLSX, MaxXLSXBytes>>20)
			}
			return io.ReadAll(io.LimitReader(f, MaxXLSXBytes))
		case "Book":
			return nil, fmt.Errorf("%w: this .xls was saved by Excel 95 or older (BIFF5): save it again as .xlsx", ErrNotXLSX)
		}
	}
	return nil, fmt.Errorf("%w: the .xls file has no workbook stream (is it a spreadsheet?)", ErrNotXLSX)
}

// record is one BIFF record: its type, its offset in the stream and its
// data.
type biffRecord struct {
	typ  uint16
	off  int
	data []byte
}

func splitRecords(s []byte) ([]biffRecord, error) {
	var out []biffRecord
	for off := 0; off+4 <= len(s); {
		typ, n := binary.LittleEndian.Uint16(s[off:]), int(binary.LittleEndian.Uint16(s[off+2:]))
		if off+4+n > len(s) {
			return nil, fmt.Errorf("%w: the .xls workbook stream is cut short", ErrNotXLSX)
		}
		out = append(out, biffRecord{typ, off, s[off+4 : off+4+n]})
		off += 4 + n
	}
	return out, nil
}

type xlsSheet struct {
	name string
	pos  int // stream offset of its BOF
	work bool
}

func parseBIFF(stream []byte, recs []biffRecord) (*Workbook, error) {
	if len(recs) == 0 || recs[0].typ != recBOF || len(recs[0].data) < 4 || binary.LittleEndian.Uint16(recs[0].data) != 0x0600 {
		return nil, fmt.Errorf("%w: not a BIFF8 (Excel 97 or later) workbook: save it again as .xlsx", ErrNotXLSX)
	}
	var sheets []xlsSheet
	var sst []string
	dates := &xlsDates{formats: map[int]string{}}
	i := 1
	for ; i < len(recs) && recs[i].typ != recEOF; i++ {
		r := recs[i]
		switch r.typ {
		case recBoundSheet:
			if len(r.data) < 8 {
				return nil, errXLS("sheet entry")
			}
			name, _, err := shortString(r.data[6:])
			if err != nil {
				return nil, err
			}
			sheets = append(sheets, xlsSheet{name: name, pos: int(binary.LittleEndian.Uint32(r.data)), work: r.data[5] == 0})
		case recSST:
			var err error
			if sst, err = readSST(recs[i:]); err != nil {
				return nil, err
			}
		case recFormat:
			if len(r.data) >= 5 {
				if f, _, err := longString(r.data[2:]); err == nil {
					dates.formats[int(binary.LittleEndian.Uint16(r.data))] = f
				}
			}
		case recXF:
			if len(r.data) >= 4 {
				dates.xfs = append(dates.xfs, int(binary.LittleEndian.Uint16(r.data[2:])))
			}
		case recDateMode:
			dates.mode1904 = len(r.data) >= 2 && r.data[0] == 1
		}
	}
	byPos := map[int]int{}
	for j, r := range recs {
		byPos[r.off] = j
	}
	wb := &Workbook{}
	for _, sh := range sheets {
		if !sh.work {
			continue // charts and macro sheets hold no rows
		}
		start, ok := byPos[sh.pos]
		if !ok || recs[start].typ != recBOF {
			return nil, fmt.Errorf("%w: sheet %q of the .xls cannot be found in it", ErrNotXLSX, sh.name)
		}
		rows, err := sheetCells(recs[start+1:], sst, dates)
		if err != nil {
			return nil, fmt.Errorf("sheet %q: %w", sh.name, err)
		}
		wb.Sheets = append(wb.Sheets, Sheet{Name: sh.name, Rows: rows})
	}
	return wb, nil
}

func errXLS(what string) error {
	return fmt.Errorf("%w: a damaged %s in the .xls file", ErrNotXLSX, what)
}

// sheetCells reads a sheet's cells up to its EOF, as rows of text.
func sheetCells(recs []biffRecord, sst []string, dates *xlsDates) ([][]string, error) {
	var rows [][]string
	set := func(row, col int, v string) {
		if v == "" || row >= xlsMaxRows || col >= xlsMaxCols {
			return
		}
		for len(rows) <= row {
			rows = append(rows, nil)
		}
		for len(rows[row]) <= col {
			rows[row] = append(rows[row], "")
		}
		rows[row][col] = v
	}
	for i := 0; i < len(recs) && recs[i].typ != recEOF; i++ {
		d := recs[i].data
		if len(d) < 6 && recs[i].typ != recString && recs[i].typ != recBOF {
			continue
		}
		var row, col int
		if len(d) >= 4 {
			row, col = int(binary.LittleEndian.Uint16(d)), int(binary.LittleEndian.Uint16(d[2:]))
		}
		switch recs[i].typ {
		case recBOF: // an embedded substream (a chart): skip to its EOF
			for i++; i < len(recs) && recs[i].typ != recEOF; i++ {
			}
		case recLabelSST:
			if len(d) < 10 {
				return nil, errXLS("cell")
			}
			k := int(binary.LittleEndian.Uint32(d[6:]))
			if k >= len(sst) {
				return nil, errXLS("shared string reference")
			}
			set(row, col, sst[k])
		case recLabel, recRString:
			s, _, err := longString(d[6:])
			if err != nil {
				return nil, err
			}
			set(row, col, s)
		case recNumber:
			if len(d) < 14 {
				return nil, errXLS("number")
			}
			set(row, col, dates.cell(binary.LittleEndian.Uint16(d[4:]), math.Float64frombits(binary.LittleEndian.Uint64(d[6:]))))
		case recRK:
			if len(d) < 10 {
				return nil, errXLS("number")
			}
			set(row, col, dates.cell(binary.LittleEndian.Uint16(d[4:]), rk(binary.LittleEndian.Uint32(d[6:]))))
		case recMulRK:
			for j, c := 4, col; j+6 <= len(d)-2; j, c = j+6, c+1 {
				set(row, c, dates.cell(binary.LittleEndian.Uint16(d[j:]), rk(binary.LittleEndian.Uint32(d[j+2:]))))
			}
		case recBoolErr:
			if len(d) >= 8 && d[7] == 0 {
				set(row, col, map[bool]string{true: "TRUE", false: "FALSE"}[d[6] != 0])
			}
		case recFormula:
			if len(d) < 14 {
				return nil, errXLS("formula")
			}
			res := d[6:14]
			if res[6] != 0xFF || res[7] != 0xFF {
				set(row, col, number(math.Float64frombits(binary.LittleEndian.Uint64(res))))
				continue
			}
			switch res[0] {
			case 0: // text: in the STRING record that follows
				if i+1 < len(recs) && recs[i+1].typ == recString {
					s, _, err := longString(recs[i+1].data)
					if err != nil {
						return nil, err
					}
					set(row, col, s)
					i++
				}
			case 1:
				set(row, col, map[bool]string{true: "TRUE", false: "FALSE"}[res[2] != 0])
			}
		}
	}
	return rows, nil
}

// rk decodes an RK number: an integer or the high bits of a double,
// possibly times 100.
func rk(v uint32) float64 {
	var f float64
	if v&2 != 0 {
		f = float64(int32(v) >> 2)
	} else {
		f = math.Float64frombits(uint64(v&^3) << 32)
	}
	if v&1 != 0 {
		f /= 100
	}
	return f
}

// number writes a cell's number as a spreadsheet shows it by default
// (1, not 1.0).
func number(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return ""
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// shortString reads a ShortXLUnicodeString (1-byte length).
func shortString(d []byte) (string, int, error) {
	if len(d) < 2 {
		return "", 0, errXLS("string")
	}
	return chars(d[2:], int(d[0]), d[1]&1 != 0, 2)
}

// longString reads an XLUnicodeString (2-byte length).
func longString(d []byte) (string, int, error) {
	if len(d) < 3 {
		return "", 0, errXLS("string")
	}
	return chars(d[3:], int(binary.LittleEndian.Uint16(d)), d[2]&1 != 0, 3)
}

func chars(d []byte, n int, wide bool, head int) (string, int, error) {
	size := n
	if wide {
		size = 2 * n
	}
	if size > len(d) {
		return "", 0, errXLS("string")
	}
	return decodeChars(d[:size], wide), head + size, nil
}

func decodeChars(d []byte, wide bool) string {
	if !wide {
		r := make([]rune, len(d)) // Latin-1: each byte is its code point
		for i, c := range d {
			r[i] = rune(c)
		}
		return string(r)
	}
	u := make([]uint16, len(d)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(d[2*i:])
	}
	return string(utf16.Decode(u))
}

// sstReader walks the shared string table across its CONTINUE records: a
// string's characters may break at a record boundary, where a new flags
// byte says whether they go on one or two bytes wide.
type sstReader struct {
	parts [][]byte
	p, i  int
}

func (r *sstReader) left() int { return len(r.parts[r.p]) - r.i }

func (r *sstReader) next() bool {
	if r.p+1 >= len(r.parts) {
		return false
	}
	r.p, r.i = r.p+1, 0
	return true
}

// take reads n bytes that do not break across records (counts, flags).
func (r *sstReader) take(n int) ([]byte, error) {
	if r.left() == 0 && !r.next() {
		return nil, errXLS("shared string table")
	}
	if r.left() < n {
		return nil, errXLS("shared string table")
	}
	b := r.parts[r.p][r.i : r.i+n]
	r.i += n
	return b, nil
}

// skip passes n bytes that may span records (rich text runs, phonetics).
func (r *sstReader) skip(n int) error {
	for n > 0 {
		if r.left() == 0 && !r.next() {
			return errXLS("shared string table")
		}
		k := min(n, r.left())
		r.i += k
		n -= k
	}
	return nil
}

func (r *sstReader) str() (string, error) {
	h, err := r.take(3)
	if err != nil {
		return "", err
	}
	n, flags := int(binary.LittleEndian.Uint16(h)), h[2]
	var runs, ext int
	if flags&8 != 0 {
		b, err := r.take(2)
		if err != nil {
			return "", err
		}
		runs = int(binary.LittleEndian.Uint16(b))
	}
	if flags&4 != 0 {
		b, err := r.take(4)
		if err != nil {
			return "", err
		}
		ext = int(binary.LittleEndian.Uint32(b))
	}
	var sb strings.Builder
	wide := flags&1 != 0
	for n > 0 {
		if r.left() == 0 {
			if !r.next() {
				return "", errXLS("shared string table")
			}
			f, err := r.take(1) // a string going on in a CONTINUE restates its width
			if err != nil {
				return "", err
			}
			wide = f[0]&1 != 0
		}
		w := 1
		if wide {
			w = 2
		}
		k := min(n, r.left()/w)
		if k == 0 {
			return "", errXLS("shared string table")
		}
		sb.WriteString(decodeChars(r.parts[r.p][r.i:r.i+k*w], wide))
		r.i += k * w
		n -= k
	}
	if ext < 0 || ext > MaxXLSXBytes {
		return "", errXLS("shared string table")
	}
	return sb.String(), r.skip(4*runs + ext)
}

// readSST reads the shared string table starting at recs[0].
func readSST(recs []biffRecord) ([]string, error) {
	if len(recs[0].data) < 8 {
		return nil, errXLS("shared string table")
	}
	unique := int(binary.LittleEndian.Uint32(recs[0].data[4:]))
	r := &sstReader{parts: [][]byte{recs[0].data[8:]}}
	for _, c := range recs[1:] {
		if c.typ != recContinue {
			break
		}
		r.parts = append(r.parts, c.data)
	}
	if unique < 0 || unique > len(recs[0].data)+MaxXLSXBytes/3 {
		return nil, errXLS("shared string table")
	}
	out := make([]string, 0, min(unique, 1<<16))
	for range unique {
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// XLSToXLSX rewrites a legacy .xls workbook as an .xlsx holding the same
// sheets and cell text. The bytes depend on the content only (fixed
// document dates), so publishing the same .xls twice stores one version.
func XLSToXLSX(b []byte) ([]byte, error) {
	wb, err := ReadXLS(b)
	if err != nil {
		return nil, err
	}
	return WorkbookToXLSX(wb, "Tessera (from .xls)")
}

// WorkbookToXLSX writes wb as an .xlsx, the same bytes for the same
// sheets (fixed document dates), so a form converted twice is stored once.
func WorkbookToXLSX(wb *Workbook, creator string) ([]byte, error) {
	f := excelize.NewFile()
	defer f.Close()
	for i, s := range wb.Sheets {
		name := s.Name
		if i == 0 {
			if err := f.SetSheetName("Sheet1", name); err != nil {
				return nil, fmt.Errorf("%w: sheet %q: %v", ErrNotXLSX, name, err)
			}
		} else if _, err := f.NewSheet(name); err != nil {
			return nil, fmt.Errorf("%w: sheet %q: %v", ErrNotXLSX, name, err)
		}
		sw, err := f.NewStreamWriter(name)
		if err != nil {
			return nil, err
		}
		for r, row := range s.Rows {
			cells := make([]any, len(row))
			for c, v := range row {
				cells[c] = v
			}
			cell, _ := excelize.CoordinatesToCellName(1, r+1)
			if err := sw.SetRow(cell, cells); err != nil {
				return nil, err
			}
		}
		if err := sw.Flush(); err != nil {
			return nil, err
		}
	}
	epoch := "2000-01-01T00:00:00Z"
	if err := f.SetDocProps(&excelize.DocProperties{Created: epoch, Modified: epoch, Creator: creator}); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := f.Write(&out); err != nil {
		return nil, err
	}
	return canonicalZip(out.Bytes())
}

// canonicalZip repacks a zip with its entries in name order and no times:
// excelize writes worksheets in map order.
func canonicalZip(b []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	files := slices.Clone(zr.File)
	slices.SortFunc(files, func(a, b *zip.File) int { return strings.Compare(a.Name, b.Name) })
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Deflate})
		if err != nil {
			return nil, err
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(w, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// xlsDates knows which cell formats show dates and times: a number
// formatted so is written as xlrd (and so pyxform) writes it, "09:30:00"
// or "2024-05-01 00:00:00", not as a day count.
type xlsDates struct {
	formats  map[int]string // custom number formats by index
	xfs      []int          // cell format → number format index
	mode1904 bool
}

var quotedInFormat = regexp.MustCompile(`"[^"]*"|\[[^\]]*\]|\\.|_.|\*.`)

func (x *xlsDates) isDate(ixfe uint16) bool {
	if int(ixfe) >= len(x.xfs) {
		return false
	}
	f := x.xfs[ixfe]
	switch {
	case f >= 14 && f <= 22, f >= 27 && f <= 36, f >= 45 && f <= 47, f >= 50 && f <= 58:
		return true
	case f < 164:
		return false
	}
	s := strings.ToLower(quotedInFormat.ReplaceAllString(x.formats[f], ""))
	return strings.ContainsAny(s, "ymdhs") && !strings.Contains(s, "general")
}

func (x *xlsDates) cell(ixfe uint16, v float64) string {
	if x == nil || !x.isDate(ixfe) || v < 0 || math.IsNaN(v) || v > 2958465 {
		return number(v)
	}
	days := math.Floor(v)
	secs := int(math.Round((v - days) * 86400))
	if secs >= 86400 {
		days, secs = days+1, secs-86400
	}
	clock := fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
	if days == 0 {
		return clock
	}
	epoch := time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
	switch {
	case x.mode1904:
		epoch = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)
	case days < 61:
		epoch = time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC) // before Excel's phantom 29 February 1900
	}
	return epoch.AddDate(0, 0, int(days)).Format("2006-01-02") + " " + clock
}
