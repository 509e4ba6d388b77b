package forms

import "strings"

// Path is where an answer sits in a record: question names from the form's
// root joined by "/", each repeat instance named by its id in brackets,
// "household/members[ID]/age". It is the one place answer paths are parsed.
type Path string

// Question is the path of the question the answer is to, instance ids left
// out: "household/members/age" (what Question.Path returns).
func (p Path) Question() string {
	s := string(p)
	if strings.IndexByte(s, '[') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '[':
			depth++
		case c == ']':
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Instance splits a repeat instance's path "prefix/roster[ID]" into
// "prefix/roster" and ID; ok is false for any other path.
func (p Path) Instance() (base Path, id string, ok bool) {
	s := string(p)
	if !strings.HasSuffix(s, "]") {
		return "", "", false
	}
	i := strings.LastIndexByte(s, '[')
	if i <= 0 {
		return "", "", false
	}
	id = s[i+1 : len(s)-1]
	if id == "" || strings.ContainsAny(id, "[]/") {
		return "", "", false
	}
	return Path(s[:i]), id, true
}

// Child is the path of a question named name inside p.
func (p Path) Child(name string) Path {
	if p == "" {
		return Path(name)
	}
	return p + "/" + Path(name)
}

// At is the path of p's instance id (p names a repeat).
func (p Path) At(id string) Path { return p + "[" + Path(id) + "]" }

// QuestionAt returns the question an answer at path p is to, or nil.
func (f *Form) QuestionAt(p Path) *Question {
	want := p.Question()
	var found *Question
	f.Walk(func(q *Question) {
		if found == nil && q.Path() == want {
			found = q
		}
	})
	return found
}
