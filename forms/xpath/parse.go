package xpath

import "strings"

// Expr is a parsed expression.
type Expr struct {
	src  string
	root node
}

// String returns the source text.
func (e *Expr) String() string { return e.src }

type node interface{}

type (
	numLit   float64
	strLit   string
	varRef   string
	fieldRef string // ${name}
	binary   struct {
		op   string
		l, r node
	}
	negate struct{ x node }
	call   struct {
		name string
		args []node
	}
	filterExpr struct {
		primary node
		preds   []node
	}
	pathExpr struct {
		abs    bool
		filter node // a filter expression the path starts from, or nil
		steps  []step
	}
	step struct {
		axis  string
		test  string // a name, "*", "prefix:*", or "node()", "text()"...
		preds []node
	}
)

// Parse parses an expression.
func Parse(src string) (*Expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.peek().k != tEOF {
		return nil, p.fail("unexpected %q", p.peek().s)
	}
	return &Expr{src: src, root: n}, nil
}

// Refs returns the ${name} references an expression makes, in order of
// first appearance.
func (e *Expr) Refs() []string {
	var out []string
	seen := map[string]bool{}
	var walk func(n node)
	walk = func(n node) {
		switch t := n.(type) {
		case fieldRef:
			if !seen[string(t)] {
				seen[string(t)] = true
				out = append(out, string(t))
			}
		case *binary:
			walk(t.l)
			walk(t.r)
		case *negate:
			walk(t.x)
		case *call:
			for _, a := range t.args {
				walk(a)
			}
		case *filterExpr:
			walk(t.primary)
			for _, a := range t.preds {
				walk(a)
			}
		case *pathExpr:
			if t.filter != nil {
				walk(t.filter)
			}
			for _, s := range t.steps {
				for _, a := range s.preds {
					walk(a)
				}
			}
		}
	}
	walk(e.root)
	return out
}

// Functions returns the names of the functions an expression calls.
func (e *Expr) Functions() []string {
	var out []string
	var walk func(n node)
	walk = func(n node) {
		switch t := n.(type) {
		case *binary:
			walk(t.l)
			walk(t.r)
		case *negate:
			walk(t.x)
		case *call:
			out = append(out, t.name)
			for _, a := range t.args {
				walk(a)
			}
		case *filterExpr:
			walk(t.primary)
			for _, a := range t.preds {
				walk(a)
			}
		case *pathExpr:
			if t.filter != nil {
				walk(t.filter)
			}
			for _, s := range t.steps {
				for _, a := range s.preds {
					walk(a)
				}
			}
		}
	}
	walk(e.root)
	return out
}

type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.k != tEOF {
		p.i++
	}
	return t
}
func (p *parser) isOp(s string) bool { t := p.peek(); return t.k == tOp && t.s == s }
func (p *parser) fail(f string, a ...any) error {
	return &SyntaxError{Expr: p.src, Pos: p.peek().pos, Msg: sprintf(f, a...)}
}

func (p *parser) expr() (node, error) { return p.or() }

func (p *parser) binaryLevel(next func() (node, error), match func(token) (string, bool)) (node, error) {
	l, err := next()
	if err != nil {
		return nil, err
	}
	for {
		op, ok := match(p.peek())
		if !ok {
			return l, nil
		}
		p.next()
		r, err := next()
		if err != nil {
			return nil, err
		}
		l = &binary{op: op, l: l, r: r}
	}
}

func opName(names ...string) func(token) (string, bool) {
	return func(t token) (string, bool) {
		for _, n := range names {
			if (t.k == tOpName || t.k == tOp) && t.s == n {
				return n, true
			}
		}
		return "", false
	}
}

func (p *parser) or() (node, error) {
	// XPath's or and and are left-associative; JavaRosa builds them to the
	// right, which evaluates the same.
	return p.binaryLevel(p.and, opName("or"))
}
func (p *parser) and() (node, error) { return p.binaryLevel(p.equality, opName("and")) }
func (p *parser) equality() (node, error) {
	return p.binaryLevel(p.relational, opName("=", "!="))
}
func (p *parser) relational() (node, error) {
	return p.binaryLevel(p.additive, opName("<", "<=", ">", ">="))
}
func (p *parser) additive() (node, error) { return p.binaryLevel(p.multiplicative, opName("+", "-")) }
func (p *parser) multiplicative() (node, error) {
	return p.binaryLevel(p.unary, func(t token) (string, bool) {
		if t.k == tMul {
			return "*", true
		}
		if t.k == tOpName && (t.s == "div" || t.s == "mod") {
			return t.s, true
		}
		return "", false
	})
}

func (p *parser) unary() (node, error) {
	if p.isOp("-") {
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &negate{x: x}, nil
	}
	return p.union()
}

func (p *parser) union() (node, error) { return p.binaryLevel(p.path, opName("|")) }

