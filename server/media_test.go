package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/fieldapp"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/media/mediatest"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

// mediaForm: a photo, a sensitive audio answer and a text question.
func mediaForm(t *testing.T) []byte {
	return xlsxRows(t, "photos", "1", [][]string{{"type", "name", "label", "sensitive"},
		{"image", "photo", "Photo", ""}, {"audio", "consent", "Consent", "yes"}, {"text", "note", "Note", ""}})
}

// attach stores data on d as the answer to field of record id.
func attach(t *testing.T, d *fieldapp.Device, id syncengine.RecordID, field, name string, data []byte) media.Ref {
	t.Helper()
	w, err := d.Attach(context.Background(), id, name, bytes.NewReader(data))
	must(t, err)
	w.Name = field
	must(t, d.Set(context.Background(), id, []syncengine.FieldWrite{w}))
	r, err := media.ParseRef(w.Value.Str)
	must(t, err)
	return r
}

func listMedia(t *testing.T, c *wire.Client, form string) ([]*tesserav1.MediaFile, error) {
	stream, err := c.Media().ListMedia(context.Background(), &tesserav1.ListMediaRequest{FormId: form})
	must(t, err)
	var out []*tesserav1.MediaFile
	for {
		m, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m.Files...)
	}
}

func download(c *wire.Client, id syncengine.RecordID, r media.Ref) ([]byte, error) {
	var b bytes.Buffer
	_, _, err := wire.Download(context.Background(), c, id, r.SHA256, 0, &b)
	return b.Bytes(), err
}

