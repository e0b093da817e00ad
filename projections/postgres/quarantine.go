package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/orderlog"
)

var _ projections.Quarantiner = (*Sink)(nil)

// maxErrorText bounds the error text kept with a quarantined commit.
const maxErrorText = 2000

// Quarantine implements [projections.Quarantiner]: one transaction moves
// the partition's checkpoint from from to to and records q against the
// version the sink writes. A commit an operator acknowledged in an
// earlier version (before a rebuild) stays acknowledged.
func (k *Sink) Quarantine(ctx context.Context, from, to uint64, q projections.Quarantined) error {
	return k.send(ctx, q.Partition, from, to, func(b *pgx.Batch, v int) error {
		b.Queue(`INSERT INTO ordo.projection_quarantine (projection, version, seq, partition, aggregate_id, error, attempts, state)
			VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN EXISTS (SELECT 1 FROM ordo.projection_quarantine
				WHERE projection = $1 AND seq = $3 AND state = 'acknowledged') THEN 'acknowledged' ELSE 'open' END)
			ON CONFLICT (projection, version, seq) DO UPDATE SET error = EXCLUDED.error,
				attempts = ordo.projection_quarantine.attempts + EXCLUDED.attempts, updated_at = now()`,
			Name, v, int64(q.Seq), q.Partition, storable(q.AggregateID), errorText(q.Err), q.Attempts)
		return nil
	})
}

// errorText is an error as a quarantine keeps it: storable, bounded.
func errorText(s string) string {
	s = storable(s)
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// storable returns s as PostgreSQL can store it in text and jsonb: NUL,
// which neither takes, and invalid UTF-8 become U+FFFD. The log keeps what
// was written; the read model shows the replacement (decision 011).
func storable(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c >= utf8.RuneSelf {
			return storableSlow(s)
		}
	}
	return s
}

func storableSlow(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	for _, r := range s { // invalid UTF-8 comes as U+FFFD
		if r == 0 {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	return b.String()
}

// poisonData marks err as poison when PostgreSQL refused the batch for its
// data (SQLSTATE classes 22, data exception, and 23, integrity constraint
// violation): sending it again cannot succeed.
func poisonData(err error) error {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")) {
		return projections.Poison(err)
	}
	return err
}

// QuarantineEntry is one commit a projector set aside.
type QuarantineEntry struct {
	Projection    string
	Version       int
	Seq           uint64
	Partition     int
	AggregateID   string
	Error         string
	Attempts      int
	State         string
	QuarantinedAt time.Time
	UpdatedAt     time.Time
	Note          string
}

// View is the entry as operators see it.
func (e QuarantineEntry) View() projections.QuarantineView {
	return projections.QuarantineView{
		Version: e.Version, Seq: e.Seq, Partition: e.Partition, AggregateID: e.AggregateID, Error: e.Error,
		Attempts: e.Attempts, State: e.State, QuarantinedAt: e.QuarantinedAt, UpdatedAt: e.UpdatedAt, Note: e.Note,
	}
}

// Views returns the entries as operators see them.
func Views(q []QuarantineEntry) []projections.QuarantineView {
	out := make([]projections.QuarantineView, len(q))
	for i, e := range q {
		out[i] = e.View()
	}
	return out
}

const quarantineColumns = "projection, version, seq, partition, aggregate_id, error, attempts, state, quarantined_at, updated_at, note"

func scanQuarantine(rows pgx.Rows) ([]QuarantineEntry, error) {
	out := []QuarantineEntry{}
	var e QuarantineEntry
	var seq int64
	_, err := pgx.ForEachRow(rows, []any{&e.Projection, &e.Version, &seq, &e.Partition, &e.AggregateID, &e.Error, &e.Attempts,
		&e.State, &e.QuarantinedAt, &e.UpdatedAt, &e.Note}, func() error {
		e.Seq = uint64(seq)
		e.QuarantinedAt, e.UpdatedAt = e.QuarantinedAt.UTC(), e.UpdatedAt.UTC()
		out = append(out, e)
		return nil
	})
	return out, err
}

// Quarantined returns the commits set aside in the versions of the read
// model that are live or being built, but those a retry resolved, in
// version and log order.
func (s *Store) Quarantined(ctx context.Context) ([]QuarantineEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+quarantineColumns+` FROM ordo.projection_quarantine q
		WHERE projection = $1 AND state <> 'resolved' AND EXISTS (SELECT 1 FROM ordo.projection_versions v
			WHERE v.projection = q.projection AND v.version = q.version AND v.state IN ('live', 'building'))
		ORDER BY version, seq`, Name)
	if err != nil {
		return nil, fmt.Errorf("order status: quarantine: %w", err)
	}
	out, err := scanQuarantine(rows)
	if err != nil {
		return nil, fmt.Errorf("order status: quarantine: %w", err)
	}
	return out, nil
}

