package forms

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/tessera-survey/tessera/syncengine"
)

// xlsx builds a real .xlsx workbook with excelize: sheets of rows.
func xlsx(t testing.TB, sheets map[string][][]string, order ...string) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for i, name := range order {
		if i == 0 {
			f.SetSheetName("Sheet1", name)
		} else if _, err := f.NewSheet(name); err != nil {
			t.Fatal(err)
		}
		for r, row := range sheets[name] {
			for c, v := range row {
				cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
				f.SetCellStr(name, cell, v)
			}
		}
	}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func importXLSX(t testing.TB, b []byte) (*Form, error) {
	t.Helper()
	wb, err := ReadXLSX(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return Import(wb, Options{DefaultID: "test"})
}

func householdForm(t testing.TB) *Form {
	b := xlsx(t, map[string][][]string{
		"survey": {
			{"type", "name", "label", "label::Français (fr)", "required", "required_message::Français (fr)", "relevant", "constraint", "constraint_message", "constraint_message::Français (fr)", "calculation", "choice_filter", "Sensitive"},
			{"integer", "size", "Household size", "Taille du ménage", "yes", "Obligatoire", "", ". > 0 and . < 40", "Between 1 and 39", "Entre 1 et 39", "", "", ""},
			{"select_one yn", "displaced", "Displaced?", "Déplacé ?", "yes", "", "", "", "", "", "", "", ""},
			{"begin group", "flight", "Flight", "Fuite", "", "", "${displaced} = 'yes'", "", "", "", "", "", ""},
			{"date", "left_on", "Left on", "Parti le", "yes", "", "", ". <= today()", "", "", "", "", ""},
			{"select_one region", "from_region", "From", "De", "", "", "", "", "", "", "", "", ""},
			{"select_one town", "from_town", "Town", "Ville", "", "", "", "", "", "", "", "region = ${from_region}", ""},
			{"end group", "", "", "", "", "", "", "", "", "", "", "", ""},
			{"begin repeat", "roster", "Member", "Membre", "", "", "", "", "", "", "", "", ""},
			{"text", "name", "Name", "Nom", "yes", "", "", "", "", "", "", "", ""},
			{"integer", "age", "Age", "Âge", "", "", "", ". < 120", "", "", "", "", ""},
			{"select_multiple threats", "fears", "Fears", "Peurs", "", "", "${age} >= 12", "", "", "", "", "", "yes"},
			{"end repeat", "", "", "", "", "", "", "", "", "", "", "", ""},
			{"calculate", "members", "", "", "", "", "", "", "", "", "count(${name})", "", ""},
			{"calculate", "total_age", "", "", "", "", "", "", "", "", "sum(${age})", "", ""},
			{"note", "summary", "There are ${members} members", "Il y a ${members} membres", "", "", "", "", "", "", "", "", ""},
		},
		"choices": {
			{"list_name", "name", "label", "label::Français (fr)", "region"},
			{"yn", "yes", "Yes", "Oui", ""}, {"yn", "no", "No", "Non", ""},
			{"region", "north", "North", "Nord", ""}, {"region", "south", "South", "Sud", ""},
			{"town", "n1", "North town", "Ville nord", "north"}, {"town", "s1", "South town", "Ville sud", "south"},
			{"threats", "violence", "Violence", "Violence", ""}, {"threats", "hunger", "Hunger", "Faim", ""},
		},
		"settings": {{"form_id", "form_title", "version", "default_language"}, {"household", "Household", "3", "English"}},
	}, "survey", "choices", "settings")
	f, err := importXLSX(t, b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestImportXLSX(t *testing.T) {
	f := householdForm(t)
	if f.Key() != "household@3" || f.Title != "Household" || !slices.Contains(f.Languages, "Français (fr)") {
		t.Fatalf("form %s %q %v", f.Key(), f.Title, f.Languages)
	}
	q := f.Question("fears")
	if q == nil || q.Repeat() == nil || q.Repeat().Name != "roster" || !q.Sensitive || q.Path() != "roster/fears" {
		t.Fatalf("fears: %+v", q)
	}
	if l := f.Question("size").Label.In("Français (fr)", f.DefaultLanguage); l != "Taille du ménage" {
		t.Fatalf("French label %q", l)
	}
}

func TestImportListsEveryProblem(t *testing.T) {
	b := xlsx(t, map[string][][]string{
		"survey": {
			{"type", "name", "label", "relevant", "constraint"},
			{"integer", "a", "A", "", ""},
			{"integer", "a", "A again", "", ""},
			{"select_one nolist", "b", "B", "", ""},
			{"text", "c", "C", "${zzz} = 1", ""},
			{"text", "d", "D", "", ". > "},
			{"begin group", "g", "G", "", ""},
			{"frobnicate", "e", "E", "", ""},
		},
	}, "survey")
	_, err := importXLSX(t, b)
	ps, ok := err.(Problems)
	if !ok {
		t.Fatalf("want Problems, got %v", err)
	}
	msg := ps.Error()
	for _, want := range []string{"[row : 3]", "[row : 4]", "[row : 5]", "[row : 6]", "[row : 7]", "[row : 8]", "zzz", "nolist", "frobnicate", "Unmatched 'begin_group'"} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems lack %q:\n%s", want, msg)
		}
	}
}

func TestImportNeverPanics(t *testing.T) {
	for _, wb := range []*Workbook{
		{}, {Sheets: []Sheet{{Name: "survey"}}}, {Sheets: []Sheet{{Name: "survey", Rows: [][]string{{"type"}, {"begin repeat"}}}}},
		{Sheets: []Sheet{{Name: "survey", Rows: [][]string{{"name"}, {"x"}}}}},
		{Sheets: []Sheet{{Name: "survey", Rows: [][]string{{"type", "name"}, {"end group", ""}, {"select_one", "x"}}}}},
	} {
		if _, err := Import(wb, Options{}); err == nil {
			t.Errorf("accepted %+v", wb)
		}
	}
	if _, err := ReadXLSX(strings.NewReader("not a zip")); err == nil {
		t.Error("ReadXLSX accepted garbage")
	}
}

func vals(kv ...any) Answers {
	a := Answers{}
	for i := 0; i < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case string:
			a[kv[i].(string)] = syncengine.TextValue(v)
		case int:
			a[kv[i].(string)] = syncengine.IntValue(int64(v))
		}
	}
	return a
}

