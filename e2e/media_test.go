package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// photoForm writes an XLSForm with a photo question.
func photoForm(t *testing.T, path string) {
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "survey")
	f.NewSheet("settings")
	for i, r := range [][]string{{"type", "name", "label"}, {"image", "photo", "Photo of the shelter"}, {"text", "note", "Note"}} {
		for j, v := range r {
			cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
			f.SetCellStr("survey", cell, v)
		}
	}
	f.SetCellStr("settings", "A1", "form_id")
	f.SetCellStr("settings", "A2", "shelters")
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}

// markedFile is n random bytes with marker at the start and in the middle.
func markedFile(marker string, seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, marker)
	copy(b[n/2:], marker)
	return b
}

// TestMediaCommandLine: a photo attached with fieldapp record set
// photo=@FILE syncs and comes out of surveyctl export --media byte for
// byte; a second export moves nothing, a replaced photo moves once and
// the old file goes; no file of the device's data folder holds the photo
// in plaintext.
func TestMediaCommandLine(t *testing.T) {
	tmp := t.TempDir()
	srv := startSurveyd(t, filepath.Join(tmp, "srv"), "127.0.0.1:0")
	ctlBin := buildCtl(t)
	ctl := func(args ...string) result {
		cmd := exec.Command(ctlBin, append([]string{"--server", srv.URL}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return result{out.String(), errb.String(), err}
	}
	form := filepath.Join(tmp, "shelters.xlsx")
	photoForm(t, form)
	if r := ctl("form", "publish", form); r.err != nil {
		t.Fatalf("publish: %+v", r)
	}
	dev := filepath.Join(tmp, "dev")
	mustFieldapp(t, dev, "init", "--server", srv.URL)
	mustFieldapp(t, dev, "sync")
	id := strings.TrimSpace(mustFieldapp(t, dev, "record", "new", "shelters", "note=north"))
	const marker = "E2E-PHOTO-MARKER-7f3a"
	photo := markedFile(marker, 1, 600_000)
	src := filepath.Join(tmp, "shelter.jpg")
	os.WriteFile(src, photo, 0o600)
	mustFieldapp(t, dev, "record", "set", id, "photo=@"+src)
	if r := getRecord(t, dev, id); !strings.Contains(fmt.Sprint(r.Fields["photo"].Value), "shelter.jpg") {
		t.Fatalf("the answer does not name the file: %+v", r.Fields["photo"])
	}
	if r := fieldapp(t, dev, "record", "set", id, "photo=@"+filepath.Join(tmp, "absent.jpg")); r.err == nil {
		t.Fatal("attaching a missing file succeeded")
	}
	var res struct {
		Media struct{ Files, Bytes int }
	}
	if err := json.Unmarshal([]byte(mustFieldapp(t, dev, "sync", "--json")), &res); err != nil || res.Media.Files != 1 || res.Media.Bytes != len(photo) {
		t.Fatalf("sync --json media: %+v %v", res, err)
	}
	// The device's data folder holds no plaintext copy.
	filepath.WalkDir(dev, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(marker)) {
				t.Errorf("%s holds the photo in plaintext", path)
			}
		}
		return nil
	})

	out, mediaDir := filepath.Join(tmp, "out"), filepath.Join(tmp, "media")
	r := ctl("export", "--form", "shelters", "--out", out, "--media", mediaDir)
	if r.err != nil || !strings.Contains(r.stdout, "1 written") {
		t.Fatalf("export --media: %+v", r)
	}
	if got, err := os.ReadFile(filepath.Join(mediaDir, id, "shelter.jpg")); err != nil || !bytes.Equal(got, photo) {
		t.Fatalf("exported photo: %d bytes, %v", len(got), err)
	}
	if csv, _ := os.ReadFile(filepath.Join(out, "shelters.csv")); !strings.Contains(string(csv), ",shelter.jpg,") {
		t.Fatalf("the CSV does not name the file:\n%s", csv)
	}
	if r := ctl("export", "--form", "shelters", "--out", out, "--media", mediaDir); r.err != nil || !strings.Contains(r.stdout, "0 written") || !strings.Contains(r.stdout, "1 unchanged") {
		t.Fatalf("second export moved files: %+v", r)
	}
	// Replaced on the device: the new file comes, the old one goes.
	other := markedFile(marker, 2, 300_000)
	src2 := filepath.Join(tmp, "after.jpg")
	os.WriteFile(src2, other, 0o600)
	mustFieldapp(t, dev, "record", "set", id, "photo=@"+src2)
	mustFieldapp(t, dev, "sync")
	if r := ctl("export", "--form", "shelters", "--out", out, "--media", mediaDir); r.err != nil || !strings.Contains(r.stdout, "1 written") || !strings.Contains(r.stdout, "1 removed") {
		t.Fatalf("export after a replaced photo: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(mediaDir, id, "shelter.jpg")); err == nil {
		t.Fatal("the replaced photo is still exported")
	}
	if got, _ := os.ReadFile(filepath.Join(mediaDir, id, "after.jpg")); !bytes.Equal(got, other) {
		t.Fatal("the new photo was not exported")
	}
}
