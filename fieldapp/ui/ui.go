// Package ui is the web UI an enumerator uses on the device: served by the
// device itself (fieldapp serve) on loopback, with every template and asset
// embedded in the binary, so it works with no network at all. Pages are
// rendered on the server; a small script saves each answer as it is
// entered and applies skip logic, and every page also works as plain forms
// without it. It is an adapter over the Device API (package fieldapp).
package ui

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/internal/cliutil"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

//go:embed files
var uiFiles embed.FS

// UI serves the device's web interface for one data directory.
type UI struct {
	dir      string
	log      *slog.Logger
	tmpl     *template.Template
	static   http.Handler
	idleLock time.Duration
	hosts    map[string]bool // Host headers accepted (DNS rebinding guard)

	mu       sync.Mutex
	dev      *fieldapp.Device
	session  string // cookie value of the unlocked session
	prefix   string // the session's path: every page of it is under /s/PREFIX/
	csrf     string
	lang     string
	lastSeen time.Time
	sync     *syncJob
}

// UIOptions configure a UI.
type UIOptions struct {
	// IdleLock locks the store after this long without a request (0: 15
	// minutes; negative: never).
	IdleLock time.Duration
	// Listen is the address served, to accept it as a Host header.
	Listen string
	Logger *slog.Logger
}

// NewUI returns the UI of the device store in dir. The store stays locked
// until someone enters the PIN.
func NewUI(dir string, o UIOptions) (*UI, error) {
	funcs := template.FuncMap{
		"short": syncengine.ShortID,
		"dir":   langDir,
		"tr":    tr,
		"bytes": cliutil.Bytes,
		"time": func(s string) string {
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				return t.Local().Format("2006-01-02 15:04")
			}
			return s
		},
	}
	t, err := template.New("ui").Funcs(funcs).ParseFS(uiFiles, "files/*.html")
	if err != nil {
		return nil, err
	}
	static, _ := fs.Sub(uiFiles, "files/static")
	u := &UI{dir: dir, log: o.Logger, tmpl: t, static: http.StripPrefix("/static/", http.FileServerFS(static)), idleLock: o.IdleLock}
	if u.log == nil {
		u.log = slog.Default()
	}
	if u.idleLock == 0 {
		u.idleLock = 15 * time.Minute
	}
	u.hosts = map[string]bool{}
	if _, port, err := net.SplitHostPort(o.Listen); err == nil {
		for _, h := range []string{"127.0.0.1", "localhost", "[::1]"} {
			u.hosts[h+":"+port] = true
		}
		u.hosts[o.Listen] = true
	}
	return u, nil
}

// langDir is "rtl" for languages written right to left, by the code in
// the column name ("العربية (ar)") or the name itself.
func langDir(lang string) string {
	switch langCode(lang) {
	case "ar", "arabic", "fa", "ps", "ur", "he", "yi", "ckb", "dv", "sd", "ug":
		return "rtl"
	}
	return "ltr"
}

// Close locks the store.
func (u *UI) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lockLocked()
}

func (u *UI) lockLocked() error {
	if u.sync != nil && u.sync.running() {
		u.sync.cancel()
		<-u.sync.done
	}
	u.sync = nil
	u.session, u.prefix, u.csrf = "", "", ""
	if u.dev == nil {
		return nil
	}
	err := u.dev.Close()
	u.dev = nil
	return err
}

// IdleCheck locks the store when nobody used it for the idle time; serve
// calls it every few seconds.
func (u *UI) IdleCheck(now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.dev != nil && u.idleLock > 0 && now.Sub(u.lastSeen) > u.idleLock && (u.sync == nil || !u.sync.running()) {
		u.log.Info("locked after idle time", "idle", u.idleLock)
		u.lockLocked()
	}
}

