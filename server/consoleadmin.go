package server

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"rsc.io/qr"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/survey"
)

type formRow struct {
	forms.Info
	When string
}

func (s *Server) consoleForms(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	s.showForms(w, r, u, session, "", false, http.StatusOK)
}

func (s *Server) showForms(w http.ResponseWriter, r *http.Request, u *auth.User, session, msg string, isErr bool, status int) {
	all, err := s.svc.ListForms(r.Context(), auth.Principal{User: u})
	if err != nil {
		s.consoleFail(w, r, err)
		return
	}
	rows := make([]formRow, 0, len(all))
	for _, i := range all {
		rows = append(rows, formRow{Info: i, When: minute(i.PublishedAt)})
	}
	s.render(w, "forms", status, map[string]any{"User": u.Name, "CSRF": csrfFor(session), "Forms": rows,
		"Message": msg, "Error": isErr, "Project": r.FormValue("project")})
}

// consolePublish publishes an uploaded XLSForm; problems are shown with
// their sheet and row.
func (s *Server) consolePublish(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	project := strings.TrimSpace(r.FormValue("project"))
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
	info, created, err := s.svc.Publish(r.Context(), auth.Principal{User: u}, survey.Publish{XLSX: b, Project: project, Via: "console"})
	if err != nil {
		status, msg := s.consoleError(r, err)
		s.showForms(w, r, u, session, msg, true, status)
		return
	}
	msg := "Published " + info.Key() + "."
	if !created {
		msg = info.Key() + " was already published with this content."
	}
	s.showForms(w, r, u, session, msg, false, http.StatusOK)
}

type deviceRow struct {
	auth.Device
	State, Enrolled   string
	LastSync, Clock   string
	Waiting           uint64
	ClockWarn, Silent bool
	Holds             string // what it said it holds ("" never said)
}

func (s *Server) consoleDevices(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	s.showDevices(w, r, u, session, map[string]any{}, http.StatusOK)
}

func (s *Server) showDevices(w http.ResponseWriter, r *http.Request, u *auth.User, session string, extra map[string]any, status int) {
	project := strings.TrimSpace(r.FormValue("project"))
	data := map[string]any{"User": u.Name, "CSRF": csrfFor(session), "Project": project}
	for k, v := range extra {
		data[k] = v
	}
	if s.relay != nil {
		// A hub: its link to central, for a camp lead (none for others).
		if v, err := s.relay.View(r.Context(), auth.Principal{User: u}); err == nil {
			data["Hub"] = hubRowOf(v, time.Now())
		}
	}
	if project != "" {
		devs, err := s.svc.Devices(r.Context(), auth.Principal{User: u}, project)
		if err != nil {
			s.consoleFail(w, r, err)
			return
		}
		rows := make([]deviceRow, 0, len(devs))
		for _, d := range devs {
			rows = append(rows, deviceRowOf(d))
		}
		data["Devices"] = rows
		pol, err := s.svc.Policy(r.Context(), auth.Principal{User: u}, project)
		if err != nil {
			s.consoleFail(w, r, err)
			return
		}
		data["Policy"], data["PolicyText"] = pol, pol.String()
	}
	s.render(w, "devices", status, data)
}

// hubRow is a hub's link to central as the devices page shows it.
type hubRow struct {
	LastSync, BundleOut, BundleIn, Seen, OldestWaiting string
	Waiting                                            int
	Failed                                             bool // the last network attempt failed (the log says why: not shown)
	Stale                                              bool // central has not heard of the hub for a day
}

func hubRowOf(v survey.HubView, now time.Time) hubRow {
	at := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return minute(t.UnixMilli()) + " (" + ago(now.Sub(t)) + " ago)"
	}
	row := hubRow{LastSync: at(v.LastSync), Failed: v.LastErr != "", BundleOut: at(v.BundleOut), BundleIn: at(v.BundleIn),
		Seen: at(v.Seen), Waiting: v.Waiting, Stale: v.Seen.IsZero() || now.Sub(v.Seen) > 24*time.Hour}
	if !v.OldestWaiting.IsZero() {
		row.OldestWaiting = at(v.OldestWaiting)
	}
	return row
}

