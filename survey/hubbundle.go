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
	"strings"
	"time"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/bundle"
	"github.com/tessera-survey/tessera/syncengine"
)

// A hub with no link to its upstream sends its relayed changes up by file
// too: the same bundle as a device's, signed with the key the hub enrolled
// with, carrying the scopes of the records it relays and the wipes its
// devices reported; the upstream's reply brings the changes with their
// scopes, forms, and the upstream's devices of the hub's scope.

// Errors of a hub's bundles.
var (
	ErrNotHub          = errors.New("this server is not a hub enrolled at an upstream")
	ErrNoUpstreamKeys  = errors.New("this hub does not know its upstream's bundle keys yet: they come with the first sync over the network")
	ErrHubKeyMissing   = errors.New("this hub was enrolled before bundles and keeps no key to sign them: enroll it again with a new hub code")
	ErrUnknownHubReply = errors.New("this reply answers a bundle this hub did not make (or made too long ago)")
)

const (
	metaUpstreamKeys    = "bundle.upstream.keys"    // the upstream's public bundle keys
	metaUpstreamReplies = "bundle.upstream.replies" // reply keys of the hub's recent bundles
)

// HubBundleCodec is BundleCodec with the hub's directions.
type HubBundleCodec interface {
	EncodeContent(bundle.Content) ([]byte, error)
	DecodeAnswer([]byte) (bundle.Answer, error)
}

type keyRec struct {
	ID  string `json:"id"`
	Key []byte `json:"key"`
}

func (r *Relay) keepUpstreamKeys(ctx context.Context) error {
	s := r.s
	var have bool
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		_, err := tx.Meta(metaUpstreamKeys)
		have = err == nil
		if errors.Is(err, syncengine.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil || have {
		return err
	}
	k, err := r.up.BundleKeys(ctx)
	if err != nil || k.Replica.IsZero() {
		return err // an upstream without bundles: nothing to keep
	}
	b, _ := json.Marshal(k)
	return s.store.Update(ctx, func(tx syncengine.Tx) error { return tx.SetMeta(metaUpstreamKeys, b) })
}

func (r *Relay) upstreamKeys(ctx context.Context) (BundleKeys, error) {
	var k BundleKeys
	err := r.s.store.View(ctx, func(tx syncengine.ReadTx) error {
		b, err := tx.Meta(metaUpstreamKeys)
		if errors.Is(err, syncengine.ErrNotFound) {
			return ErrNoUpstreamKeys
		}
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &k)
	})
	return k, err
}

// mayRunHub: the hub's bundles are for leads of its project.
func (r *Relay) mayRunHub(p auth.Principal) error {
	h := r.s.hub
	if h == nil || h.Credential == "" {
		return ErrNotHub
	}
	if !r.s.may(p, h.Project, auth.Lead) {
		return fmt.Errorf("%w: a hub's bundles are for leads of project %s", auth.ErrDenied, h.Project)
	}
	return nil
}