// TestMediaSync: files answers name reach the server after their records,
// once (deduplicated), and leave it only for those who may read them:
// sensitive answers' files for leads, nothing for another project's
// principals or devices.
func TestMediaSync(t *testing.T) {
	ctx := context.Background()
	ts := newTrustServer(t)
	_, err := ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: mediaForm(t), Project: "A"})
	must(t, err)
	d := ts.enrolledDevice(t, "A")
	mustSync(t, d)
	id, err := d.Create(ctx, d.FormKey(ctx, "photos"), fw("note", "n"))
	must(t, err)
	photo := append([]byte("PHOTO-MARKER"), mediatest.Data(1, 3*media.ChunkSize+100)...)
	consent := append([]byte("CONSENT-MARKER"), mediatest.Data(2, 5000)...)
	pr := attach(t, d, id, "photo", "shelter.jpg", photo)
	cr := attach(t, d, id, "consent", "consent.m4a", consent)

	res := mustSync(t, d)
	if res.Media.Files != 2 || res.Media.Bytes != int64(len(photo)+len(consent)) {
		t.Fatalf("first sync: %+v", res.Media)
	}
	if res = mustSync(t, d); res.Media.Files != 0 || res.Media.Bytes != 0 {
		t.Fatalf("second sync sent files again: %+v", res.Media)
	}
	// The same photo on another record costs nothing.
	id2, err := d.Create(ctx, d.FormKey(ctx, "photos"), nil)
	must(t, err)
	attach(t, d, id2, "photo", "again.jpg", photo)
	if res = mustSync(t, d); res.Media.Files != 1 || res.Media.Bytes != 0 {
		t.Fatalf("a file the server holds was sent again: %+v", res.Media)
	}

	// Who receives what.
	for _, c := range []struct {
		user          string
		photo, secret bool
	}{{"a-lead", true, true}, {"a-analyst", true, false}, {"b-lead", false, false}, {"b-analyst", false, false}} {
		cl := ts.rpc[c.user]
		got, err := download(cl, id, pr)
		if c.photo != (err == nil) || (err == nil && !bytes.Equal(got, photo)) {
			t.Errorf("%s: photo: %d bytes, %v", c.user, len(got), err)
		}
		got, err = download(cl, id, cr)
		if c.secret != (err == nil) || (err == nil && !bytes.Equal(got, consent)) {
			t.Errorf("%s: sensitive audio: %d bytes, %v", c.user, len(got), err)
		}
		if err != nil && connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("%s: %v, want PermissionDenied", c.user, err)
		}
		files, err := listMedia(t, cl, "photos")
		if !c.photo {
			if connect.CodeOf(err) != connect.CodePermissionDenied || len(files) > 0 {
				t.Errorf("%s lists another project's files: %v %v", c.user, files, err)
			}
			continue
		}
		must(t, err)
		want := 2
		if c.secret {
			want = 3
		}
		if len(files) != want {
			t.Errorf("%s: %d files listed, want %d", c.user, len(files), want)
		}
		for _, f := range files {
			if !f.Held || (f.Field == "consent") != (hex.EncodeToString(f.Sha256) == cr.SHA256) || (!c.secret && f.Field == "consent") {
				t.Errorf("%s: listed %v", c.user, f)
			}
		}
	}

	// The console: a thumbnail and a download for the photo; the sensitive
	// audio's player only for the lead.
	for _, c := range []struct {
		user   string
		status int
		secret bool
	}{{"a-lead", 200, true}, {"a-analyst", 200, false}, {"b-lead", 403, false}} {
		cc, _ := consoleClient(t, ts.testServer, c.user, c.user+"'s long password")
		page := httpBody(t, cc, http.MethodGet, ts.URL+"/console/records/"+id.String(), "", nil, c.status)
		photoURL := "/console/records/" + id.String() + "/media/" + pr.SHA256
		consentURL := "/console/records/" + id.String() + "/media/" + cr.SHA256
		if c.status != 200 {
			httpBody(t, cc, http.MethodGet, ts.URL+photoURL, "", nil, http.StatusForbidden)
			continue
		}
		if !strings.Contains(page, `<img class="thumb" src="`+photoURL+`"`) || strings.Contains(page, consentURL) != c.secret ||
			strings.Contains(page, `<audio controls preload="none" src="`+consentURL) != c.secret {
			t.Errorf("%s: the record page's media:\n%s", c.user, page)
		}
		if got := httpBody(t, cc, http.MethodGet, ts.URL+photoURL, "", nil, 200); got != string(photo) {
			t.Errorf("%s: the console's photo differs (%d bytes)", c.user, len(got))
		}
		want := http.StatusForbidden
		if c.secret {
			want = 200
		}
		httpBody(t, cc, http.MethodGet, ts.URL+consentURL, "", nil, want)
	}

	// A device of project B may neither read nor write A's files.
	db := ts.enrolledDevice(t, "B")
	mustSync(t, db)
	bc, err := db.Dial(ctx, ts.URL)
	must(t, err)
	if _, err := download(bc, id, pr); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("B's device downloads A's photo: %v", err)
	}
	m, err := d.Media().Manifest(ctx, pr.SHA256)
	must(t, err)
	if _, err := wire.Upload(ctx, bc, d.Media(), id, m, nil); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("B's device uploads to A's record: %v", err)
	}
	// A's own device: a file no answer names is refused before any chunk.
	ac, err := d.Dial(ctx, ts.URL)
	must(t, err)
	stray, err := d.Media().Add(ctx, strings.NewReader("not named by any answer"), 0)
	must(t, err)
	if _, err := wire.Upload(ctx, ac, d.Media(), id, stray, nil); !errors.Is(err, wire.ErrNotNamed) {
		t.Errorf("a file no answer names: %v", err)
	}
	// A chunk altered on the way is refused.
	id3, err := d.Create(ctx, d.FormKey(ctx, "photos"), nil)
	must(t, err)
	attach(t, d, id3, "photo", "p3.jpg", mediatest.Data(3, 1000))
	mustSync(t, d)
	id4, err := d.Create(ctx, d.FormKey(ctx, "photos"), nil)
	must(t, err)
	r4 := attach(t, d, id4, "photo", "p4.jpg", mediatest.Data(4, 1000))
	_, err = d.Replica().Sync(ctx, ac, syncengine.SyncOptions{}) // the record only
	must(t, err)
	m4, _ := d.Media().Manifest(ctx, r4.SHA256)
	_, err = ac.Media().StartUpload(ctx, &tesserav1.StartUploadRequest{Record: id4.String(), Sha256: raw(m4.SHA256), Size: m4.Size, Chunks: [][]byte{raw(m4.Chunks[0])}})
	must(t, err)
	bad, _ := d.Media().Chunk(ctx, m4, 0)
	bad = bytes.Clone(bad)
	bad[0] ^= 1
	if _, err := ac.Media().PutChunk(ctx, &tesserav1.PutChunkRequest{Record: id4.String(), Sha256: raw(m4.SHA256), Data: bad, Last: true}); connect.CodeOf(err) != connect.CodeDataLoss {
		t.Errorf("altered chunk: %v", err)
	}
	if res := mustSync(t, d); res.Media.Files != 1 {
		t.Errorf("after a refused chunk the file did not arrive: %+v", res.Media)
	}
	if got, err := download(ts.rpc["a-lead"], id4, r4); err != nil || !bytes.Equal(got, mediatest.Data(4, 1000)) {
		t.Errorf("file after a refused chunk: %v", err)
	}
}

