package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

const benchRecords = 10_000

var (
	benchChoices = []string{"yes", "no", "unsure", "refused", "often", "sometimes", "never", "water", "food", "shelter",
		"health", "school", "police", "elders", "ngo", "camp-a", "camp-b", "host-village", "market", "clinic"}
	benchNames = []string{"Amina", "Khalid", "Marie", "Jean", "Fatuma", "Ibrahim", "Nadia", "Omar", "Grace", "Samuel"}
)

// benchData is 10,000 survey records of 22 fields: 8 integers, 8 strings
// (choice answers, names, free text) and 6 booleans, as an interview
// produces them.
func benchData() []syncengine.NewRecord {
	rng := rand.New(rand.NewPCG(7, 7))
	out := make([]syncengine.NewRecord, benchRecords)
	for i := range out {
		fs := make([]syncengine.FieldWrite, 0, 22)
		for j := range 8 {
			fs = append(fs, syncengine.FieldWrite{Name: fmt.Sprintf("n%d", j), Value: syncengine.IntValue(rng.Int64N(100))})
		}
		for j := range 6 {
			fs = append(fs, syncengine.FieldWrite{Name: fmt.Sprintf("s%d", j), Value: syncengine.TextValue(benchChoices[rng.IntN(len(benchChoices))])})
		}
		fs = append(fs, syncengine.FieldWrite{Name: "name", Value: syncengine.TextValue(benchNames[rng.IntN(len(benchNames))])})
		fs = append(fs, syncengine.FieldWrite{Name: "note", Value: syncengine.TextValue(fmt.Sprintf("hh-%05d", i))})
		for j := range 6 {
			fs = append(fs, syncengine.FieldWrite{Name: fmt.Sprintf("b%d", j), Value: syncengine.BoolValue(rng.IntN(2) == 0)})
		}
		out[i] = syncengine.NewRecord{Form: "perception@3", Fields: fs}
	}
	return out
}

