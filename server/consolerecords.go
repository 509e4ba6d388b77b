package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

const recordsPage = 50

type recordRow struct {
	ID, Short, Form, Status string
	Conflicts               string
	Created, Device, Review string
	Team                    string
}

// recordFilter is what the records page can filter on; the zero value
// passes every record.
type recordFilter struct {
	Form          string
	ConflictsOnly bool
	Review        string // received, has_issues, approved, rejected
	Status        string // the record's own status: draft, finalized...
	Team          string // the enumerator team the record belongs to
	Device        string // part of the creating device's replica id
	From, To      string // creation date, YYYY-MM-DD, inclusive
	from, to      int64  // the same in Unix milliseconds, [from, to)
}

func parseRecordFilter(q url.Values) (recordFilter, error) {
	f := recordFilter{Form: strings.TrimSpace(q.Get("form")), ConflictsOnly: q.Get("conflicts") == "1",
		Review: q.Get("review"), Device: strings.ToLower(strings.TrimSpace(q.Get("device"))),
		Status: strings.TrimSpace(q.Get("status")), Team: strings.TrimSpace(q.Get("team")),
		From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to"))}
	if f.Status != "" && f.Status != "draft" && f.Status != "finalized" {
		return f, errors.New("status: draft or finalized")
	}
	if f.Review != "" && !reviewStates[f.Review] {
		return f, errors.New("review: received, has_issues, approved or rejected")
	}
	if f.From != "" {
		t, err := time.Parse(time.DateOnly, f.From)
		if err != nil {
			return f, errors.New("from: a date as YYYY-MM-DD")
		}
		f.from = t.UnixMilli()
	}
	if f.To != "" {
		t, err := time.Parse(time.DateOnly, f.To)
		if err != nil {
			return f, errors.New("to: a date as YYYY-MM-DD")
		}
		f.to = t.AddDate(0, 0, 1).UnixMilli()
	}
	return f, nil
}

// Query is the filter as URL parameters, for the next-page link.
func (f recordFilter) Query() string {
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

// cheap: the filter has a part that can be checked before a record is
// built (from its stored bytes, or its id).
func (f recordFilter) cheap() bool { return f != recordFilter{} }

// mayMatch reads a stored record's form, status, conflicts and creation
// (time and device) without building it, and is false only when the
// filter certainly rejects it; anything it cannot tell (a record that does
// not decode, a status in conflict, a delete) is left to the full check.
func (f recordFilter) mayMatch(v *syncengine.RecordVisitor, b []byte) bool {
	multi, deletes := false, false
	status, statusKnown := "draft", true
	// The earliest writes (ties are possible): whether one of their
	// replicas matches the device filter, and the last replica checked
	// (a record's first change writes many fields: formatted once).
	var lo syncengine.HLC
	var wrote, deviceHit bool
	var lastRep syncengine.ReplicaID
	h, err := v.Visit(b, func(name []byte, es []syncengine.Entry) error {
		for _, e := range es {
			wrote = true
			if lo == 0 || e.HLC < lo {
				lo, deviceHit, lastRep = e.HLC, false, syncengine.ReplicaID{}
			}
			if e.HLC == lo && f.Device != "" && !deviceHit && e.Dot.Replica != lastRep {
				lastRep = e.Dot.Replica
				deviceHit = strings.Contains(lastRep.String(), f.Device)
			}
		}
		switch string(name) {
		case syncengine.DeletedField:
			deletes = true
		case syncengine.StatusField:
			switch {
			case len(es) > 1:
				statusKnown = false
			case len(es) == 1 && es[0].Value.Kind == syncengine.Text:
				status = es[0].Value.Str
			}
		default:
			if len(es) > 1 && !syncengine.Reserved(string(name)) {
				multi = true
			}
		}
		return nil
	})
	if err != nil {
		return true
	}
	if f.Form != "" && h.Form != f.Form && !strings.HasPrefix(h.Form, f.Form+"@") {
		return false
	}
	if f.ConflictsOnly && !multi && !deletes {
		return false
	}
	if f.Status != "" && statusKnown && status != f.Status {
		return false
	}
	if (f.from != 0 && lo.Millis() < f.from) || (f.to != 0 && lo.Millis() >= f.to) {
		return false
	}
	if f.Device != "" {
		if !wrote { // the device is the first applied dot's
			deviceHit = !h.FirstApplied.IsZero() && strings.Contains(h.FirstApplied.Replica.String(), f.Device)
		}
		if !deviceHit {
			return false
		}
	}
	return true
}

// shortID names a device by the last 8 hex digits of its replica id: ids
// are time-ordered UUIDs, so their first digits are shared by every device
// set up in the same minute; the last ones are random.
func shortID(id string) string {
	if len(id) < 8 {
		return id
	}
	return "…" + id[len(id)-8:]
}

// created is the record's earliest write and the device that made it.
func created(rec *syncengine.Record) (syncengine.HLC, string) {
	var lo syncengine.HLC
	device := ""
	for _, f := range rec.Fields {
		for _, e := range f.Entries {
			if lo == 0 || e.HLC < lo {
				lo, device = e.HLC, e.Dot.Replica.String()
			}
		}
	}
	if device == "" && len(rec.Applied) > 0 {
		device = rec.Applied[0].Replica.String()
	}
	return lo, device
}

// consoleRecords pages through records by id (keyset paging: every page
// costs the same however far in). Only records of projects where the user
// is at least an analyst are listed.
func (s *Server) consoleRecords(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	flt, err := parseRecordFilter(r.URL.Query())
	if err != nil {
		http.Error(w, "bad filter: "+err.Error(), http.StatusBadRequest)
		return
	}
	var from, after syncengine.RecordID
	if a := r.URL.Query().Get("after"); a != "" {
		id, err := syncengine.ParseRecordID(a)
		if err != nil {
			http.Error(w, "bad page cursor", http.StatusBadRequest)
			return
		}
		from, after = id, id
	}
	p := auth.Principal{User: u}
	allowed := map[string]bool{} // form key -> may the user see it
	mayRead := func(form string) bool {
		ok, seen := allowed[form]
		if !seen {
			ok = p.CanAnywhere(auth.Analyst)
			if f, err := s.forms.Form(r.Context(), form); err == nil && f.Project != "" {
				ok = p.Can(f.Project, auth.Analyst)
			}
			allowed[form] = ok
		}
		return ok
	}
	var rows []recordRow
	next := ""
	err = s.store.View(r.Context(), func(tx syncengine.ReadTx) error {
		visit := func(rec *syncengine.Record) error {
			if rec.ID == after && !after.IsZeroID() {
				return nil
			}
			if flt.Form != "" && rec.Form != flt.Form && !strings.HasPrefix(rec.Form, flt.Form+"@") {
				return nil
			}
			if !mayRead(rec.Form) {
				return nil
			}
			conf := rec.Conflicts()
			if flt.ConflictsOnly && len(conf) == 0 && !rec.DeleteConflict() {
				return nil
			}
			if flt.Status != "" && rec.Status() != flt.Status {
				return nil
			}
			team := ""
			if v, ok, err := s.scopes.get(tx, rec.ID); err != nil {
				return err
			} else if ok {
				team = v.team
			}
			if flt.Team != "" && team != flt.Team {
				return nil
			}
			lo, device := created(rec)
			if flt.Device != "" && !strings.Contains(device, flt.Device) {
				return nil
			}
			if (flt.from != 0 && lo.Millis() < flt.from) || (flt.to != 0 && lo.Millis() >= flt.to) {
				return nil
			}
			review := reviewState(tx, rec.ID)
			if flt.Review != "" && review != flt.Review {
				return nil
			}
			if len(rows) == recordsPage {
				next = rows[len(rows)-1].ID
				return syncengine.ErrStop
			}
			id := rec.ID.String()
			row := recordRow{ID: id, Short: id[:13] + "…", Form: rec.Form, Status: rec.Status(), Conflicts: strings.Join(conf, ", "),
				Review: review, Team: team}
			if lo != 0 {
				row.Created = time.UnixMilli(lo.Millis()).UTC().Format("2006-01-02 15:04")
			}
			row.Device = shortID(device)
			rows = append(rows, row)
			return nil
		}
		var err error
		if raw, ok := tx.(syncengine.RawRecordScanner); ok && flt.cheap() {
			// A filter that may match few records: records it certainly
			// rejects are passed over from their stored bytes or their id,
			// without building them (a 1M-record scan for none: ~3 s
			// before).
			var v syncengine.RecordVisitor
			err = raw.ScanRecordBytes(from, func(id syncengine.RecordID, b []byte) error {
				if !flt.mayMatch(&v, b) {
					return nil
				}
				// The team and the review state need only the id: the
				// same checks as visit's, before the record is built.
				if flt.Team != "" {
					if sc, ok, err := s.scopes.get(tx, id); err != nil {
						return err
					} else if !ok || sc.team != flt.Team {
						return nil
					}
				}
				if flt.Review != "" && reviewState(tx, id) != flt.Review {
					return nil
				}
				rec, err := syncengine.UnmarshalRecord(id, b)
				if err != nil {
					return err
				}
				return visit(rec)
			})
		} else {
			err = tx.ScanRecords(from, visit)
		}
		if errors.Is(err, syncengine.ErrStop) {
			err = nil
		}
		return err
	})
	if err != nil {
		s.log.Error("console records", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.render(w, "records", http.StatusOK, map[string]any{"User": u.Name, "CSRF": csrfFor(session), "Rows": rows,
		"F": flt, "Next": next, "ReviewStates": []string{"received", "has_issues", "approved", "rejected"}, "Statuses": []string{"draft", "finalized"},
		"Resolved": r.URL.Query().Get("resolved"), "Refused": r.URL.Query().Get("refused"), "Lead": p.CanAnywhere(auth.Lead)})
}

type fieldView struct {
	Name     string
	Value    string
	Conflict bool
	Values   []conflictValue
	Withheld bool
}

type historyRow struct {
	Time, Device string
	Server       bool // written by this server (a console resolution)
	Changes      []string
}

const withheldText = "(sensitive: withheld for your role)"

// withheld reports the fields of rec the user may not read: answers to
// questions the form marks sensitive, for anyone below lead, as in exports.
func (s *Server) withheld(r *http.Request, u *auth.User, rec *syncengine.Record) func(field string) bool {
	f, err := s.forms.Form(r.Context(), rec.Form)
	if err != nil || u.Admin || (f.Project != "" && (auth.Principal{User: u}).Can(f.Project, auth.Lead)) {
		return func(string) bool { return false }
	}
	sensitive := map[string]bool{}
	f.Walk(func(q *forms.Question) {
		if q.Sensitive {
			sensitive[q.Path()] = true
		}
	})
	return func(field string) bool {
		return sensitive[instanceIndex.ReplaceAllString(field, "")]
	}
}

var instanceIndex = regexp.MustCompile(`\[[^\]]*\]`)

type conflictValue struct{ Value, Replica, Time string }

func (s *Server) consoleRecord(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	s.showRecord(w, r, u, session, "", http.StatusOK)
}

func (s *Server) showRecord(w http.ResponseWriter, r *http.Request, u *auth.User, session, message string, status int) {
	rec, ok := s.consoleRecordAs(w, r, u, auth.Analyst)
	if !ok {
		return
	}
	id := rec.ID
	withheld := s.withheld(r, u, rec)
	var fields []fieldView
	for _, name := range rec.FieldNames() {
		reg := rec.Fields[name]
		cur, conflict := reg.Current()
		fv := fieldView{Name: name, Value: cur.Value.String(), Conflict: conflict}
		if withheld(name) {
			fields = append(fields, fieldView{Name: name, Value: withheldText, Conflict: conflict, Withheld: true})
			continue
		}
		if conflict {
			for _, e := range reg.Sorted() {
				fv.Values = append(fv.Values, conflictValue{Value: e.Value.String(), Replica: "…" + e.Dot.Replica.String()[28:],
					Time: time.UnixMilli(e.HLC.Millis()).UTC().Format("2006-01-02 15:04")})
			}
		}
		fields = append(fields, fv)
	}
	var history []historyRow
	if entries, err := s.rep.History(r.Context(), id); err != nil {
		s.log.Error("console record history", "record", id, "err", err)
	} else {
		for _, e := range entries {
			h := historyRow{Time: time.UnixMilli(e.Change.HLC.Millis()).UTC().Format("2006-01-02 15:04:05"),
				Device: shortID(e.Change.Dot.Replica.String()), Server: e.Change.Dot.Replica == s.rep.ID()}
			for _, f := range e.Change.Fields {
				v := f.Value.String()
				if withheld(f.Name) {
					v = withheldText
				}
				switch f.Name {
				case syncengine.DeletedField:
					h.Changes = append(h.Changes, "deleted = "+v)
				default:
					if !syncengine.Reserved(f.Name) {
						h.Changes = append(h.Changes, f.Name+" = "+v)
					}
				}
			}
			history = append(history, h)
		}
	}
	var review string
	var flags []forms.Violation
	s.store.View(r.Context(), func(tx syncengine.ReadTx) error {
		review = reviewState(tx, rec.ID)
		if b, err := tx.Meta(metaFlags + id.String()); err == nil {
			var f flagRecord
			json.Unmarshal(b, &f)
			flags = f.Violations
		}
		return nil
	})
	s.render(w, "record", status, map[string]any{"User": u.Name, "CSRF": csrfFor(session), "ID": id.String(), "Form": rec.Form,
		"Status": rec.Status(), "Review": review, "Fields": fields, "History": history, "Flags": flags, "Message": message,
		"CanReview": s.consoleMay(r, u, rec, auth.Lead)})
}

// reviewState is a record's review state ("received" until a lead
// reviews it).
func reviewState(tx syncengine.ReadTx, id syncengine.RecordID) string {
	if b, err := tx.Meta(metaReview + id.String()); err == nil {
		var rv review
		if json.Unmarshal(b, &rv) == nil && rv.State != "" {
			return rv.State
		}
	}
	return "received"
}

// consoleRecordAs loads the record named in the path if the user has role
// in its project; otherwise it answers the request and reports false.
func (s *Server) consoleRecordAs(w http.ResponseWriter, r *http.Request, u *auth.User, role auth.Role) (*syncengine.Record, bool) {
	id, err := syncengine.ParseRecordID(r.PathValue("id"))
	if err != nil {
		http.Error(w, "bad record id", http.StatusBadRequest)
		return nil, false
	}
	rec, err := s.rep.Record(r.Context(), id)
	if err != nil {
		http.NotFound(w, r)
		return nil, false
	}
	if !s.consoleMay(r, u, rec, role) {
		http.Error(w, "your role does not allow this in this record's project", http.StatusForbidden)
		return nil, false
	}
	return rec, true
}

// consoleMay checks the user's role in the record's project.
func (s *Server) consoleMay(r *http.Request, u *auth.User, rec *syncengine.Record, role auth.Role) bool {
	p := auth.Principal{User: u}
	if f, err := s.forms.Form(r.Context(), rec.Form); err == nil && f.Project != "" {
		return p.Can(f.Project, role)
	}
	return p.CanAnywhere(role)
}

// consoleResolve settles a conflict with one of the concurrent values or a
// corrected one: an ordinary causal write by the server's replica, which
// reaches every device at its next sync.
func (s *Server) consoleResolve(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	rec, ok := s.consoleRecordAs(w, r, u, auth.Lead)
	if !ok {
		return
	}
	id := rec.ID
	field, reason := r.PostFormValue("field"), strings.TrimSpace(r.PostFormValue("reason"))
	reg := rec.Fields[field]
	if reg == nil || len(reg.Entries) < 2 {
		s.showRecord(w, r, u, session, "That field is not in conflict any more.", http.StatusConflict)
		return
	}
	if reason == "" {
		s.showRecord(w, r, u, session, "Give a reason for the resolution.", http.StatusBadRequest)
		return
	}
	var v syncengine.Value
	if custom := r.PostFormValue("custom"); custom != "" {
		v = syncengine.ParseValue(custom)
	} else if i, err := strconv.Atoi(r.PostFormValue("pick")); err == nil && i >= 0 && i < len(reg.Entries) {
		v = reg.Sorted()[i].Value
	} else {
		s.showRecord(w, r, u, session, "Pick one of the values or enter a corrected one.", http.StatusBadRequest)
		return
	}
	if err := s.rep.Resolve(r.Context(), id, []syncengine.FieldWrite{{Name: field, Value: v}}); err != nil {
		s.log.Error("console resolve", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	_ = s.auth.Audit(r.Context(), u.Name, "conflict-resolved", fmt.Sprintf("record %s field %s = %q in the console: %s", id, field, v.String(), reason))
	s.pokeHub()
	s.showRecord(w, r, u, session, fmt.Sprintf("Resolved %s: %s.", field, v.String()), http.StatusOK)
}

func (s *Server) consoleReview(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	rec, ok := s.consoleRecordAs(w, r, u, auth.Lead)
	if !ok {
		return
	}
	id := rec.ID
	state := r.PostFormValue("state")
	if !reviewStates[state] {
		http.Error(w, "bad review state", http.StatusBadRequest)
		return
	}
	if err := s.setReview(r.Context(), id, review{State: state, Comment: r.PostFormValue("comment"), By: u.Name, At: s.rep.Now().UnixMilli()}); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	_ = s.auth.Audit(r.Context(), u.Name, "review", fmt.Sprintf("record %s: %s %s (console)", id, state, r.PostFormValue("comment")))
	s.showRecord(w, r, u, session, "Review saved.", http.StatusOK)
}
