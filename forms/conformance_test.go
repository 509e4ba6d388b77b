package forms

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tessera-survey/tessera/internal/shared"
)

type pyxformCase struct {
	ID       string `json:"id"`
	Source   string `json:"source"`
	MD       string `json:"md"`
	FormName string `json:"form_name"`
	Expect   struct {
		Valid bool `json:"valid"`
	} `json:"expect"`
	PyxformError string `json:"pyxform_error"`
	Features     struct {
		Sheets      []string `json:"sheets"`
		SurveyTypes []string `json:"survey_types"`
		Columns     []string `json:"columns"`
	} `json:"features"`
}

// Sheets, types and columns of pyxform's suite that Tessera does not
// support, and why. A case using any of them is skipped.
var unsupportedSheets = map[string]string{
	"entities":         "entities (ODK's entity management) are out of scope",
	"external_choices": "external choice lists (select_one_external) are not supported",
	"osm":              "OpenStreetMap questions are not supported",
}

var supportedSurveyColumns = map[string]bool{
	"type": true, "name": true, "label": true, "hint": true, "required": true, "required_message": true,
	"relevant": true, "constraint": true, "constraint_message": true, "calculation": true, "default": true,
	"choice_filter": true, "read_only": true, "readonly": true, "appearance": true, "parameters": true,
	"repeat_count": true, "calculate": true, "sensitive": true,
}

var supportedTypes = map[string]bool{
	"select_one": true, "select_multiple": true, "or_other": true, "select": true,
	"begin group": true, "end group": true, "begin_group": true, "end_group": true,
	"begin repeat": true, "end repeat": true, "begin_repeat": true, "end_repeat": true,
}

func init() {
	for t := range typeAliases {
		supportedTypes[t] = true
	}
}

// whyNot explains the unsupported question types and columns the suite uses
// most; anything else is "not in Tessera's XLSForm subset (issue #3)".
var whyNot = map[string]string{
	"range":                     "range widgets are a UI feature not yet built",
	"select_one_from_file":      "choices from attached CSV/XML files need media distribution",
	"select_multiple_from_file": "choices from attached CSV/XML files need media distribution",
	"select_one_external":       "external choice lists need media distribution",
	"csv-external":              "external data files need media distribution",
	"xml-external":              "external data files need media distribution",
	"geoshape":                  "only geopoint is supported among geo types",
	"geotrace":                  "only geopoint is supported among geo types",
	"audit":                     "audit logs are a device feature not yet built",
	"background-geopoint":       "background capture is a device feature not yet built",
	"background-audio":          "background capture is a device feature not yet built",
	"start-geopoint":            "background capture is a device feature not yet built",
	"begin loop":                "loops are a legacy pyxform construct",
	"rank":                      "ranking widgets are not built",
	"trigger":                   "value triggers (ODK's trigger column) are not supported",
	"guidance_hint":             "guidance hints are not shown by Tessera's UI",
	"media":                     "media labels need media distribution",
	"image":                     "media labels need media distribution",
	"audio":                     "media labels need media distribution",
	"save_to":                   "saving to entities is out of scope",
}

func why(kind, name string) string {
	if w, ok := whyNot[name]; ok {
		return kind + " " + name + ": " + w
	}
	return kind + " " + name + ": not in Tessera's XLSForm subset"
}

// skipReason says why a case is outside what Tessera supports ("" when
// inside).
func skipReason(c *pyxformCase) string {
	for _, s := range c.Features.Sheets {
		if why, ok := unsupportedSheets[strings.ToLower(s)]; ok {
			return "sheet " + s + ": " + why
		}
	}
	for _, t := range c.Features.SurveyTypes {
		if !supportedTypes[t] {
			return why("question type", t)
		}
	}
	for _, col := range c.Features.Columns {
		sheet, name, _ := strings.Cut(col, ":")
		if strings.ToLower(sheet) != "survey" {
			continue
		}
		base, _, _ := strings.Cut(name, "::")
		if !supportedSurveyColumns[strings.ToLower(strings.TrimSpace(base))] {
			return why("survey column", strings.ToLower(base))
		}
	}
	return ""
}

// TestPyxformConformance runs every pyxform case whose features Tessera
// supports and reports agreement on accept/reject; target ≥ 95%.
func TestPyxformConformance(t *testing.T) {
	f, err := os.Open(filepath.Join(shared.Dir(t, "conformance/pyxform"), "cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var run, agree, falseAccept, falseReject, total int
	skipped := map[string]int{}
	for sc.Scan() {
		var c pyxformCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		total++
		if why := skipReason(&c); why != "" {
			skipped[why]++
			continue
		}
		run++
		wb, err := ReadMarkdown(c.MD)
		if err != nil {
			t.Fatalf("case %s: %v", c.ID, err)
		}
		_, err = Import(wb, Options{RootName: c.FormName})
		accepted := err == nil
		if accepted == c.Expect.Valid {
			agree++
			continue
		}
		if accepted {
			falseAccept++
			t.Logf("accepted, pyxform rejects: %s %s\n  pyxform: %.200s\n%s", c.ID, c.Source, c.PyxformError, c.MD)
		} else {
			falseReject++
			t.Logf("rejected, pyxform accepts: %s %s\n  ours: %v\n%s", c.ID, c.Source, err, c.MD)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	pct := 100 * float64(agree) / float64(run)
	reasons := make([]string, 0, len(skipped))
	nskip := 0
	for k, n := range skipped {
		reasons = append(reasons, fmt.Sprintf("%5d  %s", n, k))
		nskip += n
	}
	sort.Strings(reasons)
	t.Logf("pyxform cases: %d in all, %d run, %d skipped; agreement %d/%d (%.1f%%): %d accepted that pyxform rejects, %d rejected that pyxform accepts",
		total, run, nskip, agree, run, pct, falseAccept, falseReject)
	t.Logf("skipped (feature not supported by Tessera):\n%s", strings.Join(reasons, "\n"))
	if pct < 95 {
		t.Fatalf("agreement %.1f%% is under the 95%% target", pct)
	}
}
