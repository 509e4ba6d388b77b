package xpath

import (
	"fmt"
	"math"
	"time"
)

// Context is what an expression is evaluated against.
type Context struct {
	// Node is the context node ("."), Root the instance's root element.
	// Both may be nil for expressions that use no paths.
	Node, Root Node
	// Current is the node current() returns (the question whose
	// choice_filter or constraint is evaluated); Node when nil.
	Current Node
	// Ref resolves ${name} from the context node; nil makes ${...} an error.
	Ref func(name string, from Node) (Value, error)
	// Vars are $name variables.
	Vars map[string]Value
	// Funcs adds or overrides functions (jr:choice-name, for one).
	Funcs map[string]Func
	// Now is the clock of today() and now(); time.Now when nil.
	Now func() time.Time
	// Position and Size are position() and last() (1-based; 0 when unset).
	Position, Size int
}

// Func is a function callable from expressions. args are evaluated.
type Func func(ctx *Context, args []Value) (Value, error)

// Eval evaluates e in ctx.
func (e *Expr) Eval(ctx *Context) (v Value, err error) {
	if ctx == nil {
		ctx = &Context{}
	}
	v, err = ctx.eval(e.root)
	if err != nil {
		return Value{}, fmt.Errorf("%s: %w", e.src, err)
	}
	return v, nil
}

// EvalBool evaluates e and converts the result to a boolean.
func (e *Expr) EvalBool(ctx *Context) (bool, error) {
	v, err := e.Eval(ctx)
	return v.AsBool(), err
}

func (ctx *Context) now() time.Time {
	if ctx.Now != nil {
		return ctx.Now()
	}
	return time.Now()
}

func (ctx *Context) eval(n node) (Value, error) {
	switch t := n.(type) {
	case numLit:
		return Num(float64(t)), nil
	case strLit:
		return Str(string(t)), nil
	case varRef:
		if v, ok := ctx.Vars[string(t)]; ok {
			return v, nil
		}
		return Value{}, fmt.Errorf("%w: $%s", ErrRef, t)
	case fieldRef:
		if ctx.Ref == nil {
			return Value{}, fmt.Errorf("%w: ${%s}", ErrRef, t)
		}
		return ctx.Ref(string(t), ctx.Node)
	case *negate:
		v, err := ctx.eval(t.x)
		if err != nil {
			return Value{}, err
		}
		return Num(-v.AsNumber()), nil
	case *binary:
		return ctx.binary(t)
	case *call:
		return ctx.call(t)
	case *filterExpr:
		// JavaRosa (and so every ODK client) does not evaluate predicates
		// on anything but a location step.
		return Value{}, fmt.Errorf("%w: predicates on a filter expression", ErrUnsupported)
	case *pathExpr:
		return ctx.path(t)
	}
	return Value{}, fmt.Errorf("%w: %T", ErrUnsupported, n)
}

func typeName(t Type) string {
	return [...]string{"number", "string", "boolean", "node-set", "date", "date-time"}[t]
}

func (ctx *Context) binary(b *binary) (Value, error) {
	l, err := ctx.eval(b.l)
	if err != nil {
		return Value{}, err
	}
	switch b.op {
	case "or":
		if l.AsBool() {
			return Bool(true), nil
		}
		r, err := ctx.eval(b.r)
		return Bool(r.AsBool()), err
	case "and":
		if !l.AsBool() {
			return Bool(false), nil
		}
		r, err := ctx.eval(b.r)
		return Bool(r.AsBool()), err
	}
	r, err := ctx.eval(b.r)
	if err != nil {
		return Value{}, err
	}
	switch b.op {
	case "|":
		return Value{}, fmt.Errorf("%w: union (|)", ErrUnsupported)
	case "+":
		return Num(l.AsNumber() + r.AsNumber()), nil
	case "-":
		return Num(l.AsNumber() - r.AsNumber()), nil
	case "*":
		return Num(l.AsNumber() * r.AsNumber()), nil
	case "div":
		return Num(l.AsNumber() / r.AsNumber()), nil
	case "mod":
		return Num(math.Mod(l.AsNumber(), r.AsNumber())), nil
	case "=", "!=":
		eq := equal(l, r)
		return Bool(eq == (b.op == "=")), nil
	default:
		return Bool(compare(b.op, l, r)), nil
	}
}

// equal is XPath 1.0's "=": node-sets compare existentially; otherwise a
// boolean on either side compares booleans, a number (or date) numbers,
// and strings strings.
func equal(l, r Value) bool {
	if l.Type == NodeSet || r.Type == NodeSet {
		return anyPair(l, r, func(a, b Value) bool { return equal(a, b) })
	}
	switch {
	case l.Type == Boolean || r.Type == Boolean:
		return l.AsBool() == r.AsBool()
	case l.Type == Number || r.Type == Number || isDate(l) || isDate(r):
		return numEqual(l.AsNumber(), r.AsNumber())
	}
	return l.AsString() == r.AsString()
}

