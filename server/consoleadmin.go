package server

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"rsc.io/qr"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

type formRow struct {
	forms.Info
	When string
}

func (s *Server) consoleForms(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	s.showForms(w, r, u, session, "", false, http.StatusOK)
}

func (s *Server) showForms(w http.ResponseWriter, r *http.Request, u *auth.User, session, msg string, isErr bool, status int) {
	all, err := s.forms.List(r.Context())
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p := auth.Principal{User: u}
	var rows []formRow
	for _, i := range all {
		if i.Project == "" || p.Can(i.Project, auth.Analyst) {
			rows = append(rows, formRow{Info: i, When: time.UnixMilli(i.PublishedAt).UTC().Format("2006-01-02 15:04")})
		}
	}
	s.render(w, "forms", status, map[string]any{"User": u.Name, "CSRF": csrfFor(session), "Forms": rows,
		"Message": msg, "Error": isErr, "Project": r.FormValue("project")})
}

// consolePublish publishes an uploaded XLSForm; problems are shown with
// their sheet and row.
func (s *Server) consolePublish(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	project := strings.TrimSpace(r.FormValue("project"))
	p := auth.Principal{User: u}
	if (project == "" && !u.Admin) || (project != "" && !p.Can(project, auth.Lead)) {
		s.showForms(w, r, u, session, "Name a project you lead (only an admin publishes for every project).", true, http.StatusForbidden)
		return
	}
	f, _, err := r.FormFile("xlsx")
	if err != nil {
		s.showForms(w, r, u, session, "Choose an .xlsx file.", true, http.StatusBadRequest)
		return
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, forms.MaxXLSXBytes+1))
	if err != nil {
		s.showForms(w, r, u, session, "The upload failed; try again.", true, http.StatusBadRequest)
		return
	}
	info, created, err := s.forms.Publish(r.Context(), b, "", project, s.rep.Now())
	var ps forms.Problems
	switch {
	case errors.As(err, &ps):
		s.showForms(w, r, u, session, ps.Error(), true, http.StatusBadRequest)
		return
	case errors.Is(err, forms.ErrExists), errors.Is(err, forms.ErrNotXLSX):
		s.showForms(w, r, u, session, err.Error(), true, http.StatusBadRequest)
		return
	case err != nil:
		s.log.Error("console publish", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	msg := "Published " + info.Key() + "."
	if !created {
		msg = info.Key() + " was already published with this content."
	} else {
		_ = s.auth.Audit(r.Context(), u.Name, "form-publish", info.Key()+" project "+project+" (console)")
	}
	s.showForms(w, r, u, session, msg, false, http.StatusOK)
}

type deviceRow struct {
	auth.Device
	State, Enrolled   string
	LastSync, Clock   string
	Waiting           int64
	ClockWarn, Silent bool
}

// silentAfter is when the console marks a device that has not synced.
const silentAfter = 7 * 24 * time.Hour

func (s *Server) consoleDevices(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	s.showDevices(w, r, u, session, map[string]any{}, http.StatusOK)
}

func (s *Server) showDevices(w http.ResponseWriter, r *http.Request, u *auth.User, session string, extra map[string]any, status int) {
	project := strings.TrimSpace(r.FormValue("project"))
	data := map[string]any{"User": u.Name, "CSRF": csrfFor(session), "Project": project}
	for k, v := range extra {
		data[k] = v
	}
	if project != "" {
		if !(auth.Principal{User: u}).Can(project, auth.Lead) {
			http.Error(w, "your role does not allow this in project "+project, http.StatusForbidden)
			return
		}
		devs, err := s.auth.Devices(r.Context(), project)
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		var head uint64
		if err := s.store.View(r.Context(), func(tx syncengine.ReadTx) (err error) { head, err = tx.Head(); return }); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		var rows []deviceRow
		for _, d := range devs {
			st := "active"
			switch {
			case d.Wiped != 0:
				st = "wiped"
			case d.Revoked:
				st = "revoked"
			case d.Wipe:
				st = "wipe pending"
			}
			row := deviceRow{Device: d, State: st, Enrolled: time.UnixMilli(d.Enrolled).UTC().Format("2006-01-02 15:04"), LastSync: "never"}
			if ds, ok := s.devstats.get(r.Context(), s.store, d.ID); ok {
				row.LastSync = time.UnixMilli(ds.LastSync).UTC().Format("2006-01-02 15:04")
				if head > ds.Cursor {
					row.Waiting = int64(head - ds.Cursor)
				}
				row.Silent = s.rep.Now().Sub(time.UnixMilli(ds.LastSync)) > silentAfter
				if ds.Known {
					off := time.Duration(ds.Offset) * time.Millisecond
					row.ClockWarn = off > clockWarning || off < -clockWarning
					switch {
					case !row.ClockWarn:
						row.Clock = "ok"
					case off > 0:
						row.Clock = "ahead by " + off.Round(time.Second).String()
					default:
						row.Clock = "behind by " + (-off).Round(time.Second).String()
					}
				}
			} else {
				row.Silent = s.rep.Now().Sub(time.UnixMilli(d.Enrolled)) > silentAfter
			}
			rows = append(rows, row)
		}
		data["Devices"] = rows
	}
	s.render(w, "devices", status, data)
}

// consoleCode makes an enrollment code, shown as text and as a QR code
// for the device's camera.
func (s *Server) consoleCode(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	project := strings.TrimSpace(r.FormValue("project"))
	if !(auth.Principal{User: u}).Can(project, auth.Lead) {
		http.Error(w, "your role does not allow this in project "+project, http.StatusForbidden)
		return
	}
	ttl, err := time.ParseDuration(r.FormValue("ttl"))
	if err != nil {
		ttl = 15 * time.Minute
	}
	code, exp, err := s.auth.NewEnrollmentCode(r.Context(), u.Name, project, strings.TrimSpace(r.FormValue("team")), ttl)
	if err != nil {
		s.showDevices(w, r, u, session, map[string]any{"Message": err.Error(), "Error": true}, http.StatusBadRequest)
		return
	}
	qc, err := qr.Encode(code, qr.M)
	extra := map[string]any{"Code": code, "CodeExpires": exp.UTC().Format("2006-01-02 15:04 MST")}
	if err == nil {
		extra["QR"] = base64.StdEncoding.EncodeToString(qc.PNG())
	}
	s.showDevices(w, r, u, session, extra, http.StatusOK)
}

func (s *Server) consoleDeviceAction(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	id := r.PathValue("id")
	d, err := s.auth.GetDevice(r.Context(), id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if !(auth.Principal{User: u}).Can(d.Project, auth.Lead) {
		http.Error(w, "your role does not allow this in project "+d.Project, http.StatusForbidden)
		return
	}
	revoke := strings.HasSuffix(r.URL.Path, "/revoke")
	if err := s.auth.SetDevice(r.Context(), u.Name, id, revoke, !revoke); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	r.Form.Set("project", d.Project)
	msg := "Device revoked: it is refused from its next call."
	if !revoke {
		msg = "Wipe requested: on its next sync the device sends what it has, then erases its store."
	}
	s.showDevices(w, r, u, session, map[string]any{"Message": msg}, http.StatusOK)
}
