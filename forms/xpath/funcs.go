package xpath

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

type builtin struct {
	min, max int // argument counts; max -1 for any
	// lazy functions get their arguments unevaluated (if, once, coalesce).
	fn func(ctx *Context, args []Value) (Value, error)
}

var builtins map[string]builtin

func init() {
	num1 := func(f func(float64) float64) builtin {
		return builtin{1, 1, func(_ *Context, a []Value) (Value, error) { return Num(f(a[0].AsNumber())), nil }}
	}
	str := func(i int, a []Value) string { return a[i].AsString() }
	builtins = map[string]builtin{
		"true":    {0, 0, func(*Context, []Value) (Value, error) { return Bool(true), nil }},
		"false":   {0, 0, func(*Context, []Value) (Value, error) { return Bool(false), nil }},
		"boolean": {1, 1, func(_ *Context, a []Value) (Value, error) { return Bool(a[0].AsBool()), nil }},
		"not":     {1, 1, func(_ *Context, a []Value) (Value, error) { return Bool(!a[0].AsBool()), nil }},
		"number":  {1, 1, func(_ *Context, a []Value) (Value, error) { return Num(a[0].AsNumber()), nil }},
		"string": {0, 1, func(ctx *Context, a []Value) (Value, error) {
			if len(a) == 0 {
				return Str(contextString(ctx)), nil
			}
			return Str(a[0].AsString()), nil
		}},
		"int": num1(math.Trunc),
		"boolean-from-string": {1, 1, func(_ *Context, a []Value) (Value, error) {
			s := a[0].AsString()
			return Bool(s == "true" || s == "1"), nil
		}},
		"concat": {0, -1, func(_ *Context, a []Value) (Value, error) {
			var b strings.Builder
			for _, v := range a {
				if v.Type == NodeSet {
					for _, n := range v.Nodes {
						b.WriteString(n.Value())
					}
					continue
				}
				b.WriteString(v.AsString())
			}
			return Str(b.String()), nil
		}},
		"join": {1, -1, func(_ *Context, a []Value) (Value, error) {
			var parts []string
			for _, v := range a[1:] {
				if v.Type == NodeSet {
					for _, n := range v.Nodes {
						parts = append(parts, n.Value())
					}
					continue
				}
				parts = append(parts, v.AsString())
			}
			return Str(strings.Join(parts, a[0].AsString())), nil
		}},
		"substr":           {2, 3, substr},
		"substring":        {2, 3, substring},
		"substring-before": {2, 2, func(_ *Context, a []Value) (Value, error) { return Str(before(str(0, a), str(1, a))), nil }},
		"substring-after":  {2, 2, func(_ *Context, a []Value) (Value, error) { return Str(after(str(0, a), str(1, a))), nil }},
		"translate":        {3, 3, translate},
		"contains": {2, 2, func(_ *Context, a []Value) (Value, error) {
			return Bool(strings.Contains(str(0, a), str(1, a))), nil
		}},
		"starts-with": {2, 2, func(_ *Context, a []Value) (Value, error) {
			return Bool(strings.HasPrefix(str(0, a), str(1, a))), nil
		}},
		"ends-with": {2, 2, func(_ *Context, a []Value) (Value, error) {
			return Bool(strings.HasSuffix(str(0, a), str(1, a))), nil
		}},
		"string-length": {1, 1, func(_ *Context, a []Value) (Value, error) {
			return Num(float64(utf8.RuneCountInString(str(0, a)))), nil
		}},
		"normalize-space": {1, 1, func(_ *Context, a []Value) (Value, error) {
			return Str(strings.Join(strings.FieldsFunc(str(0, a), unicode.IsSpace), " ")), nil
		}},
		"upper-case": {1, 1, func(_ *Context, a []Value) (Value, error) { return Str(strings.ToUpper(str(0, a))), nil }},
		"lower-case": {1, 1, func(_ *Context, a []Value) (Value, error) { return Str(strings.ToLower(str(0, a))), nil }},
		"regex": {2, 2, func(_ *Context, a []Value) (Value, error) {
			re, err := regexp.Compile(str(1, a))
			if err != nil {
				return Value{}, fmt.Errorf("%w: regex %q: %v", ErrArgs, str(1, a), err)
			}
			return Bool(re.MatchString(str(0, a))), nil
		}},
		"selected": {2, 2, func(_ *Context, a []Value) (Value, error) {
			want := strings.TrimSpace(str(1, a))
			for _, s := range strings.Fields(str(0, a)) {
				if s == want {
					return Bool(true), nil
				}
			}
			return Bool(false), nil
		}},
		"count-selected": {1, 1, func(_ *Context, a []Value) (Value, error) {
			return Num(float64(len(strings.Fields(str(0, a))))), nil
		}},
		"selected-at": {2, 2, func(_ *Context, a []Value) (Value, error) {
			items := strings.Fields(str(0, a))
			i := a[1].AsNumber()
			if math.IsNaN(i) || i < 0 || int(i) >= len(items) {
				return Str(""), nil
			}
			return Str(items[int(i)]), nil
		}},
		"checklist":          {2, -1, checklist},
		"weighted-checklist": {2, -1, weightedChecklist},
		"round":              {1, 2, round},
		"pow": {2, 2, func(_ *Context, a []Value) (Value, error) {
			return Num(math.Pow(a[0].AsNumber(), a[1].AsNumber())), nil
		}},
		"abs": num1(math.Abs), "floor": num1(math.Floor), "ceiling": num1(math.Ceil),
		"sqrt": num1(math.Sqrt), "exp": num1(math.Exp), "exp10": num1(func(x float64) float64 { return math.Pow(10, x) }),
		"log": num1(math.Log), "log10": num1(math.Log10),
		"sin": num1(math.Sin), "cos": num1(math.Cos), "tan": num1(math.Tan),
		"asin": num1(math.Asin), "acos": num1(math.Acos), "atan": num1(math.Atan),
		"atan2": {2, 2, func(_ *Context, a []Value) (Value, error) {
			return Num(math.Atan2(a[0].AsNumber(), a[1].AsNumber())), nil
		}},
		"pi":     {0, 0, func(*Context, []Value) (Value, error) { return Num(math.Pi), nil }},
		"random": {0, 0, func(*Context, []Value) (Value, error) { return Num(rand.Float64()), nil }},
		"count": {1, 1, func(_ *Context, a []Value) (Value, error) {
			if a[0].Type != NodeSet {
				return Value{}, fmt.Errorf("%w: count() takes a node-set", ErrType)
			}
			return Num(float64(len(a[0].Nodes))), nil
		}},
		"count-non-empty": {1, 1, func(_ *Context, a []Value) (Value, error) {
			if a[0].Type != NodeSet {
				return Value{}, fmt.Errorf("%w: count-non-empty() takes a node-set", ErrType)
			}
			n := 0
			for _, x := range a[0].Nodes {
				if x.Value() != "" || len(x.Children()) > 0 {
					n++
				}
			}
			return Num(float64(n)), nil
		}},
		"sum": {1, 1, func(_ *Context, a []Value) (Value, error) {
			if a[0].Type != NodeSet {
				return Value{}, fmt.Errorf("%w: sum() takes a node-set", ErrType)
			}
			s := 0.0
			for _, x := range a[0].Nodes {
				s += parseNumber(x.Value())
			}
			return Num(s), nil
		}},
		"min": {1, -1, func(_ *Context, a []Value) (Value, error) { return extreme(a, math.Min) }},
		"max": {1, -1, func(_ *Context, a []Value) (Value, error) { return extreme(a, math.Max) }},
		"position": {0, 1, func(ctx *Context, a []Value) (Value, error) {
			if len(a) == 1 {
				if a[0].Type != NodeSet || len(a[0].Nodes) == 0 {
					return Value{}, fmt.Errorf("%w: position() takes a node", ErrType)
				}
				return Num(float64(siblingPosition(a[0].Nodes[0]))), nil
			}
			if ctx.Position > 0 {
				return Num(float64(ctx.Position)), nil
			}
			if ctx.Node != nil {
				return Num(float64(siblingPosition(ctx.Node))), nil
			}
			return Value{}, fmt.Errorf("%w: position() without a context", ErrRef)
		}},
		"last": {0, 0, func(ctx *Context, _ []Value) (Value, error) { return Num(float64(ctx.Size)), nil }},
		"current": {0, 0, func(ctx *Context, _ []Value) (Value, error) {
			n := ctx.Current
			if n == nil {
				n = ctx.Node
			}
			if n == nil {
				return Nodes(nil), nil
			}
			return Nodes([]Node{n}), nil
		}},
		"uuid":  {0, 1, func(*Context, []Value) (Value, error) { return Str(uuid.NewString()), nil }},
		"today": {0, 0, func(ctx *Context, _ []Value) (Value, error) { return DateOf(ctx.now().UTC()), nil }},
		"now":   {0, 0, func(ctx *Context, _ []Value) (Value, error) { return DateTimeOf(ctx.now()), nil }},
		"date": {1, 1, func(_ *Context, a []Value) (Value, error) {
			if a[0].Type == Boolean {
				return Value{}, fmt.Errorf("%w: date() of a boolean", ErrType)
			}
			d, err := a[0].asDate(false)
			if err != nil {
				return Value{}, fmt.Errorf("%w: %q is not a date", ErrType, a[0].AsString())
			}
			return d, nil
		}},
		"date-time": {1, 1, func(_ *Context, a []Value) (Value, error) {
			d, err := a[0].asDate(true)
			if err != nil {
				return Value{}, fmt.Errorf("%w: %q is not a date-time", ErrType, a[0].AsString())
			}
			return d, nil
		}},
		"decimal-date-time": {1, 1, func(_ *Context, a []Value) (Value, error) {
			d, err := a[0].asDate(true)
			if err != nil {
				return Value{}, fmt.Errorf("%w: %q is not a date-time", ErrType, a[0].AsString())
			}
			return Num(d.AsNumber()), nil
		}},
		"decimal-time": {1, 1, func(_ *Context, a []Value) (Value, error) {
			d, err := a[0].asDate(true)
			if err != nil {
				return Value{}, fmt.Errorf("%w: %q is not a time", ErrType, a[0].AsString())
			}
			t := d.Time.UTC()
			ms := ((t.Hour()*60+t.Minute())*60+t.Second())*1000 + t.Nanosecond()/1e6
			return Num(float64(ms) / msPerDay), nil
		}},
		"geofence":         {2, 2, geofence},
		"area":             {1, 1, area},
		"enclosed-area":    {1, 1, area},
		"distance":         {1, -1, distance},
		"format-date":      {2, 2, formatDate},
		"format-date-time": {2, 2, formatDate},
		"digest":           {2, 3, digest},
		"coalesce": {2, 2, func(_ *Context, a []Value) (Value, error) {
			if a[0].AsString() != "" {
				return a[0], nil
			}
			return a[1], nil
		}},
		"once": {1, 1, func(ctx *Context, a []Value) (Value, error) {
			if s := contextString(ctx); s != "" {
				return Str(s), nil
			}
			return a[0], nil
		}},
	}
}