// ServeHTTP routes a request.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(u.hosts) > 0 && !u.hosts[r.Host] {
		http.Error(w, "unexpected Host header", http.StatusMisdirectedRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	path := r.URL.Path
	if strings.HasPrefix(path, "/static/") {
		h.Set("Cache-Control", "max-age=3600")
		u.static.ServeHTTP(w, r)
		return
	}
	if path == "/unlock" && r.Method == http.MethodPost {
		u.unlock(w, r)
		return
	}
	// An unlocked session lives under its own random path, and its cookie
	// is sent only there: browsers send a host's cookies to every port of
	// it, so with Path=/ any server on another port of 127.0.0.1 (another
	// app on the phone) the browser was led to would receive the session.
	path, inSession := u.inSession(path)
	r.URL.Path = path
	dev, ok := u.authorized(w, r, inSession)
	if !ok {
		return
	}
	ctx := r.Context()
	switch {
	case path == "/" || path == "/forms":
		u.forms(ctx, w, r, dev)
	case path == "/lock" && r.Method == http.MethodPost:
		u.mu.Lock()
		u.lockLocked()
		u.mu.Unlock()
		http.Redirect(w, r, "/", http.StatusSeeOther) // the locked screen: no session path any more
	case path == "/language":
		u.language(ctx, w, r, dev)
	case path == "/interviews" && r.Method == http.MethodPost:
		id, err := dev.NewInterview(ctx, r.PostFormValue("form"))
		if err != nil {
			u.fail(w, http.StatusBadRequest, err)
			return
		}
		u.redirect(w, r, "/interview/"+id.String())
	case path == "/interviews":
		u.list(ctx, w, r, dev)
	case strings.HasPrefix(path, "/interview/"):
		u.interview(ctx, w, r, dev, strings.TrimPrefix(path, "/interview/"))
	case path == "/sync":
		u.syncPage(w, r, dev)
	case path == "/sync/status":
		u.mu.Lock()
		j := u.sync
		u.mu.Unlock()
		writeJSONResponse(w, j.status())
	default:
		http.NotFound(w, r)
	}
}

// inSession strips the session's path from path; ok is false for a path
// outside it (or a locked store).
func (u *UI) inSession(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/s/")
	if !ok {
		return path, false
	}
	prefix, rest, _ := strings.Cut(rest, "/")
	u.mu.Lock()
	mine := u.prefix != "" && subtle.ConstantTimeCompare([]byte(prefix), []byte(u.prefix)) == 1
	u.mu.Unlock()
	if !mine {
		return path, false
	}
	return "/" + rest, true
}

// base is the session's path ("" when locked). u.mu must be held.
func (u *UI) base() string {
	if u.prefix == "" {
		return ""
	}
	return "/s/" + u.prefix
}

// redirect sends the browser to target, a path of the session.
func (u *UI) redirect(w http.ResponseWriter, r *http.Request, target string) {
	u.mu.Lock()
	base := u.base()
	u.mu.Unlock()
	http.Redirect(w, r, base+target, http.StatusSeeOther)
}

// authorized checks the session's path and cookie and, for a POST, the
// CSRF token; a locked store shows the unlock screen.
func (u *UI) authorized(w http.ResponseWriter, r *http.Request, inSession bool) (*fieldapp.Device, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	c, err := r.Cookie("tessera_device")
	if !inSession || u.dev == nil || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(u.session)) != 1 {
		if r.URL.Path == "/sync/status" {
			// The sync page polls this: after a wipe (or the idle lock) it
			// learns the store is locked and goes to the locked screen.
			writeJSONResponse(w, SyncStatus{Locked: true, Wiped: fieldapp.Wiped(u.dir) != ""})
			return nil, false
		}
		if r.Method == http.MethodGet && (r.URL.Path == "/" || !strings.HasPrefix(r.URL.Path, "/sync/")) {
			u.renderUnlock(w, http.StatusOK, "")
		} else {
			http.Error(w, "locked: unlock the device first", http.StatusUnauthorized)
		}
		return nil, false
	}
	if r.Method == http.MethodPost {
		tok := r.Header.Get("X-CSRF-Token")
		switch {
		case tok != "":
		case isMultipart(r):
			// Never PostFormValue on a body with files: it would spool
			// them to a temporary file, a plaintext copy on disk. The
			// file upload carries its token in the URL.
			tok = r.URL.Query().Get("csrf")
		default:
			tok = r.PostFormValue("csrf")
		}
		if subtle.ConstantTimeCompare([]byte(tok), []byte(u.csrf)) != 1 {
			http.Error(w, "stale form: reload the page", http.StatusForbidden)
			return nil, false
		}
	}
	u.lastSeen = time.Now()
	return u.dev, true
}

