package bundle_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/tessera-survey/tessera/bundle"
)

func keys(t testing.TB) (*ecdh.PrivateKey, ed25519.PublicKey, ed25519.PrivateKey) {
	seal, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return seal, pub, priv
}

// TestSealOpen: the recipient opens what the sender sealed; anything cut,
// added, altered, signed by another key or sealed to another recipient is
// refused, with its own error.
func TestSealOpen(t *testing.T) {
	server, _, _ := keys(t)
	other, _, _ := keys(t)
	_, devPub, devPriv := keys(t)
	_, strangerPub, strangerPriv := keys(t)
	content := []byte("CONTENT-MARKER the changes")
	h := bundle.Header{Kind: bundle.KindDevice, ID: bundle.NewID(), From: "r", Device: "d", To: "s", Part: 1, Parts: 1}
	b, err := bundle.Seal(h, content, server.PublicKey(), devPriv)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("CONTENT-MARKER")) {
		t.Fatal("the content is in the clear")
	}
	f, err := bundle.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Open(devPub, server)
	if err != nil || !bytes.Equal(got, content) || f.Header.Device != "d" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := f.Open(strangerPub, server); !errors.Is(err, bundle.ErrSignature) {
		t.Errorf("another device's key: %v", err)
	}
	if _, err := f.Open(devPub, other); !errors.Is(err, bundle.ErrNotForUs) {
		t.Errorf("another recipient: %v", err)
	}
	forged, err := bundle.Seal(h, content, server.PublicKey(), strangerPriv)
	if err != nil {
		t.Fatal(err)
	}
	if ff, err := bundle.Parse(forged); err != nil {
		t.Fatal(err)
	} else if _, err := ff.Open(devPub, server); !errors.Is(err, bundle.ErrSignature) {
		t.Errorf("a bundle naming the device, signed by another: %v", err)
	}
	for name, bad := range map[string][]byte{
		"cut short":   b[:len(b)-1],
		"bytes added": append(bytes.Clone(b), 'x'),
		"empty":       nil,
		"not one":     []byte("PK\x03\x04 a zip"),
	} {
		if _, err := bundle.Parse(bad); !errors.Is(err, bundle.ErrBad) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for i := range len(b) {
		c := bytes.Clone(b)
		c[i] ^= 0x20
		f, err := bundle.Parse(c)
		if err != nil {
			continue
		}
		if _, err := f.Open(devPub, server); err == nil {
			t.Fatalf("byte %d altered: opened", i)
		}
	}
}

// FuzzParse: the reader never panics, and what it accepts and opens with
// the right keys is what was sealed.
func FuzzParse(f *testing.F) {
	server, devPub, devPriv := keys(f)
	b, err := bundle.Seal(bundle.Header{Kind: bundle.KindReply, ID: "x", From: "s", To: "d", Part: 1, Parts: 1}, []byte("hello"), server.PublicKey(), devPriv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("tessera-bundle 1\n{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := bundle.Parse(b)
		if err != nil {
			return
		}
		if out, err := fl.Open(devPub, server); err == nil && string(out) != "hello" {
			t.Fatalf("opened to %q", out)
		}
	})
}
