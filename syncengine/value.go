package syncengine

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Kind is the type of a field value.
type Kind uint8

const (
	Null Kind = iota
	Text
	Int
	Decimal
	Bool
)

// Value is one answer. The zero Value is null.
type Value struct {
	Kind Kind
	Str  string
	Int  int64
	Num  float64
	Bool bool
}

func TextValue(s string) Value     { return Value{Kind: Text, Str: s} }
func IntValue(i int64) Value       { return Value{Kind: Int, Int: i} }
func DecimalValue(f float64) Value { return Value{Kind: Decimal, Num: f} }
func BoolValue(b bool) Value       { return Value{Kind: Bool, Bool: b} }

// Equal reports whether v and o are the same value of the same kind.
func (v Value) Equal(o Value) bool {
	if v.Kind != o.Kind {
		return false
	}
	switch v.Kind {
	case Text:
		return v.Str == o.Str
	case Int:
		return v.Int == o.Int
	case Decimal:
		return v.Num == o.Num || (math.IsNaN(v.Num) && math.IsNaN(o.Num))
	case Bool:
		return v.Bool == o.Bool
	}
	return true
}

// Any returns v as a plain Go value (nil, string, int64, float64 or bool).
func (v Value) Any() any {
	switch v.Kind {
	case Text:
		return v.Str
	case Int:
		return v.Int
	case Decimal:
		return v.Num
	case Bool:
		return v.Bool
	}
	return nil
}

func (v Value) String() string {
	switch v.Kind {
	case Text:
		return v.Str
	case Int:
		return strconv.FormatInt(v.Int, 10)
	case Decimal:
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	case Bool:
		return strconv.FormatBool(v.Bool)
	}
	return "null"
}

// MarshalJSON writes v as a JSON literal.
func (v Value) MarshalJSON() ([]byte, error) {
	if v.Kind == Decimal && (math.IsNaN(v.Num) || math.IsInf(v.Num, 0)) {
		return nil, fmt.Errorf("value: %v has no JSON form", v.Num)
	}
	return json.Marshal(v.Any())
}

// ValueFromJSON converts a JSON-decoded value (decoded with UseNumber) to a
// Value: strings, integers, other numbers, booleans and null.
func ValueFromJSON(x any) (Value, error) {
	switch t := x.(type) {
	case nil:
		return Value{}, nil
	case string:
		return TextValue(t), nil
	case bool:
		return BoolValue(t), nil
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return IntValue(i), nil
		}
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return Value{}, fmt.Errorf("%w: number %s out of range", ErrInvalid, t)
		}
		return DecimalValue(f), nil
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<53 {
			return IntValue(int64(t)), nil
		}
		return DecimalValue(t), nil
	}
	return Value{}, fmt.Errorf("%w: a field value must be a string, number, boolean or null, not %T", ErrInvalid, x)
}

// ParseValue reads a value typed on a command line. Integers, decimals and
// true/false are recognised only when they read back exactly the same, so
// "007" or "1e3" stay text; "null" clears the answer.
func ParseValue(s string) Value {
	switch s {
	case "true":
		return BoolValue(true)
	case "false":
		return BoolValue(false)
	case "null":
		return Value{}
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(i, 10) == s {
		return IntValue(i)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && strconv.FormatFloat(f, 'f', -1, 64) == s {
		return DecimalValue(f)
	}
	return TextValue(s)
}
