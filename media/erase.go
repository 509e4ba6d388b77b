package media

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tessera-survey/tessera/syncengine"
)

// Files lists the files that values name (answers holding a Ref), once
// each, in the order first named.
func Files(vs []syncengine.Value) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range vs {
		if v.Kind != syncengine.Text {
			continue
		}
		if r, err := ParseRef(v.Str); err == nil && r.SHA256 != "" && !seen[r.SHA256] {
			seen[r.SHA256] = true
			out = append(out, r.SHA256)
		}
	}
	return out
}

// ForgetIn removes, inside tx, the given files (whole or being received)
// that keep does not claim, and every chunk of theirs that no remaining
// file uses (chunks are content-addressed: two files may share one). It
// returns the meta keys it deleted, for the caller to purge their older
// versions (syncengine.Options.Erasing). An erased record's files go this
// way; keep claims those another record or a form still names.
func (s *Store) ForgetIn(tx syncengine.Tx, files []string, keep func(file string) bool) ([]string, error) {
	gone := map[string]Manifest{}
	for _, f := range files {
		if keep(f) {
			continue
		}
		for _, prefix := range []string{metaFile, metaPart} {
			m, err := manifestIn(tx, prefix, f)
			if err != nil {
				continue // not held here (yet): nothing to forget
			}
			gone[f] = m
			break
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	// The chunks every other file uses, complete or being received.
	used := map[string]bool{}
	for _, prefix := range []string{metaFile, metaPart} {
		err := tx.ScanMeta(prefix, func(key string, v []byte) error {
			if _, ok := gone[strings.TrimPrefix(key, prefix)]; ok {
				return nil
			}
			var m Manifest
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("media manifest %s: %w", key, syncengine.ErrCorrupt)
			}
			for _, c := range m.Chunks {
				used[c] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var keys []string
	del := func(k string) error {
		keys = append(keys, k)
		return tx.DeleteMeta(k)
	}
	for f, m := range gone {
		if err := del(metaFile + f); err != nil {
			return nil, err
		}
		if err := del(metaPart + f); err != nil {
			return nil, err
		}
		for _, c := range m.Chunks {
			if !used[c] {
				used[c] = true // deleted once
				if err := del(metaChunk + c); err != nil {
					return nil, err
				}
			}
		}
		s.forget(f)
	}
	return keys, nil
}

// Eraser is a syncengine.Options.Erasing for a store whose media s keeps:
// it forgets the files that only the erased records named. A file another
// record names (any concurrent value of its answers) stays, and so does
// one that claimed reports (a form's attachments; nil: none).
func (s *Store) Eraser(claimed func(tx syncengine.ReadTx) (map[string]bool, error)) func(syncengine.Tx, map[syncengine.RecordID][]syncengine.Value) ([]string, error) {
	return func(tx syncengine.Tx, held map[syncengine.RecordID][]syncengine.Value) ([]string, error) {
		var files []string
		for _, vs := range held {
			files = append(files, Files(vs)...)
		}
		if len(files) == 0 {
			return nil, nil
		}
		named := map[string]bool{}
		if claimed != nil {
			c, err := claimed(tx)
			if err != nil {
				return nil, err
			}
			named = c
		}
		err := tx.ScanRecords(syncengine.RecordID{}, func(rec *syncengine.Record) error {
			if _, erasing := held[rec.ID]; !erasing {
				Refs(rec, nil, func(_ string, r Ref) bool { named[r.SHA256] = true; return true })
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("media: %w", err)
		}
		return s.ForgetIn(tx, files, func(f string) bool { return named[f] })
	}
}
