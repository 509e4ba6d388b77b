package wire

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/bundle"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/syncengine"
)

// BundleCodec encodes the contents of bundles and replies as the protocol's
// messages (columnar batches), compressed with zstd as the network sync's
// are, so a bundle costs about what the same sync costs on the wire.
type BundleCodec struct{}

var (
	bundleEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithWindowSize(1<<20))
	bundleDec, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(bundle.MaxSize*4), zstd.WithDecoderConcurrency(1))
)

func marshalZ(m proto.Message) ([]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return bundleEnc.EncodeAll(b, nil), nil
}

func unmarshalZ(b []byte, m proto.Message) error {
	raw, err := bundleDec.DecodeAll(b, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", syncengine.ErrInvalid, err)
	}
	if err := proto.Unmarshal(raw, m); err != nil {
		return fmt.Errorf("%w: %v", syncengine.ErrInvalid, err)
	}
	return nil
}

// EncodeContent writes a device's bundle content.
func (BundleCodec) EncodeContent(c bundle.Content) ([]byte, error) {
	m := &tesserav1.BundleContent{ReplyKey: c.ReplyKey, Forms: c.Forms, Scopes: bundleScopesTo(c.Scopes), Wiped: c.Wiped, Reported: HubDevicesTo(c.Reported),
		Pull: &tesserav1.PullRequest{Replica: c.Out.Pull.For[:], Cursor: c.Out.Pull.Cursor, CursorDot: DotTo(c.Out.Pull.CursorDot), Columnar: true, Erasures: true, Assignments: true}}
	for _, p := range c.Out.Pushes {
		m.Pushes = append(m.Pushes, &tesserav1.PushRequest{Replica: p.From[:], After: p.After, Through: p.Through, Batch: EncodeBatch(p.Changes), Relay: p.Relay})
	}
	return marshalZ(m)
}

// DecodeContent reads it back (server side), each push as the Push RPC
// reads one.
func (BundleCodec) DecodeContent(b []byte) (bundle.Content, error) {
	var m tesserav1.BundleContent
	if err := unmarshalZ(b, &m); err != nil {
		return bundle.Content{}, err
	}
	scopes, err := bundleScopesFrom(m.Scopes)
	if err != nil {
		return bundle.Content{}, err
	}
	c := bundle.Content{ReplyKey: m.ReplyKey, Forms: m.Forms, Scopes: scopes, Wiped: m.Wiped, Reported: HubDevicesFrom(m.Reported)}
	pull, err := PullFrom(m.GetPull())
	if err != nil {
		return bundle.Content{}, err
	}
	c.Out.Pull = pull
	for i, pm := range m.Pushes {
		p, err := PushFrom(pm)
		if err != nil {
			return bundle.Content{}, fmt.Errorf("push %d: %w", i, err)
		}
		if p.From != pull.For {
			return bundle.Content{}, fmt.Errorf("%w: push %d is of another replica", syncengine.ErrInvalid, i)
		}
		c.Out.Pushes = append(c.Out.Pushes, p)
	}
	return c, nil
}

// EncodeAnswer writes a reply's content (server side).
func (BundleCodec) EncodeAnswer(a bundle.Answer) ([]byte, error) {
	m := &tesserav1.BundleReply{Acknowledged: a.Reply.Acknowledged, Resend: a.Reply.Resend, Scopes: bundleScopesTo(a.Scopes),
		Devices: HubDevicesTo(a.Devices)}
	for _, p := range a.Reply.Pages {
		m.Pages = append(m.Pages, &tesserav1.BundlePage{From: p.From, FromDot: DotTo(p.FromDot), Page: PageTo(p.Page, true)})
	}
	for _, f := range a.Forms {
		m.Forms = append(m.Forms, &tesserav1.BundleForm{Form: InfoTo(f.Info), Xlsx: f.XLSX, Files: FilesTo(f.Files)})
	}
	return marshalZ(m)
}

// DecodeAnswer reads a reply's content (device side).
func (BundleCodec) DecodeAnswer(b []byte) (bundle.Answer, error) {
	var m tesserav1.BundleReply
	if err := unmarshalZ(b, &m); err != nil {
		return bundle.Answer{}, err
	}
	scopes, err := bundleScopesFrom(m.Scopes)
	if err != nil {
		return bundle.Answer{}, err
	}
	a := bundle.Answer{Reply: syncengine.Reply{Acknowledged: m.Acknowledged, Resend: m.Resend}, Scopes: scopes, Devices: HubDevicesFrom(m.Devices)}
	for i, pm := range m.Pages {
		dot, err := DotFrom(pm.FromDot, "from dot")
		if err != nil {
			return bundle.Answer{}, err
		}
		page, err := PageFrom(pm.GetPage())
		if err != nil {
			return bundle.Answer{}, fmt.Errorf("page %d: %w", i, err)
		}
		a.Reply.Pages = append(a.Reply.Pages, syncengine.ReplyPage{From: pm.From, FromDot: dot, Page: page})
	}
	for _, f := range m.Forms {
		a.Forms = append(a.Forms, bundle.Form{Info: InfoFrom(f.GetForm()), XLSX: f.Xlsx, Files: FilesFrom(f.Files)})
	}
	return a, nil
}

func bundleScopesTo(ss []bundle.Scope) []*tesserav1.RecordScope {
	ws := make([]Scope, len(ss))
	for i, s := range ss {
		ws[i] = Scope{Record: s.Record, Project: s.Project, Team: s.Team}
	}
	return ScopesTo(ws)
}

func bundleScopesFrom(ms []*tesserav1.RecordScope) ([]bundle.Scope, error) {
	ws, err := ScopesFrom(ms)
	if err != nil {
		return nil, err
	}
	out := make([]bundle.Scope, len(ws))
	for i, w := range ws {
		out[i] = bundle.Scope{Record: w.Record, Project: w.Project, Team: w.Team}
	}
	return out, nil
}

// HubDeviceTo converts a device as a hub needs it (no secret: the hash of
// its credential).
func HubDeviceTo(d auth.Device) *tesserav1.HubDevice {
	return &tesserav1.HubDevice{Id: d.ID, Project: d.Project, Team: d.Team, PublicKey: d.PublicKey,
		CredentialHash: d.CredHash, Enrolled: d.Enrolled, Revoked: d.Revoked, Wipe: d.Wipe, Collect: d.Collect, Name: d.Name}
}

// HubDeviceFrom converts it back.
func HubDeviceFrom(m *tesserav1.HubDevice) auth.Device {
	return auth.Device{ID: m.GetId(), Project: m.GetProject(), Team: m.GetTeam(), PublicKey: m.GetPublicKey(),
		CredHash: m.GetCredentialHash(), Enrolled: m.GetEnrolled(), Revoked: m.GetRevoked(), Wipe: m.GetWipe(),
		Collect: m.GetCollect(), Name: m.GetName()}
}

// HubDevicesTo and HubDevicesFrom convert lists.
func HubDevicesTo(ds []auth.Device) []*tesserav1.HubDevice {
	out := make([]*tesserav1.HubDevice, len(ds))
	for i, d := range ds {
		out[i] = HubDeviceTo(d)
	}
	return out
}

func HubDevicesFrom(ms []*tesserav1.HubDevice) []auth.Device {
	out := make([]auth.Device, len(ms))
	for i, m := range ms {
		out[i] = HubDeviceFrom(m)
	}
	return out
}
