package forms

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/xuri/excelize/v2"
)

// Workbook is a spreadsheet as XLSForm sees it: named sheets of text rows.
// Rows[i] is spreadsheet row i+1; Rows[0] is the header.
type Workbook struct {
	Sheets []Sheet
}

// Sheet is one sheet of a workbook.
type Sheet struct {
	Name string
	Rows [][]string
}

// Sheet returns the sheet with the given name (case-insensitive), or nil.
func (w *Workbook) Sheet(name string) *Sheet {
	for i := range w.Sheets {
		if strings.EqualFold(strings.TrimSpace(w.Sheets[i].Name), name) {
			return &w.Sheets[i]
		}
	}
	return nil
}

// ErrNotXLSX: the bytes are not a readable .xlsx workbook.
var ErrNotXLSX = errors.New("not a readable .xlsx or .xls workbook")

// MaxXLSXBytes bounds an uploaded form file.
const MaxXLSXBytes = 32 << 20

// ReadXLSX reads an .xlsx workbook. Cells are read as the text a person
// sees (formulas as their cached values).
func ReadXLSX(r io.Reader) (*Workbook, error) {
	f, err := excelize.OpenReader(io.LimitReader(r, MaxXLSXBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNotXLSX, err)
	}
	defer f.Close()
	wb := &Workbook{}
	for _, name := range f.GetSheetList() {
		rows, err := f.GetRows(name, excelize.Options{RawCellValue: false})
		if err != nil {
			return nil, fmt.Errorf("read xlsx: sheet %q: %w", name, err)
		}
		wb.Sheets = append(wb.Sheets, Sheet{Name: name, Rows: rows})
	}
	return wb, nil
}

// ReadMarkdown reads a workbook written as markdown tables, the way
// pyxform's test suite writes XLSForms: a non-empty first cell starts a
// sheet, the next row (or the rest of that row) is its header, data rows
// have an empty first cell, and "\|" is a literal pipe.
func ReadMarkdown(md string) (*Workbook, error) {
	wb := &Workbook{}
	var cur *Sheet
	for n, line := range strings.Split(md, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			return nil, fmt.Errorf("markdown line %d: a table row must start with |", n+1)
		}
		cells := splitRow(line)
		first := strings.TrimSpace(cells[0])
		rest := cells[1:]
		if first != "" {
			wb.Sheets = append(wb.Sheets, Sheet{Name: first})
			cur = &wb.Sheets[len(wb.Sheets)-1]
			if !allEmpty(rest) {
				cur.Rows = append(cur.Rows, rest)
			}
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("markdown line %d: data before any sheet name", n+1)
		}
		cur.Rows = append(cur.Rows, rest)
	}
	return wb, nil
}

func splitRow(line string) []string {
	line = strings.TrimPrefix(line, "|")
	var cells []string
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			b.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(line[i])
		}
	}
	if s := strings.TrimSpace(b.String()); s != "" {
		cells = append(cells, s)
	}
	if len(cells) == 0 {
		cells = []string{""}
	}
	return cells
}

func allEmpty(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}
