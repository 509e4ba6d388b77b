package forms

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/tessera-survey/tessera/forms/xpath"
	"github.com/tessera-survey/tessera/syncengine"
)

// This file holds what an interview screen needs beyond validation: how
// many instances a repeat asks for, labels with ${name} filled in, and
// default values.

// RepeatCount returns how many instances repeat q should have under
// parent (a group node or the root), when q has a repeat_count; ok is false
// when it has none or it does not evaluate to a number yet.
func (in *Instance) RepeatCount(parent *INode, q *Question) (n int, ok bool) {
	if q.RepeatCount == "" {
		return 0, false
	}
	if q.repeatCount == nil {
		c, err := strconv.Atoi(strings.TrimSpace(q.RepeatCount))
		return max(c, 0), err == nil
	}
	if parent == nil {
		parent = in.Root
	}
	v, err := q.repeatCount.Eval(in.context(parent))
	if err != nil {
		return 0, false
	}
	f := v.AsNumber()
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	// A bound keeps a typo ("300" for "3") from making a screen of
	// hundreds of instances; the form's own constraint should be lower.
	return int(min(max(f, 0), 200)), true
}

var refRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}`)

// Text returns t in lang with every ${name} replaced by that question's
// answer as seen from node n (the label of a choice for select questions
// is not looked up: forms show values there, as ODK Collect does).
func (in *Instance) Text(n *INode, t Text, lang string) string {
	s := t.In(lang, in.Form.DefaultLanguage)
	if !strings.Contains(s, "${") {
		return s
	}
	if n == nil {
		n = in.Root
	}
	return refRE.ReplaceAllStringFunc(s, func(m string) string {
		v, err := in.ref(m[2:len(m)-1], n)
		if err != nil {
			return m
		}
		return v.AsString()
	})
}

// Default returns the value question q starts with in a new record (or a
// new repeat instance under parent), and whether it has one. Expression
// defaults (now(), ${other}) are evaluated there.
func (in *Instance) Default(parent *INode, q *Question) (syncengine.Value, bool) {
	d := strings.TrimSpace(q.Default)
	if d == "" || !q.Kind.HasAnswer() {
		return syncengine.Value{}, false
	}
	if IsDynamic(d) {
		e, err := xpath.Parse(d)
		if err != nil {
			return syncengine.Value{}, false
		}
		if parent == nil {
			parent = in.Root
		}
		v, err := e.Eval(in.context(parent))
		if err != nil {
			return syncengine.Value{}, false
		}
		d = v.AsString()
	}
	return Typed(q.Kind, d), d != ""
}

// Typed turns the text of an answer into the value stored for kind k:
// integers and decimals as numbers when they parse, anything else as text.
func Typed(k Kind, s string) syncengine.Value {
	switch k {
	case KInteger:
		if i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return syncengine.IntValue(i)
		}
	case KDecimal:
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return syncengine.DecimalValue(f)
		}
	case KRange: // whole numbers stay whole (ODK types a range int unless a parameter is decimal)
		if i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return syncengine.IntValue(i)
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return syncengine.DecimalValue(f)
		}
	}
	if s == "" {
		return syncengine.Value{}
	}
	return syncengine.TextValue(s)
}
