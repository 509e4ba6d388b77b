package server

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/survey"
	"github.com/tessera-survey/tessera/syncengine"
)

// OpenRosa (ODK Collect, KoboCollect, Enketo, ODK Web Forms): a thin
// adapter over the survey use cases. A collecting device's URL holds its
// token, as ODK Central's do: {base}/key/{token}; Collect appends
// /formList and /submission, and follows the URLs listed.

// MaxSubmissionBytes is what one submission POST may carry (Collect splits
// larger submissions over several).
const MaxSubmissionBytes = 10 << 20

// orErrors is the one table from domain errors to OpenRosa answers: the
// status and the message Collect shows the enumerator. Anything else is
// logged and answered 500 "internal error".
var orErrors = []struct {
	err    error
	status int
	msg    string
}{
	{auth.ErrRevoked, http.StatusForbidden, "This device was revoked on the server: ask your project lead for a new one."},
	{auth.ErrUnauthenticated, http.StatusForbidden, "The server does not know this device: check the server URL (scan the project's QR code again)."},
	{auth.ErrDenied, http.StatusForbidden, "This device may not send that: it belongs to another project or team."},
	{forms.ErrUnknownForm, http.StatusNotFound, "The server does not have this form or version: get blank forms again, then send it."},
	{survey.ErrUnknownSubmission, http.StatusNotFound, "The form this edit replaces never reached the server: send the original first."},
	{survey.ErrSubmissionConflict, http.StatusConflict, ""}, // its own text says what to do
	{forms.ErrSubmission, http.StatusBadRequest, ""},
	{syncengine.ErrTooLarge, http.StatusRequestEntityTooLarge, "The submission is too large for this server."},
	{media.ErrTooLarge, http.StatusRequestEntityTooLarge, "A file of this submission is too large for this server."},
	{syncengine.ErrInvalid, http.StatusBadRequest, ""},
}

func (s *Server) mountOpenRosa(mux *http.ServeMux) {
	mux.HandleFunc("GET /key/{token}/formList", s.orFormList)
	mux.HandleFunc("GET /key/{token}/forms/{form}/{version}/form.xml", s.orForm)
	mux.HandleFunc("GET /key/{token}/forms/{form}/{version}/manifest", s.orManifest)
	mux.HandleFunc("GET /key/{token}/forms/{form}/{version}/media/{file}", s.orMedia)
	mux.HandleFunc("HEAD /key/{token}/submission", s.orHead)
	mux.HandleFunc("POST /key/{token}/submission", s.orSubmit)
	// Accounts (KoboCollect-style): the same under a project's URL.
	mux.HandleFunc("GET /projects/{project}/formList", s.orFormList)
	mux.HandleFunc("GET /projects/{project}/forms/{form}/{version}/form.xml", s.orForm)
	mux.HandleFunc("GET /projects/{project}/forms/{form}/{version}/manifest", s.orManifest)
	mux.HandleFunc("GET /projects/{project}/forms/{form}/{version}/media/{file}", s.orMedia)
	mux.HandleFunc("HEAD /projects/{project}/submission", s.orHead)
	mux.HandleFunc("POST /projects/{project}/submission", s.orSubmit)
}

func orHeaders(w http.ResponseWriter) {
	w.Header().Set("X-OpenRosa-Version", "1.0")
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
}

// orPrincipal is the collecting device the URL's token names, or the
// account signed in to the project's URL.
func (s *Server) orPrincipal(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	if r.PathValue("token") == "" {
		return s.orAccount(w, r)
	}
	d, err := s.auth.AuthenticateCollect(r.Context(), r.PathValue("token"))
	if err == nil && d.Wipe {
		// Collect cannot be told to wipe itself: a device asked to is
		// refused like a revoked one, so nothing more reaches it.
		err = auth.ErrRevoked
	}
	if err != nil {
		s.orFail(w, r, err)
		return auth.Principal{}, false
	}
	return auth.Principal{Device: d}, true
}

