package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tessera-survey/tessera/syncengine"
)

// codeAlphabet has no 0/O or 1/I/L: codes are read aloud and typed on phones.
const codeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

type codeRec struct {
	Project string `json:"project"`
	Team    string `json:"team,omitempty"`
	Expires int64  `json:"expires"`
	By      string `json:"by"`
	Hub     bool   `json:"hub,omitempty"`
}

// NormalizeCode uppercases a typed code and drops spaces and dashes.
func NormalizeCode(c string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToUpper(strings.TrimSpace(c)))
}

// NewEnrollmentCode makes a short single-use code (10 characters, ~49 bits)
// that enrolls one device into a project (and team) until it expires.
func (s *Service) NewEnrollmentCode(ctx context.Context, actor, project, team string, ttl time.Duration) (string, time.Time, error) {
	return s.newCode(ctx, actor, project, team, ttl, false)
}

// NewHubCode is NewEnrollmentCode for a camp-office hub: the principal it
// enrolls relays its devices' writes, within project and team.
func (s *Service) NewHubCode(ctx context.Context, actor, project, team string, ttl time.Duration) (string, time.Time, error) {
	return s.newCode(ctx, actor, project, team, ttl, true)
}

func (s *Service) newCode(ctx context.Context, actor, project, team string, ttl time.Duration, hub bool) (string, time.Time, error) {
	if ttl <= 0 || ttl > 7*24*time.Hour {
		return "", time.Time{}, fmt.Errorf("%w: --ttl between 1s and 7 days", ErrInvalid)
	}
	if team != "" {
		if err := checkName("team", team); err != nil {
			return "", time.Time{}, err
		}
	}
	b := make([]byte, 10)
	rand.Read(b)
	code := make([]byte, 10)
	for i := range b {
		code[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	c := string(code)
	exp := s.now().Add(ttl)
	err := s.store.Update(ctx, func(tx syncengine.Tx) error {
		if _, err := get[Project](tx, keyProject+project); err != nil {
			return fmt.Errorf("project %q: %w", project, err)
		}
		if err := put(tx, keyCode+digest(c), codeRec{Project: project, Team: team, Expires: exp.UnixMilli(), By: actor, Hub: hub}); err != nil {
			return err
		}
		action := "enroll-code"
		if hub {
			action = "hub-code"
		}
		return s.appendAudit(tx, actor, action, fmt.Sprintf("project %s team %s, valid until %s", project, team, exp.UTC().Format(time.RFC3339)))
	})
	return c[:5] + "-" + c[5:], exp, err
}

// Enroll exchanges a code for a device credential. The device proves it
// holds the private key of pub by signing the code.
func (s *Service) Enroll(ctx context.Context, code string, pub ed25519.PublicKey, sig []byte) (dev Device, secret string, err error) {
	code = NormalizeCode(code)
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, []byte(code), sig) {
		return Device{}, "", fmt.Errorf("%w: the device key does not sign the code", ErrInvalid)
	}
	secret = Token()
	err = s.store.Update(ctx, func(tx syncengine.Tx) error {
		c, err := get[codeRec](tx, keyCode+digest(code))
		if errors.Is(err, ErrNotFound) {
			return s.failEnroll(tx, ErrCodeRejected)
		}
		if err != nil {
			return err
		}
		if s.now().UnixMilli() > c.Expires {
			return s.failEnroll(tx, ErrCodeRejected)
		}
		if err := tx.DeleteMeta(keyCode + digest(code)); err != nil {
			return err
		}
		dev = Device{ID: uuid.Must(uuid.NewV7()).String(), Project: c.Project, Team: c.Team, PublicKey: pub,
			CredHash: digest(secret), Enrolled: s.now().UnixMilli(), Hub: c.Hub}
		if err := put(tx, keyDevice+dev.ID, dev); err != nil {
			return err
		}
		what := "device"
		if c.Hub {
			what = "hub"
		}
		return s.appendAudit(tx, "device:"+dev.ID, "enroll", fmt.Sprintf("%s: project %s team %s (code by %s)", what, c.Project, c.Team, c.By))
	})
	if errors.Is(err, ErrCodeRejected) {
		// Recorded apart: the refused transaction itself rolled back. A
		// refusal that cannot be audited fails as the store's error.
		if aerr := s.Audit(ctx, "anonymous", "enroll-refused", "unknown, used or expired code"); aerr != nil {
			return Device{}, "", fmt.Errorf("audit: %w", aerr)
		}
	}
	if err != nil {
		return Device{}, "", err
	}
	return dev, secret, nil
}

func (s *Service) failEnroll(_ syncengine.Tx, err error) error { return err }

// NewCollectDevice registers a collecting device for ODK Collect in a
// project (and team): a principal like any device, listed, revocable and
// wiped the same way, that signs in with the token returned (the secret
// part of its OpenRosa URL; only its hash is kept).
func (s *Service) NewCollectDevice(ctx context.Context, actor, project, team, name string) (Device, string, error) {
	if project == "" {
		return Device{}, "", fmt.Errorf("%w: a collecting device belongs to a project", ErrInvalid)
	}
	if team != "" {
		if err := checkName("team", team); err != nil {
			return Device{}, "", err
		}
	}
	secret := Token()
	dev := Device{ID: uuid.Must(uuid.NewV7()).String(), Project: project, Team: team, CredHash: digest(secret),
		Enrolled: s.now().UnixMilli(), Collect: true, Name: name}
	err := s.store.Update(ctx, func(tx syncengine.Tx) error {
		if _, err := get[Project](tx, keyProject+project); err != nil {
			return fmt.Errorf("project %q: %w", project, err)
		}
		if err := put(tx, keyDevice+dev.ID, dev); err != nil {
			return err
		}
		return s.appendAudit(tx, actor, "collect-device", fmt.Sprintf("%s: project %s team %s name %q", dev.ID, project, team, name))
	})
	if err != nil {
		return Device{}, "", err
	}
	return dev, CollectToken(dev.ID, secret), nil
}

// CollectToken is a collecting device's token, the path segment of its
// OpenRosa URL: "ID.SECRET".
func CollectToken(id, secret string) string { return id + "." + secret }

// AuthenticateCollect resolves a collecting device's token (ErrRevoked for
// a revoked one; ErrUnauthenticated for anything else).
func (s *Service) AuthenticateCollect(ctx context.Context, token string) (*Device, error) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok {
		return nil, ErrUnauthenticated
	}
	d, err := s.AuthenticateDevice(ctx, DeviceCredential(id, secret))
	if err != nil {
		return nil, err
	}
	if !d.Collect {
		return nil, ErrUnauthenticated
	}
	return d, nil
}

