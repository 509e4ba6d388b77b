package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/syncengine/memstore"
)

// FuzzCredentials throws arbitrary session tokens, device credentials,
// password hashes and enrollment requests at the authentication paths: no
// panic, and nothing but the real credentials ever gets in.
func FuzzCredentials(f *testing.F) {
	ctx := context.Background()
	st := memstore.New()
	s := New(st, func() time.Time { return time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) })
	s.CreateProject(ctx, "t", "p")
	s.AddUser(ctx, "t", "u", "a long password here")
	session, _ := s.Login(ctx, "u", "a long password here")
	pub, priv, _ := ed25519.GenerateKey(nil)
	code, _, _ := s.NewEnrollmentCode(ctx, "t", "p", "", time.Hour)
	dev, secret, _ := s.Enroll(ctx, code, pub, ed25519.Sign(priv, []byte(NormalizeCode(code))))
	cred := DeviceCredential(dev.ID, secret)
	f.Add(session, cred, HashPassword("x"), "ABCDE-FGHJK", []byte{1, 2})
	f.Add("", ":", "$argon2id$v=19$m=1,t=1,p=1$$", "", []byte{})
	f.Fuzz(func(t *testing.T, tok, c, hash, code string, sig []byte) {
		if u, err := s.Session(ctx, tok); err == nil && tok != session {
			t.Fatalf("token %q opened a session of %s", tok, u.Name)
		}
		if d, err := s.AuthenticateDevice(ctx, c); err == nil && c != cred {
			t.Fatalf("credential %q authenticated device %s", c, d.ID)
		}
		_ = CheckPassword(hash, tok)
		if _, _, err := s.Enroll(ctx, code, pub, sig); err == nil {
			t.Fatalf("code %q with a fuzzed signature enrolled a device", code)
		} else if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrCodeRejected) {
			t.Fatalf("unexpected error: %v", err)
		}
	})
}
