package server_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/bundle"
	"github.com/tessera-survey/tessera/fieldapp"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/syncengine"
)

func importBundle(t *testing.T, ts *trustServer, user string, file []byte) (*tesserav1.ImportBundleResponse, error) {
	t.Helper()
	return ts.rpc[user].Sync().ImportBundle(context.Background(), &tesserav1.ImportBundleRequest{Bundle: file})
}

func onePart(t *testing.T, d *fieldapp.Device) []byte {
	t.Helper()
	ex, err := d.ExportBundle(context.Background(), 0)
	must(t, err)
	if len(ex.Parts) != 1 {
		t.Fatalf("%d parts", len(ex.Parts))
	}
	return ex.Parts[0]
}

// TestBundleRoundTrip (issue 18): with no network after a first sync, a
// device's bundle carried by a lead reaches the server, and the reply
// carries back the acknowledgement, the team's records and a form
// published meanwhile; importing the reply twice changes nothing; when the
// link returns nothing is sent or applied twice. Bad bundles are refused
// whole: another project's lead, altered, cut short, signed by another
// key, made for another server, a reply given to the server, a revoked
// device's.
func TestBundleRoundTrip(t *testing.T) {
	ctx := context.Background()
	ts := newTrustServer(t)
	teamRecords(t, ts.Auth(), "A")
	a1, a2 := ts.enrolledDevice(t, "A"), ts.enrolledDevice(t, "A")
	mustSync(t, a1)
	mustSync(t, a2)
	// The link goes down for a1: it interviews, exports.
	var ids []syncengine.RecordID
	for range 3 {
		id, err := a1.Create(ctx, "household@1", fw("story", "BUNDLE-MARKER"))
		must(t, err)
		ids = append(ids, id)
	}
	other, err := a2.Create(ctx, "household@1", fw("story", "from a2"))
	must(t, err)
	mustSync(t, a2)
	_, err = ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: xlsxRows(t, "later", "1",
		[][]string{{"type", "name", "label"}, {"text", "q", "Q"}}), Project: "A"})
	must(t, err)
	file := onePart(t, a1)
	if bytes.Contains(file, []byte("BUNDLE-MARKER")) {
		t.Fatal("the bundle holds an answer in the clear")
	}
	if p, _ := a1.Replica().Pending(ctx); p != 3 {
		t.Fatalf("exporting marked changes sent: %d pending", p)
	}

	// Refused whole.
	bad := map[string][]byte{
		"altered":    func() []byte { c := bytes.Clone(file); c[len(c)-100] ^= 1; return c }(),
		"cut short":  file[:len(file)-10],
		"not a file": []byte("hello"),
	}
	for name, b := range bad {
		if _, err := importBundle(t, ts, "a-lead", b); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := importBundle(t, ts, "b-lead", file); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("another project's lead: %v", err)
	}
	if _, err := importBundle(t, ts, "a-analyst", file); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("an analyst: %v", err)
	}
	f, err := bundle.Parse(file)
	must(t, err)
	keys, err := ts.Service().PublicBundleKeys(ctx)
	must(t, err)
	seal, err := ecdh.X25519().NewPublicKey(keys.Seal)
	must(t, err)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	forged, err := bundle.Seal(f.Header, []byte("x"), seal, stranger) // names a1, signed by another key
	must(t, err)
	if _, err := importBundle(t, ts, "a-lead", forged); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("signed by another key: %v", err)
	}
	foreignKey, _ := ecdh.X25519().GenerateKey(rand.Reader)
	h := f.Header
	h.To = syncengine.NewReplicaID().String()
	if foreign, err := bundle.Seal(h, []byte("x"), foreignKey.PublicKey(), stranger); err == nil {
		if _, err := importBundle(t, ts, "a-lead", foreign); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("made for another server: %v", err)
		}
	}
	var head0 uint64
	ts.Replica().Store().View(ctx, func(tx syncengine.ReadTx) (err error) { head0, err = tx.Head(); return })

	// The real one, twice: the second merges nothing new.
	res, err := importBundle(t, ts, "a-lead", file)
	must(t, err)
	if res.Pushed != 3 || res.Applied != 3 || res.Pulled < 1 || res.Forms < 1 || res.Project != "A" {
		t.Fatalf("import: %+v", res)
	}
	again, err := importBundle(t, ts, "a-lead", file)
	must(t, err)
	if again.Applied != 0 {
		t.Fatalf("the same bundle twice applied %d", again.Applied)
	}
	if _, err := importBundle(t, ts, "a-lead", res.Reply); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a reply given to the server: %v", err)
	}
	if _, err := a2.ImportReply(ctx, res.Reply); !errors.Is(err, bundle.ErrNotForUs) {
		t.Errorf("another device's reply: %v", err)
	}
	got, err := a1.ImportReply(ctx, res.Reply)
	must(t, err)
	if !got.Acknowledged || got.Pending != 0 || got.Forms < 1 {
		t.Fatalf("reply: %+v", got)
	}
	if _, err := a1.Record(ctx, other); err != nil {
		t.Fatalf("a2's record did not come back with the reply: %v", err)
	}
	if _, err := a1.Forms().Form(ctx, "later@1"); err != nil {
		t.Fatalf("the form published meanwhile: %v", err)
	}
	if again, err := a1.ImportReply(ctx, again.Reply); err != nil || again.Acknowledged || again.Applied != 0 {
		t.Fatalf("a second reply: %+v %v", again, err)
	}
	for _, id := range ids {
		if _, err := ts.Replica().Record(ctx, id); err != nil {
			t.Fatalf("record %s not on the server: %v", id, err)
		}
	}
	// The link returns: nothing is sent or applied twice.
	sr := mustSync(t, a1)
	var head uint64
	ts.Replica().Store().View(ctx, func(tx syncengine.ReadTx) (err error) { head, err = tx.Head(); return })
	if sr.Pushed != 0 || head != head0+3 {
		t.Fatalf("after the link returned: pushed %d, server log %d → %d", sr.Pushed, head0, head)
	}

	// A revoked device's bundle is refused.
	_, err = a1.Create(ctx, "household@1", fw("story", "late"))
	must(t, err)
	late := onePart(t, a1)
	devs, err := ts.Auth().Devices(ctx, "A")
	must(t, err)
	for _, d := range devs {
		if d.ID == f.Header.Device {
			must(t, ts.Auth().SetDevice(ctx, "t", d.ID, true, false))
		}
	}
	if _, err := importBundle(t, ts, "a-lead", late); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("a revoked device's bundle: %v", err)
	}
}