func raw(h string) []byte { b, _ := hex.DecodeString(h); return b }

// TestMediaSyncThroughCuts cuts each connection after 1 MB while 20 photos
// of 1 MB sync: each arrives whole and once, and at most one chunk per cut
// is sent again.
func TestMediaSyncThroughCuts(t *testing.T) {
	ctx := context.Background()
	srv, err := server.New(ctx, server.Config{DataDir: t.TempDir()})
	must(t, err)
	defer srv.Close()
	var puts atomic.Int64
	h := srv.Handler()
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/PutChunk") {
			puts.Add(1)
		}
		h.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go hs.Serve(ln)
	defer hs.Close()
	proxy := newCutProxy(t, ln.Addr().String(), func() int64 { return 1 << 20 })
	d := newDevice(t, proxy.URL())
	const n, size = 20, 1 << 20
	refs := map[syncengine.RecordID]media.Ref{}
	seeds := map[syncengine.RecordID]uint64{}
	for i := range n {
		id, err := d.Create(ctx, "photos@1", nil)
		must(t, err)
		seeds[id] = uint64(100 + i)
		refs[id] = attach(t, d, id, "photo", "p.jpg", mediatest.Data(seeds[id], size))
	}
	failures := 0
	for {
		_, err := d.Sync(ctx, "", nil)
		if err == nil {
			break
		}
		if failures++; failures > 200 {
			t.Fatalf("never got through: %v", err)
		}
	}
	for id, r := range refs {
		f, rd, err := srv.Service().OpenMedia(ctx, auth.Principal{}, id, r.SHA256)
		must(t, err)
		got, err := io.ReadAll(rd)
		must(t, err)
		if f.Ref != r || !bytes.Equal(got, mediatest.Data(seeds[id], size)) {
			t.Errorf("record %s: %d bytes arrived, not the file", id, len(got))
		}
	}
	chunks := int64(n * size / media.ChunkSize)
	cuts := proxy.cuts.Load()
	resent := puts.Load() - chunks
	t.Logf("%d cuts, %d sync failures, %d chunk requests for %d chunks", cuts, failures, puts.Load(), chunks)
	if cuts < 5 || failures == 0 {
		t.Fatalf("the proxy cut %d times: the test proved nothing", cuts)
	}
	if resent > cuts {
		t.Fatalf("%d chunks sent again for %d cuts", resent, cuts)
	}
}

