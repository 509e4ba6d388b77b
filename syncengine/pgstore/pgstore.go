// Package pgstore keeps a server replica in PostgreSQL, for when one machine
// is not enough: several surveyd processes may share one database. Every
// read-write transaction first locks the single row holding the log head,
// so writers from all processes take turns: sequence numbers stay gap-free
// and in commit order (a puller never sees seq 7 before seq 6), and a
// record's read-merge-write cannot lose a concurrent update.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tessera-survey/tessera/syncengine"
)

// Store is a syncengine.Store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

var _ syncengine.Store = (*Store)(nil)

var schemaRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

const ddl = `
CREATE TABLE IF NOT EXISTS records (id bytea PRIMARY KEY, state bytea NOT NULL);
CREATE TABLE IF NOT EXISTS log (seq bigint PRIMARY KEY, entry bytea NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE IF NOT EXISTS head (id int PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL);
INSERT INTO head (id, seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
`

// Open connects to the database at url (a postgres:// URL or key=value
// string) and creates the tables if needed. A schema other than "" keeps
// the tables in that schema (created if missing), so several stores can
// share a database (tests do).
func Open(ctx context.Context, url, schema string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: bad connection string: %w", err)
	}
	if schema != "" {
		if !schemaRe.MatchString(schema) {
			return nil, fmt.Errorf("postgres: bad schema name %q", schema)
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if schema != "" {
		if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil && !isUniqueViolation(err) {
			pool.Close()
			return nil, fmt.Errorf("postgres: create schema: %w", err)
		}
	}
	if _, err := pool.Exec(ctx, ddl); err != nil && !isUniqueViolation(err) {
		pool.Close()
		return nil, fmt.Errorf("postgres: create tables: %w", err)
	}
	return &Store{pool: pool}, nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P06" || pe.Code == "42P07")
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// DropSchema removes a schema and everything in it (tests clean up with it).
func (s *Store) DropSchema(ctx context.Context, schema string) error {
	if !schemaRe.MatchString(schema) {
		return fmt.Errorf("postgres: bad schema name %q", schema)
	}
	_, err := s.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	return err
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Update implements syncengine.Store.
func (s *Store) Update(ctx context.Context, fn func(syncengine.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.update(ctx, fn)
		if retryable(err) && attempt < 10 {
			continue
		}
		return err
	}
}

// SetMetaOnce implements syncengine.MetaOnceSetter outside the head lock
// every Update takes: one statement, so all rows or none.
func (s *Store) SetMetaOnce(ctx context.Context, kvs ...syncengine.KeyValue) error {
	if len(kvs) == 0 {
		return nil
	}
	keys, values := make([]string, len(kvs)), make([][]byte, len(kvs))
	for i, kv := range kvs {
		keys[i], values[i] = kv.Key, kv.Value
	}
	_, err := s.pool.Exec(ctx, "INSERT INTO meta (key, value) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT (key) DO NOTHING", keys, values)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

func (s *Store) update(ctx context.Context, fn func(syncengine.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pt, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pt.Rollback(context.WithoutCancel(ctx))
	t := &tx{ctx: ctx, pt: pt}
	if err := pt.QueryRow(ctx, "SELECT seq FROM head WHERE id = 1 FOR UPDATE").Scan(&t.head); err != nil {
		return fmt.Errorf("postgres: lock head: %w", err)
	}
	t.write, t.startHead = true, t.head
	if err := fn(t); err != nil {
		return err
	}
	if err := t.flush(); err != nil {
		return err
	}
	if t.head != t.startHead {
		if _, err := pt.Exec(ctx, "UPDATE head SET seq = $1 WHERE id = 1", t.head); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	if err := pt.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// View implements syncengine.Store with a consistent snapshot.
func (s *Store) View(ctx context.Context, fn func(syncengine.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pt, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pt.Rollback(context.WithoutCancel(ctx))
	t := &tx{ctx: ctx, pt: pt, head: -1}
	return fn(t)
}

type tx struct {
	ctx       context.Context
	pt        pgx.Tx
	write     bool
	head      int64 // -1: not read (views)
	startHead int64
	batch     pgx.Batch
}

// flush sends queued writes, so reads see them.
func (t *tx) flush() error {
	if t.batch.Len() == 0 {
		return nil
	}
	b := t.batch
	t.batch = pgx.Batch{}
	if err := t.pt.SendBatch(t.ctx, &b).Close(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

func (t *tx) Record(id syncengine.RecordID) (*syncengine.Record, error) {
	if err := t.flush(); err != nil {
		return nil, err
	}
	var b []byte
	err := t.pt.QueryRow(t.ctx, "SELECT state FROM records WHERE id = $1", id[:]).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, syncengine.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return syncengine.UnmarshalRecord(id, b)
}

const page = 1000

func (t *tx) ScanRecords(from syncengine.RecordID, fn func(*syncengine.Record) error) error {
	if err := t.flush(); err != nil {
		return err
	}
	after, incl := from[:], true
	for {
		op := ">"
		if incl {
			op = ">="
		}
		rows, err := t.pt.Query(t.ctx, "SELECT id, state FROM records WHERE id "+op+" $1 ORDER BY id LIMIT $2", after, page)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		var recs []*syncengine.Record
		for rows.Next() {
			var idb, b []byte
			if err := rows.Scan(&idb, &b); err != nil {
				rows.Close()
				return fmt.Errorf("postgres: %w", err)
			}
			var id syncengine.RecordID
			copy(id[:], idb)
			r, err := syncengine.UnmarshalRecord(id, b)
			if err != nil {
				rows.Close()
				return err
			}
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(recs) < page {
			return nil
		}
		last := recs[len(recs)-1].ID
		after, incl = last[:], false
	}
}

func (t *tx) ScanLog(after uint64, fn func(syncengine.LogEntry, int) error, opts ...syncengine.ScanOption) error {
	opt := syncengine.OptionOf(opts)
	if err := t.flush(); err != nil {
		return err
	}
	for {
		rows, err := t.pt.Query(t.ctx, "SELECT seq, entry FROM log WHERE seq > $1 ORDER BY seq LIMIT $2", int64(after), page)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		type raw struct {
			seq int64
			b   []byte
		}
		var got []raw
		for rows.Next() {
			var r raw
			if err := rows.Scan(&r.seq, &r.b); err != nil {
				rows.Close()
				return fmt.Errorf("postgres: %w", err)
			}
			got = append(got, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		for _, r := range got {
			e, err := syncengine.DecodeLogEntry(uint64(r.seq), r.b, opt)
			if err != nil {
				return err
			}
			if err := fn(e, len(r.b)); err != nil {
				return err
			}
		}
		if len(got) < page {
			return nil
		}
		after = uint64(got[len(got)-1].seq)
	}
}

func (t *tx) LogEntry(seq uint64) (syncengine.LogEntry, error) {
	if err := t.flush(); err != nil {
		return syncengine.LogEntry{}, err
	}
	var b []byte
	err := t.pt.QueryRow(t.ctx, "SELECT entry FROM log WHERE seq = $1", int64(seq)).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return syncengine.LogEntry{}, syncengine.ErrNotFound
	}
	if err != nil {
		return syncengine.LogEntry{}, fmt.Errorf("postgres: %w", err)
	}
	return syncengine.UnmarshalLogEntry(seq, b)
}

func (t *tx) Head() (uint64, error) {
	if t.head < 0 {
		if err := t.pt.QueryRow(t.ctx, "SELECT seq FROM head WHERE id = 1").Scan(&t.head); err != nil {
			return 0, fmt.Errorf("postgres: %w", err)
		}
	}
	return uint64(t.head), nil
}

// HasMeta implements syncengine.MetaChecker without sending the value.
func (t *tx) HasMeta(key string) (bool, error) {
	if err := t.flush(); err != nil {
		return false, err
	}
	var held bool
	if err := t.pt.QueryRow(t.ctx, "SELECT EXISTS (SELECT 1 FROM meta WHERE key = $1)", key).Scan(&held); err != nil {
		return false, fmt.Errorf("postgres: %w", err)
	}
	return held, nil
}

func (t *tx) Meta(key string) ([]byte, error) {
	if err := t.flush(); err != nil {
		return nil, err
	}
	var b []byte
	err := t.pt.QueryRow(t.ctx, "SELECT value FROM meta WHERE key = $1", key).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, syncengine.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return b, nil
}

func (t *tx) ScanMeta(prefix string, fn func(string, []byte) error) error {
	if err := t.flush(); err != nil {
		return err
	}
	rows, err := t.pt.Query(t.ctx, "SELECT key, value FROM meta WHERE starts_with(key, $1) ORDER BY key COLLATE \"C\"", prefix)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	type kv struct {
		k string
		v []byte
	}
	var all []kv
	for rows.Next() {
		var x kv
		if err := rows.Scan(&x.k, &x.v); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: %w", err)
		}
		if strings.HasPrefix(x.k, prefix) {
			all = append(all, x)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	for _, x := range all {
		if err := fn(x.k, x.v); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) PutRecord(r *syncengine.Record) error {
	return t.PutRecordBytes(r.ID, syncengine.MarshalRecord(nil, r))
}

func (t *tx) PutRecordBytes(id syncengine.RecordID, b []byte) error {
	t.batch.Queue("INSERT INTO records (id, state) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state",
		append([]byte(nil), id[:]...), b)
	return t.maybeFlush()
}

func (t *tx) Append(origin syncengine.Origin, c *syncengine.Change) (uint64, error) {
	if !t.write {
		return 0, errors.New("postgres: append in a read-only transaction")
	}
	t.head++
	t.batch.Queue("INSERT INTO log (seq, entry) VALUES ($1, $2)", t.head, syncengine.MarshalLogEntry(nil, origin, c))
	return uint64(t.head), t.maybeFlush()
}

func (t *tx) ReplaceLog(seq uint64, c *syncengine.Change) error {
	e, err := t.LogEntry(seq)
	if err != nil {
		return err
	}
	t.batch.Queue("UPDATE log SET entry = $2 WHERE seq = $1", int64(seq), syncengine.MarshalLogEntry(nil, e.Origin, c))
	return t.maybeFlush()
}

func (t *tx) SetMeta(key string, value []byte) error {
	t.batch.Queue("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
		key, append([]byte{}, value...)) // never NULL: an empty value is a value (a mark)
	return t.maybeFlush()
}

func (t *tx) DeleteMeta(key string) error {
	t.batch.Queue("DELETE FROM meta WHERE key = $1", key)
	return t.maybeFlush()
}

// maybeFlush bounds the queued batch.
func (t *tx) maybeFlush() error {
	if t.batch.Len() >= 2000 {
		return t.flush()
	}
	return nil
}
