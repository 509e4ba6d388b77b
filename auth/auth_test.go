package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T) (*Service, *memstore.Store, *clock) {
	st := memstore.New()
	c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	return New(st, c.now), st, c
}

func TestPasswords(t *testing.T) {
	h := HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if !CheckPassword(h, "correct horse battery") || CheckPassword(h, "correct horse batterY") || CheckPassword("garbage", "x") {
		t.Fatal("password check")
	}
	if HashPassword("same") == HashPassword("same") {
		t.Fatal("no salt")
	}
}

func TestBootstrapSetupLogin(t *testing.T) {
	ctx := context.Background()
	s, _, c := newService(t)
	token, err := s.Bootstrap(ctx)
	if err != nil || token == "" {
		t.Fatalf("bootstrap: %q %v", token, err)
	}
	if again, _ := s.Bootstrap(ctx); again != "" {
		t.Fatal("a second bootstrap issued another token")
	}
	if _, err := s.Login(ctx, "admin", "anything"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("admin without a password signed in: %v", err)
	}
	if _, _, err := s.UseSetupToken(ctx, token, "short"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short password: %v", err)
	}
	sess, user, err := s.UseSetupToken(ctx, token, "a long admin password")
	if err != nil || user != "admin" {
		t.Fatal(err)
	}
	if _, _, err := s.UseSetupToken(ctx, token, "another long password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("setup token used twice: %v", err)
	}
	if u, err := s.Session(ctx, sess); err != nil || !u.Admin {
		t.Fatalf("session: %v %v", u, err)
	}
	sess2, err := s.Login(ctx, "admin", "a long admin password")
	if err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(SessionTTL + time.Minute)
	if _, err := s.Session(ctx, sess2); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired session accepted: %v", err)
	}
	if _, err := s.Session(ctx, "forged"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("forged session accepted: %v", err)
	}
}

func TestRoles(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newService(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateProject(ctx, "admin", "camp-north"))
	must(s.CreateProject(ctx, "admin", "camp-south"))
	if err := s.CreateProject(ctx, "admin", "camp-north"); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate project: %v", err)
	}
	must(s.AddUser(ctx, "admin", "lena", "lena's long password"))
	must(s.Grant(ctx, "admin", "lena", "camp-north", Lead))
	if err := s.Grant(ctx, "admin", "lena", "nowhere", Lead); !errors.Is(err, ErrNotFound) {
		t.Fatalf("grant in a missing project: %v", err)
	}
	if err := s.Grant(ctx, "admin", "lena", "camp-north", "boss"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad role: %v", err)
	}
	sess, err := s.Login(ctx, "lena", "lena's long password")
	must(err)
	u, err := s.Session(ctx, sess)
	must(err)
	p := Principal{User: u}
	if !p.Can("camp-north", Lead) || !p.Can("camp-north", Analyst) || p.Can("camp-south", Analyst) || p.Can("camp-north", Admin) {
		t.Fatalf("roles of a lead: %+v", u.Roles)
	}
}

func TestEnrollment(t *testing.T) {
	ctx := context.Background()
	s, _, c := newService(t)
	if err := s.CreateProject(ctx, "admin", "p"); err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	code, _, err := s.NewEnrollmentCode(ctx, "admin", "p", "team-1", 15*time.Minute)
	if err != nil || len(code) != 11 {
		t.Fatalf("code %q %v", code, err)
	}
	sign := func(code string) []byte { return ed25519.Sign(priv, []byte(NormalizeCode(code))) }
	// A forged proof (another key's signature) is refused and spends nothing.
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	if _, _, err := s.Enroll(ctx, code, pub, ed25519.Sign(otherPriv, []byte(NormalizeCode(code)))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("forged signature: %v", err)
	}
	if _, _, err := s.Enroll(ctx, "ZZZZZ-ZZZZZ", pub, sign("ZZZZZ-ZZZZZ")); !errors.Is(err, ErrCodeRejected) {
		t.Fatalf("unknown code: %v", err)
	}
	dev, secret, err := s.Enroll(ctx, strings.ToLower(code), pub, sign(code))
	if err != nil || dev.Project != "p" || dev.Team != "team-1" {
		t.Fatalf("enroll: %+v %v", dev, err)
	}
	if _, _, err := s.Enroll(ctx, code, pub, sign(code)); !errors.Is(err, ErrCodeRejected) {
		t.Fatalf("reused code: %v", err)
	}
	code2, _, _ := s.NewEnrollmentCode(ctx, "admin", "p", "", time.Minute)
	c.t = c.t.Add(2 * time.Minute)
	if _, _, err := s.Enroll(ctx, code2, pub, sign(code2)); !errors.Is(err, ErrCodeRejected) {
		t.Fatalf("expired code: %v", err)
	}
	if d, err := s.AuthenticateDevice(ctx, DeviceCredential(dev.ID, secret)); err != nil || d.ID != dev.ID {
		t.Fatalf("device auth: %v", err)
	}
	if _, err := s.AuthenticateDevice(ctx, DeviceCredential(dev.ID, "wrong")); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("wrong secret: %v", err)
	}
	if err := s.SetDevice(ctx, "admin", dev.ID, true, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateDevice(ctx, DeviceCredential(dev.ID, secret)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked device accepted: %v", err)
	}
	entries, _, _, _ := s.AuditTrail(ctx, 0, 0)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	got := strings.Join(actions, " ")
	for _, want := range []string{"enroll-code", "enroll-refused", "enroll", "device-revoke"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit lacks %s: %s", want, got)
		}
	}
}