func benchDevice(b *testing.B, url string) *fieldapp.Device {
	d, err := fieldapp.Init(context.Background(), filepath.Join(b.TempDir(), "d"), fieldapp.Config{Server: url, PIN: testPIN})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

func benchServer(b *testing.B) *testServer {
	// Quiet: go test prints the log among the results, and benchstat reads them.
	return startServer(b, server.Config{DataDir: filepath.Join(b.TempDir(), "s"), Logger: slog.New(slog.DiscardHandler)})
}

func fill(b *testing.B, d *fieldapp.Device, data []syncengine.NewRecord) {
	for i := 0; i < len(data); i += 1000 {
		if _, err := d.Replica().CreateMany(context.Background(), data[i:min(i+1000, len(data))]); err != nil {
			b.Fatal(err)
		}
	}
}

func report(b *testing.B, records int, elapsed time.Duration, wire int64) {
	b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(wire)/float64(records), "wire-B/record")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSync measures the sync path on loopback with real stores:
// scripts/bench runs it and prints medians.
func BenchmarkSync(b *testing.B) {
	data := benchData()
	ctx := context.Background()

	b.Run("Push10k", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			srv := benchServer(b)
			d := benchDevice(b, srv.URL)
			fill(b, d, data)
			b.StartTimer()
			res, err := d.Sync(ctx, "", nil)
			b.StopTimer()
			if err != nil || res.Pushed != benchRecords {
				b.Fatalf("push: %+v %v", res, err)
			}
			report(b, benchRecords, time.Duration(res.DurationMS*float64(time.Millisecond)), res.BytesSent+res.BytesReceived)
			srv.stop()
		}
	})

	b.Run("Pull10k", func(b *testing.B) {
		srv := benchServer(b)
		src := benchDevice(b, srv.URL)
		fill(b, src, data)
		if _, err := src.Sync(ctx, "", nil); err != nil {
			b.Fatal(err)
		}
		for range b.N {
			b.StopTimer()
			d := benchDevice(b, srv.URL)
			b.StartTimer()
			res, err := d.Sync(ctx, "", nil)
			b.StopTimer()
			if err != nil || res.Applied != benchRecords {
				b.Fatalf("pull: %+v %v", res, err)
			}
			report(b, benchRecords, time.Duration(res.DurationMS*float64(time.Millisecond)), res.BytesSent+res.BytesReceived)
			d.Close()
		}
	})

	b.Run("NoOp", func(b *testing.B) {
		srv := benchServer(b)
		d := benchDevice(b, srv.URL)
		fill(b, d, data)
		if _, err := d.Sync(ctx, "", nil); err != nil {
			b.Fatal(err)
		}
		var total time.Duration
		n := 0
		for b.Loop() {
			res, err := d.Sync(ctx, "", nil)
			if err != nil || res.RoundTrips != 1 || res.Pushed+res.Pulled != 0 {
				b.Fatalf("no-op sync: %+v %v", res, err)
			}
			total += time.Duration(res.DurationMS * float64(time.Millisecond))
			n++
		}
		b.ReportMetric(float64(total.Microseconds())/float64(n)/1000, "ms/sync")
	})

	b.Run("Edit100", func(b *testing.B) {
		srv := benchServer(b)
		a := benchDevice(b, srv.URL)
		other := benchDevice(b, srv.URL)
		fill(b, a, data)
		if _, err := a.Sync(ctx, "", nil); err != nil {
			b.Fatal(err)
		}
		if _, err := other.Sync(ctx, "", nil); err != nil {
			b.Fatal(err)
		}
		var ids []syncengine.RecordID
		a.Replica().Records(ctx, func(r *syncengine.Record) error {
			if len(ids) < 100 {
				ids = append(ids, r.ID)
			}
			return nil
		})
		round := 0
		for range b.N {
			b.StopTimer()
			round++
			for _, id := range ids {
				if err := a.Replica().Set(ctx, id, []syncengine.FieldWrite{{Name: "n0", Value: syncengine.IntValue(int64(round))}, {Name: "s0", Value: syncengine.TextValue("revisited")}}); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			res, err := a.Sync(ctx, "", nil)
			if err != nil || res.Pushed != 100 {
				b.Fatalf("push edits: %+v %v", res, err)
			}
			res2, err := other.Sync(ctx, "", nil)
			b.StopTimer()
			if err != nil || res2.Applied != 100 {
				b.Fatalf("pull edits: %+v %v", res2, err)
			}
			el := time.Duration((res.DurationMS + res2.DurationMS) * float64(time.Millisecond))
			b.ReportMetric(float64(el.Microseconds())/1000, "ms/push+pull")
			b.ReportMetric(float64(res.BytesSent+res.BytesReceived+res2.BytesSent+res2.BytesReceived)/200, "wire-B/record")
			b.ReportMetric(0, "ns/op")
		}
	})

	// The physical limit: the same records and log entries written straight
	// into Badger (same options, same batch size, fsync per batch) with no
	// merge, no protocol and no network.
	b.Run("RawBadger10k", func(b *testing.B) {
		changes := make([]syncengine.Change, len(data))
		for i, nr := range data {
			changes[i] = syncengine.Change{Record: syncengine.NewRecordID(), Form: nr.Form, HLC: 1,
				Dot: syncengine.Dot{Replica: syncengine.ReplicaID{1}, Counter: uint64(i + 1)}, Fields: nr.Fields}
		}
		for range b.N {
			b.StopTimer()
			st, err := badgerstore.Open(badgerstore.Options{Dir: filepath.Join(b.TempDir(), "raw"), Profile: badgerstore.Server})
			if err != nil {
				b.Fatal(err)
			}
			db := st.DB()
			b.StartTimer()
			start := time.Now()
			for i := 0; i < len(changes); i += 1000 {
				err := db.Update(func(txn *badger.Txn) error {
					for j := i; j < min(i+1000, len(changes)); j++ {
						c := &changes[j]
						rec := syncengine.EmptyRecord(c.Record)
						rec.Apply(c)
						if err := txn.Set(append([]byte{'r'}, c.Record[:]...), syncengine.MarshalRecord(nil, rec)); err != nil {
							return err
						}
						if err := txn.Set(fmt.Appendf(nil, "l%08d", j), syncengine.MarshalLogEntry(nil, syncengine.Local, c)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			report(b, benchRecords, el, 0)
			st.Close()
		}
	})
}
