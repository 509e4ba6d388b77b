package survey

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/bundle"
	"github.com/tessera-survey/tessera/syncengine"
)

// Sync by file: a device's bundle, carried to the server by a lead, is
// merged as that device's push (the same guard, the same scope), and the
// reply carries back what a network sync would have: the acknowledgement,
// the pages of the log the device may see, and forms it lacks. The server
// keeps a key pair for sealing (X25519) and one for signing (Ed25519);
// devices learn the public halves at a network sync (BundleKeys).

// Errors of bundles.
var (
	ErrForeignBundle = errors.New("this bundle was made for another server")
	ErrBundleKind    = errors.New("this file is a reply for a device (fieldapp bundle import), not a device's bundle")
)

// metaBundleKeys holds the server's bundle keys (private halves: in an
// encrypted store when the store is).
const metaBundleKeys = "bundle.keys"

type bundleKeys struct {
	Seal []byte `json:"seal"` // X25519 private key
	Sign []byte `json:"sign"` // Ed25519 seed
}

// BundleKeys are a server's public keys for bundles.
type BundleKeys struct {
	Replica syncengine.ReplicaID
	Seal    []byte // X25519 public key
	Sign    []byte // Ed25519 public key
}

func (s *Service) bundleKeys(ctx context.Context) (*ecdh.PrivateKey, ed25519.PrivateKey, error) {
	s.bundleMu.Lock()
	defer s.bundleMu.Unlock()
	var k bundleKeys
	err := s.store.Update(ctx, func(tx syncengine.Tx) error {
		b, err := tx.Meta(metaBundleKeys)
		if err == nil {
			return json.Unmarshal(b, &k)
		}
		if !errors.Is(err, syncengine.ErrNotFound) {
			return err
		}
		seal, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		_, sign, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		k = bundleKeys{Seal: seal.Bytes(), Sign: sign.Seed()}
		b, _ = json.Marshal(k)
		return tx.SetMeta(metaBundleKeys, b)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("bundle keys: %w", err)
	}
	seal, err := ecdh.X25519().NewPrivateKey(k.Seal)
	if err != nil || len(k.Sign) != ed25519.SeedSize {
		return nil, nil, fmt.Errorf("bundle keys: %w", syncengine.ErrCorrupt)
	}
	return seal, ed25519.NewKeyFromSeed(k.Sign), nil
}

// PublicBundleKeys returns the server's public bundle keys (to anyone:
// they are public).
func (s *Service) PublicBundleKeys(ctx context.Context) (BundleKeys, error) {
	seal, sign, err := s.bundleKeys(ctx)
	if err != nil {
		return BundleKeys{}, err
	}
	return BundleKeys{Replica: s.rep.ID(), Seal: seal.PublicKey().Bytes(), Sign: sign.Public().(ed25519.PublicKey)}, nil
}

// BundleCodec turns contents into bytes and back (the adapter's protobuf:
// this package knows none).
type BundleCodec interface {
	DecodeContent([]byte) (bundle.Content, error)
	EncodeAnswer(bundle.Answer) ([]byte, error)
}

// BundleImport says what an import did.
type BundleImport struct {
	Device                  auth.Device
	Pushed, Applied, Pulled int
	Forms                   int
}

// replyLimit bounds the changes one reply carries (the next bundle, or a
// network sync, brings the rest): a reply stays under bundle.MaxSize.
const replyLimit = 200_000

// ImportBundle merges a device's bundle for p (a lead of the device's
// project) and returns the reply file. Nothing is merged from a bundle
// that is not whole, not signed by the device it names, not made for
// this server, or from a revoked device.
func (s *Service) ImportBundle(ctx context.Context, p auth.Principal, raw []byte, codec BundleCodec) ([]byte, BundleImport, error) {
	var st BundleImport
	f, err := bundle.Parse(raw)
	if err != nil {
		return nil, st, fmt.Errorf("%w: %w", syncengine.ErrInvalid, err)
	}
	switch {
	case f.Header.Kind != bundle.KindDevice:
		return nil, st, fmt.Errorf("%w: %w", syncengine.ErrInvalid, ErrBundleKind)
	case f.Header.To != s.rep.ID().String():
		return nil, st, fmt.Errorf("%w: %w (it names %.36s)", syncengine.ErrInvalid, ErrForeignBundle, f.Header.To)
	}
	dev, err := s.auth.GetDevice(ctx, f.Header.Device)
	if errors.Is(err, auth.ErrNotFound) {
		return nil, st, fmt.Errorf("%w: %w: the bundle names a device this server does not know", syncengine.ErrInvalid, bundle.ErrSignature)
	}
	if err != nil {
		return nil, st, err
	}
	if !s.may(p, dev.Project, auth.Lead) {
		return nil, st, fmt.Errorf("%w: importing a bundle of project %s is for its leads", auth.ErrDenied, dev.Project)
	}
	if dev.Revoked {
		return nil, st, fmt.Errorf("%w: device %s is revoked: its bundle is refused", auth.ErrRevoked, dev.ID)
	}
	seal, sign, err := s.bundleKeys(ctx)
	if err != nil {
		return nil, st, err
	}
	plain, err := f.Open(dev.PublicKey, seal)
	if err != nil {
		return nil, st, fmt.Errorf("%w: %w", syncengine.ErrInvalid, err)
	}
	content, err := codec.DecodeContent(plain)
	if err != nil {
		return nil, st, fmt.Errorf("%w: bundle content: %w", syncengine.ErrInvalid, err)
	}
	if content.Out.Pull.For.String() != f.Header.From {
		return nil, st, fmt.Errorf("%w: the bundle's changes are not of the replica it names", syncengine.ErrInvalid)
	}
	dp := auth.Principal{Device: dev}
	var reply bundle.Answer
	var scopes []RecordScope
	if reply.Reply, scopes, st, err = s.exchange(ctx, dp, content.Out, fromBundleScopes(content.Scopes)); err != nil {
		return nil, st, err
	}
	reply.Scopes = toBundleScopes(scopes)
	if dev.Hub {
		if reply.Devices, err = s.HubDevices(ctx, dp, content.Wiped, content.Reported); err != nil {
			return nil, st, err
		}
	}
	st.Device = *dev
	if reply.Forms, err = s.formsLacked(ctx, dp, content.Forms); err != nil {
		return nil, st, err
	}
	st.Forms = len(reply.Forms)
	body, err := codec.EncodeAnswer(reply)
	if err != nil {
		return nil, st, err
	}
	to, err := ecdh.X25519().NewPublicKey(content.ReplyKey)
	if err != nil {
		return nil, st, fmt.Errorf("%w: the bundle's reply key: %w", syncengine.ErrInvalid, err)
	}
	out, err := bundle.Seal(bundle.Header{Kind: bundle.KindReply, ID: bundle.NewID(), From: s.rep.ID().String(), To: f.Header.From,
		InReplyTo: f.Header.ID, Created: s.rep.Now().UnixMilli(), Part: f.Header.Part, Parts: f.Header.Parts}, body, to, sign)
	if err != nil {
		return nil, st, err
	}
	detail := fmt.Sprintf("device %s, bundle %s part %d of %d: %d changes (%d new), %d back", dev.ID, f.Header.ID, f.Header.Part,
		f.Header.Parts, st.Pushed, st.Applied, st.Pulled)
	if err := s.auth.Audit(ctx, Actor(p), "bundle-import", detail); err != nil {
		return nil, st, err
	}
	return out, st, nil
}

// exchange is a network sync's server half for dp: the pushes merged in
// order through the device's guard (stopping where the server asks for a
// resend), then the pages of the log it may see from its pull position.
func (s *Service) exchange(ctx context.Context, dp auth.Principal, out syncengine.Outgoing, given []RecordScope) (syncengine.Reply, []RecordScope, BundleImport, error) {
	var rep syncengine.Reply
	var st BundleImport
	var scopes []RecordScope
	for _, push := range out.Pushes {
		res, err := s.Push(ctx, dp, push, given)
		if err != nil {
			return rep, nil, st, err
		}
		st.Pushed += len(push.Changes)
		st.Applied += res.Applied
		rep.Acknowledged, rep.Resend = res.Acknowledged, res.Resend
		if res.Resend {
			break
		}
	}
	req := out.Pull
	req.Limit = 1000
	for st.Pulled < replyLimit {
		page, ss, err := s.Pull(ctx, dp, req, 0)
		if err != nil {
			return rep, nil, st, err
		}
		scopes = append(scopes, ss...)
		rep.Pages = append(rep.Pages, syncengine.ReplyPage{From: req.Cursor, FromDot: req.CursorDot, Page: page})
		st.Pulled += len(page.Changes)
		if !page.More || page.Reset {
			break
		}
		req.Cursor, req.CursorDot = page.Cursor, page.CursorDot
	}
	if n := len(rep.Pages); n > 0 && dp.Device != nil {
		s.bundleSeen(dp.Device.ID, rep.Pages[n-1].Page.Cursor)
	}
	return rep, scopes, st, nil
}

func fromBundleScopes(bs []bundle.Scope) []RecordScope {
	out := make([]RecordScope, len(bs))
	for i, b := range bs {
		out[i] = RecordScope{Record: b.Record, Scope: Scope{Project: b.Project, Team: b.Team}}
	}
	return out
}

func toBundleScopes(ss []RecordScope) []bundle.Scope {
	out := make([]bundle.Scope, len(ss))
	for i, s := range ss {
		out[i] = bundle.Scope{Record: s.Record, Project: s.Project, Team: s.Team}
	}
	return out
}

// formsLacked: the form versions dp may read that it does not hold.
func (s *Service) formsLacked(ctx context.Context, dp auth.Principal, held []string) ([]bundle.Form, error) {
	list, err := s.forms.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []bundle.Form
	for _, info := range list {
		if slices.Contains(held, info.Key()) || !s.mayReadForm(dp, info) {
			continue
		}
		_, xlsx, files, err := s.GetForm(ctx, dp, info.ID, info.Version)
		if err != nil {
			return nil, err
		}
		out = append(out, bundle.Form{Info: info, XLSX: xlsx, Files: files})
	}
	return out, nil
}