func codes(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Field+":"+v.Code)
	}
	slices.Sort(out)
	return out
}

func TestValidate(t *testing.T) {
	f := householdForm(t)
	now := func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }
	cases := []struct {
		name string
		ans  Answers
		want []string
	}{
		{"complete", vals("size", 3, "displaced", "yes", "flight/left_on", "2026-10-01", "flight/from_region", "north",
			"flight/from_town", "n1", "roster[a]", 1, "roster[a]/name", "Amina", "roster[a]/age", 30, "roster[a]/fears", "violence hunger"), nil},
		{"required missing", vals("displaced", "no"), []string{"size:required"}},
		{"skipped section not required", vals("size", 2, "displaced", "no"), nil},
		{"constraint", vals("size", 50, "displaced", "no"), []string{"size:constraint"}},
		{"type", vals("size", "many", "displaced", "no"), []string{"size:type"}},
		{"choice", vals("size", 1, "displaced", "maybe"), []string{"displaced:choice"}},
		{"choice filter", vals("size", 1, "displaced", "yes", "flight/left_on", "2026-10-01", "flight/from_region", "north", "flight/from_town", "s1"),
			[]string{"flight/from_town:choice"}},
		{"future date", vals("size", 1, "displaced", "yes", "flight/left_on", "2027-01-01"), []string{"flight/left_on:constraint"}},
		{"repeat required and relevance", vals("size", 2, "displaced", "no", "roster[a]", 1, "roster[a]/age", 5, "roster[a]/fears", "bogus",
			"roster[b]", 2, "roster[b]/name", "Omar", "roster[b]/age", 200, "roster[b]/fears", "hunger hunger"),
			[]string{"roster[a]/name:required", "roster[b]/age:constraint", "roster[b]/fears:choice"}},
		{"removed instance ignored", Answers{"size": syncengine.IntValue(1), "displaced": syncengine.TextValue("no"), "roster[x]": {},
			"roster[x]/age": syncengine.IntValue(500)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := codes(NewInstance(f, c.ans, now).Validate(""))
			if !slices.Equal(got, c.want) {
				t.Fatalf("violations %v, want %v", got, c.want)
			}
		})
	}
	// Messages come in the chosen language.
	vs := NewInstance(f, vals("size", 50, "displaced", "no"), now).Validate("Français (fr)")
	if len(vs) != 1 || vs[0].Message != "Entre 1 et 39" {
		t.Fatalf("French constraint message: %+v", vs)
	}
	vs = NewInstance(f, vals("displaced", "no"), now).Validate("Français (fr)")
	if len(vs) != 1 || vs[0].Message != "Obligatoire" {
		t.Fatalf("French required message: %+v", vs)
	}
}

