package forms

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/forms/xpath"
	"github.com/tessera-survey/tessera/syncengine"
)

// Answers are a record's values by field path. A question's path is its
// group names and name joined by "/" ("household/size"); a repeat instance
// is "roster[ID]" (its value orders the instances; null removes one) and
// its questions "roster[ID]/name". Instance IDs are random, so two devices
// adding household members at once never collide.
type Answers map[string]syncengine.Value

// Instance is a record's answers laid out as the form's tree, which form
// expressions navigate.
type Instance struct {
	Form  *Form
	Root  *INode
	ans   Answers
	now   func() time.Time
	rel   map[*INode]bool
	funcs map[string]xpath.Func
}

// INode is a node of an instance: a group, a repeat instance or a
// question's answer.
type INode struct {
	Q      *Question
	Field  string // the answer's path (questions), or the instance's path (repeats)
	parent *INode
	kids   []*INode
	value  string
}

func (n *INode) Name() string {
	if n.Q == nil {
		return ""
	}
	return n.Q.Name
}
func (n *INode) Parent() xpath.Node {
	if n.parent == nil {
		return nil
	}
	return n.parent
}
func (n *INode) Children() []xpath.Node {
	out := make([]xpath.Node, len(n.kids))
	for i, k := range n.kids {
		out[i] = k
	}
	return out
}
func (n *INode) Value() string { return n.value }

// instanceKey splits a repeat instance's key "prefix/roster[ID]" into
// "prefix/roster" and ID.
func instanceKey(k string) (base, id string, ok bool) {
	b, id, ok := Path(k).Instance()
	return string(b), id, ok
}

// ValueText writes an answer as form expressions see it.
func ValueText(v syncengine.Value) string {
	switch v.Kind {
	case syncengine.Null:
		return ""
	case syncengine.Decimal:
		return xpath.FormatNumber(v.Num)
	}
	return v.String()
}

// NewInstance lays a record's answers out as f's tree. now is the clock of
// today() and now() (time.Now when nil).
func NewInstance(f *Form, ans Answers, now func() time.Time) *Instance {
	in := &Instance{Form: f, ans: ans, now: now}
	repeats := map[string][]string{} // "prefix/roster" → instance ids
	order := map[string]float64{}
	for k, v := range ans {
		if base, id, ok := instanceKey(k); ok && v.Kind != syncengine.Null {
			repeats[base] = append(repeats[base], id)
			order[k] = orderOf(v)
		}
	}
	for key, ids := range repeats {
		sort.Slice(ids, func(i, j int) bool {
			a, b := order[key+"["+ids[i]+"]"], order[key+"["+ids[j]+"]"]
			if a != b {
				return a < b
			}
			return ids[i] < ids[j]
		})
	}
	in.Root = &INode{Q: f.Root}
	var build func(n *INode, g *Question, prefix string)
	build = func(n *INode, g *Question, prefix string) {
		for _, q := range g.Children {
			switch q.Kind {
			case KGroup:
				c := &INode{Q: q, parent: n, Field: prefix + q.Name}
				n.kids = append(n.kids, c)
				build(c, q, prefix+q.Name+"/")
			case KRepeat:
				for _, id := range repeats[prefix+q.Name] {
					key := prefix + q.Name + "[" + id + "]"
					c := &INode{Q: q, parent: n, Field: key}
					n.kids = append(n.kids, c)
					build(c, q, key+"/")
				}
			default:
				field := prefix + q.Name
				n.kids = append(n.kids, &INode{Q: q, parent: n, Field: field, value: ValueText(ans[field])})
			}
		}
	}
	build(in.Root, f.Root, "")
	return in
}

func orderOf(v syncengine.Value) float64 {
	switch v.Kind {
	case syncengine.Int:
		return float64(v.Int)
	case syncengine.Decimal:
		return v.Num
	case syncengine.Text:
		f, _ := strconv.ParseFloat(v.Str, 64)
		return f
	}
	return 0
}

// Walk calls fn for every node in form order, parents first; fn returns
// false to skip a node's children.
func (in *Instance) Walk(fn func(*INode) bool) {
	var walk func(n *INode)
	walk = func(n *INode) {
		for _, k := range n.kids {
			if fn(k) {
				walk(k)
			}
		}
	}
	walk(in.Root)
}