// ago writes a duration for people: minutes, hours or days.
func ago(d time.Duration) string {
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func deviceRowOf(d survey.DeviceState) deviceRow {
	row := deviceRow{Device: d.Device, State: d.State, Enrolled: minute(d.Enrolled), LastSync: "never",
		Waiting: d.Waiting, Silent: d.Silent, ClockWarn: d.ClockWarn()}
	if h := d.Holds; h.At != 0 {
		row.Holds = fmt.Sprintf("%d records (%d not yet sent), %d removed after sending", h.Records, h.Unsent, h.Removed)
	}
	if !d.LastSync.IsZero() {
		row.LastSync = minute(d.LastSync.UnixMilli())
		if d.ByBundle {
			row.LastSync += " (by bundle)"
		}
	}
	switch {
	case !d.ClockKnown:
	case !row.ClockWarn:
		row.Clock = "ok"
	case d.Clock > 0:
		row.Clock = "ahead by " + d.Clock.Round(time.Second).String()
	default:
		row.Clock = "behind by " + (-d.Clock).Round(time.Second).String()
	}
	return row
}

// consoleCode makes an enrollment code, shown as text and as a QR code
// for the device's camera.
func (s *Server) consoleCode(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	project := strings.TrimSpace(r.FormValue("project"))
	ttl, err := time.ParseDuration(r.FormValue("ttl"))
	if err != nil {
		ttl = 15 * time.Minute
	}
	code, exp, err := s.svc.EnrollmentCode(r.Context(), auth.Principal{User: u}, project, strings.TrimSpace(r.FormValue("team")), ttl, false)
	if err != nil {
		status, msg := s.consoleError(r, err)
		if status == http.StatusForbidden {
			http.Error(w, msg, status)
			return
		}
		s.showDevices(w, r, u, session, map[string]any{"Message": msg, "Error": true}, status)
		return
	}
	qc, err := qr.Encode(code, qr.M)
	extra := map[string]any{"Code": code, "CodeExpires": exp.UTC().Format("2006-01-02 15:04 MST")}
	if err == nil {
		extra["QR"] = base64.StdEncoding.EncodeToString(qc.PNG())
	}
	s.showDevices(w, r, u, session, extra, http.StatusOK)
}

// consoleCollect registers a collecting device for ODK Collect and shows
// its URL and the settings QR code Collect scans (once: only its hash is
// kept).
func (s *Server) consoleCollect(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	project := strings.TrimSpace(r.FormValue("project"))
	d, token, err := s.svc.CollectDevice(r.Context(), auth.Principal{User: u}, project, strings.TrimSpace(r.FormValue("team")), strings.TrimSpace(r.FormValue("name")))
	if err != nil {
		status, msg := s.consoleError(r, err)
		if status == http.StatusForbidden {
			http.Error(w, msg, status)
			return
		}
		s.showDevices(w, r, u, session, map[string]any{"Message": msg, "Error": true}, status)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u2 := scheme + "://" + r.Host + "/key/" + token
	extra := map[string]any{"CollectURL": u2, "CollectDevice": d.ID}
	if png, err := survey.CollectQR(u2, project, d.Name); err == nil {
		extra["CollectQR"] = base64.StdEncoding.EncodeToString(png)
	}
	s.showDevices(w, r, u, session, extra, http.StatusOK)
}

// consolePolicy sets what the project's devices keep.
func (s *Server) consolePolicy(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	project := strings.TrimSpace(r.FormValue("project"))
	days, err := strconv.Atoi(strings.TrimSpace(cmp.Or(r.FormValue("retention_days"), "0")))
	if err != nil {
		s.consoleFail(w, r, fmt.Errorf("%w: retention days %q", auth.ErrInvalid, r.FormValue("retention_days")))
		return
	}
	pol := auth.DevicePolicy{DeleteAfterSend: r.FormValue("delete_after_send") == "on", RetentionDays: days, TeamRecords: r.FormValue("team_records") == "on"}
	if err := s.svc.SetPolicy(r.Context(), auth.Principal{User: u}, project, pol); err != nil {
		s.consoleFail(w, r, err)
		return
	}
	s.showDevices(w, r, u, session, map[string]any{"Message": "Saved: " + pol.String() + ". Devices apply it at their next sync."}, http.StatusOK)
}

func (s *Server) consoleDeviceAction(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	revoke := strings.HasSuffix(r.URL.Path, "/revoke")
	d, err := s.svc.DeviceAction(r.Context(), auth.Principal{User: u}, r.PathValue("id"), revoke, !revoke)
	if err != nil {
		s.consoleFail(w, r, err)
		return
	}
	r.Form.Set("project", d.Project)
	msg := "Device revoked: it is refused from its next call."
	if !revoke {
		msg = "Wipe requested: on its next sync the device sends what it has, then erases its store."
	}
	s.showDevices(w, r, u, session, map[string]any{"Message": msg}, http.StatusOK)
}
