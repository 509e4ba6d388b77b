package forms

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tessera-survey/tessera/syncengine"
)

// ErrSubmission: an OpenRosa submission that is not an instance of its
// form (or not XML at all).
var ErrSubmission = errors.New("the submission does not match its form")

// Submission is the instance an OpenRosa client (ODK Collect, Enketo, Web
// Forms) submits: the form it answers and its answers as XML.
type Submission struct {
	FormID, Version string
	// InstanceID names the submission (meta/instanceID, else the root's
	// instanceID attribute); DeprecatedID the one an edit replaces.
	InstanceID, DeprecatedID string
	root                     *xn
}

// ParseSubmission reads a submission's XML, bounded like every XML Tessera
// reads (no DOCTYPE or entities, depth and size limits).
func ParseSubmission(b []byte) (*Submission, error) {
	root, err := parseXML(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSubmission, err)
	}
	s := &Submission{FormID: root.attr("id"), Version: root.attr("version"), root: root}
	if s.FormID == "" {
		return nil, fmt.Errorf("%w: the instance root <%s> has no id attribute", ErrSubmission, root.local)
	}
	if meta := root.child("meta"); meta != nil {
		if n := meta.child("instanceID"); n != nil {
			s.InstanceID = strings.TrimSpace(n.text.String())
		}
		if n := meta.child("deprecatedID"); n != nil {
			s.DeprecatedID = strings.TrimSpace(n.text.String())
		}
	}
	if s.InstanceID == "" {
		s.InstanceID = root.attr("instanceID")
	}
	if s.InstanceID == "" {
		return nil, fmt.Errorf("%w: no meta/instanceID", ErrSubmission)
	}
	return s, nil
}

// Root is the instance root's element name (the form's root name).
func (s *Submission) Root() string { return s.root.local }

// SubmissionFields maps a submission onto f: one write per answer given
// (non-relevant questions are absent, as Collect sends them), groups as
// paths, each repeat instance a Tessera instance whose key instanceKey
// names (from the repeat's path and the instance's position). An element
// the form has no question for is refused: the submission is not of this
// form.
func (f *Form) SubmissionFields(s *Submission, instanceKey func(repeat string, i int) string) ([]syncengine.FieldWrite, error) {
	if s.root.local != f.RootName {
		return nil, fmt.Errorf("%w: its root is <%s>, the form's <%s>", ErrSubmission, s.root.local, f.RootName)
	}
	var out []syncengine.FieldWrite
	err := f.submissionNode(f.Root, s.root, "", instanceKey, &out)
	return out, err
}

func (f *Form) submissionNode(g *Question, n *xn, prefix string, key func(string, int) string, out *[]syncengine.FieldWrite) error {
	byName := map[string]*Question{}
	for _, c := range g.Children {
		byName[c.Name] = c
	}
	seen := map[string]int{}
	for _, el := range n.kids {
		if g.Parent == nil && el.local == "meta" {
			continue // instanceID, deprecatedID, instanceName, entities
		}
		q := byName[el.local]
		if q == nil {
			if g.Parent == nil && el.local == "audit" && auditQ(f) != nil {
				q = auditQ(f)
			} else {
				return fmt.Errorf("%w: <%s> (line %d) is not a question of %s", ErrSubmission, el.local, el.line, prefix+g.Name)
			}
		}
		path := prefix + q.Name
		switch q.Kind {
		case KGroup:
			if err := f.submissionNode(q, el, path+"/", key, out); err != nil {
				return err
			}
		case KRepeat:
			if el.attrNS(nsJR, "template") != "" {
				continue
			}
			i := seen[q.Name]
			seen[q.Name]++
			inst := string(Path(path).At(key(path, i)))
			*out = append(*out, syncengine.FieldWrite{Name: inst, Value: syncengine.IntValue(int64(i + 1))})
			if err := f.submissionNode(q, el, inst+"/", key, out); err != nil {
				return err
			}
		default:
			if len(el.kids) > 0 {
				return fmt.Errorf("%w: <%s> (line %d) holds elements, but %s is a question", ErrSubmission, el.local, el.line, path)
			}
			if !q.Kind.HasAnswer() {
				continue
			}
			text := el.text.String()
			switch q.Kind {
			case KText:
			case KSelectMultiple, KRank:
				text = strings.Join(strings.Fields(text), " ")
			default:
				text = strings.TrimSpace(text)
			}
			if text == "" {
				continue
			}
			*out = append(*out, syncengine.FieldWrite{Name: path, Value: Typed(q.Kind, text)})
		}
	}
	return nil
}

func auditQ(f *Form) *Question {
	var a *Question
	f.Walk(func(q *Question) {
		if q.Kind == KAudit && a == nil {
			a = q
		}
	})
	return a
}
