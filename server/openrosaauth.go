package server

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tessera-survey/tessera/auth"
)

// Accounts sign in to a project's OpenRosa URL, {server}/projects/{p}, by
// a 401 challenge as KoboCollect-style set-ups do: HTTP Digest (camp LANs
// without a public certificate run plain HTTP; the password never crosses
// the network) and Basic over HTTPS only.

const digestNonceTTL = 10 * time.Minute

var (
	nonceKeyOnce sync.Once
	nonceKey     [32]byte
)

func digestNonce(now time.Time) string {
	nonceKeyOnce.Do(func() { rand.Read(nonceKey[:]) })
	ts := strconv.FormatInt(now.Unix(), 16)
	m := hmac.New(sha256.New, nonceKey[:])
	m.Write([]byte(ts))
	return ts + "." + hex.EncodeToString(m.Sum(nil)[:16])
}

// nonceFresh reports whether a nonce is one this process made in the last
// digestNonceTTL.
func nonceFresh(nonce string, now time.Time) (ok, stale bool) {
	nonceKeyOnce.Do(func() { rand.Read(nonceKey[:]) })
	ts, mac, found := strings.Cut(nonce, ".")
	if !found {
		return false, false
	}
	m := hmac.New(sha256.New, nonceKey[:])
	m.Write([]byte(ts))
	want := hex.EncodeToString(m.Sum(nil)[:16])
	if subtle.ConstantTimeCompare([]byte(want), []byte(mac)) != 1 {
		return false, false
	}
	sec, err := strconv.ParseInt(ts, 16, 64)
	if err != nil {
		return false, false
	}
	if now.Sub(time.Unix(sec, 0)) > digestNonceTTL {
		return false, true
	}
	return true, false
}

func (s *Server) orChallenge(w http.ResponseWriter, r *http.Request, stale bool, msg string) {
	c := fmt.Sprintf(`Digest realm=%q, qop="auth", algorithm=MD5, nonce=%q`, auth.DigestRealm, digestNonce(time.Now()))
	if stale {
		c += ", stale=true"
	}
	w.Header().Add("WWW-Authenticate", c)
	if r.TLS != nil {
		w.Header().Add("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q`, auth.DigestRealm))
	}
	orResponse(w, http.StatusUnauthorized, msg)
}

// parseDigest reads the parameters of a Digest Authorization header.
func parseDigest(h string) map[string]string {
	out := map[string]string{}
	for len(h) > 0 {
		h = strings.TrimLeft(h, " ,")
		k, rest, ok := strings.Cut(h, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				break
			}
			v, h = rest[1:1+end], rest[2+end:]
		} else {
			v, h, _ = strings.Cut(rest, ",")
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// orAccount signs in the account of a request to a project's OpenRosa URL,
// answering the challenge itself when there is none or it fails.
func (s *Server) orAccount(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	project := r.PathValue("project")
	h := r.Header.Get("Authorization")
	var u *auth.User
	var err error
	switch {
	case strings.HasPrefix(h, "Digest "):
		d := parseDigest(h[len("Digest "):])
		fresh, stale := nonceFresh(d["nonce"], time.Now())
		if !fresh || d["realm"] != auth.DigestRealm || d["uri"] != r.URL.RequestURI() {
			s.orChallenge(w, r, stale, "Sign in again.")
			return auth.Principal{}, false
		}
		u, err = s.auth.DigestAccount(r.Context(), d["username"], func(ha1 string) bool {
			ha2 := md5hex(r.Method + ":" + d["uri"])
			want := md5hex(ha1 + ":" + d["nonce"] + ":" + ha2)
			if d["qop"] == "auth" {
				want = md5hex(ha1 + ":" + d["nonce"] + ":" + d["nc"] + ":" + d["cnonce"] + ":auth:" + ha2)
			}
			return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(d["response"]))) == 1
		})
	case strings.HasPrefix(h, "Basic ") && r.TLS != nil:
		raw, derr := base64.StdEncoding.DecodeString(h[len("Basic "):])
		user, pass, ok := strings.Cut(string(raw), ":")
		if derr != nil || !ok {
			s.orChallenge(w, r, false, "Sign in with your user name and password.")
			return auth.Principal{}, false
		}
		u, err = s.auth.CheckAccount(r.Context(), user, pass)
	default:
		// No credentials, or Basic over plain HTTP (the password would
		// cross the LAN in the clear): ask for Digest.
		s.orChallenge(w, r, false, "Sign in with your user name and password.")
		return auth.Principal{}, false
	}
	switch {
	case errors.Is(err, auth.ErrBadCredentials):
		s.orChallenge(w, r, false, "Wrong user name or password.")
		return auth.Principal{}, false
	case errors.Is(err, auth.ErrThrottled):
		orResponse(w, http.StatusTooManyRequests, "Too many wrong passwords: wait a minute, then try again.")
		return auth.Principal{}, false
	case err != nil:
		s.orFail(w, r, err)
		return auth.Principal{}, false
	}
	p := auth.Principal{User: u}
	if !p.Can(project, auth.Enumerator) {
		orResponse(w, http.StatusForbidden, "This account does not collect for project "+project+": ask your project lead.")
		return auth.Principal{}, false
	}
	return p, true
}
