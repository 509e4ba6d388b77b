package server_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/gen/tessera/v1/tesserav1connect"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

func formsClient(url string) tesserav1connect.FormServiceClient {
	return tesserav1connect.NewFormServiceClient(connect.NewClient(connecthttp.NewTransport(http.DefaultClient, url)))
}

func sampleForm(t *testing.T) []byte {
	b, err := os.ReadFile("../examples/forms/community-security.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func code(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return 0
}

// TestFormsPublishAndDistribute: a lead publishes the sample form; devices
// receive it when they sync; a record finalized on a device passes the
// server's check, and one that fails it is stored and flagged, not lost.
func TestFormsPublishAndDistribute(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	fc := formsClient(srv.URL)
	xlsx := sampleForm(t)

	res, err := fc.PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: xlsx})
	if err != nil || !res.Created || res.Form.FormId != "community_security" || len(res.Form.Languages) != 5 {
		t.Fatalf("publish: %v %v", res, err)
	}
	if res, err := fc.PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: xlsx}); err != nil || res.Created {
		t.Fatalf("republishing the same file must be harmless: %v %v", res, err)
	}
	other := xlsxBytes(t, "community_security", "2026.11.1", "changed label")
	if _, err := fc.PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: other}); code(err) != connect.CodeAlreadyExists {
		t.Fatalf("same version, other content: %v", err)
	}
	bad := xlsxBytes(t, "broken", "1", "")
	_, err = fc.PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: bad})
	if code(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "[row : 2]") {
		t.Fatalf("invalid form: %v", err)
	}
	if _, err := fc.PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: []byte("no")}); code(err) != connect.CodeInvalidArgument {
		t.Fatalf("not an xlsx: %v", err)
	}
	v2 := xlsxBytes(t, "community_security", "2026.12.1", "v2 label")
	if _, err := fc.PublishForm(ctx, &tesserav1.PublishFormRequest{Xlsx: v2}); err != nil {
		t.Fatal(err)
	}
	list, err := fc.ListForms(ctx, &tesserav1.ListFormsRequest{})
	if err != nil || len(list.Forms) != 2 {
		t.Fatalf("list: %v %v", list, err)
	}

	d := newDevice(t, srv.URL)
	sres := mustSync(t, d)
	if len(sres.FormsFetched) != 2 {
		t.Fatalf("the device fetched %v", sres.FormsFetched)
	}
	if again := mustSync(t, d); len(again.FormsFetched) != 0 || again.RoundTrips != 1 {
		t.Fatalf("a second sync refetched forms or took more round trips: %+v", again)
	}
	// The device answers on the version it has; older versions stay valid.
	key := d.FormKey(ctx, "community_security@2026.11.1")
	id, err := d.Replica().Create(ctx, key, fw("intro/consent", "yes", "household/site", "camp_b", "household/hh_size", "1",
		"threats/safe_day", "safe", "threats/safe_night", "unsafe", "gbv/gbv_private", "no"))
	must(t, err)
	vs, err := d.Finalize(ctx, id, "")
	if err != nil || len(vs) != 0 {
		t.Fatalf("finalize: %v %v", vs, err)
	}
	// A record finalized without the device's checks (an old app, say).
	bad2, err := d.Replica().Create(ctx, key, fw("intro/consent", "yes", "household/hh_size", "99"))
	must(t, err)
	must(t, d.Replica().Set(ctx, bad2, []syncengine.FieldWrite{{Name: syncengine.StatusField, Value: syncengine.TextValue("finalized")}}))
	mustSync(t, d)

	var flags *tesserav1.ListFlagsResponse
	waitFor(t, "the server to flag the bad record", func() bool {
		flags, err = fc.ListFlags(ctx, &tesserav1.ListFlagsRequest{FormId: "community_security"})
		return err == nil && len(flags.Records) == 1
	})
	f := flags.Records[0]
	if string(f.Record) != string(bad2[:]) || len(f.Violations) < 2 {
		t.Fatalf("flags: %+v", f)
	}
	if _, err := srv.Replica().Record(ctx, bad2); err != nil {
		t.Fatalf("the flagged record is not stored: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if flags, _ := fc.ListFlags(ctx, &tesserav1.ListFlagsRequest{}); len(flags.Records) != 1 {
		t.Fatalf("the good record was flagged too: %+v", flags.Records)
	}
}
