package server

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/survey"
	"github.com/tessera-survey/tessera/syncengine"
)

const recordsPage = 50

type recordRow struct {
	ID, Short, Form, Status string
	Conflicts               string
	Created, Device, Review string
	Team                    string
}

// filterForm is the records page's filter as the form sent it.
type filterForm struct{ survey.RecordFilter }

func parseRecordFilter(q url.Values) filterForm {
	return filterForm{survey.RecordFilter{Form: strings.TrimSpace(q.Get("form")), ConflictsOnly: q.Get("conflicts") == "1",
		Review: q.Get("review"), Device: strings.TrimSpace(q.Get("device")),
		Status: strings.TrimSpace(q.Get("status")), Team: strings.TrimSpace(q.Get("team")),
		From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to"))}}
}

// Query is the filter as URL parameters, for the next-page link.
func (f filterForm) Query() string {
	q := url.Values{}
	for k, v := range map[string]string{"form": f.Form, "review": f.Review, "device": f.Device, "from": f.From, "to": f.To,
		"status": f.Status, "team": f.Team} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.ConflictsOnly {
		q.Set("conflicts", "1")
	}
	return q.Encode()
}

func minute(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04") }

// consoleRecords lists records of projects where the user is at least an
// analyst, a page at a time.
func (s *Server) consoleRecords(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	flt := parseRecordFilter(r.URL.Query())
	p := auth.Principal{User: u}
	page, err := s.svc.ListRecords(r.Context(), p, flt.RecordFilter, r.URL.Query().Get("after"), recordsPage)
	if err != nil {
		s.consoleFail(w, r, err)
		return
	}
	rows := make([]recordRow, 0, len(page.Rows))
	for _, sum := range page.Rows {
		id := sum.ID.String()
		row := recordRow{ID: id, Short: syncengine.ShortID(id), Form: sum.Form, Status: sum.Status,
			Conflicts: strings.Join(sum.Conflicts, ", "), Review: sum.Review, Team: sum.Team, Device: syncengine.ShortID(sum.Creator)}
		if sum.Created != 0 {
			row.Created = minute(sum.Created.Millis())
		}
		rows = append(rows, row)
	}
	s.render(w, "records", http.StatusOK, map[string]any{"User": u.Name, "CSRF": csrfFor(session), "Rows": rows,
		"F": flt, "Next": page.Next, "ReviewStates": survey.ReviewStates, "Statuses": survey.Statuses,
		"Resolved": r.URL.Query().Get("resolved"), "Refused": r.URL.Query().Get("refused"), "Lead": p.CanAnywhere(auth.Lead)})
}

type fieldView struct {
	Name     string
	Value    string
	Conflict bool
	Values   []conflictValue
	Withheld bool
	Media    *mediaView // the answer names a file
}

// mediaView shows a file an answer names: a thumbnail, a player or a
// download link.
type mediaView struct {
	URL, Name, Kind string // Kind: image, audio, video or file
}

func mediaOf(id syncengine.RecordID, v syncengine.Value) *mediaView {
	if v.Kind != syncengine.Text {
		return nil
	}
	r, err := media.ParseRef(v.Str)
	if err != nil || r.SHA256 == "" {
		return nil
	}
	return &mediaView{URL: "/console/records/" + id.String() + "/media/" + r.SHA256, Name: r.FileName(), Kind: media.Kind(r.FileName())}
}

// consoleMedia streams a file an answer of the record names, by the
// record rules (a sensitive answer's file for leads only).
func (s *Server) consoleMedia(w http.ResponseWriter, r *http.Request, u *auth.User, _ string) {
	id, err := recordID(r)
	if err != nil {
		s.consoleFail(w, r, err)
		return
	}
	f, rd, err := s.svc.OpenMedia(r.Context(), auth.Principal{User: u}, id, r.PathValue("sha"))
	if err != nil {
		s.consoleFail(w, r, err)
		return
	}
	ct := media.ContentType(f.Ref.FileName())
	if media.Kind(f.Ref.FileName()) == "file" {
		// Anything else is a download, never rendered in the console's
		// origin (an uploaded HTML or SVG file would run there).
		ct = "application/octet-stream"
		w.Header().Set("Content-Disposition", "attachment; filename="+strconv.Quote(f.Ref.FileName()))
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.FormatInt(f.Ref.Size, 10))
	w.Header().Set("Cache-Control", "private, no-store")
	if _, err := io.Copy(w, rd); err != nil {
		s.log.Warn("console: media download broke off", "record", id, "err", err)
	}
}

type conflictValue struct{ Value, Replica, Time string }

type historyRow struct {
	Time, Device string
	Server       bool // written by this server (a console resolution)
	Restamp      bool // written by this server to re-date a write of a wrong device clock
	Changes      []string
}

const withheldText = "(sensitive: withheld for your role)"

func (s *Server) consoleRecord(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	s.showRecord(w, r, u, session, "", http.StatusOK)
}

// recordID reads the record id in the path.
func recordID(r *http.Request) (syncengine.RecordID, error) {
	return syncengine.ParseRecordID(r.PathValue("id"))
}

func (s *Server) showRecord(w http.ResponseWriter, r *http.Request, u *auth.User, session, message string, status int) {
	id, err := recordID(r)
	if err != nil {
		s.consoleFail(w, r, err)
		return
	}
	v, err := s.svc.Record(r.Context(), auth.Principal{User: u}, id)
	if err != nil {
		s.consoleFail(w, r, err)
		return
	}
	s.render(w, "record", status, map[string]any{"User": u.Name, "CSRF": csrfFor(session), "ID": id.String(), "Form": v.Form,
		"Status": v.Status, "Review": v.Review, "Fields": fieldViews(v), "History": historyRows(v), "Flags": v.Flags,
		"Message": message, "CanReview": v.CanReview && !v.Erased, "Erased": v.Erased, "ReviewStates": survey.ReviewStates,
		"Assigned": v.Assigned.String(), "Assignment": v.Assigned})
}

func fieldViews(v survey.RecordView) []fieldView {
	out := make([]fieldView, 0, len(v.Fields))
	for _, f := range v.Fields {
		fv := fieldView{Name: f.Name, Value: f.Value.String(), Conflict: f.Conflict, Withheld: f.Withheld}
		if f.Withheld {
			fv.Value = withheldText
		} else if fv.Media = mediaOf(v.ID, f.Value); fv.Media != nil {
			fv.Value = fv.Media.Name
		}
		for _, e := range f.Entries {
			fv.Values = append(fv.Values, conflictValue{Value: e.Value.String(), Replica: syncengine.ShortID(e.Dot.Replica.String()),
				Time: minute(e.HLC.Millis())})
		}
		out = append(out, fv)
	}
	return out
}

func historyRows(v survey.RecordView) []historyRow {
	out := make([]historyRow, 0, len(v.History))
	for _, e := range v.History {
		h := historyRow{Time: time.UnixMilli(e.HLC.Millis()).UTC().Format("2006-01-02 15:04:05"),
			Device: syncengine.ShortID(e.Replica.String()), Server: e.Server, Restamp: e.Restamp}
		for _, c := range e.Changes {
			val := c.Value.String()
			if c.Withheld {
				val = withheldText
			}
			if c.Deleted {
				h.Changes = append(h.Changes, "deleted = "+val)
			} else {
				h.Changes = append(h.Changes, c.Name+" = "+val)
			}
		}
		out = append(out, h)
	}
	return out
}

// consoleResolve settles a conflict with one of the concurrent values or a
// corrected one.
func (s *Server) consoleResolve(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	id, err := recordID(r)
	if err != nil {
		s.consoleFail(w, r, err)
		return
	}
	in := survey.Resolve{Record: id, Field: r.PostFormValue("field"), Pick: -1, Custom: r.PostFormValue("custom"),
		Reason: strings.TrimSpace(r.PostFormValue("reason")), Via: "the console"}
	if i, err := strconv.Atoi(r.PostFormValue("pick")); err == nil {
		in.Pick = i
	}
	v, err := s.svc.Resolve(r.Context(), auth.Principal{User: u}, in)
	if err != nil {
		s.showRecordError(w, r, u, session, err)
		return
	}
	s.showRecord(w, r, u, session, "Resolved "+in.Field+": "+v.String()+".", http.StatusOK)
}

// showRecordError shows a failed action's message on the record's page
// (when the user may see it; otherwise the message alone).
func (s *Server) showRecordError(w http.ResponseWriter, r *http.Request, u *auth.User, session string, err error) {
	status, msg := s.consoleError(r, err)
	if status == http.StatusForbidden || status == http.StatusNotFound || status == http.StatusInternalServerError {
		http.Error(w, msg, status)
		return
	}
	s.showRecord(w, r, u, session, msg, status)
}

func (s *Server) consoleReview(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	id, err := recordID(r)
	if err != nil {
		s.consoleFail(w, r, err)
		return
	}
	err = s.svc.SetReview(r.Context(), auth.Principal{User: u}, survey.Review{Record: id, State: r.PostFormValue("state"),
		Comment: r.PostFormValue("comment"), Via: "console"})
	if err != nil {
		s.showRecordError(w, r, u, session, err)
		return
	}
	s.showRecord(w, r, u, session, "Review saved.", http.StatusOK)
}

// consoleErase erases a record on request, with the lead's reason and an
// explicit confirmation (it cannot be undone).
func (s *Server) consoleErase(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	id, err := recordID(r)
	if err != nil {
		s.consoleFail(w, r, err)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.showRecord(w, r, u, session, "Nothing was erased: tick the box to confirm that the erasure cannot be undone.", http.StatusBadRequest)
		return
	}
	out, err := s.svc.EraseRecord(r.Context(), auth.Principal{User: u}, survey.Erase{Record: id,
		Reason: strings.TrimSpace(r.PostFormValue("reason")), Via: "console"})
	if err != nil {
		s.showRecordError(w, r, u, session, err)
		return
	}
	msg := "Erased. Hubs and devices drop the record's answers and files at their next sync."
	if out.Already {
		msg = "This record was already erased."
	}
	s.showRecord(w, r, u, session, msg, http.StatusOK)
}

// consoleAssign assigns a record for a follow-up visit: to a team, to a
// device (with or without its sensitive answers), or (both empty) to nobody.
func (s *Server) consoleAssign(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	id, err := recordID(r)
	if err != nil {
		s.consoleFail(w, r, err)
		return
	}
	to := survey.Assignment{Team: strings.TrimSpace(r.PostFormValue("team")), Device: strings.TrimSpace(r.PostFormValue("device")),
		FollowUp: r.PostFormValue("follow_up") == "on"}
	changed, err := s.svc.AssignRecord(r.Context(), auth.Principal{User: u}, survey.Assign{Record: id, To: to, Via: "console"})
	if err != nil {
		s.showRecordError(w, r, u, session, err)
		return
	}
	msg := "Assigned to " + to.String() + ". Devices receive it at their next sync."
	if !changed {
		msg = "It was assigned to " + to.String() + " already."
	}
	s.showRecord(w, r, u, session, msg, http.StatusOK)
}

// consoleBulkResolve applies a rule to every conflict on one question of
// one form; records the lead may not change are left alone and counted.
func (s *Server) consoleBulkResolve(w http.ResponseWriter, r *http.Request, u *auth.User, _ string) {
	in := survey.BulkResolve{Form: strings.TrimSpace(r.PostFormValue("form")), Question: strings.TrimSpace(r.PostFormValue("question")),
		Rule: r.PostFormValue("rule"), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	res, err := s.svc.BulkResolve(r.Context(), auth.Principal{User: u}, in)
	if err != nil {
		status, msg := s.consoleError(r, err)
		if res.Resolved > 0 {
			msg += " (" + strconv.Itoa(res.Resolved) + " conflicts were resolved before this.)"
		}
		http.Error(w, msg, status)
		return
	}
	q := url.Values{"form": {in.Form}, "conflicts": {"1"}, "resolved": {strconv.Itoa(res.Resolved)}}
	if res.Refused > 0 {
		q.Set("refused", strconv.Itoa(res.Refused))
	}
	http.Redirect(w, r, "/console/records?"+q.Encode(), http.StatusSeeOther)
}
