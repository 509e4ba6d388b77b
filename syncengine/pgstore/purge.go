package pgstore

import (
	"context"
	"fmt"

	"github.com/tessera-survey/tessera/syncengine"
)

var _ syncengine.Purger = (*Store)(nil)

// Purge implements syncengine.Purger: the erasure rewrote the rows, and
// PostgreSQL keeps the replaced ones as dead tuples until a vacuum; this
// vacuums the tables now rather than at autovacuum's leisure. (The
// write-ahead log keeps its segments until checkpoints recycle them.)
func (s *Store) Purge(ctx context.Context, _ []syncengine.RecordID, _ []uint64, _ []string) error {
	if _, err := s.pool.Exec(ctx, "VACUUM records, log, meta"); err != nil {
		return fmt.Errorf("postgres: purge: %w", err)
	}
	return nil
}