func contextString(ctx *Context) string {
	if ctx.Node == nil {
		return ""
	}
	return ctx.Node.Value()
}

func siblingPosition(n Node) int {
	p := n.Parent()
	if p == nil {
		return 1
	}
	i := 0
	for _, c := range p.Children() {
		if c.Name() == n.Name() {
			i++
		}
		if c == n {
			return i
		}
	}
	return i
}

func (ctx *Context) call(c *call) (Value, error) {
	if c.name == "if" {
		if len(c.args) != 3 {
			return Value{}, fmt.Errorf("%w: if() takes 3 arguments, not %d", ErrArgs, len(c.args))
		}
		cond, err := ctx.eval(c.args[0])
		if err != nil {
			return Value{}, err
		}
		if cond.AsBool() {
			return ctx.eval(c.args[1])
		}
		return ctx.eval(c.args[2])
	}
	args := make([]Value, len(c.args))
	for i, a := range c.args {
		v, err := ctx.eval(a)
		if err != nil {
			return Value{}, err
		}
		args[i] = v
	}
	if f, ok := ctx.Funcs[c.name]; ok {
		return f(ctx, args)
	}
	b, ok := builtins[c.name]
	if !ok {
		return Value{}, fmt.Errorf("%w: %s()", ErrUnknownFunc, c.name)
	}
	if len(args) < b.min || (b.max >= 0 && len(args) > b.max) {
		return Value{}, fmt.Errorf("%w: %s() takes %s, not %d", ErrArgs, c.name, arity(b), len(args))
	}
	return b.fn(ctx, args)
}