func (p *parser) startsStep() bool {
	switch p.peek().k {
	case tName, tStar, tDot, tDotDot, tAt, tAxis, tNode:
		return true
	}
	return false
}

func (p *parser) path() (node, error) {
	switch {
	case p.isOp("/"):
		p.next()
		pe := &pathExpr{abs: true}
		if p.startsStep() {
			steps, err := p.relPath()
			if err != nil {
				return nil, err
			}
			pe.steps = steps
		}
		return pe, nil
	case p.isOp("//"):
		p.next()
		steps, err := p.relPath()
		if err != nil {
			return nil, err
		}
		return &pathExpr{abs: true, steps: append([]step{{axis: "descendant-or-self", test: "node()"}}, steps...)}, nil
	case p.startsStep():
		steps, err := p.relPath()
		if err != nil {
			return nil, err
		}
		return &pathExpr{steps: steps}, nil
	}
	f, err := p.filter()
	if err != nil {
		return nil, err
	}
	if p.isOp("/") || p.isOp("//") {
		var steps []step
		if p.next().s == "//" {
			steps = append(steps, step{axis: "descendant-or-self", test: "node()"})
		}
		rest, err := p.relPath()
		if err != nil {
			return nil, err
		}
		return &pathExpr{filter: f, steps: append(steps, rest...)}, nil
	}
	return f, nil
}

func (p *parser) relPath() ([]step, error) {
	var steps []step
	for {
		s, err := p.step()
		if err != nil {
			return nil, err
		}
		steps = append(steps, s)
		switch {
		case p.isOp("/"):
			p.next()
		case p.isOp("//"):
			p.next()
			steps = append(steps, step{axis: "descendant-or-self", test: "node()"})
		default:
			return steps, nil
		}
	}
}

func (p *parser) step() (step, error) {
	t := p.peek()
	switch t.k {
	case tDot, tDotDot:
		p.next()
		if p.isOp("[") {
			return step{}, p.fail("a predicate cannot follow %q", t.s)
		}
		if t.k == tDot {
			return step{axis: "self", test: "node()"}, nil
		}
		return step{axis: "parent", test: "node()"}, nil
	}
	s := step{axis: "child"}
	switch t.k {
	case tAt:
		p.next()
		s.axis = "attribute"
	case tAxis:
		p.next()
		if p.peek().k != tColCol {
			return s, p.fail("expected ::")
		}
		p.next()
		s.axis = t.s
	}
	t = p.next()
	switch t.k {
	case tName, tStar:
		s.test = t.s
	case tNode:
		if !p.isOp("(") {
			return s, p.fail("expected (")
		}
		p.next()
		s.test = t.s + "()"
		if t.s == "processing-instruction" && p.peek().k == tStr {
			s.test = "processing-instruction('" + p.next().s + "')"
		}
		if !p.isOp(")") {
			return s, p.fail("node test %s takes no such argument", t.s)
		}
		p.next()
	default:
		return s, &SyntaxError{Expr: p.src, Pos: t.pos, Msg: "expected a node test"}
	}
	preds, err := p.predicates()
	s.preds = preds
	return s, err
}

func (p *parser) predicates() ([]node, error) {
	var preds []node
	for p.isOp("[") {
		p.next()
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		if !p.isOp("]") {
			return nil, p.fail("expected ]")
		}
		p.next()
		preds = append(preds, e)
	}
	return preds, nil
}

func (p *parser) filter() (node, error) {
	prim, err := p.primary()
	if err != nil {
		return nil, err
	}
	preds, err := p.predicates()
	if err != nil {
		return nil, err
	}
	if len(preds) == 0 {
		return prim, nil
	}
	return &filterExpr{primary: prim, preds: preds}, nil
}

func (p *parser) primary() (node, error) {
	t := p.peek()
	switch t.k {
	case tNum:
		p.next()
		return numLit(t.num), nil
	case tStr:
		p.next()
		return strLit(t.s), nil
	case tVar:
		p.next()
		return varRef(t.s), nil
	case tRef:
		p.next()
		return fieldRef(t.s), nil
	case tFunc:
		p.next()
		p.next() // "("
		c := &call{name: t.s}
		if p.isOp(")") {
			p.next()
			return c, nil
		}
		for {
			a, err := p.expr()
			if err != nil {
				return nil, err
			}
			c.args = append(c.args, a)
			if p.isOp(",") {
				p.next()
				continue
			}
			if p.isOp(")") {
				p.next()
				return c, nil
			}
			return nil, p.fail("expected , or ) in the arguments of %s()", t.s)
		}
	case tOp:
		if t.s == "(" {
			p.next()
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			if !p.isOp(")") {
				return nil, p.fail("expected )")
			}
			p.next()
			return e, nil
		}
	case tEOF:
		return nil, p.fail("unexpected end of expression")
	}
	return nil, p.fail("unexpected %q", strings.TrimSpace(t.s))
}
