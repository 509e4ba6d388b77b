package survey

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// DefaultMediaMaxBytes bounds one file an answer names, unless configured.
const DefaultMediaMaxBytes = 1 << 30

// Errors of the media use cases.
var (
	ErrMediaNotNamed = errors.New("no answer of this record names that file: push the record first")
)

// MediaMaxBytes is the largest file this server takes.
func (s *Service) MediaMaxBytes() int64 { return s.mediaMax }

// Media is the server's file store.
func (s *Service) Media() *media.Store { return s.media }

// MediaFile is one file an answer names, as a principal may see it.
type MediaFile struct {
	Record syncengine.RecordID
	Field  string
	Ref    media.Ref
	Held   bool // the server holds the whole file
}

// mediaRecord finds the answer of record id naming file for p: write asks
// for the right to write the record (a device of its scope), else to read
// it (a device of its scope, or an analyst and above of its project, with
// sensitive answers only for those who see them).
func (s *Service) mediaRecord(ctx context.Context, p auth.Principal, id syncengine.RecordID, file string, write bool) (f MediaFile, err error) {
	err = s.store.View(ctx, func(tx syncengine.ReadTx) (err error) {
		f, err = s.mediaRecordIn(ctx, tx, p, id, file, write)
		return err
	})
	return f, err
}

// mediaRecordIn is mediaRecord in one snapshot for the record, its scope
// and its project: every chunk of a file comes through here, and each new
// Badger transaction waits for the commits in flight.
func (s *Service) mediaRecordIn(ctx context.Context, tx syncengine.ReadTx, p auth.Principal, id syncengine.RecordID, file string, write bool) (MediaFile, error) {
	rec, err := tx.Record(id)
	if err != nil {
		return MediaFile{}, fmt.Errorf("record %s: %w", id, err)
	}
	v, scoped, err := s.scopes.get(tx, id)
	if err != nil {
		return MediaFile{}, err
	}
	project := v.Project
	if !scoped || project == "" {
		if project, err = projectIn(tx, rec.Form); err != nil {
			return MediaFile{}, err
		}
	}
	withheld := func(string) bool { return false }
	switch {
	case p.Device != nil:
		if !scoped || !allows(p.Device, v) {
			return MediaFile{}, fmt.Errorf("%w: record %s belongs to another project or team", auth.ErrDenied, id)
		}
		if !write {
			// A device reads the files of the records it may receive
			// (pullRule), no others of its team.
			if ok, err := s.deviceReceives(ctx, tx, p.Device, id); err != nil || !ok {
				if err == nil {
					err = fmt.Errorf("%w: record %s is not this device's nor assigned to it", auth.ErrDenied, id)
				}
				return MediaFile{}, err
			}
			withheld = s.withheld(ctx, p, project, rec.Form)
		}
	case write:
		if err := s.requireRecord(p, project, auth.Lead); err != nil {
			return MediaFile{}, err
		}
	default:
		if err := s.requireRecord(p, project, auth.Analyst); err != nil {
			return MediaFile{}, err
		}
		withheld = s.withheld(ctx, p, project, rec.Form)
	}
	var found MediaFile
	media.Refs(rec, withheld, func(field string, r media.Ref) bool {
		if r.SHA256 == file {
			found = MediaFile{Record: id, Field: field, Ref: r}
			return false
		}
		return true
	})
	if found.Ref.SHA256 == "" {
		if media.Names(rec, file) {
			return MediaFile{}, fmt.Errorf("%w: this file answers a sensitive question", auth.ErrDenied)
		}
		return MediaFile{}, fmt.Errorf("%w (record %s)", ErrMediaNotNamed, id)
	}
	return found, nil
}

// StartUpload begins or resumes receiving a file an answer of record id
// names: the chunks still missing (nil: held, send nothing). Refused before
// any chunk: too large, a record p may not write, a file no answer names.
func (s *Service) StartUpload(ctx context.Context, p auth.Principal, id syncengine.RecordID, m media.Manifest) ([]int, error) {
	if err := m.Check(s.mediaMax); err != nil {
		return nil, err
	}
	if _, err := s.mediaRecord(ctx, p, id, m.SHA256, true); err != nil {
		return nil, err
	}
	missing, err := s.media.Missing(ctx, m, s.mediaMax)
	if err == nil && missing == nil {
		err = s.queueRelay(ctx, id, m.SHA256) // held already: this record's upstream copy may lack it
	}
	return missing, err
}

// PutChunk receives one chunk of a file StartUpload began.
func (s *Service) PutChunk(ctx context.Context, p auth.Principal, id syncengine.RecordID, file string, i int, data []byte, last bool) (bool, error) {
	done, err := s.media.PutChecked(ctx, file, i, data, last, func(tx syncengine.ReadTx) error {
		_, err := s.mediaRecordIn(ctx, tx, p, id, file, true)
		return err
	})
	if done {
		s.log.Debug("media received", "record", id, "sha256", file)
		err = s.queueRelay(ctx, id, file)
	}
	return done, err
}

// metaRelay + record + "/" + file: a file a hub holds that its upstream
// may not (sent after the records at each upstream sync).
const metaRelay = "media.relay/"

// queueRelay notes, on a hub, a file to send upstream.
func (s *Service) queueRelay(ctx context.Context, id syncengine.RecordID, file string) error {
	if !s.relaying {
		return nil
	}
	return s.store.Update(ctx, func(tx syncengine.Tx) error {
		return tx.SetMeta(metaRelay+id.String()+"/"+file, nil)
	})
}

