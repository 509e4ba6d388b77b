// Package auth is who may do what on a Tessera server: projects, users with
// a role per project (passwords hashed with argon2id), sessions, enrolled
// devices with their credentials, and the hash-chained audit trail. It keeps
// its state in the server's store (meta entries, never synced to devices).
package auth

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/tessera-survey/tessera/syncengine"
)

// Role is what a user may do in a project.
type Role string

const (
	Admin      Role = "admin"      // everything, every project
	Lead       Role = "lead"       // a project's forms, devices, conflicts and review
	Analyst    Role = "analyst"    // reads a project's data and exports
	Enumerator Role = "enumerator" // interviews (through an enrolled device)
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == Admin || r == Lead || r == Analyst || r == Enumerator }

// Errors of the package; the server maps them to Connect codes.
var (
	ErrUnauthenticated = errors.New("not signed in")
	ErrDenied          = errors.New("not allowed")
	ErrBadCredentials  = errors.New("wrong user name or password")
	ErrExists          = errors.New("already exists")
	ErrNotFound        = errors.New("not found")
	ErrInvalid         = errors.New("invalid input")
	ErrCodeRejected    = errors.New("enrollment code is unknown, used or expired")
	ErrRevoked         = errors.New("device is revoked")
	ErrThrottled       = errors.New("too many wrong passwords for this user: wait a while and try again")
)

// User is an account.
type User struct {
	Name    string          `json:"name"`
	Hash    string          `json:"hash,omitempty"` // argon2id; empty: no password yet
	Admin   bool            `json:"admin,omitempty"`
	Roles   map[string]Role `json:"roles,omitempty"` // project → role
	Created int64           `json:"created"`
	// Disabled accounts cannot sign in, and their sessions end.
	Disabled bool `json:"disabled,omitempty"`
	// DigestHA1 is MD5(name:Tessera:password), what HTTP Digest sign-in
	// (ODK Collect on a camp LAN without HTTPS) checks against: kept from
	// the password's last setting; empty for passwords set before.
	DigestHA1 string `json:"digest_ha1,omitempty"`
}

// DigestRealm is the realm of HTTP Digest sign-in.
const DigestRealm = "Tessera"

// DigestHA1 is MD5(user:realm:password), hex.
func DigestHA1(user, password string) string {
	sum := md5.Sum([]byte(user + ":" + DigestRealm + ":" + password))
	return hex.EncodeToString(sum[:])
}

// Project groups forms, devices and records.
type Project struct {
	Name    string       `json:"name"`
	Created int64        `json:"created"`
	Policy  DevicePolicy `json:"policy,omitzero"`
}

// DevicePolicy is what a project's devices keep of the records they send
// (data minimisation on devices): a lost phone carries less.
type DevicePolicy struct {
	// DeleteAfterSend: once the server acknowledged a finalized interview,
	// its answers and files leave the device.
	DeleteAfterSend bool `json:"delete_after_send,omitempty"`
	// RetentionDays: records whose last change is older leave devices once
	// the server holds them (0: kept). Never applied at a server.
	RetentionDays int `json:"retention_days,omitempty"`
	// TeamRecords: every device of a team receives every record of its
	// team, sensitive answers included (the pull before minimisation).
	// Off, a device receives its own interviews and those a lead
	// assigned to it or its team.
	TeamRecords bool `json:"team_records,omitempty"`
}

// MaxRetentionDays bounds a retention setting (ten years).
const MaxRetentionDays = 3650

// String says the policy as a lead reads it.
func (p DevicePolicy) String() string {
	out := "devices keep what they send"
	if p.DeleteAfterSend {
		out = "devices delete finalized interviews once sent"
	}
	if p.RetentionDays > 0 {
		out += fmt.Sprintf("; sent records older than %d days leave devices", p.RetentionDays)
	}
	if p.TeamRecords {
		out += "; every device receives its whole team's records"
	}
	return out
}

// Device is an enrolled device.
type Device struct {
	ID        string `json:"id"`
	Project   string `json:"project"`
	Team      string `json:"team,omitempty"`
	PublicKey []byte `json:"public_key"`
	CredHash  string `json:"cred_hash"`
	Enrolled  int64  `json:"enrolled"`
	Revoked   bool   `json:"revoked,omitempty"`
	Wipe      bool   `json:"wipe,omitempty"`
	Wiped     int64  `json:"wiped,omitempty"`
	// Hub: a camp-office hub, which relays its devices' writes (within
	// its project and team) instead of pushing only its own.
	Hub bool `json:"hub,omitempty"`
	// Upstream: enrolled at this hub's upstream. The entry is a copy the
	// upstream sends at every sync (revocation and wipe flags included), so
	// the device signs in here while the link is down.
	Upstream bool `json:"upstream,omitempty"`
	// Collect: a collecting device for ODK Collect (or KoboCollect): it
	// signs in with a token in its OpenRosa URL and submits forms over
	// OpenRosa instead of syncing.
	Collect bool   `json:"collect,omitempty"`
	Name    string `json:"name,omitempty"`
	// Via: the hub that enrolled the device with its own code and
	// reported it here (empty: enrolled here).
	Via string `json:"via,omitempty"`
}

