package fieldapp

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/bundle"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/syncengine"
)

// Sync by file, the device's half: a bundle holds what a network sync
// would push now (nothing is marked sent until a reply says the server
// holds it) sealed to the server's key and signed with the device's; the
// reply, sealed to a key only this bundle knows, brings back the
// acknowledgement, the changes and the forms a sync would.

// Settings of bundles.
const (
	settingBundleServer = "bundle.server"  // the server's public bundle keys (JSON)
	settingReplyKeys    = "bundle.replies" // reply keys of recent bundles (JSON)
	maxReplyKeys        = 64
)

// Errors of bundles.
var (
	ErrNoBundleKeys = errors.New("this device does not know its server's bundle keys yet: sync once over the network (enrolled), then bundles work with no network")
	ErrNotEnrolled  = errors.New("bundles are for enrolled devices (fieldapp init --enroll CODE)")
	ErrUnknownReply = errors.New("this reply answers a bundle this device did not make (or made too long ago)")
)

type serverKeys struct {
	Replica string `json:"replica"`
	Seal    []byte `json:"seal"`
	Sign    []byte `json:"sign"`
}

// fetchBundleKeys keeps the server's public bundle keys, once (a server
// without bundles is left alone).
func (d *Device) fetchBundleKeys(ctx context.Context, c *wire.Client) error {
	if v, err := d.rep.Setting(ctx, settingBundleServer); err != nil || v != "" {
		return err
	}
	res, err := c.Sync().BundleKeys(ctx, &tesserav1.BundleKeysRequest{})
	if connect.CodeOf(err) == connect.CodeUnimplemented || connect.CodeOf(err) == connect.CodePermissionDenied {
		return nil
	}
	if err != nil {
		return err
	}
	rep, err := wire.ReplicaFrom(res.Replica)
	if err != nil || len(res.SealKey) != 32 || len(res.SignKey) != ed25519.PublicKeySize {
		return fmt.Errorf("the server's bundle keys are malformed")
	}
	b, _ := json.Marshal(serverKeys{Replica: rep.String(), Seal: res.SealKey, Sign: res.SignKey})
	return d.rep.SetSetting(ctx, settingBundleServer, string(b))
}

func (d *Device) bundleServer(ctx context.Context) (serverKeys, error) {
	var k serverKeys
	v, err := d.rep.Setting(ctx, settingBundleServer)
	if err != nil {
		return k, err
	}
	if v == "" {
		return k, ErrNoBundleKeys
	}
	return k, json.Unmarshal([]byte(v), &k)
}

// identity is the device's id at its server and its signing key.
func (d *Device) identity(ctx context.Context) (string, ed25519.PrivateKey, error) {
	cred, err := d.rep.Setting(ctx, settingCredential)
	if err != nil {
		return "", nil, err
	}
	key, err := d.rep.Setting(ctx, settingDeviceKey)
	if err != nil {
		return "", nil, err
	}
	id, _, _ := strings.Cut(cred, ":")
	priv, err := base64.StdEncoding.DecodeString(key)
	if id == "" || err != nil || len(priv) != ed25519.PrivateKeySize {
		return "", nil, ErrNotEnrolled
	}
	return id, ed25519.PrivateKey(priv), nil
}

// DeviceID is the id the device's server knows it by ("" when not
// enrolled).
func (d *Device) DeviceID(ctx context.Context) (string, error) {
	cred, err := d.rep.Setting(ctx, settingCredential)
	id, _, _ := strings.Cut(cred, ":")
	return id, err
}

// BundleExport says what an export wrote.
type BundleExport struct {
	Parts   [][]byte // the files, in order
	Changes int
}

// partBytes bounds a part's content (under bundle.MaxSize with room for
// its header and seal).
const partBytes = 48 << 20

// ExportBundle writes what this device's server lacks of its changes, as
// one or more bundle files of at most maxBytes each (0: bundle.MaxSize).
func (d *Device) ExportBundle(ctx context.Context, maxBytes int) (BundleExport, error) {
	var ex BundleExport
	keys, err := d.bundleServer(ctx)
	if err != nil {
		return ex, err
	}
	devID, signer, err := d.identity(ctx)
	if err != nil {
		return ex, err
	}
	to, err := ecdh.X25519().NewPublicKey(keys.Seal)
	if err != nil {
		return ex, err
	}
	out, err := d.rep.Outgoing(ctx, 0)
	if err != nil {
		return ex, err
	}
	infos, err := d.forms.List(ctx)
	if err != nil {
		return ex, err
	}
	var held []string
	for _, i := range infos {
		held = append(held, i.Key())
	}
	limit := partBytes
	if maxBytes > 0 {
		limit = min(limit, maxBytes-4096)
	}
	groups, err := bundle.Split(out.Pushes, limit, func(ps []syncengine.Push) (int, error) {
		b, err := wire.BundleCodec{}.EncodeContent(bundle.Content{Out: syncengine.Outgoing{Pushes: ps, Pull: out.Pull}, ReplyKey: make([]byte, 32), Forms: held})
		return len(b), err
	})
	if err != nil {
		return ex, err
	}
	var replies []replyKey
	for i, g := range groups {
		priv, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return ex, err
		}
		c := bundle.Content{Out: syncengine.Outgoing{Pushes: g, Pull: out.Pull}, ReplyKey: priv.PublicKey().Bytes(), Forms: held}
		body, err := wire.BundleCodec{}.EncodeContent(c)
		if err != nil {
			return ex, err
		}
		h := bundle.Header{Kind: bundle.KindDevice, ID: bundle.NewID(), From: d.rep.ID().String(), Device: devID, To: keys.Replica,
			Created: d.rep.Now().UnixMilli(), Part: i + 1, Parts: len(groups)}
		file, err := bundle.Seal(h, body, to, signer)
		if err != nil {
			return ex, err
		}
		ex.Parts = append(ex.Parts, file)
		replies = append(replies, replyKey{ID: h.ID, Key: priv.Bytes()})
		for _, p := range g {
			ex.Changes += len(p.Changes)
		}
	}
	return ex, d.keepReplyKeys(ctx, replies)
}