// media sends upstream the files the hub received, once the records that
// name them went up. A file the upstream's record no longer names is
// dropped from the queue; any other failure keeps it for the next sync.
func (r *Relay) media(ctx context.Context) error {
	type item struct {
		id        syncengine.RecordID
		file, key string
	}
	var items []item
	err := r.s.store.View(ctx, func(tx syncengine.ReadTx) error {
		return tx.ScanMeta(metaRelay, func(key string, _ []byte) error {
			rid, file, _ := strings.Cut(strings.TrimPrefix(key, metaRelay), "/")
			if id, err := syncengine.ParseRecordID(rid); err == nil {
				items = append(items, item{id, file, key})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	sent := 0
	for _, it := range items {
		m, err := r.s.media.Manifest(ctx, it.file)
		if err == nil {
			err = r.up.UploadMedia(ctx, r.s.media, it.id, m)
		}
		if err != nil && !errors.Is(err, ErrMediaNotNamed) && !errors.Is(err, media.ErrNotFound) {
			return fmt.Errorf("%w: media: %w", ErrUpstream, err)
		}
		if err == nil {
			sent++
		}
		if err := r.s.store.Update(ctx, func(tx syncengine.Tx) error { return tx.DeleteMeta(it.key) }); err != nil {
			return err
		}
	}
	if sent > 0 {
		r.s.log.Info("media sent upstream", "files", sent)
	}
	return nil
}

// OpenMedia opens a file an answer of record id names, for p to read.
func (s *Service) OpenMedia(ctx context.Context, p auth.Principal, id syncengine.RecordID, file string) (MediaFile, *media.Reader, error) {
	f, err := s.mediaRecord(ctx, p, id, file, false)
	if err != nil {
		return MediaFile{}, nil, err
	}
	r, err := s.media.Open(ctx, file)
	if err != nil {
		return MediaFile{}, nil, err
	}
	f.Held = true
	return f, r, nil
}

// ListMedia calls fn for every file named by the records of a form p may
// export (form "" is refused: name one), by the export's rules: sensitive
// answers' files only for those who see sensitive answers. Audited.
func (s *Service) ListMedia(ctx context.Context, p auth.Principal, form string, fn func(MediaFile) error) error {
	e, err := s.plan(ctx, p, ExportRequest{FormID: form})
	if err != nil {
		return err
	}
	mediaQ, sensitive := map[string]bool{}, map[string]bool{}
	for _, f := range e.versions {
		f.Walk(func(q *forms.Question) {
			if q.Kind.IsMedia() {
				mediaQ[q.Path()] = true
				if q.Sensitive {
					sensitive[q.Path()] = true
				}
			}
		})
	}
	if err := s.auth.Audit(ctx, Actor(p), "media-list", form); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	withheld := func(field string) bool {
		q := forms.Path(field).Question()
		return !mediaQ[q] || (sensitive[q] && !e.sensitive)
	}
	var list []MediaFile
	err = s.store.View(ctx, func(tx syncengine.ReadTx) error {
		return tx.ScanRecords(syncengine.RecordID{}, func(rec *syncengine.Record) error {
			if !e.exported(rec) {
				return nil
			}
			media.Refs(rec, withheld, func(field string, r media.Ref) bool {
				list = append(list, MediaFile{Record: rec.ID, Field: field, Ref: r})
				return true
			})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, f := range list {
		held, err := s.media.Has(ctx, f.Ref.SHA256)
		if err != nil {
			return err
		}
		f.Held = held
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// OpenFormMedia opens an attachment of a form version (key
// "form_id@version") for p, by GetForm's rule: whoever may read the form.
// The file moves like an answer's, chunk by chunk from the media store; a
// version published before attachments went there is copied in on its
// first request (content-addressed: two at once are harmless).
func (s *Service) OpenFormMedia(ctx context.Context, p auth.Principal, key, file string) (forms.FileInfo, *media.Reader, error) {
	id, version, ok := strings.Cut(key, "@")
	if !ok || id == "" || version == "" {
		return forms.FileInfo{}, nil, fmt.Errorf("%w: %q is not form_id@version", syncengine.ErrInvalid, key)
	}
	info, _, err := s.forms.Get(ctx, id, version)
	if err == nil && !s.mayReadForm(p, info) {
		err = fmt.Errorf("%w: %s", forms.ErrUnknownForm, id)
	}
	if err != nil {
		return forms.FileInfo{}, nil, err
	}
	i := slices.IndexFunc(info.Files, func(f forms.FileInfo) bool { return f.SHA256 == file })
	if i < 0 {
		return forms.FileInfo{}, nil, fmt.Errorf("%w: form %s has no such file", media.ErrNotFound, key)
	}
	held, err := s.media.Has(ctx, file)
	if err == nil && !held {
		var data []byte
		if data, err = s.forms.File(ctx, file); err == nil {
			_, err = s.media.Add(ctx, bytes.NewReader(data), 0)
		}
	}
	if err != nil {
		return forms.FileInfo{}, nil, err
	}
	r, err := s.media.Open(ctx, file)
	if err != nil {
		return forms.FileInfo{}, nil, err
	}
	return info.Files[i], r, nil
}
