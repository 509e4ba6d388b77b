package forms

import (
	"regexp"
	"strings"
	"unicode"
)

// refPattern is a ${name} reference, perhaps ${last-saved#name}.
var refPattern = regexp.MustCompile(`\$\{(last-saved#)?([\p{L}_][\p{L}\p{N}_.\-]*)\}`)

var (
	reBracket       = regexp.MustCompile(`\[([^]]+)\]`)
	reIndexedRepeat = regexp.MustCompile(`indexed-repeat\([^)]+\)`)
	reInstance      = regexp.MustCompile(`instance\([^)]+.+`)
	reFuncArgs      = regexp.MustCompile(`\b[^()]+\((.*)\)$`)
)

// insertXPaths replaces each ${name} in text by the XPath of that question
// as pyxform writes it: relative ("../q") where both lie in one repeat,
// absolute otherwise, with a space either side.
func (w *xw) insertXPaths(text string, ctx *xe, useCurrent, refParent bool) string {
	if !strings.Contains(text, "${") {
		return text
	}
	locs := refPattern.FindAllStringSubmatchIndex(text, -1)
	if locs == nil {
		return text
	}
	var b strings.Builder
	last := 0
	for _, m := range locs {
		b.WriteString(text[last:m[0]])
		b.WriteString(w.refXPath(text, m, ctx, useCurrent, refParent))
		last = m[1]
	}
	b.WriteString(text[last:])
	return b.String()
}

func (w *xw) refXPath(s string, m []int, ctx *xe, useCurrent, refParent bool) string {
	lastSaved := m[2] >= 0
	name := s[m[4]:m[5]]
	target := w.byName[name]
	if target == nil {
		return s[m[0]:m[1]] // the importer refuses such forms; keep it visible
	}
	if w.relativeOK(s, m, name, lastSaved, ctx) {
		if !useCurrent {
			useCurrent = inInstancePredicate(s, m)
		}
		if p := relativePath(target, ctx, name, useCurrent, refParent); p != "" {
			return p
		}
	}
	prefix := ""
	if lastSaved {
		prefix = "instance('__last-saved')"
	}
	return " " + prefix + target.xpath() + " "
}

// relativeOK: a reference is made relative unless it names a repeat
// question's position inside indexed-repeat() (arguments 1, 2, 4, 6 are
// absolute), or reads the last saved instance.
func (w *xw) relativeOK(s string, m []int, name string, lastSaved bool, ctx *xe) bool {
	if lastSaved || ctx == nil {
		return false
	}
	irs := reIndexedRepeat.FindAllStringIndex(s, -1)
	if irs == nil {
		return true
	}
	for i, ir := range irs {
		if m[1] > ir[1] {
			if i == len(irs)-1 {
				return true
			}
			continue
		}
		if m[1] < ir[0] || m[0] > ir[1] {
			return true
		}
		args := reFuncArgs.FindStringSubmatch(s[ir[0]:ir[1]])
		if args == nil {
			return false
		}
		idx := -1
		for j, a := range strings.Split(args[1], ",") {
			if strings.Contains(strings.TrimSpace(a), "${"+name+"}") {
				idx = j
			}
		}
		return idx >= 0 && idx != 0 && idx != 1 && idx != 3 && idx != 5
	}
	return false
}

func inInstancePredicate(s string, m []int) bool {
	if !reInstance.MatchString(s) {
		return false
	}
	for _, br := range reBracket.FindAllStringIndex(s, -1) {
		if m[0] >= br[0] && m[1] <= br[1] {
			return true
		}
	}
	return false
}

// lcaRepeat is the nearest repeat enclosing both a and b, with the steps
// from a and from b up to it.
func lcaRepeat(a, b *xe) (lca *xe, stepsA, stepsB int) {
	ancA := map[*xe]int{}
	ancB := map[*xe]int{}
	ca, cb := a.parent, b.parent
	da, db := 1, 1
	for ca != nil || cb != nil {
		if ca != nil {
			ancA[ca] = da
			if ca.typ == "repeat" {
				if _, ok := ancB[ca]; ok {
					return ca, ancA[ca], ancB[ca]
				}
			}
			da++
			ca = ca.parent
		}
		if cb != nil {
			ancB[cb] = db
			if cb.typ == "repeat" {
				if _, ok := ancA[cb]; ok {
					return cb, ancA[cb], ancB[cb]
				}
			}
			db++
			cb = cb.parent
		}
	}
	return nil, 0, 0
}