func (s *Server) orFail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	found := false
	for _, e := range orErrors {
		if errors.Is(err, e.err) {
			status, msg, found = e.status, e.msg, true
			if msg == "" {
				msg = err.Error()
			}
			break
		}
	}
	var ps forms.Problems
	if !found && errors.As(err, &ps) {
		status, msg, found = http.StatusBadRequest, ps.Error(), true
	}
	if !found {
		s.log.ErrorContext(r.Context(), "openrosa request failed", "path", r.URL.Path, "err", err)
	}
	orResponse(w, status, msg)
}

func orResponse(w http.ResponseWriter, status int, msg string) {
	orHeaders(w)
	w.WriteHeader(status)
	var b strings.Builder
	b.WriteString(`<OpenRosaResponse xmlns="http://openrosa.org/http/response"><message nature="">`)
	xml.EscapeText(&b, []byte(msg))
	b.WriteString("</message></OpenRosaResponse>\n")
	io.WriteString(w, b.String())
}

// orBase is the device's OpenRosa URL as the client reached it.
func orBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.PathValue("project"); p != "" {
		return scheme + "://" + r.Host + "/projects/" + url.PathEscape(p)
	}
	return scheme + "://" + r.Host + "/key/" + url.PathEscape(r.PathValue("token"))
}

