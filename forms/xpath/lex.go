// Package xpath parses and evaluates the ODK XPath subset that XLSForm
// expressions (relevant, constraint, calculation, choice_filter,
// repeat_count) are written in, with JavaRosa's semantics: XPath 1.0 types
// and conversions plus dates, and ODK's function library.
package xpath

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF tokKind = iota
	tNum
	tStr
	tName   // NCName or QName, possibly "prefix:*"
	tVar    // $name
	tRef    // ${name} (XLSForm)
	tOp     // operators and punctuation, text in tok.s
	tFunc   // function name (a name followed by "(")
	tNode   // node type test name followed by "(": node, text, comment, processing-instruction
	tAxis   // axis name followed by "::"
	tStar   // "*" as a name test
	tOpName // and, or, mod, div
	tMul    // "*" as multiply
	tDot    // .
	tDotDot // ..
	tAt     // @
	tColCol // ::
)

type token struct {
	k   tokKind
	s   string
	num float64
	pos int
}

var nodeTypes = map[string]bool{"node": true, "text": true, "comment": true, "processing-instruction": true}

var axes = map[string]bool{
	"child": true, "parent": true, "self": true, "attribute": true, "namespace": true,
	"descendant": true, "descendant-or-self": true, "ancestor": true, "ancestor-or-self": true,
	"following": true, "following-sibling": true, "preceding": true, "preceding-sibling": true,
}

// SyntaxError reports an expression that does not parse.
type SyntaxError struct {
	Expr string
	Pos  int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("expression %q: %s at position %d", e.Expr, e.Msg, e.Pos+1)
}

func isNameStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }
func isNameChar(r rune) bool {
	return isNameStart(r) || unicode.IsDigit(r) || r == '-' || r == '.' || unicode.Is(unicode.Mn, r) || r == '·'
}

// lex splits an expression into tokens, applying XPath's disambiguation
// rule: after a token that is not an operator, "(", "[", ",", "@" or "::",
// a "*" multiplies and a name must be an operator name (and JavaRosa reads
// "3mod4" and "4andfunc()" that way, so a leading operator word counts).
func lex(src string) ([]token, error) {
	var out []token
	i := 0
	fail := func(pos int, f string, a ...any) error {
		return &SyntaxError{Expr: src, Pos: pos, Msg: fmt.Sprintf(f, a...)}
	}
	operatorExpected := func() bool {
		if len(out) == 0 {
			return false
		}
		p := out[len(out)-1]
		switch p.k {
		case tOp:
			return p.s == ")" || p.s == "]"
		case tAt, tColCol, tOpName, tMul, tFunc, tNode, tAxis:
			return false
		}
		return true
	}
	for i < len(src) {
		r, w := utf8.DecodeRuneInString(src[i:])
		if unicode.IsSpace(r) {
			i += w
			continue
		}
		start := i
		switch {
		case r == '\'' || r == '"':
			j := strings.IndexRune(src[i+1:], r)
			if j < 0 {
				return nil, fail(i, "unterminated string")
			}
			out = append(out, token{k: tStr, s: src[i+1 : i+1+j], pos: start})
			i += j + 2
		case unicode.IsDigit(r) || (r == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9'):
			j := i
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			if j < len(src) && src[j] == '.' {
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			f, err := strconv.ParseFloat(src[i:j], 64)
			if err != nil {
				return nil, fail(i, "bad number")
			}
			out = append(out, token{k: tNum, num: f, s: src[i:j], pos: start})
			i = j
		case r == '$' && i+1 < len(src) && src[i+1] == '{':
			j := strings.IndexByte(src[i:], '}')
			if j < 0 {
				return nil, fail(i, "unterminated ${...} reference")
			}
			name := strings.TrimSpace(src[i+2 : i+j])
			if name == "" {
				return nil, fail(i, "empty ${} reference")
			}
			out = append(out, token{k: tRef, s: name, pos: start})
			i += j + 1
		case r == '$':
			name, n := scanQName(src[i+1:])
			if n == 0 || strings.HasSuffix(name, ":*") {
				return nil, fail(i, "bad variable name")
			}
			out = append(out, token{k: tVar, s: name, pos: start})
			i += 1 + n
		case isNameStart(r) || r == '*':
			if operatorExpected() {
				if r == '*' {
					out = append(out, token{k: tMul, s: "*", pos: start})
					i++
					continue
				}
				matched := false
				for _, op := range []string{"and", "or", "mod", "div"} {
					if strings.HasPrefix(src[i:], op) {
						out = append(out, token{k: tOpName, s: op, pos: start})
						i += len(op)
						matched = true
						break
					}
				}
				if !matched {
					return nil, fail(i, "expected an operator")
				}
				continue
			}
			if r == '*' {
				out = append(out, token{k: tStar, s: "*", pos: start})
				i++
				continue
			}
			name, n := scanQName(src[i:])
			if n == 0 {
				return nil, fail(i, "bad name")
			}
			i += n
			rest := strings.TrimLeftFunc(src[i:], unicode.IsSpace)
			switch {
			case strings.HasPrefix(rest, "::"):
				if !axes[name] {
					return nil, fail(start, "unknown axis %q", name)
				}
				out = append(out, token{k: tAxis, s: name, pos: start})
			case strings.HasPrefix(rest, "(") && !strings.HasSuffix(name, ":*"):
				if nodeTypes[name] {
					out = append(out, token{k: tNode, s: name, pos: start})
				} else {
					out = append(out, token{k: tFunc, s: name, pos: start})
				}
			default:
				out = append(out, token{k: tName, s: name, pos: start})
			}
		default:
			two := ""
			if i+1 < len(src) {
				two = src[i : i+2]
			}
			switch two {
			case "!=", "<=", ">=", "//":
				out = append(out, token{k: tOp, s: two, pos: start})
				i += 2
				continue
			case "::":
				out = append(out, token{k: tColCol, s: two, pos: start})
				i += 2
				continue
			case "..":
				out = append(out, token{k: tDotDot, s: two, pos: start})
				i += 2
				continue
			}
			switch r {
			case '/', '|', '+', '-', '=', '<', '>', '(', ')', '[', ']', ',':
				out = append(out, token{k: tOp, s: string(r), pos: start})
			case '.':
				out = append(out, token{k: tDot, s: ".", pos: start})
			case '@':
				out = append(out, token{k: tAt, s: "@", pos: start})
			default:
				return nil, fail(i, "unexpected character %q", r)
			}
			i += w
		}
	}
	return append(out, token{k: tEOF, pos: len(src)}), nil
}

// scanQName reads an NCName, "prefix:local" or "prefix:*".
func scanQName(s string) (string, int) {
	n := scanNCName(s)
	if n == 0 {
		return "", 0
	}
	if n < len(s) && s[n] == ':' && (n+1 >= len(s) || s[n+1] != ':') {
		if n+1 < len(s) && s[n+1] == '*' {
			return s[:n+2], n + 2
		}
		m := scanNCName(s[n+1:])
		if m == 0 {
			return "", 0
		}
		if n+1+m < len(s) && s[n+1+m] == ':' && (n+2+m >= len(s) || s[n+2+m] != ':') {
			return "", 0 // a:b:c
		}
		return s[:n+1+m], n + 1 + m
	}
	return s[:n], n
}

func scanNCName(s string) int {
	i := 0
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if i == 0 && !isNameStart(r) || i > 0 && !isNameChar(r) {
			break
		}
		i += w
	}
	return i
}