func (u *UI) unlock(w http.ResponseWriter, r *http.Request) {
	// Only this UI's own page may try a PIN: any other page open in the
	// phone's browser could post guesses here (there is no session yet
	// for a CSRF token to come from).
	if !u.sameOrigin(r) {
		http.Error(w, "the PIN is entered on this app's own page only", http.StatusForbidden)
		return
	}
	pin := r.PostFormValue("pin")
	u.mu.Lock()
	open := u.dev != nil
	u.mu.Unlock()
	if open {
		// Another tab unlocked: a right PIN joins that session, a wrong one
		// is refused like any other.
		if err := fieldapp.CheckPIN(r.Context(), u.dir, pin); err != nil {
			u.renderUnlock(w, http.StatusUnauthorized, unlockError(err))
			return
		}
	} else {
		d, err := fieldapp.Open(r.Context(), u.dir, pin)
		if err != nil {
			u.log.Info("unlock refused", "err", err)
			u.renderUnlock(w, http.StatusUnauthorized, unlockError(err))
			return
		}
		u.mu.Lock()
		if u.dev != nil {
			d.Close()
		} else {
			u.dev, u.session, u.prefix, u.csrf = d, auth.Token(), auth.Token(), auth.Token()
		}
		u.mu.Unlock()
	}
	u.mu.Lock()
	sess, lang, base := u.session, u.lang, u.base()
	u.lastSeen = time.Now()
	u.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "tessera_device", Value: sess, Path: base + "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	next := "/forms"
	if lang == "" {
		next = "/language"
	}
	http.Redirect(w, r, base+next, http.StatusSeeOther)
}

// renderUnlock shows the locked screen, with msg as its error.
func (u *UI) renderUnlock(w http.ResponseWriter, status int, msg string) {
	u.render(w, status, "unlock", page{Title: "Unlock", Locked: true, Exists: fieldapp.Exists(u.dir), Wiped: fieldapp.Wiped(u.dir), Error: msg})
}

func unlockError(err error) string {
	switch {
	case errors.Is(err, fieldapp.ErrWrongPIN):
		return "Wrong PIN. " + strings.TrimPrefix(err.Error(), fieldapp.ErrWrongPIN.Error()+" ")
	case errors.Is(err, fieldapp.ErrNoPIN):
		return "Enter the PIN."
	case errors.Is(err, fieldapp.ErrNoStore):
		return "There is no device store here yet: run 'fieldapp init' first."
	}
	return "The device store could not be opened: " + err.Error()
}

// page is what every template gets.
type page struct {
	Title   string
	Locked  bool
	Exists  bool
	CSRF    string
	Lang    string
	Dir     string
	Error   string
	Notice  string
	Data    any
	Pending int
	Wiped   string // when the store was wiped at the server's request
	Base    string // the session's path: the pages' links are relative to it
}

func (u *UI) page(title string, data any) page {
	u.mu.Lock()
	defer u.mu.Unlock()
	return page{Title: title, CSRF: u.csrf, Lang: u.lang, Dir: langDir(u.lang), Data: data, Base: u.base()}
}

