package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/syncengine"
)

// bulkPick chooses the value a bulk rule keeps among concurrent entries:
// the one written last (or first) by its hybrid clock, ties broken by the
// register's own display order so every run picks the same.
func bulkPick(reg *syncengine.Register, rule string) syncengine.Entry {
	es := reg.Sorted()
	best := es[0]
	for _, e := range es[1:] {
		if (rule == "latest" && e.HLC > best.HLC) || (rule == "earliest" && e.HLC < best.HLC) {
			best = e
		}
	}
	return best
}

// consoleBulkResolve applies a rule to every conflict on one question of
// one form, e.g. "for threats/safe_day keep the latest visit". Each
// resolution is an ordinary causal write, audited one by one with the
// rule and the reason. Records the lead may not change are left alone.
func (s *Server) consoleBulkResolve(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	form := strings.TrimSpace(r.PostFormValue("form"))
	question := strings.TrimSpace(r.PostFormValue("question"))
	rule := r.PostFormValue("rule")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	switch {
	case form == "" || question == "":
		http.Error(w, "bulk rule: name the form and the question", http.StatusBadRequest)
		return
	case rule != "latest" && rule != "earliest":
		http.Error(w, "bulk rule: keep the latest or the earliest value", http.StatusBadRequest)
		return
	case reason == "":
		http.Error(w, "bulk rule: give a reason", http.StatusBadRequest)
		return
	}
	type fix struct {
		rec   *syncengine.Record
		field string
		value syncengine.Value
	}
	var fixes []fix
	err := s.store.View(r.Context(), func(tx syncengine.ReadTx) error {
		return tx.ScanRecords(syncengine.RecordID{}, func(rec *syncengine.Record) error {
			if rec.Form != form && !strings.HasPrefix(rec.Form, form+"@") {
				return nil
			}
			for name, reg := range rec.Fields {
				if len(reg.Entries) > 1 && !syncengine.Reserved(name) && instanceIndex.ReplaceAllString(name, "") == question {
					fixes = append(fixes, fix{rec: rec, field: name, value: bulkPick(reg, rule).Value})
				}
			}
			return nil
		})
	})
	if err != nil {
		s.log.Error("console bulk resolve", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	done, refused := 0, 0
	for _, f := range fixes {
		if !s.consoleMay(r, u, f.rec, auth.Lead) {
			refused++
			continue
		}
		if err := s.rep.Resolve(r.Context(), f.rec.ID, []syncengine.FieldWrite{{Name: f.field, Value: f.value}}); err != nil {
			s.log.Error("console bulk resolve", "record", f.rec.ID, "err", err)
			http.Error(w, fmt.Sprintf("internal error after %d resolutions", done), http.StatusInternalServerError)
			return
		}
		done++
		_ = s.auth.Audit(r.Context(), u.Name, "conflict-resolved", fmt.Sprintf("record %s field %s = %q by the console rule \"keep the %s value of %s\": %s",
			f.rec.ID, f.field, f.value.String(), rule, question, reason))
	}
	if done > 0 {
		s.pokeHub()
	}
	q := url.Values{"form": {form}, "conflicts": {"1"}, "resolved": {fmt.Sprint(done)}}
	if refused > 0 {
		q.Set("refused", fmt.Sprint(refused))
	}
	http.Redirect(w, r, "/console/records?"+q.Encode(), http.StatusSeeOther)
}
