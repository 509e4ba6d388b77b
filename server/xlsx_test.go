package server_test

import (
	"bytes"
	"testing"

	"github.com/xuri/excelize/v2"
)

// xlsxBytes builds a small XLSForm; an empty label makes it invalid.
func xlsxBytes(t *testing.T, id, version, label string) []byte {
	return xlsxRows(t, id, version, [][]string{{"type", "name", "label"}, {"integer", "q1", label}})
}

// xlsxRows builds an XLSForm of the given survey rows (header first).
func xlsxRows(t *testing.T, id, version string, rows [][]string) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "survey")
	f.NewSheet("settings")
	for i, r := range rows {
		for j, v := range r {
			cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
			f.SetCellStr("survey", cell, v)
		}
	}
	f.SetCellStr("settings", "A1", "form_id")
	f.SetCellStr("settings", "B1", "version")
	f.SetCellStr("settings", "A2", id)
	f.SetCellStr("settings", "B2", version)
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
