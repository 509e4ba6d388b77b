package xpath

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Type is the type of an expression's value.
type Type int

const (
	Number Type = iota
	String
	Boolean
	NodeSet
	Date     // a calendar day (UTC midnight)
	DateTime // an instant
)

// Node is a node of the instance an expression navigates: a form's answers
// as a tree of groups, repeat instances and questions.
type Node interface {
	Name() string
	Parent() Node // nil for the root element
	Children() []Node
	Value() string // a question's answer as text ("" for groups)
}

// Value is the result of evaluating an expression.
type Value struct {
	Type  Type
	Num   float64
	Str   string
	Bool  bool
	Nodes []Node
	Time  time.Time
}

func Num(f float64) Value  { return Value{Type: Number, Num: f} }
func Str(s string) Value   { return Value{Type: String, Str: s} }
func Bool(b bool) Value    { return Value{Type: Boolean, Bool: b} }
func Nodes(n []Node) Value { return Value{Type: NodeSet, Nodes: n} }
func DateOf(t time.Time) Value {
	y, m, d := t.Date()
	return Value{Type: Date, Time: time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}
func DateTimeOf(t time.Time) Value { return Value{Type: DateTime, Time: t} }

// Errors of evaluation.
var (
	ErrUnsupported = errors.New("unsupported XPath")
	ErrArgs        = errors.New("wrong arguments")
	ErrUnknownFunc = errors.New("unknown function")
	ErrType        = errors.New("type mismatch")
	ErrRef         = errors.New("unknown reference")
)

// isXPathNumber matches -?(digits[.digits] | .digits), nothing else.
func isXPathNumber(s string) bool {
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// parseNumber is XPath's string-to-number: optional minus, digits and one
// decimal point, surrounding white space ignored; anything else is NaN.
func parseNumber(s string) float64 {
	s = strings.TrimSpace(s)
	if !isXPathNumber(s) {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

const msPerDay = 24 * 60 * 60 * 1000

// AsNumber converts v to a number.
func (v Value) AsNumber() float64 {
	switch v.Type {
	case Number:
		return v.Num
	case Boolean:
		if v.Bool {
			return 1
		}
		return 0
	case String:
		return parseNumber(v.Str)
	case Date, DateTime:
		return float64(v.Time.UnixMilli()) / msPerDay
	case NodeSet:
		if len(v.Nodes) == 0 {
			return math.NaN()
		}
		return parseNumber(v.Nodes[0].Value())
	}
	return math.NaN()
}

// FormatNumber writes a number as XPath does: integers without a decimal
// point, NaN and Infinity by name.
func FormatNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// AsString converts v to a string.
func (v Value) AsString() string {
	switch v.Type {
	case Number:
		return FormatNumber(v.Num)
	case Boolean:
		if v.Bool {
			return "true"
		}
		return "false"
	case String:
		return v.Str
	case Date:
		return v.Time.Format("2006-01-02")
	case DateTime:
		return v.Time.Format("2006-01-02T15:04:05.000Z07:00")
	case NodeSet:
		if len(v.Nodes) == 0 {
			return ""
		}
		return v.Nodes[0].Value()
	}
	return ""
}

// AsBool converts v to a boolean.
func (v Value) AsBool() bool {
	switch v.Type {
	case Number:
		return v.Num != 0 && !math.IsNaN(v.Num)
	case Boolean:
		return v.Bool
	case String:
		return v.Str != ""
	case NodeSet:
		return len(v.Nodes) > 0
	}
	return true // dates
}

// parseDate reads YYYY-MM-DD (optionally followed by a time, which is
// ignored), checking the day exists.
func parseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 10 {
		if t, err := time.Parse("2006-01-02", s[:10]); err == nil && (len(s) == 10 || s[10] == 'T') {
			return t, true
		}
	}
	return time.Time{}, false
}

var dateTimeLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999", "2006-01-02T15:04Z07:00",
	"2006-01-02T15:04", "2006-01-02",
}

// parseDateTime reads an ISO date-time; one without an offset is UTC.
func parseDateTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range dateTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// asDate converts v to a date (or date-time, kept as is).
func (v Value) asDate(withTime bool) (Value, error) {
	switch v.Type {
	case Date:
		return v, nil
	case DateTime:
		if withTime {
			return v, nil
		}
		return DateOf(v.Time), nil
	case Number:
		if math.IsNaN(v.Num) || math.IsInf(v.Num, 0) {
			return Value{}, ErrType
		}
		t := time.UnixMilli(int64(math.Round(v.Num * msPerDay))).UTC()
		if withTime {
			return DateTimeOf(t), nil
		}
		return DateOf(time.UnixMilli(int64(math.Floor(v.Num)) * msPerDay).UTC()), nil
	case String, NodeSet:
		s := v.AsString()
		if withTime {
			if t, ok := parseDateTime(s); ok {
				return DateTimeOf(t), nil
			}
		} else if t, ok := parseDate(s); ok {
			return DateOf(t), nil
		}
	}
	return Value{}, ErrType
}