// context returns an evaluation context at node n.
func (in *Instance) context(n *INode) *xpath.Context {
	if in.funcs == nil {
		in.funcs = map[string]xpath.Func{"jr:choice-name": in.choiceName, "pulldata": in.pulldata}
	}
	ctx := &xpath.Context{Node: n, Root: in.Root, Current: n, Now: in.now, Funcs: in.funcs}
	ctx.Ref = func(name string, _ xpath.Node) (xpath.Value, error) { return in.ref(name, n) }
	return ctx
}

// ref resolves ${name} seen from node from: inside the same repeat
// instance it is that instance's answer; across repeats, every instance's.
func (in *Instance) ref(name string, from *INode) (xpath.Value, error) {
	name = strings.TrimPrefix(name, "last-saved#")
	t := in.Form.Question(name)
	if t == nil {
		return xpath.Value{}, fmt.Errorf("%w: ${%s}", xpath.ErrRef, name)
	}
	// The chain of form questions from the root down to the target.
	var chain []*Question
	for q := t; q != nil && q.Parent != nil; q = q.Parent {
		chain = append([]*Question{q}, chain...)
	}
	// Climb from the referring node to the deepest node on that chain.
	start, depth := in.Root, 0
	for a := from; a != nil && a.Q != nil; a = a.parent {
		if i := indexOf(chain, a.Q); i >= 0 {
			start, depth = a, i+1
			break
		}
	}
	nodes := []*INode{start}
	for _, q := range chain[depth:] {
		var next []*INode
		for _, n := range nodes {
			for _, k := range n.kids {
				if k.Q == q {
					next = append(next, k)
				}
			}
		}
		nodes = next
	}
	out := make([]xpath.Node, len(nodes))
	for i, n := range nodes {
		out[i] = n
	}
	return xpath.Nodes(out), nil
}

func indexOf(chain []*Question, q *Question) int {
	for i, c := range chain {
		if c == q {
			return i
		}
	}
	return -1
}

// choiceName is jr:choice-name(value, ${question}): the label of a choice.
func (in *Instance) choiceName(ctx *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if len(args) != 2 || args[1].Type != xpath.NodeSet || len(args[1].Nodes) == 0 {
		return xpath.Value{}, fmt.Errorf("%w: jr:choice-name(value, ${question})", xpath.ErrArgs)
	}
	n, ok := args[1].Nodes[0].(*INode)
	if !ok || n.Q == nil || n.Q.ListName == "" {
		return xpath.Str(""), nil
	}
	v := args[0].AsString()
	for _, c := range in.Form.ChoicesFor(n.Q) {
		if c.Name == v {
			return xpath.Str(c.Label.In(in.Form.DefaultLanguage, "")), nil
		}
	}
	return xpath.Str(""), nil
}

// Relevant reports whether n is relevant: its own relevant expression and
// every enclosing group's hold.
func (in *Instance) Relevant(n *INode) bool {
	if in.rel == nil {
		in.rel = map[*INode]bool{}
	}
	if r, ok := in.rel[n]; ok {
		return r
	}
	r := true
	if n.parent != nil && n.parent.Q != nil && n.parent != in.Root {
		r = in.Relevant(n.parent)
	}
	if r && n.Q != nil && n.Q.relevant != nil {
		b, err := n.Q.relevant.EvalBool(in.context(n))
		r = err == nil && b
	}
	in.rel[n] = r
	return r
}

// Violation is one reason a record cannot be finalized (or, on the server,
// is flagged).
type Violation struct {
	Field    string `json:"field"`
	Question string `json:"question"`
	Row      int    `json:"row"`
	Code     string `json:"code"` // required, constraint, type, choice, calculation
	Message  string `json:"message"`
}

func (v Violation) String() string { return v.Field + ": " + v.Message }

// Validate checks every relevant question: required answers, types, choice
// membership (after choice filters) and constraints, with the form's own
// messages in lang (falling back to the form's default language).
func (in *Instance) Validate(lang string) []Violation {
	var out []Violation
	f := in.Form
	in.Walk(func(n *INode) bool {
		if !in.Relevant(n) {
			return false
		}
		q := n.Q
		if !q.Kind.HasAnswer() || q.Kind == KCalculate {
			return true
		}
		add := func(code string, msg Text, def string) {
			m := msg.In(lang, f.DefaultLanguage)
			if m == "" {
				m = def
			}
			out = append(out, Violation{Field: n.Field, Question: q.Name, Row: q.Row, Code: code, Message: m})
		}
		v := in.ans[n.Field]
		empty := n.value == ""
		if empty {
			if in.required(n) {
				add("required", q.RequiredMessage, "This question requires an answer.")
			}
			return true
		}
		if msg := in.checkType(n, v); msg != "" {
			add(typeCode(q), nil, msg)
			return true
		}
		if q.constraint != nil {
			ok, err := q.constraint.EvalBool(in.context(n))
			if err != nil || !ok {
				add("constraint", q.ConstraintMessage, "This answer is not allowed.")
			}
		}
		return true
	})
	return out
}