// DeviceCredential is what an enrolled device presents on every call:
// "ID:SECRET".
func DeviceCredential(id, secret string) string { return id + ":" + secret }

// AuthenticateDevice resolves a device credential. A revoked device is
// refused with ErrRevoked.
func (s *Service) AuthenticateDevice(ctx context.Context, cred string) (*Device, error) {
	id, secret, ok := strings.Cut(cred, ":")
	if !ok || id == "" || secret == "" {
		return nil, ErrUnauthenticated
	}
	var d *Device
	err := s.store.View(ctx, func(tx syncengine.ReadTx) (err error) { d, err = get[Device](tx, keyDevice+id); return })
	if errors.Is(err, ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	if digest(secret) != d.CredHash {
		return nil, ErrUnauthenticated
	}
	if d.Revoked {
		return nil, ErrRevoked
	}
	return d, nil
}

// GetDevice returns a device.
func (s *Service) GetDevice(ctx context.Context, id string) (*Device, error) {
	var d *Device
	err := s.store.View(ctx, func(tx syncengine.ReadTx) (err error) { d, err = get[Device](tx, keyDevice+id); return })
	return d, err
}

// Devices lists the devices of a project ("" for all).
func (s *Service) Devices(ctx context.Context, project string) ([]Device, error) {
	var out []Device
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		return tx.ScanMeta(keyDevice, func(k string, _ []byte) error {
			d, err := get[Device](tx, k)
			if err != nil {
				return err
			}
			if project == "" || d.Project == project {
				out = append(out, *d)
			}
			return nil
		})
	})
	return out, err
}

// SetDevice revokes a device or flags it for remote wipe.
func (s *Service) SetDevice(ctx context.Context, actor, id string, revoke, wipe bool) error {
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		d, err := get[Device](tx, keyDevice+id)
		if err != nil {
			return fmt.Errorf("device %s: %w", id, err)
		}
		if revoke {
			d.Revoked = true
			if err := s.appendAudit(tx, actor, "device-revoke", id); err != nil {
				return err
			}
		}
		if wipe {
			d.Wipe = true
			if err := s.appendAudit(tx, actor, "device-wipe", id); err != nil {
				return err
			}
		}
		return put(tx, keyDevice+id, d)
	})
}

// Wiped records that a device erased itself (it says so on its last call,
// or a hub reports it). Said again, it changes nothing.
func (s *Service) Wiped(ctx context.Context, id string) error {
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		d, err := get[Device](tx, keyDevice+id)
		if err != nil {
			return err
		}
		if d.Wiped != 0 {
			return nil
		}
		d.Wiped, d.Revoked = s.now().UnixMilli(), true
		if err := put(tx, keyDevice+id, d); err != nil {
			return err
		}
		return s.appendAudit(tx, "device:"+id, "wiped", "the device erased its store")
	})
}