// Known reports whether name is a built-in function.
func Known(name string) bool { _, ok := builtins[name]; return ok || name == "if" }

func arity(b builtin) string {
	switch {
	case b.min == b.max:
		return fmt.Sprintf("%d argument(s)", b.min)
	case b.max < 0:
		return fmt.Sprintf("at least %d argument(s)", b.min)
	}
	return fmt.Sprintf("%d to %d arguments", b.min, b.max)
}

func substr(_ *Context, a []Value) (Value, error) {
	r := []rune(a[0].AsString())
	n := len(r)
	start := int(a[1].AsNumber())
	end := n
	if len(a) == 3 {
		end = int(a[2].AsNumber())
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start = max(0, min(start, n))
	end = max(start, min(end, n))
	return Str(string(r[start:end])), nil
}

// substring is XPath 1.0's: 1-based, rounded positions.
func substring(_ *Context, a []Value) (Value, error) {
	r := []rune(a[0].AsString())
	start := xround(a[1].AsNumber())
	end := math.Inf(1)
	if len(a) == 3 {
		end = start + xround(a[2].AsNumber())
	}
	var b strings.Builder
	for i, c := range r {
		p := float64(i + 1)
		if p >= start && p < end {
			b.WriteRune(c)
		}
	}
	return Str(b.String()), nil
}

func xround(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return f
	}
	return math.Floor(f + 0.5)
}

