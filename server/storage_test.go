package server_test

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

// dirBytes is the size of every file under dir.
func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		n += info.Size()
		return err
	})
	must(t, err)
	return n
}

// TestDeviceStorageAfterManyEdits (issue 19's target): a device edits
// 1,000 records of 22 answers 100,000 times (one answer per edit, as the
// interview screen writes), syncing every 5,000 edits; its data folder,
// closed, stays within 2× of a device holding the same final answers
// written once. Long: set TESSERA_STORAGE_EDITS (100000 for the target).
func TestDeviceStorageAfterManyEdits(t *testing.T) {
	edits, _ := strconv.Atoi(os.Getenv("TESSERA_STORAGE_EDITS"))
	if edits <= 0 {
		t.Skip("set TESSERA_STORAGE_EDITS=100000 to run")
	}
	ctx := context.Background()
	srv := startServer(t, server.Config{})
	const records, fields = 1000, 22
	answer := func(i, f int, v int) syncengine.FieldWrite {
		return syncengine.FieldWrite{Name: fmt.Sprintf("q%02d", f), Value: syncengine.TextValue(fmt.Sprintf("answer %d to question %d, version %d", i, f, v))}
	}
	open := func(name, url string) (*fieldapp.Device, string) {
		dir := filepath.Join(t.TempDir(), name)
		d, err := fieldapp.Init(ctx, dir, fieldapp.Config{Server: url, PIN: testPIN})
		must(t, err)
		return d, dir
	}
	// The edited device.
	d, dir := open("edited", srv.URL)
	ids := make([]syncengine.RecordID, records)
	final := make([][]syncengine.FieldWrite, records)
	for i := range ids {
		fs := make([]syncengine.FieldWrite, fields)
		for f := range fs {
			fs[f] = answer(i, f, 0)
		}
		id, err := d.Create(ctx, "edits", fs)
		must(t, err)
		ids[i], final[i] = id, fs
	}
	mustSync(t, d)
	rng := rand.New(rand.NewPCG(1, 2))
	start, dropped := time.Now(), 0
	var syncMS, compactMS []float64
	for e := 1; e <= edits; e++ {
		i, f := rng.IntN(records), rng.IntN(fields)
		w := answer(i, f, e)
		must(t, d.Set(ctx, ids[i], []syncengine.FieldWrite{w}))
		final[i][f] = w
		if e%5000 == 0 || e == edits {
			res := mustSync(t, d)
			dropped += res.LogCompacted
			syncMS = append(syncMS, res.DurationMS)
			compactMS = append(compactMS, res.CompactMS)
		}
	}
	took := time.Since(start)
	logEntries, logBytes, recBytes := stored(t, d)
	must(t, d.Settle())
	must(t, d.Close())
	edited := dirBytes(t, dir)
	if os.Getenv("TESSERA_STORAGE_FILES") != "" {
		filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				info, _ := e.Info()
				t.Logf("%s %d", p[len(dir):], info.Size())
			}
			return nil
		})
	}

	// The same final answers, each record written once, on a device of
	// another server (it would pull the edited device's records).
	b, bdir := open("final", startServer(t, server.Config{}).URL)
	for i := range ids {
		_, err := b.Create(ctx, "edits", final[i])
		must(t, err)
	}
	mustSync(t, b)
	_, baseLog, baseRec := stored(t, b)
	must(t, b.Settle())
	must(t, b.Close())
	base := dirBytes(t, bdir)
	ratio := float64(edited) / float64(base)
	slices.Sort(syncMS)
	slices.Sort(compactMS)
	t.Logf("%d syncs of 5,000 edits each: median %.0f ms, slowest %.0f ms; of which compaction and collection: median %.0f ms, slowest %.0f ms",
		len(syncMS), syncMS[len(syncMS)/2], syncMS[len(syncMS)-1], compactMS[len(compactMS)/2], compactMS[len(compactMS)-1])
	t.Logf("%d edits of %d records × %d answers in %v: %d log entries dropped, %d left; encoded: records %.2f MB + log %.2f MB, against %.2f + %.2f MB for the final state written once (%.2f×); data folder %.1f MB against %.1f MB: %.2f×",
		edits, records, fields, took.Round(time.Second), dropped, logEntries, float64(recBytes)/1e6, float64(logBytes)/1e6,
		float64(baseRec)/1e6, float64(baseLog)/1e6, float64(recBytes+logBytes)/float64(baseRec+baseLog), float64(edited)/1e6, float64(base)/1e6, ratio)
	if ratio > 2 {
		t.Errorf("the edited device's storage is %.2f× the final state's (want ≤ 2×)", ratio)
	}
}

// stored counts a device's log entries and the encoded bytes of its log
// and records.
func stored(t *testing.T, d *fieldapp.Device) (entries int, logBytes, recBytes int64) {
	must(t, d.Replica().Store().View(context.Background(), func(tx syncengine.ReadTx) error {
		if err := tx.ScanLog(0, func(_ syncengine.LogEntry, n int) error { entries++; logBytes += int64(n); return nil }); err != nil {
			return err
		}
		return tx.(syncengine.RawRecordScanner).ScanRecordBytes(syncengine.RecordID{}, func(_ syncengine.RecordID, b []byte) error {
			recBytes += int64(len(b))
			return nil
		})
	}))
	return entries, logBytes, recBytes
}