type replyKey struct {
	ID  string `json:"id"`
	Key []byte `json:"key"`
}

// keepReplyKeys adds reply keys, keeping the newest maxReplyKeys (the
// store is encrypted: they are never on disk in the clear).
func (d *Device) keepReplyKeys(ctx context.Context, add []replyKey) error {
	ks, err := d.replyKeys(ctx)
	if err != nil {
		return err
	}
	ks = append(ks, add...)
	if len(ks) > maxReplyKeys {
		ks = ks[len(ks)-maxReplyKeys:]
	}
	b, _ := json.Marshal(ks)
	return d.rep.SetSetting(ctx, settingReplyKeys, string(b))
}

func (d *Device) replyKeys(ctx context.Context) ([]replyKey, error) {
	v, err := d.rep.Setting(ctx, settingReplyKeys)
	if err != nil || v == "" {
		return nil, err
	}
	var ks []replyKey
	return ks, json.Unmarshal([]byte(v), &ks)
}

// BundleReplyResult says what importing a reply did.
type BundleReplyResult struct {
	Acknowledged bool // pending changes the server holds are sent now
	Pages        int
	Received     int // changes the reply carried
	Applied      int // of them, new here
	Forms        int // form versions added
	Pending      int // changes still to send (a next bundle or sync)
	Wipe         bool
	// What the project's policy removed, as after a network sync (nil
	// when the project keeps everything).
	Kept *KeepResult
}

// ImportReply applies a server's reply to one of this device's bundles.
// Importing it again, late, or after a network sync changes nothing more.
func (d *Device) ImportReply(ctx context.Context, raw []byte) (BundleReplyResult, error) {
	var res BundleReplyResult
	f, err := bundle.Parse(raw)
	if err != nil {
		return res, err
	}
	if f.Header.Kind != bundle.KindReply {
		return res, fmt.Errorf("this file is a device's bundle: it goes to the server (surveyctl bundle import), not to a device")
	}
	if f.Header.To != d.rep.ID().String() {
		return res, fmt.Errorf("%w: this reply is for another device", bundle.ErrNotForUs)
	}
	keys, err := d.bundleServer(ctx)
	if err != nil {
		return res, err
	}
	if f.Header.From != keys.Replica {
		return res, fmt.Errorf("%w: this reply comes from another server than this device's", bundle.ErrSignature)
	}
	ks, err := d.replyKeys(ctx)
	if err != nil {
		return res, err
	}
	i := slices.IndexFunc(ks, func(k replyKey) bool { return k.ID == f.Header.InReplyTo })
	if i < 0 {
		return res, ErrUnknownReply
	}
	priv, err := ecdh.X25519().NewPrivateKey(ks[i].Key)
	if err != nil {
		return res, err
	}
	body, err := f.Open(keys.Sign, priv)
	if err != nil {
		return res, err
	}
	ans, err := wire.BundleCodec{}.DecodeAnswer(body)
	if err != nil {
		return res, fmt.Errorf("reply: %w", err)
	}
	for _, fm := range ans.Forms {
		if _, _, err := d.forms.Get(ctx, fm.Info.ID, fm.Info.Version); err == nil {
			continue
		}
		if err := d.forms.Store(ctx, fm.Info, fm.XLSX, fm.Files); err != nil {
			return res, fmt.Errorf("reply: form %s: %w", fm.Info.Key(), err)
		}
		res.Forms++
	}
	st, err := d.rep.ApplyReply(ctx, ans.Reply)
	if err != nil {
		return res, err
	}
	res.Acknowledged, res.Pages, res.Applied, res.Wipe = st.Acknowledged, st.Pages, st.Applied, st.Server.Wipe
	for _, p := range ans.Reply.Pages {
		res.Received += len(p.Page.Changes)
	}
	if st.Pages > 0 && !st.Server.Wipe {
		// A camp without uplink follows the same policy: what the server
		// now holds leaves the device (no report of holdings: that needs
		// the network).
		if res.Kept, err = d.keep(ctx, nil, st.Server, st.ServerTime); err != nil {
			return res, err
		}
		if _, err := d.rep.CompactLog(ctx); err != nil {
			return res, err
		}
	}
	res.Pending, err = d.rep.Pending(ctx)
	return res, err
}
