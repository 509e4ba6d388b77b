package wire

import (
	"context"
	"fmt"
	"io"

	"github.com/tessera-survey/tessera/forms"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/syncengine"
)

// InfoTo converts a form description to its message.
func InfoTo(i forms.Info) *tesserav1.FormInfo {
	m := &tesserav1.FormInfo{FormId: i.ID, Version: i.Version, Title: i.Title, Languages: i.Languages,
		DefaultLanguage: i.DefaultLanguage, Questions: uint32(i.Questions), PublishedAt: i.PublishedAt, Sha256: i.SHA256, Project: i.Project}
	for _, f := range i.Files {
		m.Files = append(m.Files, &tesserav1.FormFileInfo{Name: f.Name, Sha256: f.SHA256, Size: uint64(f.Size)})
	}
	return m
}

// FilesTo and FilesFrom convert attachments.
func FilesTo(fs []forms.File) []*tesserav1.FormFile {
	out := make([]*tesserav1.FormFile, len(fs))
	for i, f := range fs {
		out[i] = &tesserav1.FormFile{Name: f.Name, Data: f.Data}
	}
	return out
}

func FilesFrom(ms []*tesserav1.FormFile) []forms.File {
	out := make([]forms.File, len(ms))
	for i, m := range ms {
		out[i] = forms.File{Name: m.GetName(), Data: m.GetData()}
	}
	return out
}

// InfoFrom converts a form description message.
func InfoFrom(m *tesserav1.FormInfo) forms.Info {
	i := forms.Info{ID: m.GetFormId(), Version: m.GetVersion(), Title: m.GetTitle(), Languages: m.GetLanguages(),
		DefaultLanguage: m.GetDefaultLanguage(), Questions: int(m.GetQuestions()), PublishedAt: m.GetPublishedAt(), SHA256: m.GetSha256(), Project: m.GetProject()}
	for _, f := range m.GetFiles() {
		i.Files = append(i.Files, forms.FileInfo{Name: f.GetName(), SHA256: f.GetSha256(), Size: int(f.GetSize())})
	}
	return i
}

// SyncForms is the forms step after a sync, the same for a device and a
// hub: when the digest the server reported differs from seen (the digest
// of the last fetch), it copies the versions reg lacks. It returns what it
// fetched and the digest to remember (seen again if nothing was fetched).
//
// With ms, attachments move as media do: chunk by chunk into ms, resumed
// from what ms holds after a cut; without, they come inline with the form.
func SyncForms(ctx context.Context, c *Client, reg *forms.Registry, ms *media.Store, st syncengine.ServerState, seen string) ([]string, string, error) {
	if st.FormsDigest == "" || st.FormsDigest == seen {
		return nil, seen, nil
	}
	got, err := FetchForms(ctx, c, reg, ms)
	if err != nil {
		return got, seen, err
	}
	return got, st.FormsDigest, nil
}

// FetchForms copies into reg the server's form versions it lacks (their
// attachments through ms when it is not nil: see SyncForms).
func FetchForms(ctx context.Context, c *Client, reg *forms.Registry, ms *media.Store) ([]string, error) {
	list, err := c.Forms().ListForms(ctx, &tesserav1.ListFormsRequest{})
	if err != nil {
		return nil, fmt.Errorf("list forms: %w", err)
	}
	have, err := reg.List(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, i := range have {
		known[i.Key()+" "+i.SHA256] = true
	}
	var got []string
	for _, m := range list.Forms {
		info := InfoFrom(m)
		if known[info.Key()+" "+info.SHA256] {
			continue
		}
		res, err := c.Forms().GetForm(ctx, &tesserav1.GetFormRequest{FormId: info.ID, Version: info.Version, FilesByChunk: ms != nil})
		if err != nil {
			return got, fmt.Errorf("get form %s: %w", info.Key(), err)
		}
		files := FilesFrom(res.Files)
		if ms != nil {
			if files, err = fetchFormFiles(ctx, c, ms, InfoFrom(res.Form)); err != nil {
				return got, fmt.Errorf("get form %s: %w", info.Key(), err)
			}
		}
		if err := reg.Store(ctx, info, res.Xlsx, files); err != nil {
			return got, err
		}
		got = append(got, info.Key())
	}
	return got, nil
}

// fetchFormFiles brings a version's attachments into ms and reads them
// back for the registry (which parses choices and data files).
func fetchFormFiles(ctx context.Context, c *Client, ms *media.Store, info forms.Info) ([]forms.File, error) {
	files := make([]forms.File, len(info.Files))
	for i, fi := range info.Files {
		if err := FetchFormFile(ctx, c, ms, info.Key(), fi.SHA256); err != nil {
			return nil, fmt.Errorf("attachment %s: %w", fi.Name, err)
		}
		r, err := ms.Open(ctx, fi.SHA256)
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		files[i] = forms.File{Name: fi.Name, Data: data}
	}
	return files, nil
}