func before(s, sep string) string {
	i := strings.Index(s, sep)
	if i < 0 || sep == "" {
		return ""
	}
	return s[:i]
}

func after(s, sep string) string {
	i := strings.Index(s, sep)
	if i < 0 {
		return ""
	}
	return s[i+len(sep):]
}

func translate(_ *Context, a []Value) (Value, error) {
	from, to := []rune(a[1].AsString()), []rune(a[2].AsString())
	m := map[rune]rune{}
	for i, c := range from {
		if _, ok := m[c]; ok {
			continue
		}
		if i < len(to) {
			m[c] = to[i]
		} else {
			m[c] = -1
		}
	}
	var b strings.Builder
	for _, c := range a[0].AsString() {
		if t, ok := m[c]; ok {
			if t >= 0 {
				b.WriteRune(t)
			}
			continue
		}
		b.WriteRune(c)
	}
	return Str(b.String()), nil
}

// checklist(min, max, v...): true when the count of true values is within
// [min, max]; -1 leaves a bound open.
func checklist(_ *Context, a []Value) (Value, error) {
	lo, hi := a[0].AsNumber(), a[1].AsNumber()
	n := 0.0
	for _, v := range flatten(a[2:]) {
		if v.AsBool() {
			n++
		}
	}
	return Bool((lo < 0 || n >= lo) && (hi < 0 || n <= hi)), nil
}

func weightedChecklist(_ *Context, a []Value) (Value, error) {
	rest := flatten(a[2:])
	if len(rest)%2 != 0 {
		return Value{}, fmt.Errorf("%w: weighted-checklist() takes value, weight pairs", ErrArgs)
	}
	lo, hi := a[0].AsNumber(), a[1].AsNumber()
	s := 0.0
	for i := 0; i < len(rest); i += 2 {
		if rest[i].AsBool() {
			s += rest[i+1].AsNumber()
		}
	}
	return Bool((lo < 0 || s >= lo) && (hi < 0 || s <= hi)), nil
}

func flatten(a []Value) []Value {
	var out []Value
	for _, v := range a {
		if v.Type == NodeSet {
			for _, n := range v.Nodes {
				out = append(out, Str(n.Value()))
			}
			continue
		}
		out = append(out, v)
	}
	return out
}

func extreme(a []Value, pick func(a, b float64) float64) (Value, error) {
	vals := flatten(a)
	if len(vals) == 0 {
		return Num(math.NaN()), nil
	}
	r := vals[0].AsNumber()
	for _, v := range vals[1:] {
		r = pick(r, v.AsNumber())
	}
	return Num(r), nil
}

// round rounds half up (toward +∞) to a number of digits, as JavaRosa does;
// a comma decimal separator in a string is accepted.
func round(_ *Context, a []Value) (Value, error) {
	x := a[0].AsNumber()
	if a[0].Type == String && math.IsNaN(x) {
		x = parseNumber(strings.Replace(a[0].Str, ",", ".", 1))
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return Num(x), nil
	}
	digits := 0.0
	if len(a) == 2 {
		digits = math.Trunc(a[1].AsNumber())
	}
	p := math.Pow(10, digits)
	r := math.Floor(x*p+0.5) / p
	if r == 0 && math.Signbit(x) {
		r = math.Copysign(0, -1)
	}
	return Num(r), nil
}

var strftime = map[byte]string{
	'Y': "2006", 'y': "06", 'm': "01", 'n': "1", 'd': "02", 'e': "2", 'H': "15", 'h': "3", 'M': "04", 'S': "05",
	'3': ".000", 'a': "Mon", 'b': "Jan", 'p': "PM",
}