func typeCode(q *Question) string {
	if q.Kind == KSelectOne || q.Kind == KSelectMultiple || q.Kind == KRank {
		return "choice"
	}
	return "type"
}

func (in *Instance) required(n *INode) bool {
	q := n.Q
	if q.Required == "" {
		return false
	}
	if isYesNo(q.Required) {
		return yes(q.Required)
	}
	if q.required == nil {
		return false
	}
	b, err := q.required.EvalBool(in.context(n))
	return err == nil && b
}

var (
	timeRe = regexp.MustCompile(`^\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$`)
)

// checkType returns why an answer does not fit its question's type ("" when
// it does).
func (in *Instance) checkType(n *INode, v syncengine.Value) string {
	q, s := n.Q, n.value
	switch q.Kind {
	case KInteger:
		if v.Kind == syncengine.Int {
			return ""
		}
		if _, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err != nil {
			return fmt.Sprintf("%q is not a whole number.", s)
		}
	case KDecimal:
		if v.Kind == syncengine.Int || v.Kind == syncengine.Decimal {
			return ""
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprintf("%q is not a number.", s)
		}
	case KDate:
		if _, err := time.Parse("2006-01-02", s); err != nil {
			return fmt.Sprintf("%q is not a date (YYYY-MM-DD).", s)
		}
	case KTime:
		if !timeRe.MatchString(s) {
			return fmt.Sprintf("%q is not a time (HH:MM).", s)
		}
	case KDateTime:
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			if _, err := time.Parse("2006-01-02T15:04:05.999", s); err != nil {
				return fmt.Sprintf("%q is not a date and time.", s)
			}
		}
	case KGeopoint:
		if !validGeopoint(s) {
			return fmt.Sprintf("%q is not a location (latitude longitude [altitude [accuracy]]).", s)
		}
	case KSelectOne:
		if !in.allowedChoice(n, s) {
			return fmt.Sprintf("%q is not one of the choices.", s)
		}
	case KSelectMultiple:
		return in.checkChoiceList(n, s, "chosen")
	case KAcknowledge:
		if s != "OK" && s != "true" {
			return fmt.Sprintf("%q is not an acknowledgement (OK).", s)
		}
	case KRange:
		return checkRange(q, s)
	case KGeotrace, KGeoshape:
		return checkGeoLine(q.Kind, s)
	case KRank:
		return in.checkChoiceList(n, s, "ranked")
	}
	return ""
}

// checkChoiceList checks a space-separated list of choices: each allowed,
// none twice (a select_multiple's picks, a rank's order).
func (in *Instance) checkChoiceList(n *INode, s, verb string) string {
	seen := map[string]bool{}
	for _, c := range strings.Fields(s) {
		if seen[c] {
			return fmt.Sprintf("%q is %s twice.", c, verb)
		}
		seen[c] = true
		if !in.allowedChoice(n, c) {
			return fmt.Sprintf("%q is not one of the choices.", c)
		}
	}
	return ""
}

// RangeBounds are a range question's start, end and step (ODK's defaults:
// 1, 10, 1).
func (q *Question) RangeBounds() (start, end, step float64) {
	start, end, step = 1, 10, 1
	for k, p := range map[string]*float64{"start": &start, "end": &end, "step": &step} {
		if v, err := strconv.ParseFloat(q.Parameters[k], 64); err == nil {
			*p = v
		}
	}
	return start, end, step
}

func checkRange(q *Question, s string) string {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%q is not a number.", s)
	}
	start, end, step := q.RangeBounds()
	lo, hi := min(start, end), max(start, end)
	if v < lo || v > hi {
		return fmt.Sprintf("%v is outside the range %v to %v.", v, start, end)
	}
	if step != 0 {
		if k := (v - start) / step; math.Abs(k-math.Round(k)) > 1e-9 {
			return fmt.Sprintf("%v is not a step of %v from %v.", v, step, start)
		}
	}
	return ""
}