// DeviceIn reads a device inside a transaction of the store (nil, nil when
// there is none).
func DeviceIn(tx syncengine.ReadTx, id string) (*Device, error) {
	d, err := get[Device](tx, keyDevice+id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return d, err
}

// CodeKnown reports whether code is an enrollment code of this server
// (used or expired ones are gone): a hub forwards the others upstream.
func (s *Service) CodeKnown(ctx context.Context, code string) (bool, error) {
	code = NormalizeCode(code)
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		_, err := tx.Meta(keyCode + digest(code))
		return err
	})
	if errors.Is(err, syncengine.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// CredentialHash is what a server keeps of a device secret.
func CredentialHash(secret string) string { return digest(secret) }

// MirrorDevices keeps a hub's copies of devices enrolled at its upstream
// (marked Upstream). A device enrolled here is never replaced by a copy;
// revocation and wipe flags only ever go on (set here or there).
func (s *Service) MirrorDevices(ctx context.Context, devs []Device) (added int, err error) {
	err = s.store.Update(ctx, func(tx syncengine.Tx) error {
		added = 0
		for _, d := range devs {
			if d.ID == "" || d.Hub {
				continue
			}
			old, err := get[Device](tx, keyDevice+d.ID)
			switch {
			case errors.Is(err, ErrNotFound):
				old = nil
			case err != nil:
				return err
			case !old.Upstream:
				// Enrolled here: a revocation or wipe the upstream decided
				// reaches it all the same (they only ever add).
				if (d.Revoked && !old.Revoked) || (d.Wipe && !old.Wipe) {
					old.Revoked, old.Wipe = old.Revoked || d.Revoked, old.Wipe || d.Wipe
					if err := s.appendAudit(tx, "upstream", "device-flags-copied", fmt.Sprintf("%s: revoked %v wipe %v", d.ID, old.Revoked, old.Wipe)); err != nil {
						return err
					}
					if err := put(tx, keyDevice+d.ID, *old); err != nil {
						return err
					}
				}
				continue
			}
			d.Upstream = true
			if old != nil {
				d.Revoked, d.Wipe = d.Revoked || old.Revoked, d.Wipe || old.Wipe
				d.Wiped = max(d.Wiped, old.Wiped)
				if sameDevice(*old, d) {
					continue
				}
			} else {
				added++
				if err := s.appendAudit(tx, "upstream", "device-copied", fmt.Sprintf("%s: project %s team %s", d.ID, d.Project, d.Team)); err != nil {
					return err
				}
			}
			if err := put(tx, keyDevice+d.ID, d); err != nil {
				return err
			}
		}
		return nil
	})
	return added, err
}

func sameDevice(a, b Device) bool {
	return a.ID == b.ID && a.Project == b.Project && a.Team == b.Team && string(a.PublicKey) == string(b.PublicKey) &&
		a.CredHash == b.CredHash && a.Enrolled == b.Enrolled && a.Revoked == b.Revoked && a.Wipe == b.Wipe &&
		a.Wiped == b.Wiped && a.Hub == b.Hub && a.Upstream == b.Upstream
}

// ReportedDevices keeps devices a hub enrolled itself (the caller checked
// they lie in the hub's scope): new ones are added as enrolled via hub,
// and the revocation and wipe flags of those already added via that hub
// are merged (they only ever add). A device known from elsewhere (enrolled
// here, or via another hub) is left alone: a hub may not replace another's
// key. It returns how many were added.
func (s *Service) ReportedDevices(ctx context.Context, hub string, devs []Device) (added int, err error) {
	err = s.store.Update(ctx, func(tx syncengine.Tx) error {
		added = 0
		for _, d := range devs {
			if d.ID == "" || d.Hub || d.Upstream {
				continue
			}
			old, err := get[Device](tx, keyDevice+d.ID)
			switch {
			case errors.Is(err, ErrNotFound):
				nd := Device{ID: d.ID, Project: d.Project, Team: d.Team, PublicKey: d.PublicKey, CredHash: d.CredHash,
					Enrolled: d.Enrolled, Revoked: d.Revoked, Wipe: d.Wipe, Collect: d.Collect, Name: d.Name, Via: hub}
				if err := put(tx, keyDevice+d.ID, nd); err != nil {
					return err
				}
				added++
				if err := s.appendAudit(tx, "hub "+hub, "device-reported", fmt.Sprintf("%s: project %s team %s", d.ID, d.Project, d.Team)); err != nil {
					return err
				}
			case err != nil:
				return err
			case old.Via != hub:
				continue
			case (d.Revoked && !old.Revoked) || (d.Wipe && !old.Wipe):
				old.Revoked, old.Wipe = old.Revoked || d.Revoked, old.Wipe || d.Wipe
				if err := put(tx, keyDevice+d.ID, *old); err != nil {
					return err
				}
				if err := s.appendAudit(tx, "hub "+hub, "device-flags-reported", fmt.Sprintf("%s: revoked %v wipe %v", d.ID, old.Revoked, old.Wipe)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return added, err
}
