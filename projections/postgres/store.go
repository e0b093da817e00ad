package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/orderlog"
)

// Name is the projection's name in the registry, in orderctl and in
// GET /v1/projections.
const Name = "order_status"

// viewSchema holds the views queries read: always the live version.
const viewSchema = "order_status"

// viewTables are the tables of a version, each with a view in viewSchema.
var viewTables = []string{"checkpoints", "orders", "order_lines", "order_timeline"}

func versionSchema(v int) string { return fmt.Sprintf("order_status_v%d", v) }

// Options configure [Open].
type Options struct {
	// Partitions is the partition count of the ORDERS stream
	// (streams.Store.Partitions). Required.
	Partitions int
	// Partition returns an order's partition (streams.Store.Partition).
	// Required by [Store.WaitFor] for one order.
	Partition func(orderID string) int
	// Logger receives what the store cannot return (default: discard).
	Logger *slog.Logger
}

// Store is the order-status read model in one PostgreSQL database. It is
// safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	decoder *orderlog.Decoder
	opts    Options
	log     *slog.Logger
	live    *Sink
}

// Open applies the migrations, creates version 1 of the read model if the
// database has none and returns the Store. It fails if the read model was
// made for a stream with another partition count.
func Open(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	if pool == nil || opts.Partitions < 1 {
		return nil, errors.New("order status: a pool and the partition count are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	reg, err := events.Standard()
	if err != nil {
		return nil, err
	}
	if _, err := Migrate(ctx, pool); err != nil {
		return nil, err
	}
	s := &Store{pool: pool, decoder: orderlog.NewDecoder(reg), opts: opts, log: opts.Logger}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockSetup); err != nil {
			return err
		}
		var v, parts int
		err := tx.QueryRow(ctx, "SELECT version, partitions FROM ordo.projection_versions WHERE projection = $1 AND state = 'live'", Name).Scan(&v, &parts)
		if errors.Is(err, pgx.ErrNoRows) {
			if err := s.createVersion(ctx, tx, 1, "live"); err != nil {
				return err
			}
			return pointViews(ctx, tx, 1)
		}
		if err != nil {
			return err
		}
		if parts != opts.Partitions {
			return fmt.Errorf("the read model was built for %d partitions, the stream has %d: rebuild it", parts, opts.Partitions)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("order status: set up: %w", err)
	}
	s.live = &Sink{st: s, live: true}
	if _, err := s.live.refresh(ctx, pool); err != nil {
		return nil, err
	}
	return s, nil
}

// Pool returns the store's connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Sink returns the [projections.Sink] of the live version: the one a
// projector keeps current. After a rebuild swapped versions it moves to
// the new live version by itself.
func (s *Store) Sink() *Sink { return s.live }

// createVersion makes the schema of version v with a zero checkpoint per
// partition and records it in the registry.
func (s *Store) createVersion(ctx context.Context, tx pgx.Tx, v int, state string) error {
	ddl := strings.ReplaceAll(versionTemplate, "%SCHEMA%", versionSchema(v))
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("create %s: %w", versionSchema(v), err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+versionSchema(v)+".checkpoints (partition, seq) SELECT g, 0 FROM generate_series(0, $1 - 1) g", s.opts.Partitions); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO ordo.projection_versions (projection, version, state, partitions, live_since)
		VALUES ($1, $2, $3, $4, CASE WHEN $3 = 'live' THEN now() END)`, Name, v, state, s.opts.Partitions)
	return err
}

// pointViews makes the views in order_status read version v.
func pointViews(ctx context.Context, tx pgx.Tx, v int) error {
	var b strings.Builder
	b.WriteString("CREATE SCHEMA IF NOT EXISTS " + viewSchema + ";\n")
	for _, t := range viewTables {
		fmt.Fprintf(&b, "DROP VIEW IF EXISTS %s.%s;\nCREATE VIEW %s.%s AS SELECT * FROM %s.%s;\n", viewSchema, t, viewSchema, t, versionSchema(v), t)
	}
	_, err := tx.Exec(ctx, b.String())
	return err
}

// Sink applies commits to one version of the read model; see
// [projections.Sink]. It is safe for concurrent use.
type Sink struct {
	st *Store
	// live sinks follow the registry's live version; others write a
	// fixed version (a rebuild's).
	live    bool
	version atomic.Int64
	// stale makes a live sink look the live version up again before its
	// next commit, after a commit failed (its version may have been
	// swapped out and dropped).
	stale atomic.Bool

	// cache holds, per partition, the rows this sink last wrote, valid
	// while the partition's checkpoint is still where this sink left it
	// (then nobody else has written the partition since). It saves
	// reading back the orders a batch continues.
	mu    sync.Mutex
	cache map[int]*rowCache
}

// rowCache is one partition's cached rows.
type rowCache struct {
	version int
	cp      uint64
	rows    map[string]*orderRow
}

// maxCachedRows bounds one partition's cache; a full cache starts over.
const maxCachedRows = 20000

// takeCache removes and returns partition p's cache if it matches the
// version and checkpoint a commit starts from.
func (k *Sink) takeCache(p, version int, cp uint64) *rowCache {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := k.cache[p]
	delete(k.cache, p)
	if c == nil || c.version != version || c.cp != cp {
		return &rowCache{version: version, rows: map[string]*orderRow{}}
	}
	return c
}

func (k *Sink) putCache(p int, c *rowCache) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cache == nil {
		k.cache = map[int]*rowCache{}
	}
	k.cache[p] = c
}

var _ projections.DecodingSink = (*Sink)(nil)

// refresh reads the live version from the registry, through q (the pool,
// or the transaction in progress: never take a second connection while
// holding one, or concurrent committers can exhaust the pool).
func (k *Sink) refresh(ctx context.Context, q querier) (int, error) {
	if !k.live {
		return int(k.version.Load()), nil
	}
	var v int
	err := q.QueryRow(ctx, "SELECT version FROM ordo.projection_versions WHERE projection = $1 AND state = 'live'", Name).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("order status: live version: %w", err)
	}
	k.version.Store(int64(v))
	return v, nil
}

// Version returns the version the sink writes.
func (k *Sink) Version() int { return int(k.version.Load()) }

// Checkpoint implements [projections.Sink]. For the live sink it first
// looks up which version is live.
func (k *Sink) Checkpoint(ctx context.Context, partition int) (uint64, error) {
	v, err := k.refresh(ctx, k.st.pool)
	if err != nil {
		return 0, err
	}
	var seq int64
	err = k.st.pool.QueryRow(ctx, "SELECT seq FROM "+versionSchema(v)+".checkpoints WHERE partition = $1", partition).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("order status: checkpoint of partition %d: %w", partition, err)
	}
	return uint64(seq), nil
}

// Commit implements [projections.Sink]: one transaction that moves the
// checkpoint from from to to (only if it is still from, and for the live
// sink only while its version is live), then applies recs.
func (k *Sink) Commit(ctx context.Context, partition int, from, to uint64, recs []eventlog.Record) error {
	commits, err := decodeAll(k.st.decoder, recs)
	if err != nil {
		return projections.Poison(fmt.Errorf("order status: partition %d: %w", partition, err))
	}
	return k.commit(ctx, partition, from, to, commits)
}

// Decode implements [projections.DecodingSink]: it reads what the read
// model needs of a commit, without encoding/json where it can (see
// [orderlog.Decoder]). The result is a *orderlog.Commit.
func (k *Sink) Decode(rec eventlog.RawRecord) (string, any, error) {
	c, err := k.st.decoder.Decode(rec)
	if err != nil {
		return "", nil, fmt.Errorf("order status: %w", err)
	}
	return c.AggregateID, c, nil
}

// CommitDecoded implements [projections.DecodingSink]: [Sink.Commit] for
// the values of [Sink.Decode].
func (k *Sink) CommitDecoded(ctx context.Context, partition int, from, to uint64, recs []projections.Decoded) error {
	commits := make([]*orderlog.Commit, len(recs))
	for i, d := range recs {
		c, ok := d.Value.(*orderlog.Commit)
		if !ok {
			return fmt.Errorf("order status: partition %d: seq %d was not decoded by this sink (%T)", partition, d.Seq, d.Value)
		}
		commits[i] = c
	}
	return k.commit(ctx, partition, from, to, commits)
}

func (k *Sink) commit(ctx context.Context, partition int, from, to uint64, recs []*orderlog.Commit) error {
	var (
		cache *rowCache
		ch    *change
	)
	err := k.send(ctx, partition, from, to, func(b *pgx.Batch, v int) error {
		schema := versionSchema(v)
		// Fold first, from the rows this sink wrote last (valid while the
		// checkpoint is still from) and those read back; then one pipeline,
		// its own implicit transaction, moves the checkpoint (or fails with
		// OX409, aborting the rest) and writes: one round trip. Reading back
		// outside that transaction is safe: a checkpoint only moves forward,
		// in the same transaction as the rows, so if it is still at from when
		// the pipeline runs, nobody wrote the partition since the read.
		cache = k.takeCache(partition, v, from)
		existing := cache.rows
		if ids := orderIDs(recs, existing); len(ids) > 0 {
			rows, err := k.st.pool.Query(ctx, selectOrders(schema), ids)
			if err == nil {
				err = scanOrderRows(rows, existing)
			}
			if err != nil {
				return fmt.Errorf("order status: read orders: %w", err)
			}
		}
		if len(recs) == 0 {
			return nil
		}
		var err error
		if ch, err = fold(recs, existing); err != nil {
			// Rows read back after someone else applied more do not fold.
			if cp, cerr := k.Checkpoint(ctx, partition); cerr == nil && cp != from {
				return projections.ErrCheckpointMoved
			}
			return projections.Poison(fmt.Errorf("order status: partition %d: %w", partition, err))
		}
		queueWrites(b, schema, ch)
		return nil
	})
	if err != nil {
		return err
	}
	if ch != nil {
		if len(cache.rows)+len(ch.orders) > maxCachedRows {
			clear(cache.rows)
		}
		for _, r := range ch.orders {
			cache.rows[r.OrderID] = r
		}
	}
	cache.cp = to
	k.putCache(partition, cache)
	return nil
}

// send runs one transaction on the version the sink writes: it moves the
// partition's checkpoint from from to to, or fails with
// [projections.ErrCheckpointMoved] having done nothing, and runs what
// queue adds to the batch (queue may fail, and nothing is sent). A batch
// PostgreSQL refuses for its data fails with [projections.ErrPoison].
func (k *Sink) send(ctx context.Context, partition int, from, to uint64, queue func(b *pgx.Batch, version int) error) (err error) {
	if k.live && k.stale.Load() {
		if _, err := k.refresh(ctx, k.st.pool); err != nil {
			return err
		}
		k.stale.Store(false)
	}
	defer func() {
		if err != nil && k.live && !errors.Is(err, projections.ErrCheckpointMoved) {
			k.stale.Store(true)
		}
	}()
	v := int(k.version.Load())
	live := 0
	if k.live {
		live = v
	}
	var batch pgx.Batch
	batch.Queue("SELECT ordo.move_checkpoint($1, $2, $3, $4, $5, $6)", Name, versionSchema(v), partition, int64(from), int64(to), live)
	if err := queue(&batch, v); err != nil {
		return err
	}
	if err := k.st.pool.SendBatch(ctx, &batch).Close(); err != nil {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == codeCheckpointMoved {
			if k.live {
				if _, err := k.refresh(ctx, k.st.pool); err != nil {
					return err
				}
			}
			return projections.ErrCheckpointMoved
		}
		return poisonData(fmt.Errorf("order status: partition %d: %w", partition, err))
	}
	return nil
}

// codeCheckpointMoved is the SQLSTATE ordo.move_checkpoint raises.
const codeCheckpointMoved = "OX409"