func formatDate(_ *Context, a []Value) (Value, error) {
	d, err := a[0].asDate(true)
	if err != nil {
		return Str(""), nil
	}
	t := d.Time.UTC()
	f := a[1].AsString()
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		if l, ok := strftime[f[i]]; ok {
			b.WriteString(strings.TrimPrefix(t.Format(l), "."))
		} else {
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return Str(b.String()), nil
}

func digest(_ *Context, a []Value) (Value, error) {
	var h hash.Hash
	switch strings.ToUpper(a[1].AsString()) {
	case "MD5":
		h = md5.New()
	case "SHA-1":
		h = sha1.New()
	case "SHA-256":
		h = sha256.New()
	case "SHA-384":
		h = sha512.New384()
	case "SHA-512":
		h = sha512.New()
	default:
		return Value{}, fmt.Errorf("%w: digest algorithm %q", ErrArgs, a[1].AsString())
	}
	h.Write([]byte(a[0].AsString()))
	sum := h.Sum(nil)
	if len(a) == 3 && a[2].AsString() == "hex" {
		return Str(hex.EncodeToString(sum)), nil
	}
	return Str(base64.StdEncoding.EncodeToString(sum)), nil
}

// parseGeo reads "lat lon [alt [accuracy]]" points separated by ";".
func parseGeo(s string) ([][2]float64, error) {
	var pts [][2]float64
	for _, part := range strings.Split(s, ";") {
		f := strings.Fields(part)
		if len(f) < 2 {
			return nil, fmt.Errorf("%w: %q is not a point", ErrArgs, part)
		}
		lat, lon := parseNumber(f[0]), parseNumber(f[1])
		if math.IsNaN(lat) || math.IsNaN(lon) || math.Abs(lat) > 90 || math.Abs(lon) > 180 {
			return nil, fmt.Errorf("%w: %q is not a point", ErrArgs, part)
		}
		pts = append(pts, [2]float64{lat, lon})
	}
	return pts, nil
}

// geofence(point, shape) reports whether a point lies inside a closed
// polygon (ray casting on latitude/longitude).
func geofence(_ *Context, a []Value) (Value, error) {
	p, err := parseGeo(a[0].AsString())
	if err != nil || len(p) != 1 {
		return Value{}, fmt.Errorf("%w: geofence() needs a point", ErrArgs)
	}
	poly, err := parseGeo(a[1].AsString())
	if err != nil || len(poly) < 4 || poly[0] != poly[len(poly)-1] {
		return Value{}, fmt.Errorf("%w: geofence() needs a closed shape", ErrArgs)
	}
	y, x := p[0][0], p[0][1]
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		yi, xi, yj, xj := poly[i][0], poly[i][1], poly[j][0], poly[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return Bool(in), nil
}

// earthRadius is the sphere ODK's geo functions measure on (WGS84's
// equatorial radius, in meters).
const earthRadius = 6378137.0

// geoArgs reads points from a geoshape/geotrace string, a node-set of
// geopoints (a repeat's), or several of either.
func geoArgs(a []Value) ([][2]float64, error) {
	var pts [][2]float64
	for _, v := range a {
		var texts []string
		if v.Type == NodeSet {
			for _, n := range v.Nodes {
				texts = append(texts, n.Value())
			}
		} else {
			texts = append(texts, v.AsString())
		}
		for _, t := range texts {
			if strings.TrimSpace(t) == "" {
				continue
			}
			p, err := parseGeo(strings.TrimSuffix(strings.TrimSpace(t), ";"))
			if err != nil {
				return nil, err
			}
			pts = append(pts, p...)
		}
	}
	return pts, nil
}

// area (enclosed-area) is the area in square meters of the polygon the
// points draw on a sphere of earthRadius (the spherical-excess
// approximation of the shoelace formula); under 3 points it is 0.
func area(_ *Context, a []Value) (Value, error) {
	pts, err := geoArgs(a)
	if err != nil {
		return Num(math.NaN()), nil
	}
	if len(pts) < 3 {
		return Num(0), nil
	}
	rad := math.Pi / 180
	sum := 0.0
	for i := range pts {
		p1, p2 := pts[i], pts[(i+1)%len(pts)]
		sum += (p2[1] - p1[1]) * rad * (2 + math.Sin(p1[0]*rad) + math.Sin(p2[0]*rad))
	}
	return Num(math.Abs(sum * earthRadius * earthRadius / 2)), nil
}

// distance is the length in meters of the line through the points
// (great circles on a sphere of earthRadius, by the haversine formula).
func distance(_ *Context, a []Value) (Value, error) {
	pts, err := geoArgs(a)
	if err != nil {
		return Num(math.NaN()), nil
	}
	rad, d := math.Pi/180, 0.0
	for i := 1; i < len(pts); i++ {
		la1, lo1, la2, lo2 := pts[i-1][0]*rad, pts[i-1][1]*rad, pts[i][0]*rad, pts[i][1]*rad
		h := math.Pow(math.Sin((la2-la1)/2), 2) + math.Cos(la1)*math.Cos(la2)*math.Pow(math.Sin((lo2-lo1)/2), 2)
		d += 2 * earthRadius * math.Asin(math.Sqrt(h))
	}
	return Num(d), nil
}

var _ = time.UTC
