package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/xuri/excelize/v2"

	"github.com/tessera-survey/tessera/forms"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/media/mediatest"
	"github.com/tessera-survey/tessera/server"
)

// TestFormAttachments (issue 15): a form whose choices come from a CSV is
// refused without that file (naming the row and the file), published with
// it (surveyctl, from a folder too), and reaches devices with it: the
// device offers the file's choices and checks answers against them.
func TestFormAttachments(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	xlsx := xlsxRows(t, "camps", "1", [][]string{{"type", "name", "label"},
		{"select_one_from_file camps.csv", "camp", "Camp"}, {"text", "note", "Note"}})
	csv := []byte("name,label::English (en),label::Français (fr)\nkakuma,Kakuma,Kakuma\ndadaab,Dadaab,Dadaab\n")
	cl, err := wire.Dial(srv.URL, nil)
	must(t, err)
	defer cl.Close()
	_, err = cl.Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: xlsx})
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "camps.csv") || !strings.Contains(err.Error(), "row : 2") {
		t.Fatalf("published without its choices file: %v", err)
	}
	_, err = cl.Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: xlsx, Files: []*tesserav1.FormFile{{Name: "camps.csv", Data: csv}, {Name: "other.csv", Data: csv}}})
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("published with a file the form does not name: %v", err)
	}

	// From a folder, with surveyctl: the file the form names is sent.
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "camps.xlsx"), xlsx, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "camps.csv"), csv, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "README.txt"), []byte("notes"), 0o600))
	if out := surveyctl(t, srv.URL, nil, "form", "publish", dir); !strings.Contains(out, "1 attachments") {
		t.Fatalf("surveyctl form publish FOLDER: %s", out)
	}

	d := newDevice(t, srv.URL)
	mustSync(t, d)
	f, err := d.Forms().Form(ctx, "camps@1")
	must(t, err)
	q := f.QuestionAt("camp")
	if cs := f.ChoicesFor(q); len(cs) != 2 || cs[0].Name != "kakuma" || cs[1].Label.In("Français (fr)", "") != "Dadaab" {
		t.Fatalf("the device's choices from the file: %+v", cs)
	}
	now := srv.Replica().Now
	in := forms.NewInstance(f, forms.Answers{"camp": fw("camp", "dadaab")[0].Value}, now)
	if vs := in.Validate(""); len(vs) != 0 {
		t.Fatalf("a choice of the file refused: %+v", vs)
	}
	in = forms.NewInstance(f, forms.Answers{"camp": fw("camp", "nairobi")[0].Value}, now)
	if vs := in.Validate(""); len(vs) != 1 || vs[0].Code != "choice" {
		t.Fatalf("a choice not in the file: %+v", vs)
	}
}

// formFile downloads a form version's attachment through GetMedia.
func formFile(cl *wire.Client, key, sha string) ([]byte, error) {
	raw, _ := hex.DecodeString(sha)
	stream, err := cl.Media().GetMedia(context.Background(), &tesserav1.GetMediaRequest{Form: key, Sha256: raw})
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	var b bytes.Buffer
	for {
		m, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return b.Bytes(), nil
		}
		if err != nil {
			return b.Bytes(), err
		}
		b.Write(m.Data)
	}
}

func sha(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// TestFormMediaByChunk (issue 16): a form's attachments (a label image
// over several chunks, a choices file) reach devices through the media
// transfer, into the device's media store; whoever may read the form may
// fetch them, nobody else; a device from before asks for them inline and
// still gets them.
func TestFormMediaByChunk(t *testing.T) {
	ctx := context.Background()
	ts := newTrustServer(t)
	image := append([]byte("MAP-MARKER"), mediatest.Data(7, 3*media.ChunkSize+5)...)
	csv := []byte("name,label\nkakuma,Kakuma\ndadaab,Dadaab\n")
	xlsx := xlsxRows(t, "camps", "1", [][]string{{"type", "name", "label", "media::image"},
		{"select_one_from_file camps.csv", "camp", "Camp", "map.jpg"}})
	_, err := ts.rpc["a-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: xlsx, Project: "A",
		Files: []*tesserav1.FormFile{{Name: "camps.csv", Data: csv}, {Name: "map.jpg", Data: image}}})
	must(t, err)

	d := ts.enrolledDevice(t, "A")
	mustSync(t, d)
	f, err := d.Forms().Form(ctx, "camps@1")
	must(t, err)
	if cs := f.ChoicesFor(f.QuestionAt("camp")); len(cs) != 2 {
		t.Fatalf("the device's choices from the file: %+v", cs)
	}
	for _, want := range [][]byte{image, csv} {
		r, err := d.Media().Open(ctx, sha(want))
		must(t, err)
		got, err := io.ReadAll(r)
		must(t, err)
		if !bytes.Equal(got, want) {
			t.Fatalf("the device's media store holds %d bytes for a %d-byte attachment", len(got), len(want))
		}
	}

	// Who may fetch them: the form's readers.
	for user, ok := range map[string]bool{"a-lead": true, "a-analyst": true, "b-lead": false, "b-analyst": false} {
		got, err := formFile(ts.rpc[user], "camps@1", sha(image))
		if ok != (err == nil) || (ok && !bytes.Equal(got, image)) {
			t.Errorf("%s: %d bytes, %v", user, len(got), err)
		}
		if !ok && (connect.CodeOf(err) != connect.CodeNotFound || bytes.Contains(got, []byte("MAP-MARKER"))) {
			t.Errorf("%s: %v, want NotFound and no bytes", user, err)
		}
	}
	// Only the version's own files, named by that version.
	if _, err := formFile(ts.rpc["a-lead"], "camps@2", sha(image)); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("an unknown version: %v", err)
	}
	if _, err := formFile(ts.rpc["a-lead"], "camps@1", sha([]byte("other"))); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("a file the version does not name: %v", err)
	}
	if _, err := formFile(ts.rpc["a-lead"], "camps", sha(image)); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a form key without a version: %v", err)
	}

	// Old devices: the files inline; new ones: none inline.
	old, err := ts.rpc["a-lead"].Forms().GetForm(ctx, &tesserav1.GetFormRequest{FormId: "camps", Version: "1"})
	must(t, err)
	if len(old.Files) != 2 || !bytes.Equal(old.Files[1].Data, image) && !bytes.Equal(old.Files[0].Data, image) {
		t.Fatalf("inline files for an old device: %d", len(old.Files))
	}
	now, err := ts.rpc["a-lead"].Forms().GetForm(ctx, &tesserav1.GetFormRequest{FormId: "camps", Version: "1", FilesByChunk: true})
	must(t, err)
	if len(now.Files) != 0 || len(now.Form.Files) != 2 {
		t.Fatalf("by chunk: %d files inline, %d listed", len(now.Files), len(now.Form.Files))
	}
}