// ExportBundle writes what the upstream lacks of the hub's changes, in
// parts of at most maxBytes (0: bundle.MaxSize).
func (r *Relay) ExportBundle(ctx context.Context, p auth.Principal, maxBytes int, codec HubBundleCodec) ([][]byte, int, error) {
	if err := r.mayRunHub(p); err != nil {
		return nil, 0, err
	}
	h := r.s.hub
	if len(h.Key) != ed25519.PrivateKeySize {
		return nil, 0, ErrHubKeyMissing
	}
	keys, err := r.upstreamKeys(ctx)
	if err != nil {
		return nil, 0, err
	}
	to, err := ecdh.X25519().NewPublicKey(keys.Seal)
	if err != nil {
		return nil, 0, err
	}
	r.syncMu.Lock() // not while a network sync moves the same positions
	defer r.syncMu.Unlock()
	out, err := r.s.rep.Outgoing(ctx, 0)
	if err != nil {
		return nil, 0, err
	}
	infos, err := r.s.forms.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	held := make([]string, len(infos))
	for i, in := range infos {
		held[i] = in.Key()
	}
	local, err := r.s.auth.Devices(ctx, "")
	if err != nil {
		return nil, 0, err
	}
	wiped, reported := hubReports(local)
	content := func(ps []syncengine.Push, replyKey []byte) (bundle.Content, error) {
		var cs []syncengine.Change
		for _, p := range ps {
			cs = append(cs, p.Changes...)
		}
		ss, err := r.ScopesOf(ctx, cs)
		return bundle.Content{Out: syncengine.Outgoing{Pushes: ps, Pull: out.Pull}, ReplyKey: replyKey, Forms: held,
			Scopes: toBundleScopes(ss), Wiped: wiped, Reported: reported}, err
	}
	limit := 48 << 20
	if maxBytes > 0 {
		limit = min(limit, maxBytes-4096)
	}
	groups, err := bundle.Split(out.Pushes, limit, func(ps []syncengine.Push) (int, error) {
		c, err := content(ps, make([]byte, 32))
		if err != nil {
			return 0, err
		}
		b, err := codec.EncodeContent(c)
		return len(b), err
	})
	if err != nil {
		return nil, 0, err
	}
	devID, _, _ := strings.Cut(h.Credential, ":")
	var parts [][]byte
	var replies []keyRec
	n := 0
	for i, g := range groups {
		priv, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return nil, 0, err
		}
		c, err := content(g, priv.PublicKey().Bytes())
		if err != nil {
			return nil, 0, err
		}
		body, err := codec.EncodeContent(c)
		if err != nil {
			return nil, 0, err
		}
		hdr := bundle.Header{Kind: bundle.KindDevice, ID: bundle.NewID(), From: r.s.rep.ID().String(), Device: devID,
			To: keys.Replica.String(), Created: r.s.now().UnixMilli(), Part: i + 1, Parts: len(groups)}
		file, err := bundle.Seal(hdr, body, to, ed25519.PrivateKey(h.Key))
		if err != nil {
			return nil, 0, err
		}
		parts = append(parts, file)
		replies = append(replies, keyRec{ID: hdr.ID, Key: priv.Bytes()})
		for _, p := range g {
			n += len(p.Changes)
		}
	}
	if err := r.keepReplyKeys(ctx, replies); err != nil {
		return nil, 0, err
	}
	if err := r.noteBundle(ctx, true); err != nil {
		return nil, 0, err
	}
	detail := fmt.Sprintf("%d parts, %d changes", len(parts), n)
	return parts, n, r.s.auth.Audit(ctx, Actor(p), "bundle-export-upstream", detail)
}

func (r *Relay) keepReplyKeys(ctx context.Context, add []keyRec) error {
	return r.s.store.Update(ctx, func(tx syncengine.Tx) error {
		var ks []keyRec
		if b, err := tx.Meta(metaUpstreamReplies); err == nil {
			if err := json.Unmarshal(b, &ks); err != nil {
				return err
			}
		} else if !errors.Is(err, syncengine.ErrNotFound) {
			return err
		}
		ks = append(ks, add...)
		if len(ks) > 64 {
			ks = ks[len(ks)-64:]
		}
		b, _ := json.Marshal(ks)
		return tx.SetMeta(metaUpstreamReplies, b)
	})
}

// HubReplyImport says what importing the upstream's reply did.
type HubReplyImport struct {
	Received, Applied, Forms, Devices, Pending int
}