func (u *UI) render(w http.ResponseWriter, status int, name string, p page) {
	if p.Dir == "" {
		p.Dir = "ltr"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := u.tmpl.ExecuteTemplate(w, name, p); err != nil {
		u.log.Error("template", "name", name, "err", err)
	}
}

func (u *UI) fail(w http.ResponseWriter, status int, err error) {
	u.log.Info("request failed", "err", err)
	p := u.page("Error", nil)
	p.Error = err.Error()
	u.render(w, status, "error", p)
}

func writeJSONResponse(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (u *UI) language(ctx context.Context, w http.ResponseWriter, r *http.Request, dev *fieldapp.Device) {
	langs, err := dev.Languages(ctx)
	if err != nil {
		u.fail(w, http.StatusInternalServerError, err)
		return
	}
	if r.Method == http.MethodPost {
		l := r.PostFormValue("lang")
		if l != "" && !slices.Contains(langs, l) {
			u.fail(w, http.StatusBadRequest, fmt.Errorf("no form on this device has the language %q", l))
			return
		}
		u.mu.Lock()
		u.lang = l
		u.mu.Unlock()
		next := r.PostFormValue("next")
		if !localPath(next) {
			next = "/forms"
		}
		u.redirect(w, r, next)
		return
	}
	type opt struct {
		Name, Dir string
		Chosen    bool
	}
	var opts []opt
	u.mu.Lock()
	cur := u.lang
	u.mu.Unlock()
	for _, l := range langs {
		opts = append(opts, opt{l, langDir(l), l == cur})
	}
	u.render(w, http.StatusOK, "language", u.page("Language", struct {
		Langs []opt
		Next  string
	}{opts, r.URL.Query().Get("next")}))
}

func (u *UI) forms(ctx context.Context, w http.ResponseWriter, r *http.Request, dev *fieldapp.Device) {
	infos, err := dev.FormList(ctx)
	if err != nil {
		u.fail(w, http.StatusInternalServerError, err)
		return
	}
	// The newest version of each form; older ones stay for old records.
	seen := map[string]bool{}
	var list []forms.Info
	for _, i := range infos {
		if !seen[i.ID] {
			seen[i.ID] = true
			list = append(list, i)
		}
	}
	pending, err := dev.Pending(ctx)
	if err != nil {
		u.fail(w, http.StatusInternalServerError, err)
		return
	}
	p := u.page("Forms", list)
	p.Pending = pending
	u.render(w, http.StatusOK, "forms", p)
}

func (u *UI) list(ctx context.Context, w http.ResponseWriter, r *http.Request, dev *fieldapp.Device) {
	var before syncengine.RecordID
	if a := r.URL.Query().Get("before"); a != "" {
		id, err := uuid.Parse(a)
		if err != nil {
			u.fail(w, http.StatusBadRequest, fmt.Errorf("before: %w", err))
			return
		}
		before = syncengine.RecordID(id)
	}
	items, next, err := dev.Interviews(ctx, before, 50)
	if err != nil {
		u.fail(w, http.StatusInternalServerError, err)
		return
	}
	p := u.page("Interviews", struct {
		Items []fieldapp.Summary
		Next  string
		First bool
	}{items, next, before.IsZeroID()})
	p.Notice = r.URL.Query().Get("notice")
	u.render(w, http.StatusOK, "list", p)
}

func (u *UI) interview(ctx context.Context, w http.ResponseWriter, r *http.Request, dev *fieldapp.Device, rest string) {
	idText, action, _ := strings.Cut(rest, "/")
	uid, err := uuid.Parse(idText)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	id := syncengine.RecordID(uid)
	lang := u.page("", nil).Lang
	back := "/interview/" + id.String()
	if file, ok := strings.CutPrefix(action, "media/"); ok && r.Method == http.MethodGet {
		u.mediaFile(ctx, w, r, dev, id, file)
		return
	}
	if name, ok := strings.CutPrefix(action, "label/"); ok && r.Method == http.MethodGet {
		u.formFile(ctx, w, r, dev, id, name)
		return
	}
	if action != "" && r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	if isMultipart(r) && action != "attach" {
		http.Error(w, "files go to the attach action only", http.StatusBadRequest)
		return
	}
	switch action {
	case "":
		iv, err := dev.Interview(ctx, id)
		if err != nil {
			u.fail(w, http.StatusNotFound, err)
			return
		}
		u.showInterview(w, http.StatusOK, iv, lang, nil, r.URL.Query().Get("notice"))
	case "answer":
		u.answer(ctx, w, r, dev, id, lang)
	case "save", "finalize":
		u.finish(ctx, w, r, dev, id, lang, action == "finalize")
	case "add", "remove":
		if err := u.saveAll(ctx, r, dev, id); err != nil {
			u.fail(w, http.StatusBadRequest, err)
			return
		}
		if action == "remove" {
			if err := dev.RemoveInstance(ctx, id, r.PostFormValue("key")); err != nil {
				u.fail(w, http.StatusBadRequest, err)
				return
			}
			u.redirect(w, r, back)
			return
		}
		key, err := dev.AddInstance(ctx, id, r.PostFormValue("repeat"))
		if err != nil {
			u.fail(w, http.StatusBadRequest, err)
			return
		}
		u.redirect(w, r, back+"#"+key)
	case "resolve":
		u.resolve(ctx, w, r, dev, id)
	case "attach":
		u.attach(ctx, w, r, dev, id)
	case "detach":
		if err := u.saveAll(ctx, r, dev, id); err != nil {
			u.fail(w, http.StatusBadRequest, err)
			return
		}
		field := r.PostFormValue("field")
		if err := dev.Detach(ctx, id, field); err != nil {
			u.fail(w, http.StatusBadRequest, err)
			return
		}
		u.redirect(w, r, back+"#"+field)
	default:
		http.NotFound(w, r)
	}
}

// answer saves one answer as it is entered (the page's script) and
// returns the interview's state: relevance, choices, messages.
func (u *UI) answer(ctx context.Context, w http.ResponseWriter, r *http.Request, dev *fieldapp.Device, id syncengine.RecordID, lang string) {
	added, err := dev.Answer(ctx, id, r.PostFormValue("field"), r.PostFormValue("value"))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		writeJSONResponse(w, map[string]string{"error": err.Error()})
		return
	}
	iv, err := dev.Interview(ctx, id)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		writeJSONResponse(w, map[string]string{"error": err.Error()})
		return
	}
	st := iv.State(lang)
	st.Reload = added
	writeJSONResponse(w, st)
}

