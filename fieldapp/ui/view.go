package ui

import (
	"cmp"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/forms/xpath"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// nodeView is one node of the interview screen: a group, a repeat section
// (with its instances) or a question.
type nodeView struct {
	Field, Kind, Label, Hint, Message, Value string
	Relevant, Required, Multiline            bool
	Input                                    string // the <input> type of plain questions
	Choices                                  []choiceView
	Children                                 []*nodeView
	Repeat                                   string      // a repeat section: the path AddInstance takes
	Instances                                []*nodeView // a repeat section's instances
	Index                                    int         // an instance's number, from 1
	Conflicts                                []conflictView
	Unsupported                              bool
	Min, Max, Step                           string // a range question's slider
	Ranks                                    []int  // a rank question's positions, 1..n
	// A media question: what the file picker takes, whether it opens the
	// camera or recorder, a signature pad instead; the file answered (its
	// preview URL, name and kind: image, audio, video or file).
	Accept, Capture, MediaURL, MediaName, Preview string
	Signature                                     bool
	// The label's own media (the form's attachments), as URLs.
	LabelImage, LabelAudio, LabelVideo string
	ID, CSRF, Lang                     string // the record, the token of forms inside the node, the language
}

type choiceView struct {
	Name, Label     string
	Checked, Hidden bool
	Rank            int // a rank question's position of the choice (0: not ranked)
}

type conflictView struct {
	Index               int
	Value, Device, Time string
}

// interviewView is the whole screen.
type interviewView struct {
	ID, Form, Title, Status string
	Root                    []*nodeView
	Errors                  int
	Langs                   []string
	Conflicts               int
}

func (u *UI) showInterview(w http.ResponseWriter, status int, iv *fieldapp.Interview, lang string, msgs map[string]string, notice string) {
	st := iv.State(lang)
	if msgs == nil {
		msgs = st.Messages
	}
	v := interviewView{ID: iv.Record.ID.String(), Form: iv.Form.Key(), Title: iv.Form.Title, Status: iv.Record.Status(),
		Errors: len(msgs), Langs: iv.Form.Languages}
	if v.Status == "" {
		v.Status = "draft"
	}
	b := &viewBuilder{iv: iv, st: st, lang: lang, msgs: msgs, rv: fieldapp.View(iv.Record), v: &v}
	v.Root = b.build(iv.In.Root, iv.Form.Root)
	p := u.page(iv.Form.Title, v)
	var stamp func(ns []*nodeView)
	stamp = func(ns []*nodeView) {
		for _, n := range ns {
			n.ID, n.CSRF, n.Lang = v.ID, p.CSRF, lang
			stamp(n.Children)
			stamp(n.Instances)
		}
	}
	stamp(v.Root)
	p.Notice = notice
	if status == http.StatusUnprocessableEntity {
		p.Error = "This interview cannot be finalized yet: see the messages below."
	}
	u.render(w, status, "interview", p)
}

// viewBuilder turns an interview's instance tree into the page's nodes.
type viewBuilder struct {
	iv   *fieldapp.Interview
	st   fieldapp.State
	lang string
	msgs map[string]string
	rv   fieldapp.RecordView
	v    *interviewView
}

// build lays out the questions of group g at instance node n.
func (b *viewBuilder) build(n *forms.INode, g *forms.Question) []*nodeView {
	var out []*nodeView
	kids := n.Children()
	for _, q := range g.Children {
		if q.Kind == forms.KRepeat {
			out = append(out, b.repeat(n, q, kids))
			continue
		}
		var c *forms.INode
		for _, k := range kids {
			if k.(*forms.INode).Q == q {
				c = k.(*forms.INode)
				break
			}
		}
		if c == nil || q.Kind.IsMeta() || q.Kind == forms.KCalculate || q.Kind == forms.KHidden {
			continue
		}
		out = append(out, b.question(c, q))
	}
	return out
}

// repeat is a repeat's section with its instances.
func (b *viewBuilder) repeat(n *forms.INode, q *forms.Question, kids []xpath.Node) *nodeView {
	iv, lang := b.iv, b.lang
	sec := &nodeView{Kind: "repeat", Label: iv.In.Text(n, q.Label, lang), Hint: q.Hint.In(lang, iv.Form.DefaultLanguage),
		Repeat: strings.TrimPrefix(n.Field+"/"+q.Name, "/"), Relevant: true} // its group hides it; instances have their own relevance
	if n.Field == "" {
		sec.Repeat = q.Name
	}
	sec.Field = "sec:" + sec.Repeat
	for _, k := range kids {
		c := k.(*forms.INode)
		if c.Q == q {
			inst := &nodeView{Field: c.Field, Kind: "instance", Index: len(sec.Instances) + 1, Relevant: b.st.Relevant[c.Field],
				Label: sec.Label, Children: b.build(c, q)}
			sec.Instances = append(sec.Instances, inst)
		}
	}
	return sec
}

// question is one question's node: its input, choices and conflicts.
func (b *viewBuilder) question(c *forms.INode, q *forms.Question) *nodeView {
	iv, lang, st := b.iv, b.lang, b.st
	nv := &nodeView{Field: c.Field, Kind: string(q.Kind), Label: iv.In.Text(c, q.Label, lang), Hint: iv.In.Text(c, q.Hint, lang),
		Message: b.msgs[c.Field], Value: c.Value(), Relevant: st.Relevant[c.Field], Required: q.Required != "" && q.Required != "no" && q.Required != "false()"}
	if nv.Label == "" {
		nv.Label = q.Name
	}
	labelURL := func(kind string) string {
		if name := q.LabelMedia(kind, lang, iv.Form.DefaultLanguage); name != "" {
			return "interview/" + b.iv.Record.ID.String() + "/label/" + url.PathEscape(name)
		}
		return ""
	}
	nv.LabelImage, nv.LabelAudio, nv.LabelVideo = cmp.Or(labelURL("big-image"), labelURL("image")), labelURL("audio"), labelURL("video")
	switch q.Kind {
	case forms.KGroup:
		nv.Children = b.build(c, q)
	case forms.KRank:
		order := strings.Fields(c.Value())
		for i, ch := range iv.Form.ChoicesFor(q) {
			nv.Ranks = append(nv.Ranks, i+1)
			nv.Choices = append(nv.Choices, choiceView{Name: ch.Name, Label: ch.Label.In(lang, iv.Form.DefaultLanguage),
				Rank: slices.Index(order, ch.Name) + 1})
		}
	case forms.KSelectOne, forms.KSelectMultiple:
		allowed := map[string]bool{}
		for _, name := range st.Choices[c.Field] {
			allowed[name] = true
		}
		picked := strings.Fields(c.Value())
		for _, ch := range iv.Form.ChoicesFor(q) {
			nv.Choices = append(nv.Choices, choiceView{Name: ch.Name, Label: ch.Label.In(lang, iv.Form.DefaultLanguage),
				Checked: slices.Contains(picked, ch.Name), Hidden: q.ChoiceFilter != "" && !allowed[ch.Name]})
		}
	case forms.KText:
		nv.Input, nv.Multiline = "text", strings.Contains(q.Appearance, "multiline")
	case forms.KInteger:
		nv.Input = "number"
	case forms.KDecimal:
		nv.Input = "decimal"
	case forms.KDate:
		nv.Input = "date"
	case forms.KTime:
		nv.Input = "time"
	case forms.KDateTime:
		nv.Input = "datetime-local"
	case forms.KRange:
		start, end, step := q.RangeBounds()
		nv.Input = "range"
		nv.Min, nv.Max, nv.Step = fmtNum(min(start, end)), fmtNum(max(start, end)), fmtNum(math.Abs(step))
		if step == 0 {
			nv.Step = "any"
		}
	case forms.KBarcode:
		nv.Input = "text" // typed (or scanned by a keyboard wedge)
	case forms.KGeotrace, forms.KGeoshape:
		nv.Input, nv.Multiline = "text", true // points "lat lon; lat lon; ..."
	case forms.KImage, forms.KAudio, forms.KVideo, forms.KFile:
		b.media(nv, c, q)
	case forms.KGeopoint, forms.KNote, forms.KAcknowledge:
	default:
		nv.Unsupported = true
	}
	b.conflicts(nv, c, q)
	return nv
}

// media fills a media question's picker and preview.
func (b *viewBuilder) media(nv *nodeView, c *forms.INode, q *forms.Question) {
	nv.Input = "file"
	switch q.Kind {
	case forms.KImage:
		nv.Accept, nv.Capture, nv.Preview = "image/*", "environment", "image"
		nv.Signature = strings.Contains(q.Appearance, "signature")
		if strings.Contains(q.Appearance, "selfie") {
			nv.Capture = "user"
		}
		if strings.Contains(q.Appearance, "new") {
			nv.Capture = "environment"
		}
	case forms.KAudio:
		nv.Accept, nv.Capture, nv.Preview = "audio/*", "user", "audio"
	case forms.KVideo:
		nv.Accept, nv.Capture, nv.Preview = "video/*", "environment", "video"
	default:
		nv.Accept, nv.Preview = q.Parameters["accept"], "file"
	}
	r, err := media.ParseRef(c.Value())
	if err != nil {
		return
	}
	nv.MediaName = r.FileName()
	if r.SHA256 != "" {
		nv.MediaURL = "interview/" + b.iv.Record.ID.String() + "/media/" + r.SHA256
	}
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// conflicts lists the concurrent answers of a question in conflict, with
// choice labels in the interview's language.
func (b *viewBuilder) conflicts(nv *nodeView, c *forms.INode, q *forms.Question) {
	fv, ok := b.rv.Fields[c.Field]
	if !ok || len(fv.Conflicts) == 0 {
		return
	}
	b.v.Conflicts++
	for i, cv := range fv.Conflicts {
		text := forms.ValueText(cv.Value)
		if q.ListName != "" {
			var labels []string
			for _, name := range strings.Fields(text) {
				labels = append(labels, b.choiceLabel(q, name))
			}
			text = strings.Join(labels, ", ")
		}
		when := cv.Time
		if t, err := time.Parse("2006-01-02T15:04:05.000Z07:00", cv.Time); err == nil {
			when = t.Local().Format("2006-01-02 15:04")
		}
		nv.Conflicts = append(nv.Conflicts, conflictView{Index: i, Value: text, Device: syncengine.ShortID(cv.Replica), Time: when})
	}
}

func (b *viewBuilder) choiceLabel(q *forms.Question, val string) string {
	for _, c := range b.iv.Form.ChoicesFor(q) {
		if c.Name == val {
			return c.Label.In(b.lang, b.iv.Form.DefaultLanguage)
		}
	}
	return val
}