func submitFiles(t *testing.T, url string, xml []byte, files map[string][]byte) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("xml_submission_file", "submission.xml")
	w.Write(xml)
	for name, data := range files {
		w, _ := mw.CreateFormFile(name, name)
		w.Write(data)
	}
	mw.Close()
	res, err := http.Post(url+"/submission?deviceID=collect:abc", mw.FormDataContentType(), &body)
	must(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestOpenRosaAttachments (issue 17 with 16): the files a Collect
// submission carries go into the media store and its answers name them;
// a submission split over two requests gets its second file on the second;
// an edit that does not send a file again keeps it; the files export.
func TestOpenRosaAttachments(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	_, err := ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: mediaForm(t), Project: "A"})
	must(t, err)
	cd, err := ts.rpc["a-lead"].Admin().CreateCollectDevice(ctx, &tesserav1.CreateCollectDeviceRequest{Project: "A", Name: "Collect"})
	must(t, err)
	base := ts.URL + "/key/" + cd.Token
	xml := func(id, deprecated, note string) []byte {
		s := `<?xml version="1.0"?><data id="photos" version="1"><photo>1764650000123.jpg</photo><consent>1764650000456.m4a</consent>` +
			"<note>" + note + "</note><meta><instanceID>" + id + "</instanceID>"
		if deprecated != "" {
			s += "<deprecatedID>" + deprecated + "</deprecatedID>"
		}
		return []byte(s + "</meta></data>")
	}
	photo, audio := mediatest.Data(11, 2*media.ChunkSize+3), mediatest.Data(12, 1234)
	first := xml("uuid:aaaaaaaa-0000-4000-8000-000000000001", "", "n1")
	if code, body := submitFiles(t, base, first, map[string][]byte{"1764650000123.jpg": photo}); code != http.StatusCreated {
		t.Fatalf("first part: %d %s", code, body)
	}
	var id syncengine.RecordID
	for rid := range states(t, ts.Replica()) {
		id = rid
	}
	answer := func(field string) media.Ref {
		rec, err := ts.Replica().Record(ctx, id)
		must(t, err)
		r, err := media.ParseRef(rec.Values()[field].String())
		must(t, err)
		return r
	}
	if r := answer("photo"); r.SHA256 == "" || r.Name != "1764650000123.jpg" || answer("consent").SHA256 != "" {
		t.Fatalf("after the first part: photo %+v, consent %+v", r, answer("consent"))
	}
	if code, body := submitFiles(t, base, first, map[string][]byte{"1764650000456.m4a": audio}); code != http.StatusCreated {
		t.Fatalf("second part: %d %s", code, body)
	}
	if answer("consent").SHA256 == "" {
		t.Fatal("the second part's file is not named by its answer")
	}
	n := logLen(t, ts.Replica())
	if code, _ := submitFiles(t, base, first, map[string][]byte{"1764650000456.m4a": audio}); code != http.StatusCreated || logLen(t, ts.Replica()) != n {
		t.Fatalf("the same part again wrote: %d, log %d → %d", code, n, logLen(t, ts.Replica()))
	}
	for field, want := range map[string][]byte{"photo": photo, "consent": audio} {
		got, err := download(ts.rpc["a-lead"], id, answer(field))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v", field, len(got), err)
		}
	}
	// An edit without the files keeps them.
	edit := xml("uuid:aaaaaaaa-0000-4000-8000-000000000002", "uuid:aaaaaaaa-0000-4000-8000-000000000001", "n2")
	if code, body := submitFiles(t, base, edit, nil); code != http.StatusCreated {
		t.Fatalf("edit: %d %s", code, body)
	}
	if rec, _ := ts.Replica().Record(ctx, id); rec.Values()["note"].String() != "n2" || answer("photo").SHA256 == "" || len(rec.Conflicts()) > 0 {
		t.Fatalf("after the edit: %v", rec.Values())
	}
	files, err := listMedia(t, ts.rpc["a-analyst"], "photos")
	if err != nil || len(files) != 1 || files[0].Field != "photo" {
		t.Fatalf("analyst's list: %v %v", files, err)
	}

	// A file's end is written with its submission's record: a refused
	// submission keeps no file; one the server had already keeps what it
	// brings, as before.
	held := func(b []byte) bool {
		sum := sha256.Sum256(b)
		ok, err := ts.Service().Media().Has(ctx, hex.EncodeToString(sum[:]))
		must(t, err)
		return ok
	}
	refused, resent := mediatest.Data(13, 5000), mediatest.Data(14, 6000)
	if code, _ := submitFiles(t, base, xml("uuid:aaaaaaaa-0000-4000-8000-000000000001", "", "other"), map[string][]byte{"1764650000123.jpg": refused}); code != http.StatusConflict || held(refused) {
		t.Fatalf("a refused submission: %d, its file held %v", code, held(refused))
	}
	if code, _ := submitFiles(t, base, first, map[string][]byte{"extra.jpg": resent}); code != http.StatusCreated || !held(resent) {
		t.Fatalf("a resent submission: %d, its file held %v", code, held(resent))
	}
}

