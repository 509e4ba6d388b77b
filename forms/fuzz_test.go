package forms

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// FuzzImportMarkdown: any text as an XLSForm; Import must never panic and
// must return either a form or problems.
func FuzzImportMarkdown(f *testing.F) {
	f.Add("| survey |\n| | type | name | label |\n| | integer | q1 | Q1 |\n")
	f.Add("| survey |\n| | type | name | relevant |\n| | begin repeat | r | ${x} |\n| | text | x | ${r} |\n")
	f.Fuzz(func(t *testing.T, md string) {
		wb, err := ReadMarkdown(md)
		if err != nil {
			return
		}
		form, err := Import(wb, Options{})
		if (form == nil) == (err == nil) {
			t.Fatalf("Import returned form %v and error %v", form != nil, err)
		}
		if form != nil {
			if _, err := form.XForm(); err != nil {
				t.Fatalf("the XForm of an imported form: %v", err)
			}
		}
	})
}

// FuzzXLSX: arbitrary bytes as an uploaded .xlsx file.
func FuzzXLSX(f *testing.F) {
	if b, err := os.ReadFile("../examples/forms/community-security.xlsx"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		wb, err := ReadXLSX(bytes.NewReader(b))
		if err != nil {
			return
		}
		_, _ = Import(wb, Options{})
	})
}

// FuzzReadXLS: a damaged or hostile legacy .xls is an error, never a
// panic or a runaway allocation.
func FuzzReadXLS(f *testing.F) {
	for _, name := range []string{"calculate.xls", "tutorial.xls", "widgets.xls"} {
		if b, err := os.ReadFile("../../shared/conformance/pyxform-workbooks/example_xls/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Add(append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, make([]byte, 512)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		wb, err := ReadWorkbook(b)
		if err != nil {
			return
		}
		_, _ = Import(wb, Options{})
	})
}

// FuzzReadXForm: any bytes as an uploaded XForm: an error or a workbook
// that imports or lists its problems, never a panic; an imported form's
// own XForm is written without error.
func FuzzReadXForm(f *testing.F) {
	for _, name := range []string{"widgets.xml", "xlsform_spec_test.xml", "pull_data.xml"} {
		if b, err := os.ReadFile("../../shared/conformance/pyxform-workbooks/expected/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"><h:head><model><instance><d id="x"><q/></d></instance></model></h:head></h:html>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		wb, err := ReadXForm(b)
		if err != nil {
			return
		}
		form, err := Import(wb, Options{})
		if err != nil {
			return
		}
		if _, err := form.XForm(); err != nil {
			t.Fatalf("the XForm of an imported form: %v", err)
		}
	})
}

// FuzzParseSubmission: any bytes as an OpenRosa submission: an error or
// field writes, never a panic (the instance parser faces the network).
func FuzzParseSubmission(f *testing.F) {
	wb, err := ReadMarkdown("| survey |\n| | type | name | label |\n| | text | q | Q |\n| | begin repeat | r | R |\n| | integer | n | N |\n| | end repeat | | |\n")
	if err != nil {
		f.Fatal(err)
	}
	form, err := Import(wb, Options{DefaultID: "f"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`<data id="f" version="1"><q>x</q><r><n>1</n></r><r><n>2</n></r><meta><instanceID>uuid:1</instanceID></meta></data>`))
	f.Add([]byte(`<data id="f"><meta><instanceID>uuid:1</instanceID><deprecatedID>uuid:0</deprecatedID></meta></data>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSubmission(b)
		if err != nil {
			return
		}
		_, _ = form.SubmissionFields(s, func(r string, i int) string { return fmt.Sprintf("k%d", i) })
	})
}
