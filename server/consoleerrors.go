package server

import (
	"errors"
	"net/http"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/survey"
	"github.com/tessera-survey/tessera/syncengine"
)

// consoleMessages is the console's one table from errors of the use cases
// to what a page says (the first match wins: specific errors first). No
// error's own text reaches a page: anything not here is logged and shown
// as an internal error.
var consoleMessages = []struct {
	err    error
	status int
	msg    string
}{
	{survey.ErrPolicyUpstream, http.StatusConflict, "This hub's devices follow the policy set at central: change it there."},
	{survey.ErrNeedProject, http.StatusForbidden, "Name a project you lead (only an admin publishes for every project)."},
	{survey.ErrNeedReason, http.StatusBadRequest, "Give a reason."},
	{survey.ErrAssignment, http.StatusBadRequest, "Assign the record to one team, or to one device of its project and team (a follow-up needs a device)."},
	{survey.ErrNeedValue, http.StatusBadRequest, "Pick one of the values or enter a corrected one."},
	{survey.ErrReviewState, http.StatusBadRequest, "Choose a review state: received, has issues, approved or rejected."},
	{survey.ErrBulkRule, http.StatusBadRequest, "Bulk rule: name the form and the question, and keep the latest or the earliest value."},
	{survey.ErrFilter, http.StatusBadRequest, "Check the filter: status draft or finalized, a review state from the list, dates as YYYY-MM-DD."},
	{syncengine.ErrNoConflict, http.StatusConflict, "That field is not in conflict any more."},
	{syncengine.ErrNotFound, http.StatusNotFound, "No such record."},
	{forms.ErrExists, http.StatusBadRequest, "This form version is already published with other content or for another project: raise the version on the settings sheet."},
	{forms.ErrNotXLSX, http.StatusBadRequest, "That file is not an .xlsx or .xls workbook."},
	{forms.ErrNotXForm, http.StatusBadRequest, "That file is not an ODK XForm Tessera can read."},
	{forms.ErrUnknownForm, http.StatusNotFound, "No such form."},
	{auth.ErrNotFound, http.StatusNotFound, "Not found: check the project or device named."},
	{auth.ErrInvalid, http.StatusBadRequest, "Check what you entered: names are letters, digits, '-' and '_'."},
	{auth.ErrDenied, http.StatusForbidden, "Your role does not allow this."},
	{survey.ErrMediaNotNamed, http.StatusNotFound, "No answer of this record names that file."},
	{media.ErrNotFound, http.StatusNotFound, "The server does not hold that file yet: the device that took it has not sent it."},
	{syncengine.ErrInvalid, http.StatusBadRequest, "That input is not valid."},
}

// consoleError is the status and message a page shows for err. A form's
// problems are listed by sheet and row (they describe the uploaded file).
func (s *Server) consoleError(r *http.Request, err error) (int, string) {
	var ps forms.Problems
	if errors.As(err, &ps) {
		return http.StatusBadRequest, ps.Error()
	}
	for _, m := range consoleMessages {
		if errors.Is(err, m.err) {
			return m.status, m.msg
		}
	}
	s.log.ErrorContext(r.Context(), "console request failed", "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, "Something went wrong on the server; it has been logged. Try again."
}

// consoleFail answers a request that has no page to show its error on.
func (s *Server) consoleFail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := s.consoleError(r, err)
	http.Error(w, msg, status)
}