// Degradation says why an order's view may miss some of its history.
type Degradation struct {
	// Seq is the first of the order's commits that is set aside.
	Seq   uint64
	Error string
	State string
	Since time.Time
}

// degradation returns the order's first commit set aside in the live
// version, if any.
func (s *Store) degradation(ctx context.Context, q querier, id string) (*Degradation, error) {
	var d Degradation
	var seq int64
	err := q.QueryRow(ctx, `SELECT q.seq, q.error, q.state, q.quarantined_at FROM ordo.projection_quarantine q
		JOIN ordo.projection_versions v ON v.projection = q.projection AND v.version = q.version AND v.state = 'live'
		WHERE q.projection = $1 AND q.aggregate_id = $2 AND q.state <> 'resolved' ORDER BY q.seq LIMIT 1`, Name, id).
		Scan(&seq, &d.Error, &d.State, &d.Since)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("order status: quarantine of %s: %w", id, err)
	}
	d.Seq, d.Since = uint64(seq), d.Since.UTC()
	return &d, nil
}

// ErrNotQuarantined means no commit at that sequence is set aside in the
// live version (or it is resolved already).
var ErrNotQuarantined = errors.New("no such quarantined commit")

// Acknowledge records that the live version's quarantined commit at seq
// can never apply: it no longer counts as open (readiness stops saying
// degraded for it), stays recorded, and its order stays marked degraded.
func (s *Store) Acknowledge(ctx context.Context, seq uint64, note string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE ordo.projection_quarantine q SET state = 'acknowledged', note = $3, updated_at = now()
		FROM ordo.projection_versions v
		WHERE q.projection = $1 AND q.seq = $2 AND q.state <> 'resolved'
		  AND v.projection = q.projection AND v.version = q.version AND v.state = 'live'`, Name, int64(seq), storable(note))
	if err != nil {
		return fmt.Errorf("order status: acknowledge %d: %w", seq, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("order status: seq %d: %w", seq, ErrNotQuarantined)
	}
	return nil
}

// OrderLog is what [Store.Retry] reads the log through;
// *streams.Store implements it.
type OrderLog interface {
	LoadRaw(ctx context.Context, aggType, id string, afterSeq uint64, fn func(eventlog.StoredMsg) error) error
	MessageAt(ctx context.Context, aggType string, seq uint64) (eventlog.StoredMsg, error)
	SubjectID(aggType, subject string) (string, bool)
}

// Retry applies the live version's quarantined commits again, after a
// fix: for each order concerned it projects the order's whole history
// again from the log, up to its partition's checkpoint, in one
// transaction that holds the checkpoint (the projector waits meanwhile)
// and replaces the order's rows. Its quarantined commits up to the
// checkpoint are then resolved. One that still fails keeps its place,
// with the new error and one more attempt.
func (s *Store) Retry(ctx context.Context, log OrderLog) ([]projections.RetryResult, error) {
	open, err := s.Quarantined(ctx)
	if err != nil {
		return nil, err
	}
	var out []projections.RetryResult
	done := map[string]bool{}
	for _, e := range open {
		if e.State == projections.QuarantineResolved || !s.isLive(ctx, e.Version) {
			continue
		}
		id := e.AggregateID
		if id == "" {
			id, err = locate(ctx, log, e.Seq)
			if err != nil {
				return out, err
			}
		}
		if id != "" && done[id] {
			continue
		}
		res := projections.RetryResult{Seq: e.Seq, AggregateID: id}
		rerr := errors.New("the commit still does not decode and its subject names no order")
		if id != "" {
			done[id] = true
			rerr = s.reproject(ctx, log, e.Version, id)
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			res.Err = rerr.Error()
			if _, err := s.pool.Exec(ctx, `UPDATE ordo.projection_quarantine SET error = $4, attempts = attempts + 1, updated_at = now()
				WHERE projection = $1 AND version = $2 AND seq = $3`, Name, e.Version, int64(e.Seq), errorText(res.Err)); err != nil {
				return out, fmt.Errorf("order status: retry %d: %w", e.Seq, err)
			}
		} else {
			res.Resolved = true
		}
		out = append(out, res)
	}
	return out, nil
}

func (s *Store) isLive(ctx context.Context, v int) bool {
	var state string
	err := s.pool.QueryRow(ctx, "SELECT state FROM ordo.projection_versions WHERE projection = $1 AND version = $2", Name, v).Scan(&state)
	return err == nil && state == "live"
}

// locate returns the order whose commit (or whose subject) the message
// at seq is, "" if neither names one.
func locate(ctx context.Context, log OrderLog, seq uint64) (string, error) {
	m, err := log.MessageAt(ctx, eventlog.TypeOrder, seq)
	if err != nil {
		return "", fmt.Errorf("order status: retry %d: %w", seq, err)
	}
	if id, _ := log.SubjectID(eventlog.TypeOrder, m.Subject); events.ValidID(id) {
		return id, nil
	}
	return "", nil
}

// reproject replaces order id's rows in version v with the fold of its
// history up to its partition's checkpoint and resolves its quarantined
// commits up to there.
func (s *Store) reproject(ctx context.Context, log OrderLog, v int, id string) error {
	var commits []*orderlog.Commit
	if err := log.LoadRaw(ctx, eventlog.TypeOrder, id, 0, func(m eventlog.StoredMsg) error {
		c, err := s.decoder.Decode(eventlog.RawRecord{Seq: m.Seq, Data: m.Data})
		if err != nil {
			return fmt.Errorf("seq %d: %w", m.Seq, err)
		}
		commits = append(commits, c)
		return nil
	}); err != nil {
		return err
	}
	schema := versionSchema(v)
	p := s.opts.Partition(id)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var cp int64
		if err := tx.QueryRow(ctx, "SELECT seq FROM "+schema+".checkpoints WHERE partition = $1 FOR UPDATE", p).Scan(&cp); err != nil {
			return err
		}
		n := 0
		for n < len(commits) && commits[n].Seq <= uint64(cp) {
			n++
		}
		for _, t := range []string{"order_timeline", "order_lines", "orders"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+schema+"."+t+" WHERE order_id = $1", id); err != nil {
				return err
			}
		}
		if n > 0 {
			ch, err := fold(commits[:n], map[string]*orderRow{})
			if err != nil {
				return err
			}
			var b pgx.Batch
			queueWrites(&b, schema, ch)
			if err := tx.SendBatch(ctx, &b).Close(); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE ordo.projection_quarantine SET state = 'resolved', updated_at = now()
			WHERE projection = $1 AND version = $2 AND aggregate_id = $3 AND seq <= $4 AND state <> 'resolved'`, Name, v, id, cp)
		if err != nil {
			return err
		}
		// A commit of the order set aside before its subject was known.
		_, err = tx.Exec(ctx, `UPDATE ordo.projection_quarantine SET state = 'resolved', aggregate_id = $3, updated_at = now()
			WHERE projection = $1 AND version = $2 AND aggregate_id = '' AND seq = ANY($4) AND state <> 'resolved'`, Name, v, id, seqs(commits[:n]))
		return err
	})
}

func seqs(cs []*orderlog.Commit) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = int64(c.Seq)
	}
	return out
}
