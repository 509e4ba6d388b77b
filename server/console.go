package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/auth"
)

//go:embed console/*.html
var consoleFS embed.FS

var consolePages = map[string]*template.Template{
	"login":   template.Must(template.ParseFS(consoleFS, "console/layout.html", "console/login.html")),
	"home":    template.Must(template.ParseFS(consoleFS, "console/layout.html", "console/home.html")),
	"records": template.Must(template.ParseFS(consoleFS, "console/layout.html", "console/records.html")),
	"record":  template.Must(template.ParseFS(consoleFS, "console/layout.html", "console/record.html")),
	"forms":   template.Must(template.ParseFS(consoleFS, "console/layout.html", "console/forms.html")),
	"devices": template.Must(template.ParseFS(consoleFS, "console/layout.html", "console/devices.html")),
}

const (
	cookieSession = "tessera_session"
	cookieLogin   = "tessera_login_csrf"
)

// consoleRoutes is the console's half of the one authorization table: the
// role each route needs ("" = public). Every console route is registered
// through it.
var consoleRoutes = map[string]auth.Role{
	"GET /console/login":   "",
	"POST /console/login":  "",
	"POST /console/logout": auth.Enumerator,
	"GET /console/":        auth.Enumerator,

	"GET /console/records":                  auth.Analyst,
	"GET /console/records/{id}":             auth.Analyst,
	"GET /console/records/{id}/media/{sha}": auth.Analyst,
	"POST /console/records/{id}/resolve":    auth.Lead,
	"POST /console/records/{id}/review":     auth.Lead,
	"POST /console/records/{id}/erase":      auth.Lead,
	"POST /console/records/{id}/assign":     auth.Lead,
	"POST /console/bulk-resolve":            auth.Lead,

	// Per-project checks happen in the handlers: a lead of one project
	// sees and changes only that project's forms and devices.
	"GET /console/forms":                auth.Analyst,
	"POST /console/forms":               auth.Lead,
	"GET /console/devices":              auth.Lead,
	"POST /console/devices/code":        auth.Lead,
	"POST /console/devices/collect":     auth.Lead,
	"POST /console/devices/policy":      auth.Lead,
	"POST /console/devices/{id}/revoke": auth.Lead,
	"POST /console/devices/{id}/wipe":   auth.Lead,
}

// csrfFor derives a session's CSRF token: only a page that was served to
// the session's holder can know it (the session cookie is HttpOnly).
func csrfFor(session string) string {
	h := sha256.Sum256([]byte("csrf:" + session))
	return hex.EncodeToString(h[:16])
}

func (s *Server) mountConsole(mux *http.ServeMux) {
	handlers := map[string]func(http.ResponseWriter, *http.Request, *auth.User, string){
		"GET /console/login":   s.consoleLoginPage,
		"POST /console/login":  s.consoleLogin,
		"POST /console/logout": s.consoleLogout,
		"GET /console/":        s.consoleHome,

		"GET /console/records":                  s.consoleRecords,
		"GET /console/records/{id}":             s.consoleRecord,
		"GET /console/records/{id}/media/{sha}": s.consoleMedia,
		"POST /console/records/{id}/resolve":    s.consoleResolve,
		"POST /console/records/{id}/review":     s.consoleReview,
		"POST /console/records/{id}/erase":      s.consoleErase,
		"POST /console/records/{id}/assign":     s.consoleAssign,
		"POST /console/bulk-resolve":            s.consoleBulkResolve,
		"GET /console/forms":                    s.consoleForms,
		"POST /console/forms":                   s.consolePublish,
		"GET /console/devices":                  s.consoleDevices,
		"POST /console/devices/code":            s.consoleCode,
		"POST /console/devices/collect":         s.consoleCollect,
		"POST /console/devices/policy":          s.consolePolicy,
		"POST /console/devices/{id}/revoke":     s.consoleDeviceAction,
		"POST /console/devices/{id}/wipe":       s.consoleDeviceAction,
	}
	for route, role := range consoleRoutes {
		h := handlers[route]
		if h == nil {
			panic("console route without a handler: " + route)
		}
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			if role == "" {
				h(w, r, nil, "")
				return
			}
			c, err := r.Cookie(cookieSession)
			var u *auth.User
			if err == nil {
				u, err = s.auth.Session(r.Context(), c.Value)
			}
			if err != nil || u == nil {
				http.Redirect(w, r, "/console/login", http.StatusSeeOther)
				return
			}
			if !(auth.Principal{User: u}).CanAnywhere(role) {
				http.Error(w, "your role does not allow this", http.StatusForbidden)
				return
			}
			if r.Method == http.MethodPost && !sameToken(r.PostFormValue("csrf"), csrfFor(c.Value)) {
				http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
				return
			}
			h(w, r, u, c.Value)
		})
	}
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/console", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil || s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
}

func (s *Server) render(w http.ResponseWriter, page string, status int, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := consolePages[page].ExecuteTemplate(w, "page", data); err != nil {
		s.log.Error("console page", "page", page, "err", err)
	}
}

// The login form is protected by a double-submit token: a random cookie
// that the form must repeat.
func (s *Server) consoleLoginPage(w http.ResponseWriter, r *http.Request, _ *auth.User, _ string) {
	tok := auth.Token()
	s.setCookie(w, r, cookieLogin, tok, 900)
	s.render(w, "login", http.StatusOK, map[string]any{"CSRF": tok})
}

func (s *Server) consoleLogin(w http.ResponseWriter, r *http.Request, _ *auth.User, _ string) {
	c, err := r.Cookie(cookieLogin)
	if err != nil || !sameToken(r.PostFormValue("csrf"), c.Value) {
		http.Error(w, "missing or wrong CSRF token: reload the sign-in page", http.StatusForbidden)
		return
	}
	session, err := s.auth.Login(r.Context(), strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password"))
	if err != nil {
		status, msg := http.StatusUnauthorized, "Wrong user name or password."
		switch {
		case errors.Is(err, auth.ErrThrottled):
			status, msg = http.StatusTooManyRequests, "Too many wrong passwords for this user: wait a while and try again."
		case !errors.Is(err, auth.ErrBadCredentials):
			status, msg = s.consoleError(r, err)
		}
		tok := auth.Token()
		s.setCookie(w, r, cookieLogin, tok, 900)
		s.render(w, "login", status, map[string]any{"CSRF": tok, "Error": msg})
		return
	}
	s.setCookie(w, r, cookieLogin, "", -1)
	s.setCookie(w, r, cookieSession, session, int(auth.SessionTTL/time.Second))
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (s *Server) consoleLogout(w http.ResponseWriter, r *http.Request, _ *auth.User, session string) {
	if err := s.auth.Logout(r.Context(), session); err != nil {
		// The cookie goes anyway; the session ends at its expiry.
		s.log.ErrorContext(r.Context(), "console sign-out", "err", err)
	}
	s.setCookie(w, r, cookieSession, "", -1)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

func (s *Server) consoleHome(w http.ResponseWriter, r *http.Request, u *auth.User, session string) {
	if r.URL.Path != "/console/" {
		http.NotFound(w, r)
		return
	}
	s.render(w, "home", http.StatusOK, map[string]any{"User": u.Name, "Admin": u.Admin, "Roles": u.Roles, "CSRF": csrfFor(session)})
}
