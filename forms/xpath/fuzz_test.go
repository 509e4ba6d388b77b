package xpath

import (
	"strings"
	"testing"
)

// FuzzExpression: any text as an expression; parsing and evaluating (on a
// small instance) must never panic.
func FuzzExpression(f *testing.F) {
	for _, s := range []string{"1 + 2", "${a} = 'x'", "count(/data/path)", "if(selected(., 'a'), 1, 0)", "/a//b[3]", "substr('hello', -2)"} {
		f.Add(s)
	}
	inst, _ := ParseXML(strings.NewReader(buildInstance))
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			return
		}
		ctx := &Context{Node: inst, Root: inst, Ref: func(string, Node) (Value, error) { return Str("x"), nil }}
		_, _ = e.Eval(ctx)
	})
}
