package projections

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/ordo-shop/ordo/eventlog"
)

// Kinds of [Drift].
const (
	// DriftMissing: the log says the read model should hold a row (or a
	// document) that it does not hold.
	DriftMissing = "missing"
	// DriftExtra: the read model holds a row the log does not have, or
	// has not applied yet (then it should not exist either).
	DriftExtra = "extra"
	// DriftDiffers: a row holds another value in one field than the log
	// says.
	DriftDiffers = "differs"
	// DriftStale: a document is older than the commits its checkpoint
	// says are applied.
	DriftStale = "stale"
	// DriftUnknownVersion: a document's version is not the stream
	// sequence of any of its order's commits.
	DriftUnknownVersion = "unknown_version"
)

// Drift is one way a read model differs from what the log says it should
// hold, as a reconciliation finds it.
type Drift struct {
	// Projection is the read model's name (order_status, search).
	Projection string `json:"projection"`
	// OrderID is the order the row belongs to; empty for a row of no
	// order, such as a checkpoint.
	OrderID string `json:"order_id"`
	// Table is where the read model keeps the row: a table such as
	// orders or order_timeline, or an index.
	Table string `json:"table"`
	// Key names the row among the order's rows of Table, such as
	// "line_no=2" or "version=3"; empty for the order's one row.
	Key string `json:"key,omitempty"`
	// Field is the column or document field that differs; empty when a
	// whole row is missing or extra.
	Field string `json:"field,omitempty"`
	// Kind is one of the Drift constants.
	Kind string `json:"kind"`
	// Log is what the log says (empty for DriftExtra and
	// DriftUnknownVersion); Store is what the read model holds (empty
	// for DriftMissing).
	Log   string `json:"log"`
	Store string `json:"store"`
}

// Where names the drift's place as table[key].field.
func (d Drift) Where() string {
	s := d.Table
	if d.Key != "" {
		s += "[" + d.Key + "]"
	}
	if d.Field != "" {
		s += "." + d.Field
	}
	return s
}

// SortDrifts orders drifts by order, table, key and field.
func SortDrifts(ds []Drift) {
	slices.SortStableFunc(ds, func(a, b Drift) int {
		return cmp.Or(cmp.Compare(a.OrderID, b.OrderID), cmp.Compare(a.Table, b.Table),
			cmp.Compare(len(a.Key), len(b.Key)), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Field, b.Field))
	})
}

// Reconciliation is what comparing one read model with the log found.
type Reconciliation struct {
	// Projection is the read model's name; Target what of it was
	// compared (the live version's schema, the live index).
	Projection string `json:"projection"`
	Target     string `json:"target"`
	// Checkpoints are the read model's per partition, as read at the
	// start: the commits it has applied.
	Checkpoints []uint64 `json:"checkpoints"`
	// Commits is how many commits of the log the checkpoints cover,
	// Orders how many orders they belong to, Rows how many rows or
	// documents of the read model were compared with the log.
	Commits int `json:"commits"`
	Orders  int `json:"orders"`
	Rows    int `json:"rows"`
	// Quarantined counts the commits the projector set aside and a retry
	// has not resolved: they are skipped, as the projector skipped them
	// (their orders say they are degraded; orderctl projections status
	// lists them), so they are no drift.
	Quarantined int `json:"quarantined"`
	// Drifts are the differences found, sorted by [SortDrifts].
	Drifts []Drift `json:"-"`
}

// LogReader is what a reconciliation reads of the log; *streams.Store
// implements it.
type LogReader interface {
	RawSource
	Partition(id string) int
	LastSeq(ctx context.Context, aggType string) (uint64, error)
}

// replayBatch is how many commits [ReadLog] asks for at once.
const replayBatch = 1000

// ReadLog reads an aggregate type's stream from sequence 1 up to until,
// gap-free, in batches in log order, and hands each batch to fn; it
// fails if the stream ends before until.
func ReadLog(ctx context.Context, src RawSource, aggType string, until uint64, fn func([]eventlog.RawRecord) error) error {
	for next := uint64(1); next <= until; {
		recs, err := src.FetchRaw(ctx, aggType, next, int(min(until-next+1, replayBatch)))
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return fmt.Errorf("read %s log: it ends before seq %d", aggType, next)
		}
		if recs[0].Seq != next {
			return fmt.Errorf("read %s log: seq %d follows %d", aggType, recs[0].Seq, next-1)
		}
		for len(recs) > 0 && recs[len(recs)-1].Seq > until {
			recs = recs[:len(recs)-1]
		}
		if err := fn(recs); err != nil {
			return err
		}
		next = recs[len(recs)-1].Seq + 1
	}
	return nil
}