// TestFormMediaThroughCuts (issue 16): a device fetching a form whose
// label image is 6 MB over a link cut every megabyte resumes from the
// chunks it holds and ends with the file whole.
func TestFormMediaThroughCuts(t *testing.T) {
	ctx := context.Background()
	srv, err := server.New(ctx, server.Config{DataDir: t.TempDir()})
	must(t, err)
	defer srv.Close()
	var written atomic.Int64
	h := srv.Handler()
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/GetMedia") {
			w = countingWriter{w, &written}
		}
		h.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go hs.Serve(ln)
	defer hs.Close()
	image := mediatest.Data(9, 6<<20)
	xlsx := xlsxRows(t, "maps", "1", [][]string{{"type", "name", "label", "media::image"}, {"note", "n", "Where", "map.jpg"}})
	if _, _, err := srv.Forms().PublishWith(ctx, xlsx, []forms.File{{Name: "map.jpg", Data: image}}, "", "", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, ln.Addr().String(), func() int64 { return 1 << 20 })
	d := newDevice(t, proxy.URL())
	failures := 0
	for {
		_, err := d.Sync(ctx, "", nil)
		if err == nil {
			break
		}
		if failures++; failures > 100 {
			t.Fatalf("never got through: %v", err)
		}
	}
	r, err := d.Media().Open(ctx, sha(image))
	must(t, err)
	got, err := io.ReadAll(r)
	must(t, err)
	if !bytes.Equal(got, image) {
		t.Fatalf("%d bytes on the device, not the image", len(got))
	}
	if _, err := d.Forms().Form(ctx, "maps@1"); err != nil {
		t.Fatal(err)
	}
	// What reached the device: the file, plus at most the chunk each cut
	// broke (and the rest of the sync: small).
	cuts, down := proxy.cuts.Load(), proxy.down.Load()
	t.Logf("%d cuts, %d sync failures; the device received %d bytes for a %d-byte file (the server wrote %d into the link)",
		cuts, failures, down, len(image), written.Load())
	if cuts < 3 {
		t.Fatalf("the proxy cut %d times: the test proved nothing", cuts)
	}
	if limit := int64(len(image)) + cuts*(media.ChunkSize+16<<10) + 256<<10; down > limit {
		t.Fatalf("the device received %d bytes, over %d: a resumed download sent again more than the chunk a cut broke", down, limit)
	}
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

func (w countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// TestLargeFormReachesDevice: a workbook over the 4 MiB a device's store
// takes as one value (a long external_choices sheet, as village lists
// are) is kept in the device's media store and its choices are offered.
func TestLargeFormReachesDevice(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "survey")
	f.SetSheetRow("survey", "A1", &[]string{"type", "name", "label"})
	f.SetSheetRow("survey", "A2", &[]string{"select_one_external villages", "village", "Village"})
	f.NewSheet("external_choices")
	sw, err := f.NewStreamWriter("external_choices")
	must(t, err)
	must(t, sw.SetRow("A1", []any{"list_name", "name", "label", "district"}))
	const n = 40_000
	data := mediatest.Data(3, n*100)
	for i := range n {
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		b := data[i*100 : i*100+100]
		must(t, sw.SetRow(cell, []any{"villages", fmt.Sprintf("v%d", i), hex.EncodeToString(b[:50]), hex.EncodeToString(b[50:])}))
	}
	must(t, sw.Flush())
	f.NewSheet("settings")
	f.SetSheetRow("settings", "A1", &[]string{"form_id", "version"})
	f.SetSheetRow("settings", "A2", &[]string{"villages", "1"})
	var buf bytes.Buffer
	must(t, f.Write(&buf))
	if buf.Len() < 9<<19 {
		t.Fatalf("the workbook is only %d bytes: the test proves nothing", buf.Len())
	}
	if _, _, err := srv.Forms().Publish(ctx, buf.Bytes(), "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, srv.URL)
	mustSync(t, d)
	form, err := d.Forms().Form(ctx, "villages@1")
	must(t, err)
	if cs := form.ChoicesFor(form.QuestionAt("village")); len(cs) != n || cs[n-1].Name != fmt.Sprintf("v%d", n-1) {
		t.Fatalf("%d villages on the device", len(cs))
	}
	t.Logf("a %.1f MB workbook reached the device", float64(buf.Len())/(1<<20))
}
