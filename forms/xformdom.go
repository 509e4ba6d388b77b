package forms

import (
	"strings"
)

// xnode is an element of an XForm being written, or a text node (name
// ""). Attributes keep their insertion order, as pyxform's do: clients
// ignore the order, but the bytes of a version's XForm must never change.
type xnode struct {
	name  string
	attrs []xattr
	kids  []*xnode
	text  string
}

type xattr struct{ k, v string }

func el(name string, kids ...*xnode) *xnode {
	n := &xnode{name: name}
	for _, k := range kids {
		if k != nil {
			n.kids = append(n.kids, k)
		}
	}
	return n
}

// textEl is <name>text</name>.
func textEl(name, text string) *xnode {
	return &xnode{name: name, kids: []*xnode{{text: text}}}
}

// set sets an attribute, keeping the position of one already set.
func (n *xnode) set(k, v string) *xnode {
	for i := range n.attrs {
		if n.attrs[i].k == k {
			n.attrs[i].v = v
			return n
		}
	}
	n.attrs = append(n.attrs, xattr{k, v})
	return n
}

func (n *xnode) add(kids ...*xnode) *xnode {
	for _, k := range kids {
		if k != nil {
			n.kids = append(n.kids, k)
		}
	}
	return n
}

var (
	xmlText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	xmlAttr = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
)

// write writes n as pyxform's pretty printer does: two spaces a level,
// and elements holding text (or text and <output/>) on one line, a space
// before and after mixed content.
func (n *xnode) write(b *strings.Builder, indent string) {
	if n.name == "" {
		xmlText.WriteString(b, n.text)
		return
	}
	b.WriteString(indent)
	n.open(b)
	if len(n.kids) == 0 {
		b.WriteString("/>\n")
		return
	}
	b.WriteString(">")
	if n.hasText() {
		n.inline(b)
	} else {
		b.WriteString("\n")
		for _, k := range n.kids {
			k.write(b, indent+"  ")
		}
		b.WriteString(indent)
	}
	b.WriteString("</" + n.name + ">\n")
}

func (n *xnode) open(b *strings.Builder) {
	b.WriteString("<" + n.name)
	for _, a := range n.attrs {
		b.WriteString(" " + a.k + `="`)
		xmlAttr.WriteString(b, a.v)
		b.WriteString(`"`)
	}
}

func (n *xnode) hasText() bool {
	for _, k := range n.kids {
		if k.name == "" {
			return true
		}
	}
	return false
}

// inline writes mixed content without indentation.
func (n *xnode) inline(b *strings.Builder) {
	count := len(n.kids)
	for i, k := range n.kids {
		if count > 1 && i == 0 && k.name == "" {
			b.WriteString(" ")
		}
		if k.name == "" {
			k.write(b, "")
		} else {
			k.writeFlat(b)
		}
	}
	if count > 1 {
		b.WriteString(" ")
	}
}

// writeFlat writes n on one line (an element inside mixed content).
func (n *xnode) writeFlat(b *strings.Builder) {
	n.open(b)
	if len(n.kids) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteString(">")
	for _, k := range n.kids {
		if k.name == "" {
			k.write(b, "")
		} else {
			k.writeFlat(b)
		}
	}
	b.WriteString("</" + n.name + ">")
}
