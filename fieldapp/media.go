package fieldapp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png" // photos arrive as JPEG or PNG
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/image/draw"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// MaxMediaBytes bounds one file attached on the device.
const MaxMediaBytes = 1 << 30

// metaOutbox + record + "/" + file: a file an answer of this device names
// that the server may not hold yet. Written before the answer (a crash in
// between leaves an entry the next sync finds unnamed and drops).
const metaOutbox = "media.out/"

// ErrNotMedia: the question does not take a file.
var ErrNotMedia = errors.New("this question does not take a file")

// Media is the device's file store (inside the encrypted store).
func (d *Device) Media() *media.Store { return media.New(d.store) }

// Attach stores a file read from r (never a plaintext copy on disk: it goes
// chunk by chunk into the encrypted store) and returns the answer that
// names it, to write to field of record id. The file is queued for upload.
func (d *Device) Attach(ctx context.Context, id syncengine.RecordID, name string, r io.Reader) (syncengine.FieldWrite, error) {
	m, err := d.Media().Add(ctx, r, MaxMediaBytes)
	if err != nil {
		return syncengine.FieldWrite{}, err
	}
	err = d.store.Update(ctx, func(tx syncengine.Tx) error {
		return tx.SetMeta(metaOutbox+id.String()+"/"+m.SHA256, nil)
	})
	if err != nil {
		return syncengine.FieldWrite{}, err
	}
	return syncengine.FieldWrite{Value: syncengine.TextValue(m.Ref(name).Text())}, nil
}

// CheckMedia reports an error unless field of a record of form is a media
// question.
func (d *Device) CheckMedia(ctx context.Context, form, field string) error {
	f, err := d.forms.Form(ctx, form)
	if err != nil {
		return err
	}
	q := f.Question(forms.Path(field).Question())
	if q == nil || !q.Kind.IsMedia() {
		return fmt.Errorf("%w: %s", ErrNotMedia, field)
	}
	return nil
}

// MediaResult is what a sync did with files.
type MediaResult struct {
	Files    int   `json:"files"`              // files the server now holds
	Bytes    int64 `json:"bytes"`              // chunk bytes sent
	Waiting  int   `json:"waiting"`            // files still to send (a later sync)
	Skipped  int   `json:"skipped"`            // no answer names them any more
	Progress int64 `json:"progress,omitempty"` // bytes sent so far, while syncing
}

// uploadMedia sends the files the outbox lists, after the records that
// name them were pushed. A file the server refuses (too large, no right)
// stays queued and is reported; the others go on.
func (d *Device) uploadMedia(ctx context.Context, c *wire.Client, progress func(MediaResult)) (MediaResult, []string, error) {
	type item struct {
		id   syncengine.RecordID
		file string
		key  string
	}
	var items []item
	err := d.store.View(ctx, func(tx syncengine.ReadTx) error {
		return tx.ScanMeta(metaOutbox, func(key string, _ []byte) error {
			rid, file, ok := strings.Cut(strings.TrimPrefix(key, metaOutbox), "/")
			id, err := syncengine.ParseRecordID(rid)
			if ok && err == nil {
				items = append(items, item{id, file, key})
			}
			return nil
		})
	})
	var res MediaResult
	var warnings []string
	if err != nil {
		return res, nil, err
	}
	drop := func(key string) error {
		return d.store.Update(ctx, func(tx syncengine.Tx) error { return tx.DeleteMeta(key) })
	}
	st := d.Media()
	for _, it := range items {
		rec, err := d.rep.Record(ctx, it.id)
		if err != nil && !errors.Is(err, syncengine.ErrNotFound) {
			return res, warnings, err
		}
		m, merr := st.Manifest(ctx, it.file)
		if err != nil || !media.Names(rec, it.file) || merr != nil {
			res.Skipped++
			if err := drop(it.key); err != nil {
				return res, warnings, err
			}
			continue
		}
		base := res.Bytes
		sent, err := wire.Upload(ctx, c, st, it.id, m, func(n int64) {
			if progress != nil {
				res.Progress = base + n
				progress(res)
			}
		})
		res.Bytes += sent
		switch {
		case errors.Is(err, wire.ErrNotNamed):
			res.Skipped++
			err = drop(it.key)
		case err == nil:
			res.Files++
			err = drop(it.key)
		case ctx.Err() == nil && isRefusal(err):
			res.Waiting++
			warnings = append(warnings, fmt.Sprintf("file %s of record %s was not sent: %v", m.Ref("").FileName(), it.id, err))
			err = nil
		}
		if err != nil {
			return res, warnings, err
		}
	}
	return res, warnings, nil
}

// isRefusal: the server refused this file (it will refuse it again), as
// opposed to a link that broke.
func isRefusal(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeResourceExhausted, connect.CodePermissionDenied, connect.CodeInvalidArgument, connect.CodeNotFound:
		return true
	}
	return false
}

