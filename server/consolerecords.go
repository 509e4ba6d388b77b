package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
}

// consoleRecords pages through records by id (keyset paging: every page
// costs the same however far in), filtered by form and conflicts.
func (s *Server) consoleRecords(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	form := strings.TrimSpace(r.URL.Query().Get("form"))
	onlyConflicts := r.URL.Query().Get("conflicts") == "1"
	var from, after syncengine.RecordID
	if a := r.URL.Query().Get("after"); a != "" {
		id, err := syncengine.ParseRecordID(a)
		if err != nil {
			http.Error(w, "bad page cursor", http.StatusBadRequest)
			return
		}
		from, after = id, id
	}
	var rows []recordRow
	next := ""
	err := s.store.View(r.Context(), func(tx syncengine.ReadTx) error {
		err := tx.ScanRecords(from, func(rec *syncengine.Record) error {
			if rec.ID == after && !after.IsZeroID() {
				return nil
			}
			if form != "" && rec.Form != form && !strings.HasPrefix(rec.Form, form+"@") {
				return nil
			}
			conf := rec.Conflicts()
			if onlyConflicts && len(conf) == 0 && !rec.DeleteConflict() {
				return nil
			}
			if len(rows) == recordsPage {
				next = rows[len(rows)-1].ID
				return syncengine.ErrStop
			}
			id := rec.ID.String()
			rows = append(rows, recordRow{ID: id, Short: id[:13] + "…", Form: rec.Form, Status: rec.Status(), Conflicts: strings.Join(conf, ", ")})
			return nil
		})
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
		"Form": form, "ConflictsOnly": onlyConflicts, "Next": next})
}

type fieldView struct {
	Name     string
	Value    string
	Conflict bool
	Values   []conflictValue
}

type conflictValue struct{ Value, Replica, Time string }

func (s *Server) consoleRecord(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	s.showRecord(w, r, u, session, "", http.StatusOK)
}

func (s *Server) showRecord(w http.ResponseWriter, r *http.Request, u *auth.User, session, message string, status int) {
	id, err := syncengine.ParseRecordID(r.PathValue("id"))
	if err != nil {
		http.Error(w, "bad record id", http.StatusBadRequest)
		return
	}
	rec, err := s.rep.Record(r.Context(), id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if !s.consoleMay(r, u, rec, auth.Analyst) {
		http.Error(w, "your role does not allow this in this record's project", http.StatusForbidden)
		return
	}
	var fields []fieldView
	for _, name := range rec.FieldNames() {
		reg := rec.Fields[name]
		cur, conflict := reg.Current()
		fv := fieldView{Name: name, Value: cur.Value.String(), Conflict: conflict}
		if conflict {
			for _, e := range reg.Sorted() {
				fv.Values = append(fv.Values, conflictValue{Value: e.Value.String(), Replica: "…" + e.Dot.Replica.String()[28:],
					Time: time.UnixMilli(e.HLC.Millis()).UTC().Format("2006-01-02 15:04")})
			}
		}
		fields = append(fields, fv)
	}
	review := "received"
	var flags []forms.Violation
	s.store.View(r.Context(), func(tx syncengine.ReadTx) error {
		if b, err := tx.Meta(metaReview + id.String()); err == nil {
			var rv review_
			json.Unmarshal(b, &rv)
			review = rv.State
		}
		if b, err := tx.Meta(metaFlags + id.String()); err == nil {
			var f flagRecord
			json.Unmarshal(b, &f)
			flags = f.Violations
		}
		return nil
	})
	s.render(w, "record", status, map[string]any{"User": u.Name, "CSRF": csrfFor(session), "ID": id.String(), "Form": rec.Form,
		"Status": rec.Status(), "Review": review, "Fields": fields, "Flags": flags, "Message": message,
		"CanReview": s.consoleMay(r, u, rec, auth.Lead)})
}

type review_ = review

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
	id, err := syncengine.ParseRecordID(r.PathValue("id"))
	if err != nil {
		http.Error(w, "bad record id", http.StatusBadRequest)
		return
	}
	rec, err := s.rep.Record(r.Context(), id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if !s.consoleMay(r, u, rec, auth.Lead) {
		http.Error(w, "your role does not allow this in this record's project", http.StatusForbidden)
		return
	}
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
	id, err := syncengine.ParseRecordID(r.PathValue("id"))
	if err != nil {
		http.Error(w, "bad record id", http.StatusBadRequest)
		return
	}
	rec, err := s.rep.Record(r.Context(), id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	state := r.PostFormValue("state")
	if !reviewStates[state] {
		http.Error(w, "bad review state", http.StatusBadRequest)
		return
	}
	if !s.consoleMay(r, u, rec, auth.Lead) {
		http.Error(w, "your role does not allow this in this record's project", http.StatusForbidden)
		return
	}
	b, _ := json.Marshal(review{State: state, Comment: r.PostFormValue("comment"), By: u.Name, At: s.rep.Now().UnixMilli()})
	if err := s.store.Update(r.Context(), func(tx syncengine.Tx) error { return tx.SetMeta(metaReview+id.String(), b) }); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	_ = s.auth.Audit(r.Context(), u.Name, "review", fmt.Sprintf("record %s: %s %s (console)", id, state, r.PostFormValue("comment")))
	s.showRecord(w, r, u, session, "Review saved.", http.StatusOK)
}