func (s *Server) orFormList(w http.ResponseWriter, r *http.Request) {
	p, ok := s.orPrincipal(w, r)
	if !ok {
		return
	}
	all, err := s.svc.ListForms(r.Context(), p)
	if err != nil {
		s.orFail(w, r, err)
		return
	}
	latest := map[string]forms.Info{} // Collect lists a form once: its newest version
	for _, i := range all {
		if project := r.PathValue("project"); project != "" && i.Project != "" && i.Project != project {
			continue // an account's list is the project's of its URL
		}
		if l, ok := latest[i.ID]; !ok || i.PublishedAt > l.PublishedAt {
			latest[i.ID] = i
		}
	}
	want := r.URL.Query().Get("formID")
	ids := make([]string, 0, len(latest))
	for id := range latest {
		if want == "" || id == want {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	base := orBase(r)
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<xforms xmlns="http://openrosa.org/xforms/xformsList">` + "\n")
	for _, id := range ids {
		info := latest[id]
		sum, err := s.orHash(r, p, info)
		if err != nil {
			s.orFail(w, r, err)
			return
		}
		form := base + "/forms/" + url.PathEscape(info.ID) + "/" + url.PathEscape(info.Version)
		b.WriteString("  <xform>\n")
		orElem(&b, "formID", info.ID)
		orElem(&b, "name", info.Title)
		orElem(&b, "version", info.Version)
		orElem(&b, "hash", "md5:"+sum)
		orElem(&b, "downloadUrl", form+"/form.xml")
		if len(info.Files) > 0 {
			orElem(&b, "manifestUrl", form+"/manifest")
		}
		b.WriteString("  </xform>\n")
	}
	b.WriteString("</xforms>\n")
	orHeaders(w)
	io.WriteString(w, b.String())
}

func (s *Server) orHash(r *http.Request, p auth.Principal, info forms.Info) (string, error) {
	if h, ok := s.orHashes.Load(info.Key()); ok {
		return h.(string), nil
	}
	_, x, err := s.svc.GetXForm(r.Context(), p, info.ID, info.Version)
	if err != nil {
		return "", err
	}
	sum := md5.Sum(forms.ClientEditable(x))
	h := hex.EncodeToString(sum[:])
	s.orHashes.Store(info.Key(), h)
	return h, nil
}

func orElem(b *strings.Builder, name, text string) {
	b.WriteString("    <" + name + ">")
	xml.EscapeText(b, []byte(text))
	b.WriteString("</" + name + ">\n")
}

func (s *Server) orForm(w http.ResponseWriter, r *http.Request) {
	p, ok := s.orPrincipal(w, r)
	if !ok {
		return
	}
	_, x, err := s.svc.GetXForm(r.Context(), p, r.PathValue("form"), r.PathValue("version"))
	if err != nil {
		s.orFail(w, r, err)
		return
	}
	orHeaders(w)
	w.Write(forms.ClientEditable(x))
}

func (s *Server) orManifest(w http.ResponseWriter, r *http.Request) {
	p, ok := s.orPrincipal(w, r)
	if !ok {
		return
	}
	info, _, files, err := s.svc.GetForm(r.Context(), p, r.PathValue("form"), r.PathValue("version"))
	if err != nil {
		s.orFail(w, r, err)
		return
	}
	base := orBase(r) + "/forms/" + url.PathEscape(info.ID) + "/" + url.PathEscape(info.Version) + "/media/"
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<manifest xmlns="http://openrosa.org/xforms/xformsManifest">` + "\n")
	for _, f := range files {
		sum := md5.Sum(f.Data)
		b.WriteString("  <mediaFile>\n")
		orElem(&b, "filename", f.Name)
		orElem(&b, "hash", "md5:"+hex.EncodeToString(sum[:]))
		orElem(&b, "downloadUrl", base+url.PathEscape(f.Name))
		b.WriteString("  </mediaFile>\n")
	}
	b.WriteString("</manifest>\n")
	orHeaders(w)
	io.WriteString(w, b.String())
}

func (s *Server) orMedia(w http.ResponseWriter, r *http.Request) {
	p, ok := s.orPrincipal(w, r)
	if !ok {
		return
	}
	_, _, files, err := s.svc.GetForm(r.Context(), p, r.PathValue("form"), r.PathValue("version"))
	if err != nil {
		s.orFail(w, r, err)
		return
	}
	for _, f := range files {
		if f.Name == r.PathValue("file") {
			w.Header().Set("X-OpenRosa-Version", "1.0")
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(f.Data)
			return
		}
	}
	s.orFail(w, r, fmt.Errorf("%w: no file %q", forms.ErrUnknownForm, r.PathValue("file")))
}

func (s *Server) orHead(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.orPrincipal(w, r); !ok {
		return
	}
	w.Header().Set("X-OpenRosa-Version", "1.0")
	w.Header().Set("X-OpenRosa-Accept-Content-Length", fmt.Sprint(MaxSubmissionBytes))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) orSubmit(w http.ResponseWriter, r *http.Request) {
	p, ok := s.orPrincipal(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxSubmissionBytes+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		s.orFail(w, r, fmt.Errorf("%w: a submission is multipart/form-data with an xml_submission_file part", syncengine.ErrInvalid))
		return
	}
	var instance []byte
	from := survey.SubmitFrom{Project: r.PathValue("project"), DeviceID: r.URL.Query().Get("deviceID"), Files: map[string]media.Manifest{}}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.orFail(w, r, fmt.Errorf("%w: over %d bytes", syncengine.ErrTooLarge, MaxSubmissionBytes))
				return
			}
			s.orFail(w, r, fmt.Errorf("%w: the multipart body is malformed", syncengine.ErrInvalid))
			return
		}
		if err := s.orPart(r.Context(), part, &instance, &from); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = fmt.Errorf("%w: over %d bytes", syncengine.ErrTooLarge, MaxSubmissionBytes)
			}
			s.orFail(w, r, err)
			return
		}
	}
	if instance == nil {
		s.orFail(w, r, fmt.Errorf("%w: no xml_submission_file part", syncengine.ErrInvalid))
		return
	}
	res, err := s.svc.Submit(r.Context(), p, instance, from)
	if err != nil {
		s.orFail(w, r, err)
		return
	}
	msg := "Thank you: the form is on the server."
	if res.Duplicate {
		msg = "The server already had this form."
	}
	orResponse(w, http.StatusCreated, msg)
}

// orPart reads one part: the instance, or an attachment, which streams
// into the media store (one chunk in memory) and is named by its filename
// (the name the instance's answer holds). Its last chunk and manifest are
// written with the submission's record, in the same commit. An attachment
// no answer names leaves only shared chunks behind, as any unfinished
// upload.
func (s *Server) orPart(ctx context.Context, part *multipart.Part, instance *[]byte, from *survey.SubmitFrom) error {
	defer part.Close()
	if part.FormName() == "xml_submission_file" {
		b, err := io.ReadAll(part)
		if err != nil {
			return err
		}
		*instance = b
		return nil
	}
	name := part.FileName()
	if name == "" {
		name = part.FormName()
	}
	m, st, err := s.svc.Media().AddStaged(ctx, part, s.svc.MediaMaxBytes())
	if err != nil {
		return err
	}
	from.Staged = append(from.Staged, st)
	if name != "" {
		from.Files[name] = m
	}
	return nil
}
