package server_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
)

// TestXFormsStayInTheirProject (issue 15): each published version's XForm
// is served with the md5 of exactly its bytes, the same bytes on every
// call, and only to those who may read the form: a lead or analyst of
// another project, and an anonymous caller, get NotFound.
func TestXFormsStayInTheirProject(t *testing.T) {
	ts := newTrustServer(t)
	ctx := context.Background()
	for _, p := range []string{"A", "B"} {
		form := "form_" + strings.ToLower(p)
		if _, err := ts.rpc[strings.ToLower(p)+"-lead"].Forms().PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: markerForm(t, form), Project: p}); err != nil {
			t.Fatal(err)
		}
	}
	anon, err := wire.Dial(ts.URL, nil)
	must(t, err)
	defer anon.Close()
	callers := map[string]*wire.Client{"a-lead": ts.rpc["a-lead"], "a-analyst": ts.rpc["a-analyst"], "b-lead": ts.rpc["b-lead"], "anonymous": anon}
	for who, cl := range callers {
		for _, form := range []string{"form_a", "form_b"} {
			res, err := cl.Forms().GetXForm(ctx, &tesserav1.GetXFormRequest{FormId: form})
			mine := strings.HasPrefix(who, strings.TrimPrefix(form, "form_")+"-")
			if !mine {
				if connect.CodeOf(err) != connect.CodeNotFound && connect.CodeOf(err) != connect.CodeUnauthenticated {
					t.Errorf("%s got %s's XForm: %v", who, form, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %s: %v", who, form, err)
			}
			sum := md5.Sum(res.Xform)
			if res.Md5 != hex.EncodeToString(sum[:]) || !strings.Contains(string(res.Xform), `id="`+form+`"`) {
				t.Fatalf("%s: %s: md5 %s of %d bytes", who, form, res.Md5, len(res.Xform))
			}
			again, err := cl.Forms().GetXForm(ctx, &tesserav1.GetXFormRequest{FormId: form, Version: res.Form.Version})
			if err != nil || again.Md5 != res.Md5 {
				t.Fatalf("%s: %s: a second fetch gave md5 %v (%v)", who, form, again.GetMd5(), err)
			}
		}
	}
	if _, err := ts.rpc["a-lead"].Forms().GetXForm(ctx, &tesserav1.GetXFormRequest{FormId: "form_a", Version: "no-such"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("an unknown version: %v", err)
	}
}