// DefaultMaxPixels bounds the longer side of a photo kept on the device
// when its question sets no max-pixels (ODK's parameter): a phone camera's
// 4,000-pixel photo is 3–6 MB; at 2,048 pixels it is under 1 MB and still
// shows a shelter's cracks.
const DefaultMaxPixels = 2048

// maxImageBytes: a photo is downscaled in memory (never in a temporary
// file); larger uploads are kept as they are.
const maxImageBytes = 40 << 20

// AttachAnswer stores a file read from r as the answer to field of record
// id: a photo is downscaled first when it is larger than the question's
// max-pixels (DefaultMaxPixels when unset). The file goes straight into the
// encrypted store.
func (d *Device) AttachAnswer(ctx context.Context, id syncengine.RecordID, field, name string, r io.Reader) error {
	rec, err := d.Record(ctx, id)
	if err != nil {
		return err
	}
	f, err := d.forms.Form(ctx, rec.Form)
	if err != nil {
		return err
	}
	q := f.Question(forms.Path(field).Question())
	if q == nil || !q.Kind.IsMedia() {
		return fmt.Errorf("%w: %s", ErrNotMedia, field)
	}
	if q.Kind == forms.KImage {
		limit := DefaultMaxPixels
		if n, err := strconv.Atoi(q.Parameters["max-pixels"]); err == nil && n > 0 {
			limit = n
		}
		if r, name, err = downscale(r, name, limit); err != nil {
			return err
		}
	}
	w, err := d.Attach(ctx, id, name, r)
	if err != nil {
		return err
	}
	w.Name = field
	return d.Set(ctx, id, []syncengine.FieldWrite{w})
}

// Detach clears a media answer (the file stays in the store while the
// answer's history names it).
func (d *Device) Detach(ctx context.Context, id syncengine.RecordID, field string) error {
	return d.Set(ctx, id, []syncengine.FieldWrite{{Name: field}})
}

// OpenAnswerFile opens a file an answer of record id names, for the
// interview's preview.
func (d *Device) OpenAnswerFile(ctx context.Context, id syncengine.RecordID, file string) (media.Ref, io.Reader, error) {
	rec, err := d.Record(ctx, id)
	if err != nil {
		return media.Ref{}, nil, err
	}
	var ref media.Ref
	media.Refs(rec, nil, func(_ string, r media.Ref) bool {
		if r.SHA256 == file {
			ref = r
		}
		return ref.SHA256 == ""
	})
	if ref.SHA256 == "" {
		return media.Ref{}, nil, fmt.Errorf("%w: no answer names it", media.ErrNotFound)
	}
	rd, err := d.Media().Open(ctx, file)
	return ref, rd, err
}

// downscale reads a photo and, when its longer side is over max pixels,
// scales it down and writes it as JPEG. What is not a JPEG or PNG photo
// (or is too large to decode here) passes through unchanged.
func downscale(r io.Reader, name string, limit int) (io.Reader, string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxImageBytes+1))
	if err != nil {
		return nil, "", err
	}
	whole := io.Reader(bytes.NewReader(b))
	if len(b) > maxImageBytes {
		return io.MultiReader(whole, r), name, nil
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil || (format != "jpeg" && format != "png") || (cfg.Width <= limit && cfg.Height <= limit) {
		return whole, name, nil
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return whole, name, nil
	}
	w, h := cfg.Width, cfg.Height
	if w >= h {
		w, h = limit, max(1, h*limit/w)
	} else {
		w, h = max(1, w*limit/h), limit
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
	var out bytes.Buffer
	if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: 85}); err != nil {
		return nil, "", err
	}
	return &out, strings.TrimSuffix(name, filepath.Ext(name)) + ".jpg", nil
}

// OpenFormFile reads an attachment of the form of record id by the name
// the form gives it (a label's image, audio or video), from the media
// store the form's sync brought it into.
func (d *Device) OpenFormFile(ctx context.Context, id syncengine.RecordID, name string) (forms.FileInfo, io.Reader, error) {
	rec, err := d.Record(ctx, id)
	if err != nil {
		return forms.FileInfo{}, nil, err
	}
	form, version, _ := strings.Cut(rec.Form, "@")
	info, _, err := d.forms.Get(ctx, form, version)
	if err != nil {
		return forms.FileInfo{}, nil, err
	}
	for _, fi := range info.Files {
		if fi.Name == name {
			rd, err := d.Media().Open(ctx, fi.SHA256)
			return fi, rd, err
		}
	}
	return forms.FileInfo{}, nil, fmt.Errorf("%w: form %s has no file %q", media.ErrNotFound, rec.Form, name)
}
