package xpath

import (
	"encoding/xml"
	"io"
	"strings"
)

// Elem is a plain instance node: a name, a text value and children.
type Elem struct {
	Tag    string
	Text   string
	Kids   []*Elem
	parent *Elem
}

// NewElem returns an element with the given children (their parent set).
func NewElem(tag, text string, kids ...*Elem) *Elem {
	e := &Elem{Tag: tag, Text: text}
	for _, k := range kids {
		e.Add(k)
	}
	return e
}

// Add appends a child.
func (e *Elem) Add(k *Elem) *Elem {
	k.parent = e
	e.Kids = append(e.Kids, k)
	return k
}

func (e *Elem) Name() string { return e.Tag }
func (e *Elem) Parent() Node {
	if e.parent == nil {
		return nil
	}
	return e.parent
}
func (e *Elem) Children() []Node {
	out := make([]Node, len(e.Kids))
	for i, k := range e.Kids {
		out[i] = k
	}
	return out
}

// Value is the element's string value: its text and its descendants'.
func (e *Elem) Value() string {
	if len(e.Kids) == 0 {
		return e.Text
	}
	var b strings.Builder
	b.WriteString(e.Text)
	for _, k := range e.Kids {
		b.WriteString(k.Value())
	}
	return b.String()
}

// ParseXML reads an XML document into elements (attributes are dropped).
func ParseXML(r io.Reader) (*Elem, error) {
	d := xml.NewDecoder(r)
	var root, cur *Elem
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return root, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			e := &Elem{Tag: t.Name.Local}
			if cur == nil {
				root = e
			} else {
				cur.Add(e)
			}
			cur = e
		case xml.EndElement:
			if cur != nil {
				cur = cur.parent
			}
		case xml.CharData:
			if cur != nil {
				cur.Text += string(t)
			}
		}
	}
}