// Principal is who is calling: a user (with a session) or a device.
type Principal struct {
	User   *User
	Device *Device
}

// Can reports whether the principal holds at least role in project (an
// admin holds every role everywhere).
func (p Principal) Can(project string, role Role) bool {
	if p.User == nil {
		return false
	}
	if p.User.Admin {
		return true
	}
	have, ok := p.User.Roles[project]
	if !ok {
		return false
	}
	return rank(have) >= rank(role)
}

// CanAnywhere reports whether the principal holds role in some project.
func (p Principal) CanAnywhere(role Role) bool {
	if p.User == nil {
		return false
	}
	if p.User.Admin {
		return true
	}
	for _, r := range p.User.Roles {
		if rank(r) >= rank(role) {
			return true
		}
	}
	return false
}

func rank(r Role) int {
	switch r {
	case Admin:
		return 4
	case Lead:
		return 3
	case Analyst:
		return 2
	case Enumerator:
		return 1
	}
	return 0
}

// Service keeps accounts, devices and the audit trail in a store.
type Service struct {
	store    syncengine.Store
	now      func() time.Time
	throttle throttle
}

// New returns the service over s. now is the clock (time.Now when nil).
func New(s syncengine.Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: s, now: now}
}

const (
	keyUser    = "auth.user/"
	keyProject = "auth.project/"
	keyDevice  = "auth.device/"
	keySession = "auth.session/"
	keyCode    = "auth.code/"
	keySetup   = "auth.setup/"
)

// SessionTTL is how long a sign-in lasts.
const SessionTTL = 12 * time.Hour

