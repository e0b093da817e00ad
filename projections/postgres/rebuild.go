package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/projections"
)

// ErrRebuildRunning is returned by [Store.Rebuild] while another rebuild
// of the projection runs.
var ErrRebuildRunning = errors.New("order status: a rebuild is already running")

// RebuildOptions tune [Store.Rebuild].
type RebuildOptions struct {
	// BatchSize is the most commits per transaction (default
	// projections.DefaultBatchSize).
	BatchSize int
	// Workers is how many partitions are replayed at once (0: all).
	Workers int
	// SwapWithin is the lag (in stream sequences) below which the new
	// version is swapped in (default 1000): the live projector is held
	// only while the new version applies that last stretch.
	SwapWithin uint64
	// Progress, if set, is told what the rebuild is doing.
	Progress func(msg string, args ...any)
}

// RebuildResult describes a finished rebuild.
type RebuildResult struct {
	From, To   int           // the versions swapped
	Checkpoint uint64        // the new version's smallest checkpoint at the swap
	Took       time.Duration // from start to swap
	Held       time.Duration // how long the live projector was held
}

// Rebuild builds a new version of the read model from the log beside the
// live one, catches it up and swaps it in atomically, while the live
// version keeps serving queries and projectors keep it current:
//
//  1. versions left retired by the previous rebuild (or a half-built one
//     from a rebuild that died) are dropped, and version N+1 is created;
//  2. every partition is replayed into it until it is within SwapWithin
//     of the stream's end;
//  3. one transaction locks the live version's checkpoints (projectors
//     wait on their next batch), the new version applies the rest up to
//     the current end, the views and the registry are repointed, and the
//     transaction commits. Queries see the old version or the new one.
//
// Live projectors notice the swap on their next batch and continue on the
// new version from its checkpoints.
func (s *Store) Rebuild(ctx context.Context, src projections.Source, opts RebuildOptions) (RebuildResult, error) {
	started := time.Now()
	progress := opts.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	if opts.SwapWithin == 0 {
		opts.SwapWithin = 1000
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return RebuildResult{}, err
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockRebuild).Scan(&locked); err != nil {
		return RebuildResult{}, err
	}
	if !locked {
		return RebuildResult{}, ErrRebuildRunning
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lockRebuild) //nolint:errcheck // the session ends anyway

	var from, to int
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockSetup); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT version FROM ordo.projection_versions WHERE projection = $1 AND state <> 'live'", Name)
		if err != nil {
			return err
		}
		old, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return err
		}
		for _, v := range old {
			if _, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS "+versionSchema(v)+" CASCADE"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "DELETE FROM ordo.projection_versions WHERE projection = $1 AND version = $2", Name, v); err != nil {
				return err
			}
			progress("dropped old version", "version", v)
		}
		if err := tx.QueryRow(ctx, "SELECT version FROM ordo.projection_versions WHERE projection = $1 AND state = 'live'", Name).Scan(&from); err != nil {
			return err
		}
		to = from + 1
		return s.createVersion(ctx, tx, to, "building")
	})
	if err != nil {
		return RebuildResult{}, fmt.Errorf("order status: rebuild: create version: %w", err)
	}
	progress("building", "version", to, "live", from)

	sink := &Sink{st: s}
	sink.version.Store(int64(to))
	runner, err := projections.New(src, sink, nil, projections.Options{BatchSize: opts.BatchSize, Logger: s.log})
	if err != nil {
		return RebuildResult{}, err
	}
	for {
		if err := runner.CatchUp(ctx, opts.Workers); err != nil {
			return RebuildResult{}, fmt.Errorf("order status: rebuild: %w", err)
		}
		last, err := src.LastSeq(ctx, eventlog.TypeOrder)
		if err != nil {
			return RebuildResult{}, err
		}
		cp, err := s.minCheckpoint(ctx, s.pool, to)
		if err != nil {
			return RebuildResult{}, err
		}
		progress("caught up", "version", to, "checkpoint", cp, "stream", last)
		if last-min(cp, last) <= opts.SwapWithin {
			break
		}
	}

	var res RebuildResult
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '10s'"); err != nil {
			return err
		}
		held := time.Now()
		rows, err := tx.Query(ctx, "SELECT partition, seq FROM "+versionSchema(from)+".checkpoints ORDER BY partition FOR UPDATE")
		if err != nil {
			return err
		}
		live := map[int]int64{}
		var p int
		var seq int64
		if _, err := pgx.ForEachRow(rows, []any{&p, &seq}, func() error { live[p] = seq; return nil }); err != nil {
			return err
		}
		// The live version cannot move now: bring the new one level.
		if err := runner.CatchUp(ctx, opts.Workers); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, "SELECT partition, seq FROM "+versionSchema(to)+".checkpoints ORDER BY partition")
		if err != nil {
			return err
		}
		var lowest int64 = -1
		if _, err := pgx.ForEachRow(rows, []any{&p, &seq}, func() error {
			if seq < live[p] {
				return fmt.Errorf("partition %d: new version at %d, live at %d", p, seq, live[p])
			}
			if lowest < 0 || seq < lowest {
				lowest = seq
			}
			return nil
		}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE ordo.projection_versions SET state = CASE WHEN version = $2 THEN 'retired' ELSE 'live' END,
			live_since = CASE WHEN version = $3 THEN now() ELSE live_since END
			WHERE projection = $1 AND version IN ($2, $3)`, Name, from, to); err != nil {
			return err
		}
		if err := pointViews(ctx, tx, to); err != nil {
			return err
		}
		res = RebuildResult{From: from, To: to, Checkpoint: uint64(max(lowest, 0)), Held: time.Since(held)}
		return nil
	})
	if err != nil {
		return RebuildResult{}, fmt.Errorf("order status: rebuild: swap: %w", err)
	}
	res.Took = time.Since(started)
	s.log.Info("order status rebuilt", slog.Int("from", from), slog.Int("to", to), slog.Duration("took", res.Took), slog.Duration("held", res.Held))
	return res, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Store) minCheckpoint(ctx context.Context, q querier, v int) (uint64, error) {
	var cp int64
	if err := q.QueryRow(ctx, "SELECT coalesce(min(seq), 0) FROM "+versionSchema(v)+".checkpoints").Scan(&cp); err != nil {
		return 0, err
	}
	return uint64(cp), nil
}
