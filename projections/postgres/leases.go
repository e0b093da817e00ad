package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-shop/ordo/projections"
)

// DefaultLeaseTTL is how long a partition lease lasts without renewal.
const DefaultLeaseTTL = 5 * time.Second

// Leases shares the read model's partitions among the instances that
// project it, through the tables ordo.projection_instances and
// ordo.projection_leases; see [projections.Leases]. Each instance holds
// at most its fair share, ceil(partitions / live instances), so a new
// instance gets partitions once the others give up their surplus on
// their next claim. Times are the database's, so instances' clocks do
// not matter.
type Leases struct {
	st         *Store
	projection string
	instance   string
	ttl        time.Duration
}

var _ projections.Leases = (*Leases)(nil)

// Leases returns the lease keeper of one instance, named uniquely (a
// host name and process id, for example). ttl <= 0 takes
// [DefaultLeaseTTL]; claim well within it.
func (s *Store) Leases(instance string, ttl time.Duration) *Leases {
	return s.LeasesFor(Name, instance, ttl)
}

// LeasesFor is [Store.Leases] for another projection of the same stream
// (the search index): its partitions are shared among its own instances,
// independently of the read model's.
func (s *Store) LeasesFor(projection, instance string, ttl time.Duration) *Leases {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	return &Leases{st: s, projection: projection, instance: instance, ttl: ttl}
}

// Claim implements [projections.Leases].
func (l *Leases) Claim(ctx context.Context) ([]int, error) {
	var mine []int
	ttl := l.ttl.Seconds()
	parts := l.st.opts.Partitions
	err := pgx.BeginFunc(ctx, l.st.pool, func(tx pgx.Tx) error {
		mine = mine[:0]
		if _, err := tx.Exec(ctx, `INSERT INTO ordo.projection_instances (projection, instance, seen_at) VALUES ($1, $2, now())
			ON CONFLICT (projection, instance) DO UPDATE SET seen_at = now()`, l.projection, l.instance); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM ordo.projection_instances WHERE projection = $1 AND seen_at < now() - make_interval(secs => $2::float8 * 10)`, l.projection, ttl); err != nil {
			return err
		}
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM ordo.projection_instances WHERE projection = $1 AND seen_at > now() - make_interval(secs => $2::float8)`, l.projection, ttl).Scan(&live); err != nil {
			return err
		}
		share := (parts + max(live, 1) - 1) / max(live, 1)
		rows, err := tx.Query(ctx, `UPDATE ordo.projection_leases SET expires_at = now() + make_interval(secs => $3::float8)
			WHERE projection = $1 AND owner = $2 AND partition < $4 RETURNING partition`, l.projection, l.instance, ttl, parts)
		if err != nil {
			return err
		}
		held, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return err
		}
		sort.Ints(held)
		if len(held) > share {
			extra := held[share:]
			held = held[:share]
			if _, err := tx.Exec(ctx, `DELETE FROM ordo.projection_leases WHERE projection = $1 AND owner = $2 AND partition = ANY($3)`, l.projection, l.instance, extra); err != nil {
				return err
			}
		}
		if want := share - len(held); want > 0 {
			rows, err := tx.Query(ctx, `INSERT INTO ordo.projection_leases (projection, partition, owner, expires_at)
				SELECT $1, g, $2, now() + make_interval(secs => $3::float8)
				FROM generate_series(0, $4 - 1) g
				WHERE NOT EXISTS (SELECT 1 FROM ordo.projection_leases l WHERE l.projection = $1 AND l.partition = g AND l.expires_at > now())
				ORDER BY g LIMIT $5
				ON CONFLICT (projection, partition) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
				WHERE ordo.projection_leases.expires_at <= now()
				RETURNING partition`, l.projection, l.instance, ttl, parts, want)
			if err != nil {
				return err
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[int])
			if err != nil {
				return err
			}
			held = append(held, got...)
		}
		mine = held
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("order status: claim partitions: %w", err)
	}
	sort.Ints(mine)
	return mine, nil
}

// Release implements [projections.Leases].
func (l *Leases) Release(ctx context.Context) error {
	_, err := l.st.pool.Exec(ctx, `DELETE FROM ordo.projection_leases WHERE projection = $1 AND owner = $2;`, l.projection, l.instance)
	if err == nil {
		_, err = l.st.pool.Exec(ctx, `DELETE FROM ordo.projection_instances WHERE projection = $1 AND instance = $2`, l.projection, l.instance)
	}
	if err != nil {
		return fmt.Errorf("order status: release partitions: %w", err)
	}
	return nil
}