func TestAuditTamperingDetected(t *testing.T) {
	ctx := context.Background()
	for _, tamper := range []struct {
		name string
		fn   func(tx syncengine.Tx) error
	}{
		{"edit", func(tx syncengine.Tx) error {
			b, _ := tx.Meta(auditKey(2))
			var e AuditEntry
			json.Unmarshal(b, &e)
			e.Detail = "nothing happened"
			return put(tx, auditKey(2), e)
		}},
		{"edit and rehash", func(tx syncengine.Tx) error {
			b, _ := tx.Meta(auditKey(2))
			var e AuditEntry
			json.Unmarshal(b, &e)
			e.Actor = "someone-else"
			e.Hash = hashEntry(e)
			return put(tx, auditKey(2), e)
		}},
		{"delete middle", func(tx syncengine.Tx) error { return tx.DeleteMeta(auditKey(3)) }},
		{"delete tail", func(tx syncengine.Tx) error { return tx.DeleteMeta(auditKey(5)) }},
	} {
		t.Run(tamper.name, func(t *testing.T) {
			s, st, _ := newService(t)
			for i := range 5 {
				if err := s.Audit(ctx, "lead", "resolve", string(rune('a'+i))); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := s.VerifyAudit(ctx); err != nil || n != 5 {
				t.Fatalf("clean trail: %d %v", n, err)
			}
			if err := st.Update(ctx, tamper.fn); err != nil {
				t.Fatal(err)
			}
			if _, err := s.VerifyAudit(ctx); !errors.Is(err, ErrTampered) {
				t.Fatalf("tampering (%s) not detected: %v", tamper.name, err)
			}
		})
	}
}

// TestSignInThrottled (issue 13, finding 10): after a few wrong passwords
// a user name is locked for a while (even the right password waits), an
// unknown user answers about as slowly as a known one, and an over-long
// name is neither hashed nor stored whole in the audit trail.
func TestSignInThrottled(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	now := time.Now()
	s := New(st, func() time.Time { return now })
	if err := s.AddUser(ctx, "t", "lena", "lena's long password"); err != nil {
		t.Fatal(err)
	}
	timed := func(user string) time.Duration {
		start := time.Now()
		if _, err := s.Login(ctx, user, "wrong password"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%s: %v", user, err)
		}
		return time.Since(start)
	}
	known, unknown := timed("lena"), timed("nobody")
	if unknown < known/3 {
		t.Errorf("an unknown user answers in %v, a known one in %v: names can be told apart", unknown, known)
	}
	for range 3 {
		timed("lena")
	}
	if _, err := s.Login(ctx, "lena", "wrong password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("fifth wrong password: %v", err)
	}
	if _, err := s.Login(ctx, "lena", "lena's long password"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("the right password right after five wrong ones: %v, want throttled", err)
	}
	now = now.Add(2 * time.Second)
	if _, err := s.Login(ctx, "lena", "lena's long password"); err != nil {
		t.Fatalf("the right password once the lock passed: %v", err)
	}
	long := strings.Repeat("x", 3<<20)
	if _, err := s.Login(ctx, long, "pw"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("an over-long name: %v", err)
	}
	entries, _, _, err := s.AuditTrail(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if len(e.Actor)+len(e.Detail) > 1024 {
			t.Fatalf("an audit entry of %d bytes", len(e.Actor)+len(e.Detail))
		}
	}
}

// TestSetupTokensExpireAndRevoke (finding 14): a setup token is good for a
// day, and minting one revokes the user's earlier ones.
func TestSetupTokensExpireAndRevoke(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s := New(memstore.New(), func() time.Time { return now })
	first, err := s.Bootstrap(ctx)
	if err != nil || first == "" {
		t.Fatal(err)
	}
	second, err := s.NewSetupToken(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UseSetupToken(ctx, first, "the admin's long password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a revoked setup token: %v", err)
	}
	now = now.Add(SetupTokenTTL)
	if _, _, err := s.UseSetupToken(ctx, second, "the admin's long password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("an expired setup token: %v", err)
	}
	third, err := s.NewSetupToken(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UseSetupToken(ctx, third, "the admin's long password"); err != nil {
		t.Fatalf("a fresh setup token: %v", err)
	}
}

// TestDisableRevokeAndReset (issue 13, finding 14): a disabled account's
// sessions end at once and it cannot sign in until enabled; a revoked role
// is gone; a new password from a setup token ends the old sessions.
func TestDisableRevokeAndReset(t *testing.T) {
	ctx := context.Background()
	s := New(memstore.New(), nil)
	if err := s.CreateProject(ctx, "t", "camp"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, "t", "ana", "ana's long password"); err != nil {
		t.Fatal(err)
	}
	if err := s.Grant(ctx, "t", "ana", "camp", Analyst); err != nil {
		t.Fatal(err)
	}
	session, err := s.Login(ctx, "ana", "ana's long password")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, "admin", "ana", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, session); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a disabled account's session: %v", err)
	}
	if _, err := s.Login(ctx, "ana", "ana's long password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a disabled account signs in: %v", err)
	}
	if err := s.SetDisabled(ctx, "admin", "ana", false); err != nil {
		t.Fatal(err)
	}
	if session, err = s.Login(ctx, "ana", "ana's long password"); err != nil {
		t.Fatalf("an enabled account: %v", err)
	}
	if err := s.RevokeRole(ctx, "t", "ana", "camp"); err != nil {
		t.Fatal(err)
	}
	if u, err := s.Session(ctx, session); err != nil || (Principal{User: u}).Can("camp", Analyst) {
		t.Fatalf("a revoked role still holds: %v %v", u, err)
	}
	tok, err := s.NewSetupToken(ctx, "ana")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UseSetupToken(ctx, tok, "ana's new long password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, session); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a session of the old password after a reset: %v", err)
	}
	if err := s.SetDisabled(ctx, "ana", "ana", true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("disabling oneself: %v", err)
	}
}

