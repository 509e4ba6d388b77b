package ctl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// mediaStats is what exportMedia did.
type mediaStats struct {
	written, kept, removed, missing int
	bytes                           int64
}

// exportMedia writes the files a form's answers name into dir, as ODK and
// Kobo exports do: DIR/RECORD_ID/FILENAME, the name the answer holds (the
// export's column). Files already there with the same content are left as
// they are (a mirror moves only what changed); files of dir's record
// folders that no answer names any more are removed. Each file streams to
// a ".part" file that resumes after a cut, renamed once whole and checked.
func (c *cli) exportMedia(cl *wire.Client, form, dir string) (mediaStats, error) {
	var st mediaStats
	stream, err := cl.Media().ListMedia(c.ctx, &tesserav1.ListMediaRequest{FormId: form})
	if err != nil {
		return st, fmt.Errorf("media: %w", err)
	}
	var files []*tesserav1.MediaFile
	for {
		m, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("media: %w", err)
		}
		files = append(files, m.Files...)
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].Record != files[j].Record {
			return files[i].Record < files[j].Record
		}
		return files[i].Field < files[j].Field
	})
	want := map[string]bool{} // paths relative to dir
	names := map[string]string{}
	for _, f := range files {
		id, err := syncengine.ParseRecordID(f.Record)
		if err != nil {
			return st, fmt.Errorf("media: %w", err)
		}
		sum := hex.EncodeToString(f.Sha256)
		name := (media.Ref{SHA256: sum, Name: f.Name}).FileName()
		rel := filepath.Join(id.String(), name)
		if other, ok := names[rel]; ok && other != sum {
			rel = filepath.Join(id.String(), sum[:12]+"-"+name) // two answers, one name
		}
		if names[rel] == sum {
			continue // the same file named twice
		}
		names[rel] = sum
		want[rel] = true
		if !f.Held {
			st.missing++
			continue
		}
		path := filepath.Join(dir, rel)
		if same, err := hasContent(path, f.Size, sum); err != nil || same {
			st.kept++
			if err != nil {
				return st, err
			}
			continue
		}
		n, err := fetchFile(c.ctx, cl, id, sum, f.Size, path)
		if err != nil {
			return st, fmt.Errorf("media: %s: %w", rel, err)
		}
		st.written++
		st.bytes += n
	}
	removed, err := prune(dir, want)
	st.removed = removed
	return st, err
}

// hasContent: the file at path has this size and SHA-256.
func hasContent(path string, size int64, sum string) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil || fi.Size() != size {
		return false, err
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == sum, nil
}

// fetchFile downloads a file to path through path.part, resuming from the
// whole chunks a cut left there, and checks it before the rename.
func fetchFile(ctx context.Context, cl *wire.Client, id syncengine.RecordID, sum string, size int64, path string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, err
	}
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	have := fi.Size() / media.ChunkSize
	if have*media.ChunkSize >= size {
		have = 0 // a leftover of another version of the file
	}
	if err := f.Truncate(have * media.ChunkSize); err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return 0, err
	}
	cw := &countWriter{w: f}
	if _, _, err := wire.Download(ctx, cl, id, sum, int(have), cw); err != nil {
		return cw.n, err
	}
	if ok, err := hasContent(part, size, sum); err != nil || !ok {
		os.Remove(part)
		return cw.n, errors.Join(fmt.Errorf("the file downloaded does not match its hash; run again"), err)
	}
	if err := f.Close(); err != nil {
		return cw.n, err
	}
	return cw.n, os.Rename(part, path)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// prune removes the files of dir's record folders that are not wanted (a
// replaced photo, an answer withheld now) and record folders left empty.
// Only folders named as record ids are touched.
func prune(dir string, want map[string]bool) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range ents {
		if _, err := syncengine.ParseRecordID(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			return removed, err
		}
		left := len(files)
		for _, f := range files {
			rel := filepath.Join(e.Name(), f.Name())
			if want[rel] || filepath.Ext(f.Name()) == ".part" {
				continue
			}
			if err := os.Remove(filepath.Join(dir, rel)); err != nil {
				return removed, err
			}
			removed++
			left--
		}
		if left == 0 {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return removed, nil
}