// ImportReply applies the upstream's reply to one of the hub's bundles:
// the scopes first (the pages' records belong to them), then the pages and
// the acknowledgement, the forms, and the copies of the upstream's devices
// (revocations and wipes reach the hub's devices from there).
func (r *Relay) ImportReply(ctx context.Context, p auth.Principal, raw []byte, codec HubBundleCodec) (HubReplyImport, error) {
	var st HubReplyImport
	if err := r.mayRunHub(p); err != nil {
		return st, err
	}
	f, err := bundle.Parse(raw)
	if err != nil {
		return st, fmt.Errorf("%w: %w", syncengine.ErrInvalid, err)
	}
	keys, err := r.upstreamKeys(ctx)
	if err != nil {
		return st, err
	}
	switch {
	case f.Header.Kind != bundle.KindReply:
		return st, fmt.Errorf("%w: this file is a bundle, not a reply", syncengine.ErrInvalid)
	case f.Header.To != r.s.rep.ID().String():
		return st, fmt.Errorf("%w: %w: this reply is for another replica", syncengine.ErrInvalid, bundle.ErrNotForUs)
	case f.Header.From != keys.Replica.String():
		return st, fmt.Errorf("%w: %w: this reply comes from another server than this hub's upstream", syncengine.ErrInvalid, bundle.ErrSignature)
	}
	var ks []keyRec
	err = r.s.store.View(ctx, func(tx syncengine.ReadTx) error {
		b, err := tx.Meta(metaUpstreamReplies)
		if errors.Is(err, syncengine.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &ks)
	})
	if err != nil {
		return st, err
	}
	i := slices.IndexFunc(ks, func(k keyRec) bool { return k.ID == f.Header.InReplyTo })
	if i < 0 {
		return st, fmt.Errorf("%w: %w", syncengine.ErrInvalid, ErrUnknownHubReply)
	}
	priv, err := ecdh.X25519().NewPrivateKey(ks[i].Key)
	if err != nil {
		return st, err
	}
	body, err := f.Open(keys.Sign, priv)
	if err != nil {
		return st, fmt.Errorf("%w: %w", syncengine.ErrInvalid, err)
	}
	ans, err := codec.DecodeAnswer(body)
	if err != nil {
		return st, fmt.Errorf("%w: reply: %w", syncengine.ErrInvalid, err)
	}
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	if err := r.Stamp(ctx, fromBundleScopes(ans.Scopes)); err != nil {
		return st, err
	}
	res, err := r.s.rep.ApplyReply(ctx, ans.Reply)
	if err != nil {
		return st, err
	}
	st.Applied = res.Applied
	for _, pg := range ans.Reply.Pages {
		st.Received += len(pg.Page.Changes)
	}
	for _, fm := range ans.Forms {
		if _, _, err := r.s.forms.Get(ctx, fm.Info.ID, fm.Info.Version); err == nil {
			continue
		}
		if err := r.s.forms.Store(ctx, fm.Info, fm.XLSX, fm.Files); err != nil {
			return st, fmt.Errorf("reply: form %s: %w", fm.Info.Key(), err)
		}
		st.Forms++
	}
	if len(ans.Devices) > 0 {
		if err := r.mirror(ctx, ans.Devices); err != nil {
			return st, err
		}
		st.Devices = len(ans.Devices)
	}
	if st.Pending, err = r.s.rep.Pending(ctx); err != nil {
		return st, err
	}
	if err := r.noteBundle(ctx, false); err != nil {
		return st, err
	}
	detail := fmt.Sprintf("reply to bundle %s: %d changes (%d new), %d forms, %d devices", f.Header.InReplyTo, st.Received, st.Applied, st.Forms, st.Devices)
	return st, r.s.auth.Audit(ctx, Actor(p), "bundle-import-upstream", detail)
}

// metaHubBundles keeps when the hub last exported a bundle for its
// upstream and last imported a reply.
const metaHubBundles = "hub.bundles"

type hubBundles struct {
	Out int64 `json:"out,omitempty"` // Unix ms
	In  int64 `json:"in,omitempty"`
}

func (r *Relay) noteBundle(ctx context.Context, out bool) error {
	return r.s.store.Update(ctx, func(tx syncengine.Tx) error {
		var hb hubBundles
		if b, err := tx.Meta(metaHubBundles); err == nil {
			json.Unmarshal(b, &hb)
		} else if !errors.Is(err, syncengine.ErrNotFound) {
			return err
		}
		if out {
			hb.Out = r.s.now().UnixMilli()
		} else {
			hb.In = r.s.now().UnixMilli()
		}
		b, _ := json.Marshal(hb)
		return tx.SetMeta(metaHubBundles, b)
	})
}

// HubView is a hub's link to its upstream as its camp lead sees it.
type HubView struct {
	LastSync  time.Time // the last network sync that went through
	LastErr   string    // of the last network sync that failed
	BundleOut time.Time // the last bundle exported for the upstream
	BundleIn  time.Time // the last reply of the upstream imported
	// Seen: when the upstream last heard of the hub (a network sync, or a
	// reply, which the upstream wrote on importing the hub's bundle).
	Seen          time.Time
	Waiting       int       // changes waiting to go up
	OldestWaiting time.Time // when the oldest of them was made
}

// View returns the hub's link to its upstream for p (a lead of the hub's
// project).
func (r *Relay) View(ctx context.Context, p auth.Principal) (HubView, error) {
	var v HubView
	if err := r.mayRunHub(p); err != nil {
		return v, err
	}
	st := r.Status()
	v.LastSync, v.LastErr = st.LastSync, st.LastErr
	var hb hubBundles
	err := r.s.store.View(ctx, func(tx syncengine.ReadTx) error {
		b, err := tx.Meta(metaHubBundles)
		if errors.Is(err, syncengine.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &hb)
	})
	if err != nil {
		return v, err
	}
	if hb.Out != 0 {
		v.BundleOut = time.UnixMilli(hb.Out)
	}
	if hb.In != 0 {
		v.BundleIn = time.UnixMilli(hb.In)
	}
	v.Seen = v.LastSync
	if v.BundleIn.After(v.Seen) {
		v.Seen = v.BundleIn
	}
	if v.Waiting, err = r.s.rep.Pending(ctx); err != nil {
		return v, err
	}
	v.OldestWaiting, err = r.s.rep.OldestPending(ctx)
	return v, err
}