// numEqual compares numbers with a relative tolerance of 1e-12, as JavaRosa
// does, so that 6.1 - 7.8 = -1.7 holds.
func numEqual(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-12*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func isDate(v Value) bool { return v.Type == Date || v.Type == DateTime }

func compare(op string, l, r Value) bool {
	if l.Type == NodeSet || r.Type == NodeSet {
		return anyPair(l, r, func(a, b Value) bool { return compare(op, a, b) })
	}
	a, b := l.AsNumber(), r.AsNumber()
	if isDate(l) != isDate(r) {
		// A date against a date string compares as dates.
		if isDate(l) {
			if d, err := r.asDate(l.Type == DateTime); err == nil {
				b = d.AsNumber()
			}
		} else if d, err := l.asDate(r.Type == DateTime); err == nil {
			a = d.AsNumber()
		}
	}
	switch op {
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	}
	return a >= b
}

// anyPair applies f to node values against the other side.
func anyPair(l, r Value, f func(a, b Value) bool) bool {
	n := func(v Value) int {
		if v.Type == NodeSet {
			return len(v.Nodes)
		}
		return 1
	}
	at := func(v Value, i int) Value {
		if v.Type == NodeSet {
			return Str(v.Nodes[i].Value())
		}
		return v
	}
	for i := range n(l) {
		a := at(l, i)
		for j := range n(r) {
			if f(a, at(r, j)) {
				return true
			}
		}
	}
	return false
}

func (ctx *Context) path(p *pathExpr) (Value, error) {
	var nodes []Node
	switch {
	case p.filter != nil:
		return Value{}, fmt.Errorf("%w: a path from a filter expression", ErrUnsupported)
	case p.abs:
		if ctx.Root == nil {
			return Value{}, fmt.Errorf("%w: absolute path without an instance", ErrRef)
		}
		nodes = []Node{docNode{ctx.Root}}
	default:
		if ctx.Node == nil {
			return Value{}, fmt.Errorf("%w: relative path without a context node", ErrRef)
		}
		nodes = []Node{ctx.Node}
	}
	for _, s := range p.steps {
		var next []Node
		var seen map[Node]bool // only needed when several nodes step at once
		if len(nodes) > 1 {
			seen = map[Node]bool{}
		}
		for _, n := range nodes {
			sel, err := axis(s, n)
			if err != nil {
				return Value{}, err
			}
			sel, err = ctx.filter(sel, s.preds)
			if err != nil {
				return Value{}, err
			}
			for _, m := range sel {
				if seen == nil {
					next = append(next, m)
				} else if !seen[m] {
					seen[m] = true
					next = append(next, m)
				}
			}
		}
		nodes = next
	}
	if len(nodes) == 1 {
		if d, ok := nodes[0].(docNode); ok {
			nodes[0] = d.root
		}
	}
	return Nodes(nodes), nil
}

// docNode is the document above the root element ("/").
type docNode struct{ root Node }

func (d docNode) Name() string     { return "" }
func (d docNode) Parent() Node     { return nil }
func (d docNode) Children() []Node { return []Node{d.root} }
func (d docNode) Value() string    { return d.root.Value() }

func axis(s step, n Node) ([]Node, error) {
	match := func(m Node) bool { return s.test == "*" || s.test == "node()" || m.Name() == s.test }
	switch s.axis {
	case "child":
		if s.test != "*" && s.test != "node()" && !isPlainName(s.test) {
			return nil, fmt.Errorf("%w: node test %s", ErrUnsupported, s.test)
		}
		var out []Node
		for _, c := range n.Children() {
			if match(c) {
				out = append(out, c)
			}
		}
		return out, nil
	case "self":
		if match(n) {
			return []Node{n}, nil
		}
		return nil, nil
	case "parent":
		p := n.Parent()
		if p == nil {
			if _, isDoc := n.(docNode); !isDoc {
				return nil, nil
			}
			return nil, nil
		}
		if match(p) {
			return []Node{p}, nil
		}
		return nil, nil
	}
	return nil, fmt.Errorf("%w: axis %s", ErrUnsupported, s.axis)
}

func isPlainName(s string) bool {
	for _, r := range s {
		if r == '*' || r == '(' {
			return false
		}
	}
	return true
}

func (ctx *Context) filter(nodes []Node, preds []node) ([]Node, error) {
	for _, p := range preds {
		var out []Node
		for i, n := range nodes {
			sub := *ctx
			sub.Node, sub.Position, sub.Size = n, i+1, len(nodes)
			v, err := sub.eval(p)
			if err != nil {
				return nil, err
			}
			if v.Type == Number {
				if v.Num == float64(i+1) {
					out = append(out, n)
				}
			} else if v.AsBool() {
				out = append(out, n)
			}
		}
		nodes = out
	}
	return nodes, nil
}
