package forms

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
)

// Errors of the registry.
var (
	// ErrExists: a form version published before with other content.
	ErrExists = errors.New("form version already published with different content")
	// ErrUnknownForm: no such form or version.
	ErrUnknownForm = errors.New("unknown form")
)

// Info describes one stored form version.
type Info struct {
	ID              string     `json:"form_id"`
	Version         string     `json:"version"`
	Title           string     `json:"title"`
	Languages       []string   `json:"languages,omitempty"`
	DefaultLanguage string     `json:"default_language,omitempty"`
	Questions       int        `json:"questions"`
	PublishedAt     int64      `json:"published_at"`
	SHA256          string     `json:"sha256"`
	Project         string     `json:"project,omitempty"`
	Files           []FileInfo `json:"files,omitempty"` // the attachments
}

// Key is "form_id@version".
func (i Info) Key() string { return i.ID + "@" + i.Version }

// InfoOf describes an imported form.
func InfoOf(f *Form, xlsx []byte, publishedAt time.Time) Info {
	sum := sha256.Sum256(xlsx)
	n := 0
	f.Walk(func(q *Question) {
		if q.Kind != KGroup && q.Kind != KRepeat {
			n++
		}
	})
	return Info{ID: f.ID, Version: f.Version, Title: f.Title, Languages: f.Languages, DefaultLanguage: f.DefaultLanguage,
		Questions: n, PublishedAt: publishedAt.UnixMilli(), SHA256: hex.EncodeToString(sum[:])}
}

// Registry keeps form versions in a replica's store (meta entries, not
// records: forms are published centrally and copied to devices, never
// merged). The server publishes into it; a device stores what it fetched.
type Registry struct {
	store  syncengine.Store
	files  FileStore // nil: attachments are values of the registry's own
	mu     sync.Mutex
	cache  map[string]*Form
	digest string // "" when not computed since the last change
}

const (
	metaFormFile = "form.file/" // + key → the .xlsx bytes
	metaFormInfo = "form.info/" // + key → Info JSON
	// metaFormXForm + key → the version's XForm, written once: its md5
	// is what OpenRosa clients compare, so it must never change.
	metaFormXForm = "form.xform/"
)

// NewRegistry returns the registry kept in s.
func NewRegistry(s syncengine.Store) *Registry {
	return &Registry{store: s, cache: map[string]*Form{}}
}

// FileStore keeps attachments chunked, outside any one value of the
// store (the media store: a device's store takes no value over 4 MiB, and
// attachments then move to devices as media do).
type FileStore interface {
	// PutBytes keeps a file, content-addressed (twice is harmless).
	PutBytes(ctx context.Context, data []byte) error
	// Bytes reads a file kept by its hex SHA-256.
	Bytes(ctx context.Context, sha string) ([]byte, error)
}

// NewRegistryWith is NewRegistry with attachments kept in fs. Versions
// stored before keep theirs where they are, and are read from there.
func NewRegistryWith(s syncengine.Store, fs FileStore) *Registry {
	r := NewRegistry(s)
	r.files = fs
	return r
}

// Parse imports an XLSForm workbook (.xlsx, or a legacy .xls).
func Parse(xlsx []byte, defaultID string) (*Form, error) {
	wb, err := ReadWorkbook(xlsx)
	if err != nil {
		return nil, err
	}
	return Import(wb, Options{DefaultID: defaultID})
}

// Publish imports xlsx and stores it. created is false when this exact
// version and content were stored before.
func (r *Registry) Publish(ctx context.Context, xlsx []byte, defaultID, project string, now time.Time) (Info, bool, error) {
	return r.PublishWith(ctx, xlsx, nil, defaultID, project, now, nil)
}

// PublishWith is Publish with also run in the transaction that stores a new
// version (not for one already stored): an audit entry written there
// commits with the version, and an error from it stores nothing.
// files are the attachments the form names (each one, and no other).
func (r *Registry) PublishWith(ctx context.Context, xlsx []byte, files []File, defaultID, project string, now time.Time,
	also func(tx syncengine.Tx, info Info) error) (Info, bool, error) {
	if len(xlsx) > MaxXLSXBytes {
		return Info{}, false, fmt.Errorf("publish: the file is over %d MiB", MaxXLSXBytes>>20)
	}
	switch {
	case bytes.HasPrefix(xlsx, cfbMagic):
		// A legacy .xls is kept as the .xlsx it reads as: devices (old
		// ones too) and every reader downstream take .xlsx.
		var err error
		if xlsx, err = XLSToXLSX(xlsx); err != nil {
			return Info{}, false, err
		}
	case IsXForm(xlsx):
		// An XForm is kept as the XLSForm it amounts to, for the same
		// reason; its own XForm is then written from that.
		var err error
		if xlsx, err = XFormToXLSX(xlsx); err != nil {
			return Info{}, false, err
		}
	}
	f, err := Parse(xlsx, defaultID)
	if err != nil {
		return Info{}, false, err
	}
	info := InfoOf(f, xlsx, now)
	info.Project = project
	if info.Files, err = checkFiles(f, files); err != nil {
		return Info{}, false, err
	}
	xform, err := f.XForm()
	if err != nil {
		return Info{}, false, err
	}
	return r.put(ctx, f, xlsx, files, info, func(tx syncengine.Tx, info Info) error {
		if err := tx.SetMeta(metaFormXForm+info.Key(), xform); err != nil {
			return err
		}
		if also != nil {
			return also(tx, info)
		}
		return nil
	})
}