// TestAuditTrailPages (issue 13, finding 10): the trail comes in pages
// after a sequence number, and a verifier fed page by page accepts it and
// notices a page left out.
func TestAuditTrailPages(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newService(t)
	for i := range 7 {
		if err := s.Audit(ctx, "t", "step", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	var v TrailVerifier
	var after uint64
	var pages [][]AuditEntry
	for {
		entries, head, more, err := s.AuditTrail(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > 3 {
			t.Fatalf("a page of %d entries, limit 3", len(entries))
		}
		pages = append(pages, entries)
		if err := v.Add(entries); err != nil {
			t.Fatal(err)
		}
		if !more {
			if n, err := v.End(head); err != nil || n != 7 {
				t.Fatalf("verified %d entries: %v", n, err)
			}
			break
		}
		after = entries[len(entries)-1].Seq
	}
	if len(pages) != 3 {
		t.Fatalf("%d pages, want 3", len(pages))
	}
	var skip TrailVerifier
	if err := skip.Add(pages[0]); err != nil {
		t.Fatal(err)
	}
	if err := skip.Add(pages[2]); !errors.Is(err, ErrTampered) {
		t.Fatalf("a page left out: %v", err)
	}
}

// TestDigestKeptAtNextSignIn (issue 17): an account whose password was set
// before Tessera kept a Digest hash is refused by Digest until it signs in
// once by password (Login, or Basic through CheckAccount); from then Digest
// works, with the right password only.
func TestDigestKeptAtNextSignIn(t *testing.T) {
	ctx := context.Background()
	for _, via := range []string{"login", "basic"} {
		t.Run(via, func(t *testing.T) {
			s, st, _ := newService(t)
			const pass = "amina's long password"
			if err := s.AddUser(ctx, "t", "amina", pass); err != nil {
				t.Fatal(err)
			}
			// As stored before Digest hashes were kept.
			if err := st.Update(ctx, func(tx syncengine.Tx) error {
				u, err := get[User](tx, keyUser+"amina")
				if err != nil {
					return err
				}
				u.DigestHA1 = ""
				return put(tx, keyUser+"amina", u)
			}); err != nil {
				t.Fatal(err)
			}
			digest := func(password string) error {
				_, err := s.DigestAccount(ctx, "amina", func(ha1 string) bool { return ha1 == DigestHA1("amina", password) })
				return err
			}
			if err := digest(pass); err == nil {
				t.Fatal("Digest without a kept hash signed in")
			}
			if _, err := s.Login(ctx, "amina", "a wrong password"); err == nil {
				t.Fatal("a wrong password signed in")
			}
			if err := digest(pass); err == nil {
				t.Fatal("a failed sign-in gave the account a Digest hash")
			}
			var err error
			if via == "login" {
				_, err = s.Login(ctx, "amina", pass)
			} else {
				_, err = s.CheckAccount(ctx, "amina", pass)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := digest(pass); err != nil {
				t.Fatalf("Digest after a sign-in by password: %v", err)
			}
			if err := digest("a wrong password"); err == nil {
				t.Fatal("Digest with a wrong password")
			}
		})
	}
}
