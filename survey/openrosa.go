package survey

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	"rsc.io/qr"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// Errors of OpenRosa submissions, each with the message a client shows.
var (
	// ErrSubmissionConflict: the instanceID was submitted before with
	// other content, or its record is deleted, or an edit replaces a
	// version that is no longer the newest.
	ErrSubmissionConflict = errors.New("submission conflict")
	// ErrUnknownSubmission: an edit names a deprecatedID never submitted.
	ErrUnknownSubmission = errors.New("unknown submission")
)

// metaSubmission + instanceID → the submission's record and version (JSON).
const metaSubmission = "openrosa.sub/"

type submissionRec struct {
	Record  string            `json:"record"`
	SHA256  string            `json:"sha256"`
	Form    string            `json:"form"`
	Dot     syncengine.Dot    `json:"dot"`
	Context []syncengine.Dot  `json:"context,omitempty"` // what the writer had seen, its own dot included
	Fields  map[string]subVal `json:"fields"`            // the answers, for diffing an edit
	Newest  bool              `json:"newest"`            // not replaced by an edit yet
}

type subVal struct {
	Kind string `json:"k"`
	Text string `json:"v"`
}

// Submitted is what Submit did.
type Submitted struct {
	Record    syncengine.RecordID
	Duplicate bool // the same submission again: nothing new
	Edit      bool
	Written   int  // answers written (an edit writes only what changed)
	staged    bool // the files' staged ends were written with the record
}

// collectLocks serialises one Collect device's submissions: each is a
// change of the device's replica with the next counter.
var collectLocks sync.Map // device id → *sync.Mutex

// Submit takes an OpenRosa submission (ODK Collect, Enketo, Web Forms) from
// a device principal: the instance becomes a change of the device's own
// replica, stamped with its scope by the same rules as a device's push. An
// edit (meta/deprecatedID) writes only the answers that changed, with the
// context of the version it edits, so changes made meanwhile elsewhere
// survive, and one to the same answer is a conflict. The same instanceID
// with the same XML is harmless; with other XML it is refused.
func (s *Service) Submit(ctx context.Context, p auth.Principal, xml []byte, from SubmitFrom) (Submitted, error) {
	res, err := s.submit(ctx, p, xml, from)
	if err == nil && !res.staged {
		// Nothing was written (the server had this submission): keep the
		// files all the same, as a resend of them means to.
		for _, st := range from.Staged {
			if err := s.media.Commit(ctx, st); err != nil {
				return res, err
			}
		}
	}
	if err == nil {
		for _, m := range from.Files {
			if err := s.queueRelay(ctx, res.Record, m.SHA256); err != nil {
				return res, err
			}
		}
	}
	return res, err
}