// finish saves the answers a page posted, as a draft or finalized: an
// interview that cannot be finalized yet is shown with its messages.
func (u *UI) finish(ctx context.Context, w http.ResponseWriter, r *http.Request, dev *fieldapp.Device, id syncengine.RecordID, lang string, finalize bool) {
	if err := u.saveAll(ctx, r, dev, id); err != nil {
		u.fail(w, http.StatusBadRequest, err)
		return
	}
	if !finalize {
		u.redirect(w, r, "/interviews?notice="+url.QueryEscape("Draft saved."))
		return
	}
	vs, err := dev.Finalize(ctx, id, lang)
	if err != nil {
		u.fail(w, http.StatusBadRequest, err)
		return
	}
	if len(vs) > 0 {
		iv, err := dev.Interview(ctx, id)
		if err != nil {
			u.fail(w, http.StatusInternalServerError, err)
			return
		}
		msgs := map[string]string{}
		for _, v := range vs {
			msgs[v.Field] = v.Message
		}
		u.showInterview(w, http.StatusUnprocessableEntity, iv, lang, msgs, "")
		return
	}
	u.redirect(w, r, "/interviews?notice="+url.QueryEscape("Interview finalized. It will be sent at the next sync."))
}

// resolve settles a conflict on the device. It overrides a colleague's
// answer: the PIN is asked again, so a device left unlocked is not enough.
func (u *UI) resolve(ctx context.Context, w http.ResponseWriter, r *http.Request, dev *fieldapp.Device, id syncengine.RecordID) {
	if err := fieldapp.CheckPIN(ctx, u.dir, r.PostFormValue("pin")); err != nil {
		u.fail(w, http.StatusForbidden, fmt.Errorf("resolve: %s", unlockError(err)))
		return
	}
	i := -1
	if c := r.PostFormValue("choice"); c != "" && c != "other" {
		var err error
		if i, err = strconv.Atoi(c); err != nil {
			u.fail(w, http.StatusBadRequest, fmt.Errorf("resolve: choice %q", c))
			return
		}
	}
	if err := dev.ResolveAnswer(ctx, id, r.PostFormValue("field"), i, r.PostFormValue("value")); err != nil {
		u.fail(w, http.StatusBadRequest, err)
		return
	}
	u.redirect(w, r, "/interview/"+id.String()+"?notice="+url.QueryEscape("Conflict settled. The choice syncs like any answer."))
}

// saveAll writes every answer a plain form post carries (the page without
// its script, or the last keystrokes before "Save"/"Finalize").
func (u *UI) saveAll(ctx context.Context, r *http.Request, dev *fieldapp.Device, id syncengine.RecordID) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	return saveValues(ctx, r.PostForm, dev, id)
}

// saveValues writes the answers of a posted form's values.
func saveValues(ctx context.Context, form url.Values, dev *fieldapp.Device, id syncengine.RecordID) error {
	for _, f := range form["_f"] {
		vals := form[f]
		if ranked := rankOrder(form, f); ranked != nil {
			vals = ranked
		}
		if _, err := dev.Answer(ctx, id, f, strings.Join(vals, " ")); err != nil && !errors.Is(err, fieldapp.ErrNotQuestion) {
			return err
		}
	}
	return nil
}

