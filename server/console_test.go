package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tessera-survey/tessera/server"
)

// TestConsoleLogin: the console signs in with an HttpOnly, SameSite=Strict
// session cookie; every state-changing form needs the CSRF token; routes
// need a session.
func TestConsoleLogin(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{RequireAuth: true})
	must(t, srv.Auth().AddUser(ctx, "t", "lena", "lena's long password"))
	must(t, srv.Auth().CreateProject(ctx, "t", "camp"))
	must(t, srv.Auth().Grant(ctx, "t", "lena", "camp", "lead"))
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	post := func(path string, form url.Values) *http.Response {
		resp, err := c.PostForm(srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp, _ := get("/console/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("console without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := get("/console/login")
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("no CSRF token on the login page:\n%s", page)
	}
	if resp := post("/console/login", url.Values{"user": {"lena"}, "password": {"lena's long password"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login without the CSRF token: %d", resp.StatusCode)
	}
	if resp := post("/console/login", url.Values{"user": {"lena"}, "password": {"wrong"}, "csrf": {csrf[1]}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	_, page = get("/console/login")
	csrf = regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	resp := post("/console/login", url.Values{"user": {"lena"}, "password": {"lena's long password"}, "csrf": {csrf[1]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "tessera_session" && ck.Value != "" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure {
		t.Fatalf("session cookie: %+v (Secure only over TLS)", session)
	}
	_, home := get("/console/")
	if !strings.Contains(home, "lena") || !strings.Contains(home, "camp: lead") {
		t.Fatalf("home:\n%s", home)
	}
	token := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(home)
	if resp := post("/console/logout", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", resp.StatusCode)
	}
	if resp := post("/console/logout", url.Values{"csrf": {token[1]}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := get("/console/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("console after logout: %d", resp.StatusCode)
	}
	if _, err := srv.Auth().Session(ctx, session.Value); err == nil {
		t.Fatal("the session survived logout")
	}
}
