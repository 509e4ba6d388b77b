package fieldapp_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

func mediaXLSX(t *testing.T) []byte {
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "survey")
	f.NewSheet("settings")
	for i, r := range [][]string{{"type", "name", "label", "parameters"}, {"image", "photo", "Photo", ""},
		{"image", "small", "Small", "max-pixels=100"}, {"audio", "rec", "Recording", ""}, {"text", "note", "Note", ""}} {
		for j, v := range r {
			cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
			f.SetCellStr("survey", cell, v)
		}
	}
	f.SetCellStr("settings", "A1", "form_id")
	f.SetCellStr("settings", "A2", "media_q")
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func picture(w, h int, asPNG bool) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	var b bytes.Buffer
	if asPNG {
		png.Encode(&b, img)
	} else {
		jpeg.Encode(&b, img, nil)
	}
	return b.Bytes()
}

// TestAttachDownscales: a photo larger than its question's max-pixels (or
// 2,048 pixels) is scaled down on the device before it is stored; smaller
// photos and other files are kept byte for byte.
func TestAttachDownscales(t *testing.T) {
	ctx := context.Background()
	d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "dev"), fieldapp.Config{PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, _, err := d.Forms().Publish(ctx, mediaXLSX(t), "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	id, err := d.Create(ctx, d.FormKey(ctx, "media_q"), nil)
	if err != nil {
		t.Fatal(err)
	}
	stored := func(field string) (media.Ref, []byte) {
		t.Helper()
		rec, err := d.Record(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		r, err := media.ParseRef(rec.Values()[field].String())
		if err != nil {
			t.Fatal(err)
		}
		_, rd, err := d.OpenAnswerFile(ctx, id, r.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rd)
		return r, b
	}
	size := func(b []byte) (int, int) {
		c, _, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return c.Width, c.Height
	}
	for _, c := range []struct {
		field, name string
		in          []byte
		w, h        int
		outName     string
	}{
		{"photo", "big.jpg", picture(3000, 1000, false), 2048, 682, "big.jpg"},
		{"small", "s.png", picture(400, 300, true), 100, 75, "s.jpg"},
		{"photo", "fits.jpg", picture(800, 600, false), 800, 600, "fits.jpg"},
	} {
		if err := d.AttachAnswer(ctx, id, c.field, c.name, bytes.NewReader(c.in)); err != nil {
			t.Fatal(err)
		}
		r, b := stored(c.field)
		if w, h := size(b); w != c.w || h != c.h || r.Name != c.outName || r.Size != int64(len(b)) {
			t.Errorf("%s: stored %dx%d as %s (%d bytes)", c.name, w, h, r.Name, r.Size)
		}
		if c.w == 800 && !bytes.Equal(b, c.in) {
			t.Error("a photo within the limit was re-encoded")
		}
	}
	audio := []byte("RIFF....WAVEfmt not really audio")
	if err := d.AttachAnswer(ctx, id, "rec", "r.wav", bytes.NewReader(audio)); err != nil {
		t.Fatal(err)
	}
	if _, b := stored("rec"); !bytes.Equal(b, audio) {
		t.Error("a recording was changed")
	}
	if err := d.AttachAnswer(ctx, id, "note", "x.txt", bytes.NewReader(audio)); !errors.Is(err, fieldapp.ErrNotMedia) {
		t.Errorf("a file for a text question: %v", err)
	}
	if err := d.Detach(ctx, id, "rec"); err != nil {
		t.Fatal(err)
	}
	if rec, _ := d.Record(ctx, id); rec.Values()["rec"].Kind != syncengine.Null {
		t.Error("Remove left the answer")
	}
}