func nearestRepeat(e *xe) *xe {
	for p := e.parent; p != nil; p = p.parent {
		if p.typ == "repeat" {
			return p
		}
	}
	return nil
}

func relativePath(target, ctx *xe, name string, useCurrent, refParent bool) string {
	lcar, stepsCtx, _ := lcaRepeat(ctx, target)
	if lcar == nil {
		return ""
	}
	steps, path := 0, ""
	done := false
	if refParent {
		srcCar, tgtCar := nearestRepeat(ctx), nearestRepeat(target)
		lcarOutside := nearestRepeat(lcar) == nil
		if lcar == tgtCar && (lcarOutside || srcCar != lcar) {
			steps, path, done = stepsCtx+1, target.xpathFrom(lcar.parent), true
		}
	}
	if !done {
		lca, s, _ := lcaAny(ctx, target)
		steps, path = s, target.xpathFrom(lca)
	}
	if steps == 0 {
		return ""
	}
	if !strings.HasSuffix(path, name) {
		path = "/" + name
	}
	prefix := " "
	if useCurrent {
		prefix = " current()/"
	}
	return prefix + strings.TrimSuffix(strings.Repeat("../", steps), "/") + path + " "
}

// lcaAny is lcaRepeat over groups and repeats alike (pyxform's
// lowest_common_ancestor without a type).
func lcaAny(a, b *xe) (*xe, int, int) {
	ancA := map[*xe]int{}
	ancB := map[*xe]int{}
	ca, cb := a.parent, b.parent
	da, db := 1, 1
	section := func(e *xe) bool { return e.typ == "group" || e.typ == "repeat" }
	for ca != nil || cb != nil {
		if ca != nil {
			ancA[ca] = da
			if _, ok := ancB[ca]; ok && section(ca) {
				return ca, ancA[ca], ancB[ca]
			}
			da++
			ca = ca.parent
		}
		if cb != nil {
			ancB[cb] = db
			if _, ok := ancA[cb]; ok && section(cb) {
				return cb, ancA[cb], ancB[cb]
			}
			db++
			cb = cb.parent
		}
	}
	return nil, 0, 0
}

// defaultIsDynamic is pyxform's test of a default: an expression (math,
// a union, a reference or a function call) is computed when the form
// loads; anything else is the answer's initial value.
func defaultIsDynamic(s string, k Kind) bool {
	dateLike := k == KDate || k == KDateTime || k == KGeopoint || k == KGeotrace || k == KGeoshape
	r := []rune(s)
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(r) && r[j] != c {
				j++
			}
			i = j + 1
		case c == '$' && i+1 < len(r) && r[i+1] == '{':
			if strings.Contains(string(r[i:]), "}") {
				return true
			}
			i += 2
		case unicode.IsDigit(c) || (c == '-' && i+1 < len(r) && unicode.IsDigit(r[i+1])):
			j := i + 1
			for j < len(r) && (unicode.IsDigit(r[j]) || r[j] == '.' || r[j] == '-' || r[j] == ':' || r[j] == 'T' ||
				(r[j] == '+' && j+1 < len(r) && unicode.IsDigit(r[j+1]) && strings.ContainsRune(string(r[i:j]), ':'))) { // a time's offset
				j++
			}
			i = j
		case c == '*' || c == '+' || c == '-':
			if dateLike && c == '-' {
				return false
			}
			return true
		case c == '|':
			return true
		case c == ' ' && (strings.HasPrefix(string(r[i:]), " mod ") || strings.HasPrefix(string(r[i:]), " div ")):
			return true
		case unicode.IsLetter(c) || c == '_':
			j := i + 1
			for j < len(r) && (unicode.IsLetter(r[j]) || unicode.IsDigit(r[j]) || r[j] == '_' || r[j] == '-' || r[j] == '.' || r[j] == ':') {
				j++
			}
			if j < len(r) && r[j] == '(' {
				return true
			}
			i = j
		default:
			i++
		}
	}
	return false
}