// nameRe is compiled on first use: its Unicode classes took 8 ms of every
// process's start, fieldapp's included, which never checks a name.
var nameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N}_.\-]{0,63}$`) })

func checkName(what, s string) error {
	if !nameRe().MatchString(s) {
		return fmt.Errorf("%w: %s %q: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", ErrInvalid, what, s)
	}
	return nil
}

// Token returns a fresh random secret (URL-safe base64, 256 bits).
func Token() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func digest(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// argon2id parameters (OWASP's first recommendation: 19 MiB, 2 passes).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword hashes a password with argon2id and a random salt.
func HashPassword(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// CheckPassword reports whether pw matches an encoded argon2id hash.
func CheckPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<21 || t == 0 || t > 16 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

func get[T any](tx syncengine.ReadTx, key string) (*T, error) {
	b, err := tx.Meta(key)
	if errors.Is(err, syncengine.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", key, syncengine.ErrCorrupt)
	}
	return &v, nil
}

func put(tx syncengine.Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.SetMeta(key, b)
}

// Bootstrap makes sure an admin account exists. On a server's first start
// it creates "admin" (with no password) and returns a one-time setup token
// that sets the admin's password; later calls return "".
func (s *Service) Bootstrap(ctx context.Context) (string, error) {
	token := ""
	err := s.store.Update(ctx, func(tx syncengine.Tx) error {
		if _, err := get[User](tx, keyUser+"admin"); err == nil {
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := put(tx, keyUser+"admin", User{Name: "admin", Admin: true, Created: s.now().UnixMilli()}); err != nil {
			return err
		}
		var err error
		if token, err = s.putSetupToken(tx, "admin"); err != nil {
			return err
		}
		return s.appendAudit(tx, "system", "bootstrap", "admin account created; setup token issued")
	})
	return token, err
}

// NewSetupToken mints a one-time token that sets a user's password (run on
// the server machine: surveyd admin token).
func (s *Service) NewSetupToken(ctx context.Context, user string) (string, error) {
	var token string
	err := s.store.Update(ctx, func(tx syncengine.Tx) error {
		if _, err := get[User](tx, keyUser+user); err != nil {
			return fmt.Errorf("user %q: %w", user, err)
		}
		var err error
		if token, err = s.putSetupToken(tx, user); err != nil {
			return err
		}
		return s.appendAudit(tx, "system", "setup-token", "setup token issued for "+user+" (earlier ones revoked)")
	})
	return token, err
}

// SetupTokenTTL is how long a setup token is good for.
const SetupTokenTTL = 24 * time.Hour

type setupRec struct {
	User    string `json:"user"`
	Expires int64  `json:"expires"`
}

// putSetupToken mints a setup token for user, revoking the user's earlier
// ones: only the newest is good, and for SetupTokenTTL.
func (s *Service) putSetupToken(tx syncengine.Tx, user string) (string, error) {
	var stale []string
	err := tx.ScanMeta(keySetup, func(k string, v []byte) error {
		var r setupRec
		if json.Unmarshal(v, &r) != nil || r.User == user || r.User == "" {
			stale = append(stale, k)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	for _, k := range stale {
		if err := tx.DeleteMeta(k); err != nil {
			return "", err
		}
	}
	token := Token()
	return token, put(tx, keySetup+digest(token), setupRec{User: user, Expires: s.now().Add(SetupTokenTTL).UnixMilli()})
}

// UseSetupToken sets the password of the token's user, spends the token and
// opens a session.
func (s *Service) UseSetupToken(ctx context.Context, token, password string) (session string, user string, err error) {
	if len(password) < 10 {
		return "", "", fmt.Errorf("%w: a password needs at least 10 characters", ErrInvalid)
	}
	hash := HashPassword(password)
	err = s.store.Update(ctx, func(tx syncengine.Tx) error {
		rec, err := get[setupRec](tx, keySetup+digest(token))
		// Unknown, spent, revoked, expired, or of the old kind that never
		// expired (a plain user name).
		if errors.Is(err, ErrNotFound) || errors.Is(err, syncengine.ErrCorrupt) || (err == nil && s.now().UnixMilli() >= rec.Expires) {
			return ErrBadCredentials
		}
		if err != nil {
			return err
		}
		user = rec.User
		u, err := get[User](tx, keyUser+user)
		if err != nil {
			return err
		}
		u.Hash = hash
		u.DigestHA1 = DigestHA1(user, password)
		if err := put(tx, keyUser+user, u); err != nil {
			return err
		}
		if err := tx.DeleteMeta(keySetup + digest(token)); err != nil {
			return err
		}
		// A new password ends the sessions the old one opened.
		if err := endSessions(tx, user); err != nil {
			return err
		}
		session, err = s.newSession(tx, user)
		if err != nil {
			return err
		}
		return s.appendAudit(tx, user, "setup", "password set with a setup token")
	})
	return session, user, err
}

type sessionRec struct {
	User    string `json:"user"`
	Expires int64  `json:"expires"`
}

func (s *Service) newSession(tx syncengine.Tx, user string) (string, error) {
	token := Token()
	return token, put(tx, keySession+digest(token), sessionRec{User: user, Expires: s.now().Add(SessionTTL).UnixMilli()})
}

// Longest user name and password a sign-in considers: anything longer is
// wrong without being hashed or stored.
const (
	maxNameBytes     = 64 * 4 // nameRe's 64 characters of up to 4 bytes
	maxPasswordBytes = 1024
)

// dummyHash is checked against when there is no user (or no password yet)
// so that an unknown user name answers as slowly as a known one: names
// cannot be told apart by timing.
var dummyHash = sync.OnceValue(func() string { return HashPassword("no such user") })

// Login checks a password and opens a session. Wrong passwords are
// throttled per user name (throttle.go) and audited.
func (s *Service) Login(ctx context.Context, user, password string) (string, error) {
	if len(user) > maxNameBytes || len(password) > maxPasswordBytes {
		return "", s.loginFailed(ctx, "(an over-long user name or password)")
	}
	if s.throttle.wait(user, s.now()) > 0 {
		return "", ErrThrottled
	}
	var u *User
	err := s.store.View(ctx, func(tx syncengine.ReadTx) (err error) { u, err = get[User](tx, keyUser+user); return })
	if err != nil && !errors.Is(err, ErrNotFound) {
		return "", err
	}
	hash := dummyHash()
	if err == nil && u.Hash != "" {
		hash = u.Hash
	}
	if !CheckPassword(hash, password) || err != nil || u.Hash == "" || u.Disabled {
		s.throttle.failed(user, s.now())
		return "", s.loginFailed(ctx, user)
	}
	s.throttle.succeeded(user)
	var token string
	err = s.store.Update(ctx, func(tx syncengine.Tx) (err error) {
		if err := keepDigest(tx, user, u, password); err != nil {
			return err
		}
		if token, err = s.newSession(tx, user); err != nil {
			return err
		}
		return s.appendAudit(tx, user, "login", "")
	})
	return token, err
}

// keepDigest gives an account whose password was set before Tessera kept
// a Digest hash one, from the password of a sign-in that just passed: the
// enumerator's next KoboCollect-style sign-in by Digest then works with no
// password set again. Nothing changes if the password changed meanwhile.
func keepDigest(tx syncengine.Tx, name string, u *User, password string) error {
	if u.DigestHA1 != "" {
		return nil
	}
	cur, err := get[User](tx, keyUser+name)
	if err != nil || cur.Hash != u.Hash || cur.DigestHA1 != "" {
		return err
	}
	cur.DigestHA1 = DigestHA1(name, password)
	return put(tx, keyUser+name, cur)
}

// CheckAccount checks a user's password without opening a session (HTTP
// Basic sign-in of OpenRosa clients), throttled and audited like Login.
func (s *Service) CheckAccount(ctx context.Context, user, password string) (*User, error) {
	if len(user) > maxNameBytes || len(password) > maxPasswordBytes {
		return nil, s.loginFailed(ctx, "(an over-long user name or password)")
	}
	if s.throttle.wait(user, s.now()) > 0 {
		return nil, ErrThrottled
	}
	var u *User
	err := s.store.View(ctx, func(tx syncengine.ReadTx) (err error) { u, err = get[User](tx, keyUser+user); return })
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	hash := dummyHash()
	if err == nil && u.Hash != "" {
		hash = u.Hash
	}
	if !CheckPassword(hash, password) || err != nil || u.Hash == "" || u.Disabled {
		s.throttle.failed(user, s.now())
		return nil, s.loginFailed(ctx, user)
	}
	s.throttle.succeeded(user)
	if u.DigestHA1 == "" {
		if err := s.store.Update(ctx, func(tx syncengine.Tx) error { return keepDigest(tx, user, u, password) }); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// DigestAccount checks an HTTP Digest sign-in: check is given the user's
// HA1 and reports whether the client's response matches it. Throttled and
// audited like Login; a user without a Digest hash (a password set before
// Tessera kept one) is refused until it signs in once by password (console,
// surveyctl login or Basic over HTTPS; keepDigest) or the password is set
// again.
func (s *Service) DigestAccount(ctx context.Context, user string, check func(ha1 string) bool) (*User, error) {
	if len(user) > maxNameBytes {
		return nil, s.loginFailed(ctx, "(an over-long user name)")
	}
	if s.throttle.wait(user, s.now()) > 0 {
		return nil, ErrThrottled
	}
	var u *User
	err := s.store.View(ctx, func(tx syncengine.ReadTx) (err error) { u, err = get[User](tx, keyUser+user); return })
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	ok := err == nil && u.DigestHA1 != "" && !u.Disabled && check(u.DigestHA1)
	if !ok {
		s.throttle.failed(user, s.now())
		return nil, s.loginFailed(ctx, user)
	}
	s.throttle.succeeded(user)
	return u, nil
}

// loginFailed audits a failed sign-in (the name as typed: at most
// maxNameBytes) and returns ErrBadCredentials, or the audit's error.
func (s *Service) loginFailed(ctx context.Context, user string) error {
	if err := s.store.Update(ctx, func(tx syncengine.Tx) error { return s.appendAudit(tx, user, "login-failed", "") }); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return ErrBadCredentials
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, token string) error {
	return s.store.Update(ctx, func(tx syncengine.Tx) error { return tx.DeleteMeta(keySession + digest(token)) })
}

// Session resolves a session token to its user.
func (s *Service) Session(ctx context.Context, token string) (*User, error) {
	var u *User
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		sr, err := get[sessionRec](tx, keySession+digest(token))
		if errors.Is(err, ErrNotFound) {
			return ErrUnauthenticated
		}
		if err != nil {
			return err
		}
		if s.now().UnixMilli() > sr.Expires {
			return ErrUnauthenticated
		}
		u, err = get[User](tx, keyUser+sr.User)
		if errors.Is(err, ErrNotFound) || (err == nil && u.Disabled) {
			return ErrUnauthenticated
		}
		return err
	})
	return u, err
}

// endSessions deletes every session of user.
func endSessions(tx syncengine.Tx, user string) error {
	var keys []string
	err := tx.ScanMeta(keySession, func(k string, v []byte) error {
		var sr sessionRec
		if json.Unmarshal(v, &sr) != nil || sr.User == user {
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.DeleteMeta(k); err != nil {
			return err
		}
	}
	return nil
}

// SetDisabled disables an account (its sessions end at once; it cannot
// sign in) or enables it again. An admin cannot disable their own account.
func (s *Service) SetDisabled(ctx context.Context, actor, user string, disabled bool) error {
	if disabled && actor == user {
		return fmt.Errorf("%w: you cannot disable your own account", ErrInvalid)
	}
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		u, err := get[User](tx, keyUser+user)
		if err != nil {
			return fmt.Errorf("user %q: %w", user, err)
		}
		u.Disabled = disabled
		if err := put(tx, keyUser+user, u); err != nil {
			return err
		}
		action := "user-enable"
		if disabled {
			action = "user-disable"
			if err := endSessions(tx, user); err != nil {
				return err
			}
		}
		return s.appendAudit(tx, actor, action, user)
	})
}

// RevokeRole takes user's role in project away.
func (s *Service) RevokeRole(ctx context.Context, actor, user, project string) error {
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		u, err := get[User](tx, keyUser+user)
		if err != nil {
			return fmt.Errorf("user %q: %w", user, err)
		}
		if _, ok := u.Roles[project]; !ok {
			return fmt.Errorf("user %q has no role in %q: %w", user, project, ErrNotFound)
		}
		delete(u.Roles, project)
		if err := put(tx, keyUser+user, u); err != nil {
			return err
		}
		return s.appendAudit(tx, actor, "revoke-role", fmt.Sprintf("%s has no role in %s any more", user, project))
	})
}

// CreateProject adds a project.
func (s *Service) CreateProject(ctx context.Context, actor, name string) error {
	if err := checkName("project", name); err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		if _, err := get[Project](tx, keyProject+name); err == nil {
			return fmt.Errorf("project %q: %w", name, ErrExists)
		}
		if err := put(tx, keyProject+name, Project{Name: name, Created: s.now().UnixMilli()}); err != nil {
			return err
		}
		return s.appendAudit(tx, actor, "project-create", name)
	})
}

// SetProjectPolicy sets what a project's devices keep, audited.
func (s *Service) SetProjectPolicy(ctx context.Context, actor, name string, pol DevicePolicy) error {
	if pol.RetentionDays < 0 || pol.RetentionDays > MaxRetentionDays {
		return fmt.Errorf("%w: retention of %d days (0 to %d)", ErrInvalid, pol.RetentionDays, MaxRetentionDays)
	}
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		p, err := get[Project](tx, keyProject+name)
		if err != nil {
			return fmt.Errorf("project %q: %w", name, err)
		}
		if p.Policy == pol {
			return nil
		}
		p.Policy = pol
		if err := put(tx, keyProject+name, p); err != nil {
			return err
		}
		return s.appendAudit(tx, actor, "project-policy", name+": "+pol.String())
	})
}

// Project returns a project.
func (s *Service) Project(ctx context.Context, name string) (*Project, error) {
	var p *Project
	err := s.store.View(ctx, func(tx syncengine.ReadTx) (err error) { p, err = get[Project](tx, keyProject+name); return })
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("project %q: %w", name, ErrNotFound)
	}
	return p, err
}

// AddUser creates an account with a password.
func (s *Service) AddUser(ctx context.Context, actor, name, password string) error {
	if err := checkName("user", name); err != nil {
		return err
	}
	if len(password) < 10 {
		return fmt.Errorf("%w: a password needs at least 10 characters", ErrInvalid)
	}
	hash := HashPassword(password)
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		if _, err := get[User](tx, keyUser+name); err == nil {
			return fmt.Errorf("user %q: %w", name, ErrExists)
		}
		if err := put(tx, keyUser+name, User{Name: name, Hash: hash, DigestHA1: DigestHA1(name, password), Roles: map[string]Role{}, Created: s.now().UnixMilli()}); err != nil {
			return err
		}
		return s.appendAudit(tx, actor, "user-add", name)
	})
}

// Grant gives a user a role in a project (replacing any other role there).
func (s *Service) Grant(ctx context.Context, actor, user, project string, role Role) error {
	if !role.Valid() || role == Admin {
		return fmt.Errorf("%w: role %q (lead, analyst or enumerator)", ErrInvalid, role)
	}
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		if _, err := get[Project](tx, keyProject+project); err != nil {
			return fmt.Errorf("project %q: %w", project, err)
		}
		u, err := get[User](tx, keyUser+user)
		if err != nil {
			return fmt.Errorf("user %q: %w", user, err)
		}
		if u.Roles == nil {
			u.Roles = map[string]Role{}
		}
		u.Roles[project] = role
		if err := put(tx, keyUser+user, u); err != nil {
			return err
		}
		return s.appendAudit(tx, actor, "grant", fmt.Sprintf("%s is %s in %s", user, role, project))
	})
}
