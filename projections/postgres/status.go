package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-shop/ordo/projections"
)

// VersionStatus describes one version of the read model.
type VersionStatus struct {
	Version int
	// State is building, live or retired.
	State string
	// Checkpoint is the smallest partition checkpoint: everything at or
	// below it is applied. Checkpoints lists every partition's.
	Checkpoint  uint64
	Checkpoints []uint64
	// Lag is the stream's last sequence minus Checkpoint.
	Lag       uint64
	CreatedAt time.Time
	LiveSince *time.Time
	// UpdatedAt is when a checkpoint of the version last moved.
	UpdatedAt time.Time
}

// Lease is one partition's current holder.
type Lease struct {
	Partition int
	Owner     string
	ExpiresAt time.Time
}

// Status describes the projection for operators.
type Status struct {
	Name string
	// State is "live" (caught up), "catching_up" (lag > 0) or
	// "rebuilding" (a new version is being built).
	State         string
	StreamLastSeq uint64
	Live          VersionStatus
	Versions      []VersionStatus
	Leases        []Lease
	// Quarantine lists the commits set aside, but those resolved
	// ([Store.Quarantined]).
	Quarantine []QuarantineEntry
}

// View returns the status as the API and orderctl show it.
func (st Status) View() projections.View {
	v := projections.View{
		Name: st.Name, State: st.State, StreamLastSeq: st.StreamLastSeq, Version: st.Live.Version,
		Checkpoint: st.Live.Checkpoint, Lag: projections.Lag(st.Live.Lag),
		Versions: make([]projections.VersionView, 0, len(st.Versions)), Leases: make([]projections.LeaseView, 0, len(st.Leases)),
	}
	for _, ver := range st.Versions {
		v.Versions = append(v.Versions, projections.VersionView{
			Version: ver.Version, State: ver.State, Checkpoint: ver.Checkpoint, Lag: ver.Lag,
			Checkpoints: ver.Checkpoints, CreatedAt: ver.CreatedAt, UpdatedAt: ver.UpdatedAt,
		})
	}
	for _, l := range st.Leases {
		v.Leases = append(v.Leases, projections.LeaseView{Partition: l.Partition, Owner: l.Owner, ExpiresAt: l.ExpiresAt})
	}
	v.Quarantine = Views(st.Quarantine)
	v.OpenQuarantines, _ = projections.CountQuarantine(v.Quarantine)
	return v
}

// Status reports every version's checkpoints and lag against the
// stream's last sequence streamLast, and the partition leases.
func (s *Store) Status(ctx context.Context, streamLast uint64) (Status, error) {
	st := Status{Name: Name, StreamLastSeq: streamLast}
	rows, err := s.pool.Query(ctx, `SELECT version, state, created_at, live_since FROM ordo.projection_versions
		WHERE projection = $1 ORDER BY version`, Name)
	if err != nil {
		return Status{}, fmt.Errorf("order status: status: %w", err)
	}
	var vs []VersionStatus
	var v VersionStatus
	if _, err := pgx.ForEachRow(rows, []any{&v.Version, &v.State, &v.CreatedAt, &v.LiveSince}, func() error {
		vs = append(vs, v)
		return nil
	}); err != nil {
		return Status{}, fmt.Errorf("order status: status: %w", err)
	}
	building := false
	for i := range vs {
		v := &vs[i]
		rows, err := s.pool.Query(ctx, "SELECT seq, updated_at FROM "+versionSchema(v.Version)+".checkpoints ORDER BY partition")
		if err != nil {
			return Status{}, fmt.Errorf("order status: status of v%d: %w", v.Version, err)
		}
		var seq int64
		var at time.Time
		v.Checkpoints = []uint64{}
		first := true
		if _, err := pgx.ForEachRow(rows, []any{&seq, &at}, func() error {
			v.Checkpoints = append(v.Checkpoints, uint64(seq))
			if first || uint64(seq) < v.Checkpoint {
				v.Checkpoint = uint64(seq)
			}
			first = false
			if at.After(v.UpdatedAt) {
				v.UpdatedAt = at
			}
			return nil
		}); err != nil {
			return Status{}, fmt.Errorf("order status: status of v%d: %w", v.Version, err)
		}
		if streamLast > v.Checkpoint {
			v.Lag = streamLast - v.Checkpoint
		}
		v.CreatedAt = v.CreatedAt.UTC()
		v.UpdatedAt = v.UpdatedAt.UTC()
		switch v.State {
		case "live":
			st.Live = *v
		case "building":
			building = true
		}
	}
	st.Versions = vs
	switch {
	case building:
		st.State = "rebuilding"
	case st.Live.Lag > 0:
		st.State = "catching_up"
	default:
		st.State = "live"
	}
	rows, err = s.pool.Query(ctx, "SELECT partition, owner, expires_at FROM ordo.projection_leases WHERE projection = $1 AND expires_at > now() ORDER BY partition", Name)
	if err != nil {
		return Status{}, fmt.Errorf("order status: leases: %w", err)
	}
	var l Lease
	st.Leases = []Lease{}
	if _, err := pgx.ForEachRow(rows, []any{&l.Partition, &l.Owner, &l.ExpiresAt}, func() error {
		l.ExpiresAt = l.ExpiresAt.UTC()
		st.Leases = append(st.Leases, l)
		return nil
	}); err != nil {
		return Status{}, fmt.Errorf("order status: leases: %w", err)
	}
	if st.Quarantine, err = s.Quarantined(ctx); err != nil {
		return Status{}, err
	}
	return st, nil
}

// Snapshot is the live read model's content as text, one entry per row
// in a fixed order, for comparing two read models (reconciliation, and
// the tests that compare a projector's result with a fresh replay).
type Snapshot struct {
	Orders, Lines, Timeline []string
}

// Snapshot returns the live version's rows.
func (s *Store) Snapshot(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	for _, q := range []struct {
		dst *[]string
		sql string
	}{
		{&snap.Orders, "SELECT row_to_json(t)::text FROM " + viewSchema + ".orders t ORDER BY order_id"},
		{&snap.Lines, "SELECT row_to_json(t)::text FROM " + viewSchema + ".order_lines t ORDER BY order_id, line_no"},
		{&snap.Timeline, "SELECT row_to_json(t)::text FROM " + viewSchema + ".order_timeline t ORDER BY order_id, version"},
	} {
		rows, err := s.pool.Query(ctx, q.sql)
		if err != nil {
			return Snapshot{}, err
		}
		if *q.dst, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return Snapshot{}, err
		}
	}
	return snap, nil
}
