package fieldapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

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
	Files    int   `json:"files"`   // files the server now holds
	Bytes    int64 `json:"bytes"`   // chunk bytes sent
	Waiting  int   `json:"waiting"` // files still to send (a later sync)
	Skipped  int   `json:"skipped"` // no answer names them any more
	Progress int64 `json:"-"`
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