// checkGeoLine checks a geotrace (at least 2 points) or geoshape (at
// least 3 distinct points, closed: ODK repeats the first at the end):
// points "lat lon [alt [acc]]" separated by ";".
func checkGeoLine(k Kind, s string) string {
	var pts []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			if !validGeopoint(p) {
				return fmt.Sprintf("%q is not a location (latitude longitude [altitude [accuracy]]).", p)
			}
			pts = append(pts, p)
		}
	}
	if k == KGeotrace && len(pts) < 2 {
		return "A line needs at least 2 points, separated by ';'."
	}
	if k == KGeoshape {
		if len(pts) < 4 || strings.Join(strings.Fields(pts[0])[:2], " ") != strings.Join(strings.Fields(pts[len(pts)-1])[:2], " ") {
			return "A shape needs at least 3 points, separated by ';', ending with its first point."
		}
	}
	return ""
}

func validGeopoint(s string) bool {
	f := strings.Fields(s)
	if len(f) < 2 || len(f) > 4 {
		return false
	}
	for i, x := range f {
		v, err := strconv.ParseFloat(x, 64)
		if err != nil || (i == 0 && math.Abs(v) > 90) || (i == 1 && math.Abs(v) > 180) || (i == 3 && v < 0) {
			return false
		}
	}
	return true
}

// Choices returns the choices a select question offers at node n, after
// its choice filter.
func (in *Instance) Choices(n *INode) []Choice {
	q := n.Q
	all := in.Form.ChoicesFor(q)
	if q.choiceFilter == nil {
		return all
	}
	var out []Choice
	for _, c := range all {
		cn := choiceNode(c, n)
		ctx := in.context(n)
		ctx.Node = cn
		if ok, err := q.choiceFilter.EvalBool(ctx); err == nil && ok {
			out = append(out, c)
		}
	}
	return out
}

func (in *Instance) allowedChoice(n *INode, v string) bool {
	if n.Q.OrOther && v == "other" {
		return true
	}
	if isBareRef(n.Q.ListName) {
		return true // choices from earlier answers: any of them
	}
	for _, c := range in.Choices(n) {
		if c.Name == v {
			return true
		}
	}
	return false
}

// choiceNode presents a choice to a choice filter: its columns are
// children, so "cf = ${q0}" reads the choice's cf column.
func choiceNode(c Choice, at *INode) *xpath.Elem {
	e := xpath.NewElem("item", "")
	e.Add(xpath.NewElem("name", c.Name))
	e.Add(xpath.NewElem("label", c.Label.In("", "")))
	keys := make([]string, 0, len(c.Extra))
	for k := range c.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.Add(xpath.NewElem(k, c.Extra[k]))
	}
	return e
}

// Calculate evaluates every relevant calculation and returns the values by
// field path (text, or numbers for integer and decimal questions).
// Calculations see each other in form order, as on a device.
func (in *Instance) Calculate() (Answers, error) {
	out := Answers{}
	var firstErr error
	in.Walk(func(n *INode) bool {
		if !in.Relevant(n) {
			return false
		}
		q := n.Q
		if q.calculation == nil {
			return true
		}
		v, err := q.calculation.Eval(in.context(n))
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("row %d (%s): %w", q.Row, q.Name, err)
			}
			return true
		}
		var val syncengine.Value
		switch q.Kind {
		case KInteger:
			val = syncengine.IntValue(int64(v.AsNumber()))
		case KDecimal:
			val = syncengine.DecimalValue(v.AsNumber())
		default:
			val = syncengine.TextValue(v.AsString())
		}
		if math.IsNaN(v.AsNumber()) && (q.Kind == KInteger || q.Kind == KDecimal) {
			val = syncengine.Value{}
		}
		out[n.Field] = val
		n.value = ValueText(val)
		in.ans[n.Field] = val
		in.rel = nil // relevance may depend on what was just computed
		return true
	})
	return out, firstErr
}

// CheckCalculations recomputes every calculation from the record's other
// answers and reports those whose stored value differs (the server's
// re-check of what the device computed).
func (in *Instance) CheckCalculations() []Violation {
	stored := Answers{}
	for k, v := range in.ans {
		stored[k] = v
	}
	calc, err := in.Calculate()
	var out []Violation
	if err != nil {
		out = append(out, Violation{Code: "calculation", Message: err.Error()})
	}
	keys := make([]string, 0, len(calc))
	for k := range calc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got, had := calc[k], stored[k]; ValueText(got) != ValueText(had) {
			out = append(out, Violation{Field: k, Code: "calculation",
				Message: fmt.Sprintf("stored %q, the form computes %q", ValueText(had), ValueText(got))})
		}
	}
	return out
}
