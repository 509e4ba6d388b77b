package media_test

import (
	"errors"
	"testing"

	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/media/mediatest"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

func TestContractMemory(t *testing.T) {
	mediatest.Run(t, func(t *testing.T) syncengine.Store { return memstore.New() })
}

func TestContractBadger(t *testing.T) {
	mediatest.Run(t, func(t *testing.T) syncengine.Store {
		s, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), Profile: badgerstore.Device,
			EncryptionKey: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestRef(t *testing.T) {
	h := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	for _, c := range []struct {
		in   string
		want media.Ref
		err  error
	}{
		{"sha256:" + h + ":4:test.jpg", media.Ref{SHA256: h, Size: 4, Name: "test.jpg"}, nil},
		{"sha256:" + h + ":4:a:b.jpg", media.Ref{SHA256: h, Size: 4, Name: "a:b.jpg"}, nil},
		{"1700000000.jpg", media.Ref{Name: "1700000000.jpg"}, nil},
		{"", media.Ref{}, media.ErrBadRef},
		{"sha256:" + h + ":x:a", media.Ref{}, media.ErrBadRef},
		{"sha256:abc:4:a", media.Ref{}, media.ErrBadRef},
	} {
		got, err := media.ParseRef(c.in)
		if !errors.Is(err, c.err) || (err == nil && got != c.want) {
			t.Errorf("%q: %+v %v", c.in, got, err)
		}
		if err == nil && got.Text() != c.in {
			t.Errorf("%q: text %q", c.in, got.Text())
		}
	}
	for in, want := range map[string]string{"../../etc/passwd": "passwd", `C:\x\y.png`: "y.png", "a?b.jpg": "a_b.jpg", "..": h} {
		if got := (media.Ref{SHA256: h, Name: in}).FileName(); got != want {
			t.Errorf("FileName(%q) = %q", in, got)
		}
	}
}