func (s *Service) submit(ctx context.Context, p auth.Principal, xml []byte, from SubmitFrom) (Submitted, error) {
	if p.Device == nil && p.User == nil {
		return Submitted{}, fmt.Errorf("%w: sign in to submit", auth.ErrUnauthenticated)
	}
	sub, err := forms.ParseSubmission(xml)
	if err != nil {
		return Submitted{}, err
	}
	if sub.Version == "" {
		return Submitted{}, fmt.Errorf("%w: %s without a version", forms.ErrUnknownForm, sub.FormID)
	}
	f, err := s.forms.Form(ctx, sub.FormID+"@"+sub.Version)
	if err != nil {
		return Submitted{}, err
	}
	// A published version never changes project: the parsed form's copy
	// of it spares reading the whole form file per submission.
	info := forms.Info{Project: f.Project}
	if !s.mayReadForm(p, info) {
		return Submitted{}, fmt.Errorf("%w: %s", forms.ErrUnknownForm, sub.FormID)
	}
	if p.Device == nil {
		// An account signed in from Collect (KoboCollect set-ups): an
		// enumerator of the project, its phone a replica of its own,
		// scoped like a device of the project.
		if from.Project == "" || (info.Project != "" && info.Project != from.Project) || !p.Can(from.Project, auth.Enumerator) {
			return Submitted{}, fmt.Errorf("%w: %s is not an enumerator of project %s", auth.ErrDenied, p.User.Name, from.Project)
		}
		p = auth.Principal{Device: accountDevice(p.User.Name, from)}
	}
	mu, _ := collectLocks.LoadOrStore(p.Device.ID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()

	sum := sha256.Sum256(xml)
	sha := hex.EncodeToString(sum[:])
	prev, err := s.submission(ctx, sub.InstanceID)
	if err != nil {
		return Submitted{}, err
	}
	if prev != nil {
		id, err := syncengine.ParseRecordID(prev.Record)
		if err != nil {
			return Submitted{}, fmt.Errorf("submission %s: %w", sub.InstanceID, syncengine.ErrCorrupt)
		}
		if prev.SHA256 != sha {
			return Submitted{}, fmt.Errorf("%w: a different submission was sent before as %s: send this one again as an edit or as a new form", ErrSubmissionConflict, sub.InstanceID)
		}
		if err := s.notDeleted(ctx, id); err != nil {
			return Submitted{}, err
		}
		if done, err := s.completeFiles(ctx, p, f, sub, sha, id, prev, from); err != nil || done.Written > 0 {
			return done, err
		}
		return Submitted{Record: id, Duplicate: true}, nil
	}
	var base *submissionRec
	if sub.DeprecatedID != "" {
		if base, err = s.submission(ctx, sub.DeprecatedID); err != nil {
			return Submitted{}, err
		}
		if base == nil {
			return Submitted{}, fmt.Errorf("%w: the form this one edits (%s) never reached the server", ErrUnknownSubmission, sub.DeprecatedID)
		}
		if !base.Newest {
			return Submitted{}, fmt.Errorf("%w: %s was edited since: edit the newest version", ErrSubmissionConflict, sub.DeprecatedID)
		}
	}
	var id syncengine.RecordID
	if base != nil {
		if id, err = syncengine.ParseRecordID(base.Record); err != nil {
			return Submitted{}, fmt.Errorf("submission %s: %w", sub.DeprecatedID, syncengine.ErrCorrupt)
		}
		if err := s.notDeleted(ctx, id); err != nil {
			return Submitted{}, err
		}
	} else {
		id = syncengine.NewRecordID()
	}
	fields, err := f.SubmissionFields(sub, func(repeat string, i int) string { return instanceKey(id, repeat, i) })
	if err != nil {
		return Submitted{}, err
	}
	fileRefs(f, fields, from.Files, base)
	return s.writeSubmission(ctx, p, f, sub, sha, id, fields, base, sub.DeprecatedID, from.Staged)
}

// fileRefs puts in place of each media answer (a file name, as Collect
// sends it) the reference to the file: one that came with this request,
// else the one the edited submission had under that name. A file not
// received yet stays a bare name until a later request brings it.
func fileRefs(f *forms.Form, fields []syncengine.FieldWrite, files map[string]media.Manifest, base *submissionRec) {
	for i, fw := range fields {
		q := f.Question(forms.Path(fw.Name).Question())
		if q == nil || !q.Kind.IsMedia() || fw.Value.Kind != syncengine.Text {
			continue
		}
		name := fw.Value.Str
		if m, ok := files[name]; ok {
			fields[i].Value = syncengine.TextValue(m.Ref(name).Text())
			continue
		}
		if base == nil {
			continue
		}
		if old, ok := base.Fields[fw.Name]; ok {
			if r, err := media.ParseRef(old.Text); err == nil && r.Name == name && r.SHA256 != "" {
				fields[i].Value = syncengine.TextValue(old.Text)
			}
		}
	}
}

// completeFiles: a submission sent again with files it named but lacked
// (Collect splits large submissions over several requests) writes their
// references, as a change of the same device over what it had written.
func (s *Service) completeFiles(ctx context.Context, p auth.Principal, f *forms.Form, sub *forms.Submission, sha string,
	id syncengine.RecordID, prev *submissionRec, from SubmitFrom) (Submitted, error) {
	files := from.Files
	if len(files) == 0 || !prev.Newest {
		return Submitted{}, nil
	}
	var fields []syncengine.FieldWrite
	changed := false
	for name, v := range prev.Fields {
		fw := syncengine.FieldWrite{Name: name, Value: v.value()}
		if _, ok := files[v.Text]; ok && fw.Value.Kind == syncengine.Text {
			changed = true
		}
		fields = append(fields, fw)
	}
	if !changed {
		return Submitted{}, nil
	}
	slices.SortFunc(fields, func(a, b syncengine.FieldWrite) int { return strings.Compare(a.Name, b.Name) })
	fileRefs(f, fields, files, nil)
	res, err := s.writeSubmission(ctx, p, f, sub, sha, id, fields, prev, "", from.Staged)
	res.Duplicate = true
	return res, err
}

// SubmitFrom is where a submission comes from: the project of the
// OpenRosa URL an account signed in to, and the ?deviceID= Collect names
// its phone by.
type SubmitFrom struct {
	Project, DeviceID string
	// Files are the attachments that came with the submission, already in
	// the media store, by the file name the answers use.
	Files map[string]media.Manifest
	// Staged are the ends of those files (media.Store.AddStaged), written
	// in the submission's own transaction.
	Staged []media.Staged
}

// accountDevice is the device an account's phone submits as: one per
// account and Collect deviceID, its replica's id derived from both.
func accountDevice(user string, from SubmitFrom) *auth.Device {
	sum := sha256.Sum256([]byte("openrosa-account\x00" + user + "\x00" + from.DeviceID))
	id := uuid.UUID(sum[:16])
	id[6] = id[6]&0x0f | 0x80 // version 8: a name-derived id, not a random one
	id[8] = id[8]&0x3f | 0x80
	return &auth.Device{ID: id.String(), Project: from.Project, Name: user + " " + from.DeviceID, Collect: true}
}

// notDeleted refuses a submission whose record was deleted here (a lead
// removed it): re-sending or editing it must not bring it back silently.
func (s *Service) notDeleted(ctx context.Context, id syncengine.RecordID) error {
	rec, err := s.rep.Record(ctx, id)
	if errors.Is(err, syncengine.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if rec.Deleted() {
		return fmt.Errorf("%w: this form was deleted on the server", ErrSubmissionConflict)
	}
	return nil
}

// instanceKey is a repeat instance's stable id: the same record, repeat
// and position give the same key in every submission and edit.
func instanceKey(id syncengine.RecordID, repeat string, i int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", id, repeat, i)))
	return hex.EncodeToString(sum[:4])
}

func (s *Service) submission(ctx context.Context, instanceID string) (*submissionRec, error) {
	var rec *submissionRec
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		b, err := tx.Meta(metaSubmission + instanceID)
		if errors.Is(err, syncengine.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		rec = &submissionRec{}
		if err := json.Unmarshal(b, rec); err != nil {
			return fmt.Errorf("submission %s: %w", instanceID, syncengine.ErrCorrupt)
		}
		return nil
	})
	return rec, err
}

// writeSubmission writes a submission's answers (those that changed from
// base, when it edits one) as the next change of the device's replica, and
// keeps it under its instanceID; replaces, when not "", is the instanceID
// of the version it edits.
func (s *Service) writeSubmission(ctx context.Context, p auth.Principal, f *forms.Form, sub *forms.Submission, sha string,
	id syncengine.RecordID, fields []syncengine.FieldWrite, base *submissionRec, replaces string, staged []media.Staged) (Submitted, error) {
	now := map[string]subVal{}
	for _, fw := range fields {
		now[fw.Name] = subVal{fmt.Sprint(uint8(fw.Value.Kind)), fw.Value.String()}
	}
	writes := fields
	var context syncengine.DotSet
	if base != nil {
		writes = nil
		for _, fw := range fields {
			if old, ok := base.Fields[fw.Name]; !ok || old != now[fw.Name] {
				writes = append(writes, fw)
			}
		}
		for name := range base.Fields {
			if _, ok := now[name]; !ok {
				writes = append(writes, syncengine.FieldWrite{Name: name}) // answered before, cleared in the edit
			}
		}
		context = syncengine.NewDotSet(base.Context...)
	}
	writes = append(writes, syncengine.FieldWrite{Name: syncengine.StatusField, Value: syncengine.TextValue("finalized")})
	rep, err := collectReplica(p.Device)
	if err != nil {
		return Submitted{}, err
	}
	counter, err := s.collectCounter(ctx, rep)
	if err != nil {
		return Submitted{}, err
	}
	counter++
	dot := syncengine.Dot{Replica: rep, Counter: counter}
	change := syncengine.Change{Record: id, Form: f.Key(), Dot: dot, HLC: syncengine.MakeHLC(s.rep.Now().UnixMilli(), 0),
		Context: context, Fields: writes}
	rec := submissionRec{Record: id.String(), SHA256: sha, Form: f.Key(), Dot: dot, Context: context.Add(dot), Fields: now, Newest: true}
	push := syncengine.Push{From: rep, After: 0, Through: counter, Changes: []syncengine.Change{change}}
	_, err = s.push(ctx, p, push, nil, func(tx syncengine.Tx) error {
		if base == nil {
			if r, err := tx.Record(id); err == nil && r != nil {
				return fmt.Errorf("%w: record %s exists", ErrSubmissionConflict, id)
			}
		}
		for _, st := range staged {
			if err := st.Write(tx); err != nil {
				return err
			}
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := tx.SetMeta(metaSubmission+sub.InstanceID, b); err != nil {
			return err
		}
		if replaces != "" {
			old := *base
			old.Newest = false
			ob, err := json.Marshal(old)
			if err != nil {
				return err
			}
			if err := tx.SetMeta(metaSubmission+replaces, ob); err != nil {
				return err
			}
		}
		return tx.SetMeta(metaCollectCounter+rep.String(), []byte(fmt.Sprint(counter)))
	})
	if err != nil {
		s.collectCounters.Delete(rep) // read again: the store decides
		return Submitted{}, err
	}
	s.collectCounters.Store(rep, counter)
	return Submitted{Record: id, Edit: base != nil, Written: len(writes) - 1, staged: true}, nil
}

// metaCollectCounter + replica → the last counter its submissions used.
const metaCollectCounter = "openrosa.counter/"

// collectCounter is the last counter rep's submissions used; the caller
// holds rep's device lock.
func (s *Service) collectCounter(ctx context.Context, rep syncengine.ReplicaID) (uint64, error) {
	if c, ok := s.collectCounters.Load(rep); ok {
		return c.(uint64), nil
	}
	var counter uint64
	err := s.store.View(ctx, func(tx syncengine.ReadTx) error {
		b, err := tx.Meta(metaCollectCounter + rep.String())
		if errors.Is(err, syncengine.ErrNotFound) {
			return nil
		}
		if err == nil {
			_, err = fmt.Sscan(string(b), &counter)
		}
		return err
	})
	return counter, err
}

// collectReplica is a collecting device's replica: its writes carry the
// device's own id, so they merge (and conflict) like any device's.
func collectReplica(d *auth.Device) (syncengine.ReplicaID, error) {
	u, err := uuid.Parse(d.ID)
	if err != nil {
		return syncengine.ReplicaID{}, fmt.Errorf("device %q: %w", d.ID, syncengine.ErrCorrupt)
	}
	return syncengine.ReplicaID(u), nil
}

// subValue reads a stored answer back (for tests and diffs).
// value is the answer v was made from.
func (v subVal) value() syncengine.Value {
	k, _ := strconv.ParseUint(v.Kind, 10, 8)
	switch syncengine.Kind(k) {
	case syncengine.Text:
		return syncengine.TextValue(v.Text)
	case syncengine.Int:
		n, _ := strconv.ParseInt(v.Text, 10, 64)
		return syncengine.IntValue(n)
	case syncengine.Decimal:
		x, _ := strconv.ParseFloat(v.Text, 64)
		return syncengine.DecimalValue(x)
	case syncengine.Bool:
		return syncengine.BoolValue(v.Text == "true")
	}
	return syncengine.Value{}
}

func (v subVal) String() string { return strings.TrimSpace(v.Kind + " " + v.Text) }

// CollectSettings is the settings payload Collect's QR scanner reads:
// base64 of the zlib-compressed JSON.
func CollectSettings(serverURL, project, name string) (string, error) {
	label := project
	if name != "" {
		label = project + " (" + name + ")"
	}
	js, err := json.Marshal(map[string]any{
		"general": map[string]string{"server_url": serverURL, "form_update_mode": "match_exactly", "autosend": "wifi_and_cellular"},
		"admin":   map[string]string{},
		"project": map[string]string{"name": label},
	})
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	z := zlib.NewWriter(&b)
	z.Write(js)
	if err := z.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b.Bytes()), nil
}

// CollectQR is the settings QR code as a PNG.
func CollectQR(serverURL, project, name string) ([]byte, error) {
	s, err := CollectSettings(serverURL, project, name)
	if err != nil {
		return nil, err
	}
	code, err := qr.Encode(s, qr.M)
	if err != nil {
		return nil, err
	}
	return code.PNG(), nil
}
