package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/forms"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
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