func isMultipart(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/")
}

// attach stores the files a multipart post carries (a photo, a recording, a
// signature drawn on the page) as their questions' answers, streaming each
// into the encrypted store, then saves the post's other answers.
func (u *UI) attach(ctx context.Context, w http.ResponseWriter, r *http.Request, dev *fieldapp.Device, id syncengine.RecordID) {
	mr, err := r.MultipartReader()
	if err != nil {
		u.fail(w, http.StatusBadRequest, err)
		return
	}
	vals := url.Values{}
	last := ""
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			u.fail(w, http.StatusBadRequest, fmt.Errorf("the upload broke off: %w", err))
			return
		}
		name := part.FormName()
		field, isFile := strings.CutPrefix(name, "file:")
		sigField, isSig := strings.CutPrefix(name, "sig:")
		switch {
		case isFile && part.FileName() != "":
			err = dev.AttachAnswer(ctx, id, field, part.FileName(), part)
			last = field
		case isSig:
			var png []byte
			if png, err = signaturePNG(part); err == nil && png != nil {
				err = dev.AttachAnswer(ctx, id, sigField, "signature.png", bytes.NewReader(png))
				last = sigField
			}
		case !isFile:
			var b []byte
			b, err = io.ReadAll(io.LimitReader(part, 1<<20))
			vals.Add(name, string(b))
		}
		part.Close()
		if err != nil {
			u.fail(w, http.StatusBadRequest, err)
			return
		}
	}
	if err := saveValues(ctx, vals, dev, id); err != nil {
		u.fail(w, http.StatusBadRequest, err)
		return
	}
	u.redirect(w, r, "/interview/"+id.String()+"#"+last)
}

// signaturePNG reads a signature pad's data URL; nil when nothing was drawn.
func signaturePNG(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, 8<<20))
	if err != nil || len(b) == 0 {
		return nil, err
	}
	data, ok := strings.CutPrefix(string(b), "data:image/png;base64,")
	if !ok {
		return nil, errors.New("signature: not a PNG drawing")
	}
	return base64.StdEncoding.DecodeString(data)
}

// mediaFile serves a file an answer names, for the interview's preview.
func (u *UI) mediaFile(ctx context.Context, w http.ResponseWriter, r *http.Request, dev *fieldapp.Device, id syncengine.RecordID, file string) {
	ref, rd, err := dev.OpenAnswerFile(ctx, id, file)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", media.ContentType(ref.FileName()))
	w.Header().Set("Content-Length", strconv.FormatInt(ref.Size, 10))
	w.Header().Set("Cache-Control", "private, max-age=86400, immutable") // content-addressed
	io.Copy(w, rd)
}

// formFile serves an attachment of the record's form (a label's image,
// audio or video) from the device's media store.
func (u *UI) formFile(ctx context.Context, w http.ResponseWriter, r *http.Request, dev *fieldapp.Device, id syncengine.RecordID, name string) {
	if n, err := url.PathUnescape(name); err == nil {
		name = n
	}
	fi, rd, err := dev.OpenFormFile(ctx, id, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", media.ContentType(fi.Name))
	w.Header().Set("Content-Length", strconv.Itoa(fi.Size))
	w.Header().Set("Cache-Control", "private, max-age=86400")
	io.Copy(w, rd)
}

// rankOrder reads a rank question's positions (FIELD#rank#CHOICE = n) as
// its choices in order; nil when the post has none.
func rankOrder(form url.Values, field string) []string {
	prefix := field + "#rank#"
	type pick struct {
		choice string
		pos    int
	}
	var picks []pick
	for k, v := range form {
		choice, ok := strings.CutPrefix(k, prefix)
		if !ok || len(v) == 0 {
			continue
		}
		if n, err := strconv.Atoi(v[0]); err == nil && n > 0 {
			picks = append(picks, pick{choice, n})
		}
	}
	if picks == nil {
		return nil
	}
	slices.SortFunc(picks, func(a, b pick) int { return cmp.Or(a.pos-b.pos, strings.Compare(a.choice, b.choice)) })
	out := make([]string, len(picks))
	for i, p := range picks {
		out[i] = p.choice
	}
	return out
}

// syncJob is a sync running in the background; the page polls its status.
type syncJob struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	prog   fieldapp.SyncResult
	result *fieldapp.SyncResult
	err    string
}

