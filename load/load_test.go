package load

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// TestLoadSmall runs the load tool at a small size: many devices at once,
// every record exactly once.
func TestLoadSmall(t *testing.T) {
	res, err := Run(context.Background(), Config{Devices: 40, Records: 50, Fields: 22, PullPages: 1, PageSize: 100, Retries: 3},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !res.ExactlyOnce || res.Records != 2000 || res.ServerHead != 2000 || res.P99MS <= 0 {
		t.Fatalf("%+v", res)
	}
	t.Logf("%+v", res)
}