func TestCalculateAcrossRepeats(t *testing.T) {
	f := householdForm(t)
	ans := vals("size", 2, "displaced", "no", "roster[b]", 2, "roster[b]/name", "Omar", "roster[b]/age", 40,
		"roster[a]", 1, "roster[a]/name", "Amina", "roster[a]/age", 12)
	in := NewInstance(f, ans, nil)
	calc, err := in.Calculate()
	if err != nil {
		t.Fatal(err)
	}
	if calc["members"].String() != "2" || calc["total_age"].String() != "52" {
		t.Fatalf("calculations: %v", calc)
	}
	// Inside an instance, ${age} is that instance's age: relevance of fears.
	var relevant []string
	in.Walk(func(n *INode) bool {
		if n.Q.Name == "fears" && in.Relevant(n) {
			relevant = append(relevant, n.Field)
		}
		return true
	})
	if !slices.Equal(relevant, []string{"roster[a]/fears", "roster[b]/fears"}) {
		t.Fatalf("relevant fears: %v", relevant)
	}
	ans["members"] = syncengine.TextValue("7")
	vs := NewInstance(f, ans, nil).CheckCalculations()
	if len(vs) != 1 || vs[0].Field != "members" {
		t.Fatalf("recheck: %+v", vs)
	}
}

// TestFormIDIsNotAPath: a form id names export files; one that is a path
// (or could become one) is refused with its sheet.
func TestFormIDIsNotAPath(t *testing.T) {
	for _, id := range []string{"../../evil", "a/b", `a\b`, "..", ".hidden", "-x"} {
		b := xlsx(t, map[string][][]string{
			"survey":   {{"type", "name", "label"}, {"text", "q", "Q"}},
			"settings": {{"form_id", "version"}, {id, "1"}},
		}, "survey", "settings")
		if _, err := importXLSX(t, b); err == nil || !strings.Contains(err.Error(), "form_id") {
			t.Errorf("form_id %q: %v", id, err)
		}
	}
	b := xlsx(t, map[string][][]string{
		"survey":   {{"type", "name", "label"}, {"text", "q", "Q"}},
		"settings": {{"form_id", "version"}, {"community_security.v2-b", "1"}},
	}, "survey", "settings")
	if _, err := importXLSX(t, b); err != nil {
		t.Errorf("a valid form_id refused: %v", err)
	}
}