func (j *syncJob) running() bool {
	select {
	case <-j.done:
		return false
	default:
		return true
	}
}

// SyncStatus is the JSON the sync screen polls.
type SyncStatus struct {
	Running  bool                 `json:"running"`
	Progress fieldapp.SyncResult  `json:"progress"`
	Result   *fieldapp.SyncResult `json:"result,omitempty"`
	Error    string               `json:"error,omitempty"`
	Locked   bool                 `json:"locked,omitempty"` // the store is locked (no other field is set)
	Wiped    bool                 `json:"wiped,omitempty"`  // and was wiped at the server's request
}

func (j *syncJob) status() SyncStatus {
	if j == nil {
		return SyncStatus{}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return SyncStatus{Running: j.running(), Progress: j.prog, Result: j.result, Error: j.err}
}

func (u *UI) syncPage(w http.ResponseWriter, r *http.Request, dev *fieldapp.Device) {
	if r.Method == http.MethodPost {
		u.mu.Lock()
		if u.sync == nil || !u.sync.running() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			j := &syncJob{cancel: cancel, done: make(chan struct{})}
			u.sync = j
			go func() {
				defer close(j.done)
				defer cancel()
				res, err := dev.Sync(ctx, "", func(p fieldapp.SyncResult) {
					j.mu.Lock()
					j.prog = p
					j.mu.Unlock()
				})
				j.mu.Lock()
				j.prog, j.result = res, &res
				if err != nil {
					j.err = syncError(err)
					u.log.Info("sync failed", "err", err)
				}
				j.mu.Unlock()
				if res.Wiped {
					// The store is gone (everything was sent first): the UI
					// goes back to its locked screen, which says so.
					u.log.Warn("device wiped at the server's request")
					u.mu.Lock()
					if u.dev == dev {
						u.dev, u.session, u.csrf = nil, "", ""
					}
					u.mu.Unlock()
				}
			}()
		}
		u.mu.Unlock()
		u.redirect(w, r, "/sync")
		return
	}
	var server string
	pending, err := dev.Pending(r.Context())
	if err == nil {
		server, err = dev.Server(r.Context())
	}
	if err != nil {
		u.fail(w, http.StatusInternalServerError, err)
		return
	}
	u.mu.Lock()
	st := u.sync.status()
	u.mu.Unlock()
	p := u.page("Sync", struct {
		Server string
		Status SyncStatus
	}{server, st})
	p.Pending = pending
	u.render(w, http.StatusOK, "sync", p)
}

// syncError says what went wrong in words for the enumerator.
func syncError(err error) string {
	s := err.Error()
	switch {
	case errors.Is(err, fieldapp.ErrNoServer):
		return "No server is configured on this device."
	case strings.Contains(s, "connection refused"), strings.Contains(s, "no such host"), strings.Contains(s, "unavailable"),
		strings.Contains(s, "i/o timeout"), strings.Contains(s, "network is unreachable"):
		return "The server cannot be reached. Nothing was lost: try again when there is a connection. (" + s + ")"
	}
	return s
}

// localPath reports whether next is a path on this UI, safe to redirect
// to: one leading slash, then no slash or backslash (browsers read "/\x"
// as "//x", another host), no scheme, no control characters.
func localPath(next string) bool {
	if len(next) < 1 || next[0] != '/' || (len(next) > 1 && (next[1] == '/' || next[1] == '\\')) {
		return false
	}
	for i := 0; i < len(next); i++ {
		if next[i] < 0x20 || next[i] == 0x7f || next[i] == '\\' {
			return false
		}
	}
	return true
}

// sameOrigin reports whether a request comes from a page of this UI. A
// browser says so in Sec-Fetch-Site (same-origin, or none: typed by the
// user), which no page can forge; the UI sends no referrer, so its own
// form posts carry Origin "null". Without that header, the Origin must be
// one of the hosts the UI answers to, or absent (a command-line tool on
// the device is not a web page of another site).
func (u *UI) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	host, ok := strings.CutPrefix(o, "http://")
	if !ok {
		return false
	}
	return u.hosts[host] || (len(u.hosts) == 0 && host == r.Host)
}
