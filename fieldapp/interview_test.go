package fieldapp_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/syncengine"
)

// TestInterviewsNewestFirst: the list pages from the newest interview to
// the oldest, leaves deleted ones out, and ends with no cursor.
func TestInterviewsNewestFirst(t *testing.T) {
	ctx := context.Background()
	d, err := fieldapp.Init(ctx, filepath.Join(t.TempDir(), "dev"), fieldapp.Config{PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var ids []string
	for i := range 7 {
		id, err := d.Replica().Create(ctx, "f", []syncengine.FieldWrite{{Name: "i", Value: syncengine.IntValue(int64(i))}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
		time.Sleep(2 * time.Millisecond) // ids grow with time
	}
	gone := syncengine.RecordID(uuid.MustParse(ids[4]))
	if err := d.Replica().Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ids)
	want = slices.Delete(want, 4, 5)
	slices.Reverse(want)
	var got []string
	var before syncengine.RecordID
	for pages := 0; ; pages++ {
		items, next, err := d.Interviews(ctx, before, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			got = append(got, it.ID)
		}
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("no end")
		}
		before = syncengine.RecordID(uuid.MustParse(next))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("interviews %v, want %v", got, want)
	}
}

const pin = "5-8-1-3-2"