// TestNewQuestionTypes (issue 15): the types real questionnaires use load
// (with ODK's older spellings), and their answers are checked: a range
// within start/end on its step, lines and shapes of points, ranks of the
// list's choices once each; metadata the device cannot know is not asked.
func TestNewQuestionTypes(t *testing.T) {
	wb, err := ReadMarkdown(`
| survey |
|        | type                          | name   | label  | parameters              |
|        | range                         | score  | Score  | start=0 end=10 step=2   |
|        | geotrace                      | route  | Route  |                         |
|        | geoshape                      | plot   | Plot   |                         |
|        | rank pri                      | pri    | Rank   |                         |
|        | barcode                       | code   | Code   |                         |
|        | select_one_from_file camps.csv | camp   | Camp   |                         |
|        | audit                         | audit  |        |                         |
|        | phonenumber                   | phone  |        |                         |
|        | q int                         | legacy | Legacy |                         |
| choices |
|         | list_name | name  | label |
|         | pri       | food  | Food  |
|         | pri       | water | Water |
`)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Import(wb, Options{RootName: "types"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	kinds := map[string]Kind{}
	f.Walk(func(q *Question) { kinds[q.Name] = q.Kind })
	want := map[string]Kind{"score": KRange, "route": KGeotrace, "plot": KGeoshape, "pri": KRank, "code": KBarcode,
		"camp": KSelectOne, "audit": KAudit, "phone": KPhoneNumber, "legacy": KInteger}
	for n, k := range want {
		if kinds[n] != k {
			t.Errorf("%s: kind %q, want %q", n, kinds[n], k)
		}
	}
	if q := f.QuestionAt("camp"); q == nil || q.ItemsetFile != "camps.csv" {
		t.Fatalf("select_one_from_file: %+v", q)
	}
	now := func() time.Time { return time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		ans  Answers
		want []string
	}{
		{vals("score", 4, "route", "1 2; 3 4", "plot", "1 2; 3 4; 5 6; 1 2", "pri", "water food"), nil},
		{vals("score", 5), []string{"score:type"}},
		{vals("score", 12), []string{"score:type"}},
		{vals("route", "1 2"), []string{"route:type"}},
		{vals("plot", "1 2; 3 4; 5 6"), []string{"plot:type"}},
		{vals("pri", "food food"), []string{"pri:choice"}},
		{vals("pri", "rice"), []string{"pri:choice"}},
	} {
		if got := codes(NewInstance(f, c.ans, now).Validate("")); !slices.Equal(got, c.want) {
			t.Errorf("%v: violations %v, want %v", c.ans, got, c.want)
		}
	}
}

// TestTypographicQuotes (issue 15): quotes a spreadsheet program curled
// are read as plain ones on the survey sheet, as pyxform does.
func TestTypographicQuotes(t *testing.T) {
	wb, err := ReadMarkdown(`
| survey |
|        | type             | name | label | relevant             |
|        | select_one yn    | ok   | OK?   |                      |
|        | text             | why  | Why?  | ${ok} = ‘no’         |
| choices |
|         | list_name | name | label |
|         | yn        | yes  | Yes   |
|         | yn        | no   | No    |
`)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Import(wb, Options{RootName: "quotes"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	now := func() time.Time { return time.Now() }
	for ans, want := range map[string]bool{"no": true, "yes": false} {
		in := NewInstance(f, vals("ok", ans), now)
		got := false
		in.Walk(func(n *INode) bool {
			if n.Field == "why" {
				got = in.Relevant(n)
			}
			return true
		})
		if got != want {
			t.Errorf("ok=%s: why relevant %v, want %v", ans, got, want)
		}
	}
}

// TestEntitiesKept (issue 15): the entities sheet is parsed and kept with
// the version: the list, its label, and the answers saved to properties.
func TestEntitiesKept(t *testing.T) {
	wb, err := ReadMarkdown(`
| survey |
|        | type | name  | label | save_to |
|        | text | hh    | HH    | head    |
|        | text | shelt | Shelt | shelter |
| entities |
|          | list_name  | label |
|          | households | ${hh} |
`)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Import(wb, Options{RootName: "ent"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if len(f.Entities) != 1 || f.Entities[0].List != "households" || f.Entities[0].Label != "${hh}" ||
		f.Entities[0].Properties["head"] != "hh" || f.Entities[0].Properties["shelter"] != "shelt" {
		t.Fatalf("entities: %+v", f.Entities)
	}
	wb, _ = ReadMarkdown(`
| survey |
|        | type | name | label | save_to |
|        | text | hh   | HH    | name    |
| entities |
|          | list_name  | label |
|          | households | ${hh} |
`)
	if _, err := Import(wb, Options{RootName: "ent"}); err == nil || !strings.Contains(err.Error(), "save_to") {
		t.Fatalf("a property named 'name': %v", err)
	}
}

// TestCyclicCalculation (issue 15): calculations that depend on each other
// in a cycle, or on themselves, are refused at the row of the question
// closing it, naming the cycle; others around them are not.
func TestCyclicCalculation(t *testing.T) {
	for name, c := range map[string]struct {
		rows [][]string
		want string
	}{
		"two": {[][]string{{"calculate", "a", "${b} + 1"}, {"calculate", "b", "${c} * 2"}, {"calculate", "c", "${a}"}, {"calculate", "d", "${a}"}},
			"[row : 2] On the 'survey' sheet, the 'calculation' value is invalid: the calculation of 'a' depends on itself (${a} → ${b} → ${c} → ${a})."},
		"self": {[][]string{{"integer", "n", ""}, {"calculate", "x", "${x} + ${n}"}},
			"[row : 3] On the 'survey' sheet, the 'calculation' value is invalid: the calculation of 'x' depends on itself (${x} → ${x})."},
		"none": {[][]string{{"calculate", "a", "${b} + 1"}, {"calculate", "b", "${c} * 2"}, {"integer", "c", ""}}, ""},
	} {
		rows := [][]string{{"type", "name", "label", "calculation"}}
		for _, r := range c.rows {
			label := ""
			if r[0] == "integer" {
				label = "N"
			}
			rows = append(rows, []string{r[0], r[1], label, r[2]})
		}
		book := xlsx(t, map[string][][]string{"survey": rows, "settings": {{"form_id", "version"}, {"cyc", "1"}}}, "survey", "settings")
		_, err := Parse(book, "cyc")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v\nwant %s", name, err, c.want)
		}
	}
}

// TestThousandsOfEmptyRows (issue 15): a survey sheet whose questions are
// followed by 50,000 empty (formatted) rows, as spreadsheet programs
// leave them, imports quickly with its questions, and a problem after the
// gap still names its row.
func TestThousandsOfEmptyRows(t *testing.T) {
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "survey")
	f.SetSheetRow("survey", "A1", &[]string{"type", "name", "label"})
	f.SetSheetRow("survey", "A2", &[]string{"text", "q", "Q"})
	style, err := f.NewStyle(&excelize.Style{Fill: excelize.Fill{Type: "pattern", Color: []string{"FFFF00"}, Pattern: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for r := 3; r < 50_003; r++ {
		f.SetCellStr("survey", fmt.Sprintf("A%d", r), "")
		f.SetCellStyle("survey", fmt.Sprintf("A%d", r), fmt.Sprintf("C%d", r), style)
	}
	f.NewSheet("settings")
	f.SetSheetRow("settings", "A1", &[]string{"form_id", "version"})
	f.SetSheetRow("settings", "A2", &[]string{"gaps", "1"})
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	form, err := Parse(buf.Bytes(), "gaps")
	if err != nil || form.Count() != 1 {
		t.Fatalf("%v, %v", form, err)
	}
	d := time.Since(start)
	t.Logf("50,000 empty rows: read and imported in %v", d)
	if d > 30*time.Second { // ~0.6 s alone, ~5 s under -race on a loaded machine: this catches a blow-up, not noise
		t.Fatalf("50,000 empty rows took %v", d)
	}
	f.SetSheetRow("survey", "A50003", &[]string{"integer", "q", "Again"})
	buf.Reset()
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(buf.Bytes(), "gaps"); err == nil || !strings.Contains(err.Error(), "row : 50003") {
		t.Fatalf("a duplicate name after the gap: %v", err)
	}
}