// XForm returns a version's XForm (the newest version when version is
// ""): the bytes written when it was published. A version stored before
// Tessera wrote XForms gets one now, written once.
func (r *Registry) XForm(ctx context.Context, id, version string) (Info, []byte, error) {
	if version == "" {
		latest, err := r.Latest(ctx, id)
		if err != nil {
			return Info{}, nil, err
		}
		version = latest.Version
	}
	info, _, err := r.Get(ctx, id, version)
	if err != nil {
		return Info{}, nil, err
	}
	key := info.Key()
	var x []byte
	err = r.store.View(ctx, func(tx syncengine.ReadTx) error {
		x, err = tx.Meta(metaFormXForm + key)
		return err
	})
	if err == nil {
		return info, x, nil
	}
	if !errors.Is(err, syncengine.ErrNotFound) {
		return Info{}, nil, err
	}
	f, err := r.Form(ctx, key)
	if err != nil {
		return Info{}, nil, err
	}
	if x, err = f.XForm(); err != nil {
		return Info{}, nil, err
	}
	err = r.store.Update(ctx, func(tx syncengine.Tx) error {
		prev, err := tx.Meta(metaFormXForm + key)
		if err == nil {
			x = prev // written meanwhile: that one stands
			return nil
		}
		if !errors.Is(err, syncengine.ErrNotFound) {
			return err
		}
		return tx.SetMeta(metaFormXForm+key, x)
	})
	return info, x, err
}

// Store keeps a form fetched from a server (a device's copy), checking it
// imports and matches its description.
func (r *Registry) Store(ctx context.Context, info Info, xlsx []byte, files []File) error {
	f, err := Parse(xlsx, info.ID)
	if err != nil {
		return fmt.Errorf("form %s: %w", info.Key(), err)
	}
	if f.Key() != info.Key() {
		return fmt.Errorf("form %s: the file is %s", info.Key(), f.Key())
	}
	got, err := checkFiles(f, files)
	if err != nil {
		return fmt.Errorf("form %s: %w", info.Key(), err)
	}
	if !slices.Equal(got, info.Files) {
		return fmt.Errorf("form %s: the attachments do not match the version's list", info.Key())
	}
	_, _, err = r.put(ctx, f, xlsx, files, info, nil)
	return err
}

func (r *Registry) put(ctx context.Context, f *Form, xlsx []byte, files []File, info Info, also func(syncengine.Tx, Info) error) (Info, bool, error) {
	key := f.Key()
	f.Project = info.Project
	created := true
	stored, err := r.keepLarge(ctx, xlsx)
	if err != nil {
		return Info{}, false, fmt.Errorf("form %s: %w", key, err)
	}
	if r.files != nil {
		for _, file := range files { // first: a version never names a file not kept
			if err := r.files.PutBytes(ctx, file.Data); err != nil {
				return Info{}, false, fmt.Errorf("form %s: attachment %s: %w", key, file.Name, err)
			}
		}
	}
	err = r.store.Update(ctx, func(tx syncengine.Tx) error {
		old, err := tx.Meta(metaFormInfo + key)
		if err == nil {
			var prev Info
			if err := json.Unmarshal(old, &prev); err != nil {
				return fmt.Errorf("form %s: %w", key, syncengine.ErrCorrupt)
			}
			if prev.SHA256 != info.SHA256 || prev.Project != info.Project || !slices.Equal(prev.Files, info.Files) {
				return fmt.Errorf("form %s: %w: raise the version on the settings sheet", key, ErrExists)
			}
			info, created = prev, false
			return nil
		}
		if !errors.Is(err, syncengine.ErrNotFound) {
			return err
		}
		b, err := json.Marshal(info)
		if err != nil {
			return err
		}
		if err := tx.SetMeta(metaFormFile+key, stored); err != nil {
			return err
		}
		for _, file := range files { // content-addressed: a file two versions share is kept once
			if r.files != nil {
				break
			}
			sum := sha256.Sum256(file.Data)
			if err := tx.SetMeta(metaAttachment+hex.EncodeToString(sum[:]), file.Data); err != nil {
				return err
			}
		}
		if err := tx.SetMeta(metaFormInfo+key, b); err != nil {
			return err
		}
		if also != nil {
			return also(tx, info)
		}
		return nil
	})
	if err != nil {
		return Info{}, false, err
	}
	if err := r.loadFileChoices(ctx, f, info); err != nil {
		return Info{}, false, err
	}
	r.mu.Lock()
	r.cache[key] = f
	if created {
		r.digest = ""
	}
	r.mu.Unlock()
	return info, created, nil
}