// TestMediaThroughHub: a photo a device sends to a camp-office hub
// reaches central at the hub's next upstream sync, and is readable there
// by the project's lead only.
func TestMediaThroughHub(t *testing.T) {
	ctx := context.Background()
	central := newTrustServer(t)
	_, err := central.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: mediaForm(t), Project: "A"})
	must(t, err)
	hub := central.startHub(t, central.URL)
	must(t, hub.SyncUpstream(ctx)) // the form comes down
	code, _, err := hub.Auth().NewEnrollmentCode(ctx, "t", "A", "", time.Hour)
	must(t, err)
	d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "dev"), fieldapp.Config{Server: hub.URL, Enroll: code, PIN: testPIN})
	must(t, err)
	defer d.Close()
	mustSync(t, d)
	id, err := d.Create(ctx, d.FormKey(ctx, "photos"), nil)
	must(t, err)
	photo := mediatest.Data(21, media.ChunkSize+77)
	r := attach(t, d, id, "photo", "camp.jpg", photo)
	if res := mustSync(t, d); res.Media.Files != 1 {
		t.Fatalf("device to hub: %+v", res.Media)
	}
	must(t, hub.SyncUpstream(ctx))
	got, err := download(central.rpc["a-lead"], id, r)
	if err != nil || !bytes.Equal(got, photo) {
		t.Fatalf("the photo at central: %d bytes, %v", len(got), err)
	}
	if _, err := download(central.rpc["b-lead"], id, r); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("B's lead reads A's photo at central: %v", err)
	}
	must(t, hub.SyncUpstream(ctx)) // the queue is empty: nothing again
}

// TestMediaSentUncompressed: the server sends files as they are, however
// compressible (photos and videos are compressed already: zstd over them
// only cost the server a core), and the bytes arrive whole.
func TestMediaSentUncompressed(t *testing.T) {
	ctx := context.Background()
	ts := newTrustServer(t)
	_, err := ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: mediaForm(t), Project: "A"})
	must(t, err)
	d := ts.enrolledDevice(t, "A")
	mustSync(t, d)
	id, err := d.Create(ctx, d.FormKey(ctx, "photos"), fw("note", "n"))
	must(t, err)
	file := append([]byte("ZEROS-MARKER"), make([]byte, 2*media.ChunkSize)...)
	ref := attach(t, d, id, "photo", "zeros.jpg", file)
	mustSync(t, d)

	session, err := ts.Auth().Login(ctx, "a-lead", "a-lead's long password")
	must(t, err)
	var n wire.Counter
	cl, err := wire.Dial(ts.URL, &n, wire.WithAuthorization("Bearer "+session))
	must(t, err)
	got, err := download(cl, id, ref)
	must(t, err)
	if !bytes.Equal(got, file) {
		t.Fatalf("downloaded %d bytes, not the file's %d", len(got), len(file))
	}
	if r := n.Received.Load(); r < int64(len(file)) {
		t.Fatalf("%d bytes of a file of %d reached the client: the server compressed it", r, len(file))
	}
}
