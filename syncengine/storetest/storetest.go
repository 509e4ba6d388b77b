// Package storetest is the contract test suite every syncengine.Store
// implementation runs: what the merge and sync code relies on from storage.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/tessera-survey/tessera/syncengine"
)

// Opener opens the store kept under key (a directory, a schema...). Opening
// the same key again after Close must show what was committed before.
type Opener func(t *testing.T, key string) syncengine.Store

// Run runs the contract suite. newKey returns a fresh, empty store key.
// It is long on purpose: a list of subtests, each a short case.
func Run(t *testing.T, open Opener, newKey func(t *testing.T) string) {
	ctx := context.Background()
	fresh := func(t *testing.T) syncengine.Store {
		s := open(t, newKey(t))
		t.Cleanup(func() { s.Close() })
		return s
	}

	t.Run("RecordNotFound", func(t *testing.T) {
		s := fresh(t)
		err := s.View(ctx, func(tx syncengine.ReadTx) error {
			_, err := tx.Record(syncengine.NewRecordID())
			return err
		})
		if !errors.Is(err, syncengine.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})

	t.Run("RecordRoundTrip", func(t *testing.T) {
		s := fresh(t)
		rec := sampleRecord(1)
		mustUpdate(t, s, func(tx syncengine.Tx) error { return tx.PutRecord(rec) })
		got := getRecord(t, s, rec.ID)
		if !got.Equal(rec) {
			t.Fatalf("stored %+v, read back %+v", rec, got)
		}
	})

	// A store that counts log entries by origin without reading them sees
	// the origins ScanLog decodes, from any position, and stops on ErrStop.
	t.Run("LogOrigins", func(t *testing.T) {
		s := fresh(t)
		origins := []syncengine.Origin{syncengine.Local, syncengine.Upstream, syncengine.Downstream, syncengine.Upstream, syncengine.Local}
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			for i, o := range origins {
				c := sampleChange(uint64(i + 1))
				if _, err := tx.Append(o, &c); err != nil {
					return err
				}
			}
			return nil
		})
		mustView(t, s, func(tx syncengine.ReadTx) error {
			los, ok := tx.(syncengine.LogOriginScanner)
			if !ok {
				return nil
			}
			for after := range uint64(len(origins)) {
				var want, got []string
				if err := tx.ScanLog(after, func(e syncengine.LogEntry, _ int) error {
					want = append(want, fmt.Sprint(e.Seq, e.Origin))
					return nil
				}); err != nil {
					return err
				}
				if err := los.ScanLogOrigins(after, func(seq uint64, o syncengine.Origin) error {
					got = append(got, fmt.Sprint(seq, o))
					return nil
				}); err != nil {
					return err
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("origins after %d: %v, ScanLog says %v", after, got, want)
				}
			}
			n := 0
			if err := los.ScanLogOrigins(0, func(uint64, syncengine.Origin) error { n++; return syncengine.ErrStop }); err != nil || n != 1 {
				t.Fatalf("ErrStop: %d entries seen, %v", n, err)
			}
			return nil
		})
	})

	// An erasure rewrites log entries in place: the sequence and origin
	// stay, the change is the new one, in the same transaction as new
	// entries and after a commit alike.
	t.Run("ReplaceLog", func(t *testing.T) {
		s := fresh(t)
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			for i, o := range []syncengine.Origin{syncengine.Upstream, syncengine.Local} {
				c := sampleChange(uint64(i + 1))
				if _, err := tx.Append(o, &c); err != nil {
					return err
				}
			}
			return nil
		})
		stripped := sampleChange(1)
		stripped.Fields = []syncengine.FieldWrite{{Name: syncengine.CreatedField, Value: syncengine.BoolValue(true)}}
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			c := sampleChange(3)
			if _, err := tx.Append(syncengine.Downstream, &c); err != nil {
				return err
			}
			for _, seq := range []uint64{1, 3} {
				if err := tx.ReplaceLog(seq, &stripped); err != nil {
					return err
				}
			}
			e, err := tx.LogEntry(3)
			if err != nil || len(e.Change.Fields) != 1 {
				t.Errorf("entry 3 inside the transaction: %+v %v", e, err)
			}
			return nil
		})
		if err := s.Update(ctx, func(tx syncengine.Tx) error { return tx.ReplaceLog(9, &stripped) }); err == nil {
			t.Error("replaced an entry that does not exist")
		}
		mustView(t, s, func(tx syncengine.ReadTx) error {
			var got []string
			err := tx.ScanLog(0, func(e syncengine.LogEntry, _ int) error {
				got = append(got, fmt.Sprint(e.Seq, e.Origin, len(e.Change.Fields), e.Change.Fields[0].Name))
				return nil
			})
			want := []string{
				fmt.Sprint(1, syncengine.Upstream, 1, syncengine.CreatedField),
				fmt.Sprint(2, syncengine.Local, 2, "q1"),
				fmt.Sprint(3, syncengine.Downstream, 1, syncengine.CreatedField),
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("log after replacing: %v, want %v", got, want)
			}
			return err
		})
	})

	t.Run("DeleteLog", func(t *testing.T) {
		s := fresh(t)
		var probe syncengine.LogDeleter
		mustView(t, s, func(tx syncengine.ReadTx) error { probe, _ = tx.(syncengine.LogDeleter); return nil })
		if probe == nil {
			t.Skip("the store does not compact logs (servers never do)")
		}
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			for i := range 3 {
				c := sampleChange(uint64(i + 1))
				if _, err := tx.Append(syncengine.Local, &c); err != nil {
					return err
				}
			}
			return tx.(syncengine.LogDeleter).DeleteLog(1)
		})
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			c := sampleChange(4)
			if _, err := tx.Append(syncengine.Local, &c); err != nil {
				return err
			}
			for _, seq := range []uint64{3, 4, 9} {
				if err := tx.(syncengine.LogDeleter).DeleteLog(seq); err != nil {
					return err
				}
			}
			if _, err := tx.LogEntry(3); !errors.Is(err, syncengine.ErrNotFound) {
				t.Errorf("entry 3 inside the transaction that deleted it: %v", err)
			}
			return nil
		})
		mustView(t, s, func(tx syncengine.ReadTx) error {
			var got []uint64
			if err := tx.ScanLog(0, func(e syncengine.LogEntry, _ int) error { got = append(got, e.Seq); return nil }); err != nil {
				return err
			}
			if fmt.Sprint(got) != "[2]" {
				t.Errorf("log after deleting 1, 3 and 4: %v, want [2]", got)
			}
			return nil
		})
		other := sampleChange(7)
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			if err := tx.(syncengine.LogDeleter).ReplaceLogBytes(1, syncengine.MarshalLogEntry(nil, syncengine.Local, &other)); err == nil {
				t.Error("replaced the bytes of a deleted entry")
			}
			return tx.(syncengine.LogDeleter).ReplaceLogBytes(2, syncengine.MarshalLogEntry(nil, syncengine.Local, &other))
		})
		mustView(t, s, func(tx syncengine.ReadTx) error {
			if e, err := tx.LogEntry(2); err != nil || e.Change.Dot != other.Dot || e.Origin != syncengine.Local {
				t.Errorf("entry 2 after replacing its bytes: %+v %v", e, err)
			}
			if _, err := tx.LogEntry(1); !errors.Is(err, syncengine.ErrNotFound) {
				t.Errorf("a deleted entry: %v", err)
			}
			if h, err := tx.Head(); h != 4 || err != nil {
				t.Errorf("head after deleting: %d %v, want 4", h, err)
			}
			return nil
		})
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			c := sampleChange(5)
			seq, err := tx.Append(syncengine.Local, &c)
			if err == nil && seq != 5 {
				err = fmt.Errorf("appended at %d after deleting, want 5", seq)
			}
			return err
		})
	})

	t.Run("RecordBytesRoundTrip", func(t *testing.T) {
		s := fresh(t)
		rec := sampleRecord(2)
		mustUpdate(t, s, func(tx syncengine.Tx) error { return tx.PutRecordBytes(rec.ID, syncengine.MarshalRecord(nil, rec)) })
		if got := getRecord(t, s, rec.ID); !got.Equal(rec) {
			t.Fatalf("stored %+v as bytes, read back %+v", rec, got)
		}
	})

	t.Run("LogSequenceGapless", func(t *testing.T) {
		s := fresh(t)
		for i := 1; i <= 3; i++ {
			mustUpdate(t, s, func(tx syncengine.Tx) error {
				for j := 0; j < i; j++ {
					c := sampleChange(uint64(i*10 + j))
					if _, err := tx.Append(syncengine.Origin(j%3), &c); err != nil {
						return err
					}
				}
				return nil
			})
		}
		var seqs []uint64
		var origins []syncengine.Origin
		mustView(t, s, func(tx syncengine.ReadTx) error {
			return tx.ScanLog(0, func(e syncengine.LogEntry, n int) error {
				if n <= 0 {
					return fmt.Errorf("entry %d: size %d", e.Seq, n)
				}
				seqs = append(seqs, e.Seq)
				origins = append(origins, e.Origin)
				return nil
			})
		})
		if fmt.Sprint(seqs) != "[1 2 3 4 5 6]" || fmt.Sprint(origins) != "[0 0 1 0 1 2]" {
			t.Fatalf("log seqs %v origins %v", seqs, origins)
		}
		mustView(t, s, func(tx syncengine.ReadTx) error {
			head, err := tx.Head()
			if err != nil || head != 6 {
				return fmt.Errorf("head %d, %v; want 6", head, err)
			}
			e, err := tx.LogEntry(4)
			if err != nil || e.Change.Dot.Counter != 30 {
				return fmt.Errorf("entry 4: %+v %v", e, err)
			}
			if _, err := tx.LogEntry(7); !errors.Is(err, syncengine.ErrNotFound) {
				return fmt.Errorf("entry 7: %v, want ErrNotFound", err)
			}
			var after []uint64
			err = tx.ScanLog(4, func(e syncengine.LogEntry, _ int) error {
				after = append(after, e.Seq)
				if len(after) == 1 {
					return syncengine.ErrStop
				}
				return nil
			})
			if !errors.Is(err, syncengine.ErrStop) || fmt.Sprint(after) != "[5]" {
				return fmt.Errorf("scan after 4 with stop: %v %v", after, err)
			}
			return nil
		})
	})

	t.Run("ScanLogSkipHint", func(t *testing.T) {
		s := fresh(t)
		other := syncengine.ReplicaID{0xdd, 4}
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			for i := range 4 {
				c := sampleChange(uint64(i + 1))
				if i%2 == 1 {
					c.Dot.Replica = other
				}
				if _, err := tx.Append(syncengine.Local, &c); err != nil {
					return err
				}
			}
			return nil
		})
		mustView(t, s, func(tx syncengine.ReadTx) error {
			var seqs []uint64
			err := tx.ScanLog(0, func(e syncengine.LogEntry, _ int) error {
				seqs = append(seqs, e.Seq)
				// Entries of the skipped replica keep at least their dot;
				// the others come whole.
				if e.Change.Dot.Replica != other && len(e.Change.Fields) != 2 {
					return fmt.Errorf("entry %d lost its fields", e.Seq)
				}
				if e.Change.Dot.Counter != e.Seq {
					return fmt.Errorf("entry %d has dot %v", e.Seq, e.Change.Dot)
				}
				return nil
			}, syncengine.ScanOption{Skip: other})
			if err == nil && fmt.Sprint(seqs) != "[1 2 3 4]" {
				err = fmt.Errorf("scan with a skip hint saw %v", seqs)
			}
			return err
		})
	})

	t.Run("FailedUpdateLeavesNothing", func(t *testing.T) {
		s := fresh(t)
		boom := errors.New("boom")
		rec := sampleRecord(2)
		err := s.Update(ctx, func(tx syncengine.Tx) error {
			c := sampleChange(1)
			if err := tx.PutRecord(rec); err != nil {
				return err
			}
			if _, err := tx.Append(syncengine.Local, &c); err != nil {
				return err
			}
			if err := tx.SetMeta("cursor", []byte{1}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update returned %v, want the callback's error", err)
		}
		mustView(t, s, func(tx syncengine.ReadTx) error {
			if _, err := tx.Record(rec.ID); !errors.Is(err, syncengine.ErrNotFound) {
				return fmt.Errorf("record survived a failed update: %v", err)
			}
			if h, _ := tx.Head(); h != 0 {
				return fmt.Errorf("log head %d after a failed update", h)
			}
			if _, err := tx.Meta("cursor"); !errors.Is(err, syncengine.ErrNotFound) {
				return fmt.Errorf("meta survived a failed update: %v", err)
			}
			return nil
		})
	})

	t.Run("ReadYourWrites", func(t *testing.T) {
		s := fresh(t)
		rec := sampleRecord(3)
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			if err := tx.PutRecord(rec); err != nil {
				return err
			}
			got, err := tx.Record(rec.ID)
			if err != nil || !got.Equal(rec) {
				return fmt.Errorf("own write not visible: %v", err)
			}
			c := sampleChange(5)
			seq, err := tx.Append(syncengine.Local, &c)
			if err != nil || seq != 1 {
				return fmt.Errorf("append: %d %v", seq, err)
			}
			if h, err := tx.Head(); h != 1 || err != nil {
				return fmt.Errorf("head in tx: %d %v", h, err)
			}
			if err := tx.SetMeta("k", []byte("v")); err != nil {
				return err
			}
			if v, err := tx.Meta("k"); string(v) != "v" || err != nil {
				return fmt.Errorf("meta in tx: %q %v", v, err)
			}
			// A mark with no value (nil) is kept, and read back empty.
			if err := tx.SetMeta("mark", nil); err != nil {
				return err
			}
			if v, err := tx.Meta("mark"); len(v) != 0 || err != nil {
				return fmt.Errorf("an empty meta value: %q %v", v, err)
			}
			return nil
		})
	})

	t.Run("ScanRecordsInOrder", func(t *testing.T) {
		s := fresh(t)
		var ids []syncengine.RecordID
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			for i := range 5 {
				r := sampleRecord(i)
				ids = append(ids, r.ID)
				if err := tx.PutRecord(r); err != nil {
					return err
				}
			}
			return nil
		})
		var got []syncengine.RecordID
		mustView(t, s, func(tx syncengine.ReadTx) error {
			return tx.ScanRecords(ids[2], func(r *syncengine.Record) error { got = append(got, r.ID); return nil })
		})
		if fmt.Sprint(got) != fmt.Sprint(ids[2:]) {
			t.Fatalf("scan from third: %v, want %v", got, ids[2:])
		}
		// A store that scans backwards (newest first, for the device's
		// list of interviews) sees the same records the other way round.
		mustView(t, s, func(tx syncengine.ReadTx) error {
			rev, ok := tx.(syncengine.ReverseRecordScanner)
			if !ok {
				return nil
			}
			sorted := slices.Clone(ids)
			slices.SortFunc(sorted, func(a, b syncengine.RecordID) int { return bytes.Compare(a[:], b[:]) })
			var all, before []syncengine.RecordID
			if err := rev.ScanRecordsReverse(syncengine.RecordID{}, func(r *syncengine.Record) error { all = append(all, r.ID); return nil }); err != nil {
				return err
			}
			if err := rev.ScanRecordsReverse(sorted[3], func(r *syncengine.Record) error { before = append(before, r.ID); return nil }); err != nil {
				return err
			}
			slices.Reverse(sorted)
			if fmt.Sprint(all) != fmt.Sprint(sorted) || fmt.Sprint(before) != fmt.Sprint(sorted[2:]) {
				t.Fatalf("reverse scans: %v and %v, want %v and %v", all, before, sorted, sorted[2:])
			}
			return nil
		})
		// A store that offers records as stored bytes (for exports) offers
		// the same records, in the same order (bytes the caller copies).
		mustView(t, s, func(tx syncengine.ReadTx) error {
			raw, ok := tx.(syncengine.RawRecordScanner)
			if !ok {
				return nil
			}
			var recs []*syncengine.Record
			if err := tx.ScanRecords(ids[1], func(r *syncengine.Record) error { recs = append(recs, r); return nil }); err != nil {
				return err
			}
			var kept [][]byte
			var rids []syncengine.RecordID
			if err := raw.ScanRecordBytes(ids[1], func(id syncengine.RecordID, b []byte) error {
				kept, rids = append(kept, slices.Clone(b)), append(rids, id)
				return nil
			}); err != nil {
				return err
			}
			if fmt.Sprint(rids) != fmt.Sprint(ids[1:]) {
				t.Fatalf("raw scan from second: %v, want %v", rids, ids[1:])
			}
			for i, b := range kept {
				r, err := syncengine.UnmarshalRecord(rids[i], b)
				if err != nil {
					t.Fatalf("raw record %d: %v", i, err)
				}
				if !r.Equal(recs[i]) {
					t.Fatalf("raw record %d = %+v, want %+v", i, r, recs[i])
				}
			}
			return nil
		})
	})

	t.Run("DurableAcrossReopen", func(t *testing.T) {
		key := newKey(t)
		s := open(t, key)
		rec := sampleRecord(4)
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			c := sampleChange(9)
			if _, err := tx.Append(syncengine.Upstream, &c); err != nil {
				return err
			}
			if err := tx.SetMeta("cursor", []byte("42")); err != nil {
				return err
			}
			return tx.PutRecord(rec)
		})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, key)
		defer s.Close()
		if got := getRecord(t, s, rec.ID); !got.Equal(rec) {
			t.Fatalf("record lost across reopen")
		}
		mustView(t, s, func(tx syncengine.ReadTx) error {
			if v, err := tx.Meta("cursor"); string(v) != "42" || err != nil {
				return fmt.Errorf("meta across reopen: %q %v", v, err)
			}
			if h, err := tx.Head(); h != 1 || err != nil {
				return fmt.Errorf("head across reopen: %d %v", h, err)
			}
			return nil
		})
		// The sequence continues after reopen.
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			c := sampleChange(10)
			seq, err := tx.Append(syncengine.Local, &c)
			if err == nil && seq != 2 {
				err = fmt.Errorf("seq %d after reopen, want 2", seq)
			}
			return err
		})
	})

	t.Run("ConcurrentAppendsStayGapless", func(t *testing.T) {
		s := fresh(t)
		const writers, each = 4, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					err := s.Update(ctx, func(tx syncengine.Tx) error {
						c := sampleChange(uint64(w*1000 + i + 1))
						_, err := tx.Append(syncengine.Downstream, &c)
						return err
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		seen := map[uint64]bool{}
		var want uint64 = 1
		mustView(t, s, func(tx syncengine.ReadTx) error {
			return tx.ScanLog(0, func(e syncengine.LogEntry, _ int) error {
				if e.Seq != want || seen[e.Change.Dot.Counter] {
					return fmt.Errorf("seq %d (want %d), counter %d", e.Seq, want, e.Change.Dot.Counter)
				}
				seen[e.Change.Dot.Counter] = true
				want++
				return nil
			})
		})
		if len(seen) != writers*each {
			t.Fatalf("%d entries, want %d", len(seen), writers*each)
		}
	})

	t.Run("MetaScanAndDelete", func(t *testing.T) {
		s := fresh(t)
		mustUpdate(t, s, func(tx syncengine.Tx) error {
			// Byte order, whatever a database's collation would say:
			// callers merge these scans with scans of records.
			for _, k := range []string{"form/b", "form/a", "formx", "flag/1", "form/B", "form/-"} {
				if err := tx.SetMeta(k, []byte("v-"+k)); err != nil {
					return err
				}
			}
			return nil
		})
		var got []string
		scan := func() {
			got = nil
			mustView(t, s, func(tx syncengine.ReadTx) error {
				return tx.ScanMeta("form/", func(k string, v []byte) error {
					if string(v) != "v-"+k {
						return fmt.Errorf("meta %s = %q", k, v)
					}
					got = append(got, k)
					return nil
				})
			})
		}
		scan()
		if fmt.Sprint(got) != "[form/- form/B form/a form/b]" {
			t.Fatalf("scan form/: %v", got)
		}
		mustUpdate(t, s, func(tx syncengine.Tx) error { return tx.DeleteMeta("form/a") })
		mustUpdate(t, s, func(tx syncengine.Tx) error { return tx.DeleteMeta("never-set") })
		scan()
		if fmt.Sprint(got) != "[form/- form/B form/b]" {
			t.Fatalf("after delete: %v", got)
		}
	})

	t.Run("SetMetaOnce", func(t *testing.T) {
		s := fresh(t)
		o, ok := s.(syncengine.MetaOnceSetter)
		if !ok {
			t.Skip("the store has no SetMetaOnce (callers use Update)")
		}
		mustUpdate(t, s, func(tx syncengine.Tx) error { return tx.SetMeta("chunk/held", []byte("first")) })
		// Many writers at once, of one key and of many, beside ordinary
		// transactions appending to the log.
		const writers = 24
		var wg sync.WaitGroup
		errs := make(chan error, 3*writers)
		for w := range writers {
			wg.Add(2)
			go func() {
				defer wg.Done()
				errs <- o.SetMetaOnce(ctx, syncengine.KeyValue{Key: fmt.Sprintf("chunk/%02d", w), Value: bytes.Repeat([]byte{byte(w)}, 70<<10)})
				errs <- o.SetMetaOnce(ctx, syncengine.KeyValue{Key: "chunk/held", Value: []byte("second")},
					syncengine.KeyValue{Key: fmt.Sprintf("pair/%02d", w), Value: []byte("with a held key")})
			}()
			go func() {
				defer wg.Done()
				c := sampleChange(uint64(w + 1))
				errs <- s.Update(ctx, func(tx syncengine.Tx) error { _, err := tx.Append(syncengine.Downstream, &c); return err })
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		mustView(t, s, func(tx syncengine.ReadTx) error {
			if v, err := tx.Meta("chunk/held"); err != nil || string(v) != "first" {
				return fmt.Errorf("a held key became %q (%v)", v, err)
			}
			for w := range writers {
				v, err := tx.Meta(fmt.Sprintf("chunk/%02d", w))
				if err != nil || !bytes.Equal(v, bytes.Repeat([]byte{byte(w)}, 70<<10)) {
					return fmt.Errorf("chunk %d: %d bytes (%v)", w, len(v), err)
				}
			}
			if v, err := tx.Meta("pair/07"); err != nil || string(v) != "with a held key" {
				return fmt.Errorf("the second entry of a call: %q (%v)", v, err)
			}
			if h, err := tx.Head(); err != nil || h != writers {
				return fmt.Errorf("log head %d, want %d (%v)", h, writers, err)
			}
			return nil
		})
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := fresh(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := s.Update(cctx, func(tx syncengine.Tx) error { return tx.SetMeta("k", []byte("v")) })
		if err == nil {
			t.Fatal("Update with a canceled context succeeded")
		}
	})
}

func mustUpdate(t *testing.T, s syncengine.Store, fn func(syncengine.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func mustView(t *testing.T, s syncengine.Store, fn func(syncengine.ReadTx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func getRecord(t *testing.T, s syncengine.Store, id syncengine.RecordID) *syncengine.Record {
	t.Helper()
	var r *syncengine.Record
	mustView(t, s, func(tx syncengine.ReadTx) (err error) { r, err = tx.Record(id); return })
	return r
}

var testReplica = syncengine.ReplicaID{0xaa, 1}

func sampleChange(counter uint64) syncengine.Change {
	return syncengine.Change{
		Record: syncengine.NewRecordID(), Form: "household", HLC: syncengine.MakeHLC(1_700_000_000_000, 1),
		Dot:    syncengine.Dot{Replica: testReplica, Counter: counter},
		Fields: []syncengine.FieldWrite{{Name: "q1", Value: syncengine.TextValue("oui")}, {Name: "n", Value: syncengine.IntValue(4)}},
	}
}

// sampleRecord builds a record with a conflict and a deletion mark, so the
// round trip covers every part of the state.
func sampleRecord(i int) *syncengine.Record {
	rec := syncengine.EmptyRecord(syncengine.NewRecordID())
	a := sampleChange(uint64(i*10 + 1))
	a.Record = rec.ID
	b := a
	b.Dot = syncengine.Dot{Replica: syncengine.ReplicaID{0xbb, 2}, Counter: 7}
	b.Fields = []syncengine.FieldWrite{{Name: "q1", Value: syncengine.DecimalValue(2.5)}, {Name: "ok", Value: syncengine.BoolValue(true)}}
	d := a
	d.Dot = syncengine.Dot{Replica: syncengine.ReplicaID{0xcc, 3}, Counter: 1}
	d.Context = syncengine.NewDotSet(a.Dot)
	d.Fields = []syncengine.FieldWrite{{Name: syncengine.DeletedField, Value: syncengine.BoolValue(true)}, {Name: "gone", Value: syncengine.Value{}}}
	rec.Apply(&a)
	rec.Apply(&b)
	rec.Apply(&d)
	return rec
}