// Digest summarizes the stored versions: it changes whenever one is added.
func (r *Registry) Digest(ctx context.Context) (string, error) {
	r.mu.Lock()
	d := r.digest
	r.mu.Unlock()
	if d != "" {
		return d, nil
	}
	all, err := r.List(ctx)
	if err != nil {
		return "", err
	}
	keys := make([]string, len(all))
	for i, info := range all {
		keys[i] = info.Key() + " " + info.SHA256
	}
	sort.Strings(keys)
	sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	d = hex.EncodeToString(sum[:8])
	r.mu.Lock()
	r.digest = d
	r.mu.Unlock()
	return d, nil
}

// List returns every stored form version, newest publication first.
func (r *Registry) List(ctx context.Context) ([]Info, error) {
	var out []Info
	err := r.store.View(ctx, func(tx syncengine.ReadTx) error {
		return tx.ScanMeta(metaFormInfo, func(_ string, v []byte) error {
			var i Info
			if err := json.Unmarshal(v, &i); err != nil {
				return fmt.Errorf("form info: %w", syncengine.ErrCorrupt)
			}
			out = append(out, i)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].PublishedAt != out[j].PublishedAt {
			return out[i].PublishedAt > out[j].PublishedAt
		}
		return out[i].Key() < out[j].Key()
	})
	return out, err
}

// Get returns a stored form version's description and file.
func (r *Registry) Get(ctx context.Context, id, version string) (Info, []byte, error) {
	key := id + "@" + version
	var info Info
	var file []byte
	err := r.store.View(ctx, func(tx syncengine.ReadTx) error {
		b, err := tx.Meta(metaFormInfo + key)
		if errors.Is(err, syncengine.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrUnknownForm, key)
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &info); err != nil {
			return fmt.Errorf("form info: %w", syncengine.ErrCorrupt)
		}
		file, err = tx.Meta(metaFormFile + key)
		return err
	})
	if sha, ok := bytes.CutPrefix(file, filePointer); ok && err == nil {
		file, err = r.files.Bytes(ctx, string(sha))
	}
	return info, file, err
}

// filePointer begins the stored value of a form file kept in the
// FileStore (followed by its hex SHA-256): no workbook or XForm begins so.
var filePointer = []byte("\x00tessera-file:")

// largeForm: a form file over this goes to the FileStore, when there is
// one (a device's store takes no value over 4 MiB; a workbook with a long
// external_choices sheet can be larger).
const largeForm = 1 << 20

// keepLarge returns what to store for a form's file: the file, or a
// pointer to it once kept in the FileStore.
func (r *Registry) keepLarge(ctx context.Context, file []byte) ([]byte, error) {
	if r.files == nil || len(file) <= largeForm {
		return file, nil
	}
	if err := r.files.PutBytes(ctx, file); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(file)
	return append(slices.Clone(filePointer), hex.EncodeToString(sum[:])...), nil
}

// Form returns the parsed form a record names ("form_id@version"; a bare
// form_id means its latest version).
func (r *Registry) Form(ctx context.Context, key string) (*Form, error) {
	if !strings.Contains(key, "@") {
		info, err := r.Latest(ctx, key)
		if err != nil {
			return nil, err
		}
		key = info.Key()
	}
	r.mu.Lock()
	f := r.cache[key]
	r.mu.Unlock()
	if f != nil {
		return f, nil
	}
	id, version, _ := strings.Cut(key, "@")
	info, file, err := r.Get(ctx, id, version)
	if err != nil {
		return nil, err
	}
	if f, err = Parse(file, id); err != nil {
		return nil, fmt.Errorf("stored form %s: %w", key, err)
	}
	f.Project = info.Project
	if err := r.loadFileChoices(ctx, f, info); err != nil {
		return nil, fmt.Errorf("stored form %s: %w", key, err)
	}
	r.mu.Lock()
	r.cache[key] = f
	r.mu.Unlock()
	return f, nil
}

// ProjectIn returns the project of a form a record names, read through tx
// (inside a caller's transaction): "" for a form published for every
// project, or for one not published here (found false). A bare form id
// goes by its versions, which are all of one project.
func ProjectIn(tx syncengine.ReadTx, key string) (project string, found bool, err error) {
	decode := func(v []byte) error {
		var i Info
		if err := json.Unmarshal(v, &i); err != nil {
			return fmt.Errorf("form %s: %w", key, syncengine.ErrCorrupt)
		}
		project, found = i.Project, true
		return nil
	}
	if strings.Contains(key, "@") {
		v, err := tx.Meta(metaFormInfo + key)
		if errors.Is(err, syncengine.ErrNotFound) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		return project, found, decode(v)
	}
	err = tx.ScanMeta(metaFormInfo+key+"@", func(_ string, v []byte) error {
		if err := decode(v); err != nil {
			return err
		}
		return syncengine.ErrStop
	})
	if errors.Is(err, syncengine.ErrStop) {
		err = nil
	}
	return project, found, err
}

// Latest returns the most recently published version of a form id.
func (r *Registry) Latest(ctx context.Context, id string) (Info, error) {
	all, err := r.List(ctx)
	if err != nil {
		return Info{}, err
	}
	for _, i := range all {
		if i.ID == id {
			return i, nil
		}
	}
	return Info{}, fmt.Errorf("%w: %s", ErrUnknownForm, id)
}
