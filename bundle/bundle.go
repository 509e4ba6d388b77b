// Package bundle holds the file format of sync by file (a USB stick carried
// from a camp with no link): a bundle from a device to its server, and the
// server's reply. Each file is sealed to its recipient and signed by its
// sender:
//
//	"tessera-bundle 1\n"
//	header (JSON, one line: kind, id, sender, recipient, part, the sender's
//	        ephemeral X25519 key)
//	uint32 length, AES-256-GCM ciphertext of the content (the header is its
//	        additional data)
//	Ed25519 signature of SHA-256 over all of the above
//
// The key is HKDF-SHA256 of the X25519 agreement between the sender's
// ephemeral key and the recipient's key, so only the recipient opens it;
// the signature says who made it, so a bundle altered, cut short or
// replayed under another device's name is refused whole. What the content
// means (changes, pages, forms) is the callers' (package syncengine's
// offline halves, carried as protobuf messages).
package bundle

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Kinds of file.
const (
	KindDevice = "device" // a device's changes, to its server
	KindReply  = "reply"  // a server's answer, to the device
)

const magic = "tessera-bundle 1\n"

// MaxSize bounds one file (a bundle larger than this is split in parts).
const MaxSize = 64 << 20

// Errors.
var (
	// ErrBad: not a whole, unaltered bundle (cut short, changed, not one).
	ErrBad = errors.New("not a whole Tessera bundle")
	// ErrSignature: the signature is not the named sender's.
	ErrSignature = errors.New("the bundle is not signed by the device or server it names")
	// ErrNotForUs: sealed to another recipient.
	ErrNotForUs = errors.New("the bundle was made for another recipient")
)

// Header is what a bundle says of itself, in the clear (and signed).
type Header struct {
	Version int    `json:"v"`
	Kind    string `json:"kind"`
	ID      string `json:"id"` // random, hex
	// From: the sender's replica id; Device: for a device's bundle, the
	// device id its server knows it by (whose key signed it).
	From   string `json:"from"`
	Device string `json:"device,omitempty"`
	// To: the recipient's replica id (the server's, or the device's).
	To        string `json:"to"`
	InReplyTo string `json:"in_reply_to,omitempty"`
	Created   int64  `json:"created"` // Unix ms
	// Part of Parts: a device's pending changes split over several files
	// (each stands alone; import them in order).
	Part  int `json:"part"`
	Parts int `json:"parts"`
	// Ephemeral: the sender's X25519 public key for this file.
	Ephemeral []byte `json:"eph"`
}

// NewID returns a random bundle id.
func NewID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Seal writes content as a bundle with header h (its Ephemeral is set
// here) sealed to the recipient's X25519 key and signed with signer.
func Seal(h Header, content []byte, to *ecdh.PublicKey, signer ed25519.PrivateKey) ([]byte, error) {
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	h.Version, h.Ephemeral = 1, eph.PublicKey().Bytes()
	hdr, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	aead, err := aeadFor(eph, to, h.Ephemeral, to.Bytes())
	if err != nil {
		return nil, err
	}
	sealed := aead.Seal(nil, make([]byte, aead.NonceSize()), content, hdr)
	var b bytes.Buffer
	b.WriteString(magic)
	b.Write(hdr)
	b.WriteByte('\n')
	binary.Write(&b, binary.BigEndian, uint32(len(sealed)))
	b.Write(sealed)
	sum := sha256.Sum256(b.Bytes())
	b.Write(ed25519.Sign(signer, sum[:]))
	return b.Bytes(), nil
}

// aeadFor: the AES-256-GCM key both sides derive (a fresh ephemeral key
// per file: the zero nonce is used once per key).
func aeadFor(priv *ecdh.PrivateKey, pub *ecdh.PublicKey, ephPub, recipientPub []byte) (cipher.AEAD, error) {
	shared, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBad, err)
	}
	key, err := hkdf.Key(sha256.New, shared, append(append([]byte{}, ephPub...), recipientPub...), "tessera bundle v1", 32)
	if err != nil {
		return nil, err
	}
	c, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(c)
}

// File is a bundle read but not opened: its header can be trusted only
// after Open checked the signature.
type File struct {
	Header Header
	hdr    []byte // the header line as written
	sealed []byte
	signed []byte // everything the signature covers
	sig    []byte
}

// Parse reads a bundle's parts, refusing what is not one, is over MaxSize,
// or has bytes missing or left over.
func Parse(b []byte) (*File, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, over the %d MiB a bundle may have", ErrBad, len(b), MaxSize>>20)
	}
	if !bytes.HasPrefix(b, []byte(magic)) {
		return nil, fmt.Errorf("%w: it does not begin as one", ErrBad)
	}
	r := bufio.NewReader(bytes.NewReader(b[len(magic):]))
	line, err := r.ReadBytes('\n')
	if err != nil || len(line) > 4096 {
		return nil, fmt.Errorf("%w: no header", ErrBad)
	}
	f := &File{hdr: line[:len(line)-1]}
	if err := json.Unmarshal(f.hdr, &f.Header); err != nil || f.Header.Version != 1 ||
		(f.Header.Kind != KindDevice && f.Header.Kind != KindReply) || len(f.Header.Ephemeral) != 32 {
		return nil, fmt.Errorf("%w: its header is damaged", ErrBad)
	}
	rest := b[len(magic)+len(line):]
	if len(rest) < 4 {
		return nil, fmt.Errorf("%w: it ends after its header", ErrBad)
	}
	n := binary.BigEndian.Uint32(rest)
	if uint64(len(rest)) != 4+uint64(n)+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes where %d were written (cut short, or joined to another)", ErrBad, len(rest), 4+uint64(n)+ed25519.SignatureSize)
	}
	f.sealed = rest[4 : 4+n]
	f.signed = b[:len(b)-ed25519.SignatureSize]
	f.sig = b[len(b)-ed25519.SignatureSize:]
	return f, nil
}

// Verify checks the signature against the sender's key.
func (f *File) Verify(sender ed25519.PublicKey) error {
	if len(sender) != ed25519.PublicKeySize {
		return ErrSignature
	}
	sum := sha256.Sum256(f.signed)
	if !ed25519.Verify(sender, sum[:], f.sig) {
		return ErrSignature
	}
	return nil
}

// Open checks the signature against the sender's key, then decrypts the
// content with the recipient's key.
func (f *File) Open(sender ed25519.PublicKey, recipient *ecdh.PrivateKey) ([]byte, error) {
	if err := f.Verify(sender); err != nil {
		return nil, err
	}
	eph, err := ecdh.X25519().NewPublicKey(f.Header.Ephemeral)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBad, err)
	}
	pub := recipient.PublicKey().Bytes()
	aead, err := aeadFor(recipient, eph, f.Header.Ephemeral, pub)
	if err != nil {
		return nil, err
	}
	out, err := aead.Open(nil, make([]byte, aead.NonceSize()), f.sealed, f.hdr)
	if err != nil {
		return nil, ErrNotForUs // signed by its sender, but not sealed to this key
	}
	return out, nil
}

// ReadFile reads a file of at most MaxSize bytes.
func ReadFile(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: over the %d MiB a bundle may have", ErrBad, MaxSize>>20)
	}
	return b, nil
}
