package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/projections"
)

var _ projections.Quarantiner = (*Sink)(nil)

// docTypeQuarantine marks the document that records a commit the
// projector set aside, kept in the index it concerns (a rebuilt index
// meets the commit again and records it anew).
const docTypeQuarantine = "quarantine"

func quarantineID(seq uint64) string { return "~quarantine~" + strconv.FormatUint(seq, 10) }

// quarantineDoc is a quarantined commit as the index keeps it. Only
// doc_type, order_id, seq and partition are indexed.
type quarantineDoc struct {
	DocType       string    `json:"doc_type"`
	Seq           uint64    `json:"seq"`
	Partition     int       `json:"partition"`
	OrderID       string    `json:"order_id"`
	Error         string    `json:"error"`
	Attempts      int       `json:"attempts"`
	State         string    `json:"state"`
	QuarantinedAt time.Time `json:"quarantined_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	Note          string    `json:"note,omitempty"`
}

func (d quarantineDoc) view(version int) projections.QuarantineView {
	return projections.QuarantineView{
		Version: version, Seq: d.Seq, Partition: d.Partition, AggregateID: d.OrderID, Error: d.Error, Attempts: d.Attempts,
		State: d.State, QuarantinedAt: d.QuarantinedAt, UpdatedAt: d.UpdatedAt, Note: d.Note,
	}
}

// Quarantine implements [projections.Quarantiner]: it records q in the
// index (kept acknowledged if an operator acknowledged it before), then
// moves the checkpoint from from to to with the checkpoint's optimistic
// concurrency. The two writes are not atomic; the record is idempotent,
// so a crash between them records the same commit again on the next try.
func (k *Sink) Quarantine(ctx context.Context, from, to uint64, q projections.Quarantined) error {
	k.takeState(q.Partition) // the partition starts over from what is stored
	cp, err := k.readCheckpoint(ctx, q.Partition)
	if err != nil {
		return err
	}
	if cp.seq != from {
		return projections.ErrCheckpointMoved
	}
	now := time.Now().UTC()
	doc := quarantineDoc{DocType: docTypeQuarantine, Seq: q.Seq, Partition: q.Partition, OrderID: q.AggregateID,
		Error: q.Err, Attempts: q.Attempts, State: projections.QuarantineOpen, QuarantinedAt: now, UpdatedAt: now}
	if old, ok, err := k.st.quarantineDoc(ctx, cp.index, q.Seq); err != nil {
		return err
	} else if ok {
		doc.QuarantinedAt, doc.Attempts, doc.Note = old.QuarantinedAt, old.Attempts+q.Attempts, old.Note
		if old.State == projections.QuarantineAcknowledged {
			doc.State = old.State
		}
	}
	if err := k.st.do(ctx, "PUT", "/"+cp.index+"/_doc/"+quarantineID(q.Seq), doc, nil); err != nil {
		return fmt.Errorf("search: quarantine seq %d: %w", q.Seq, err)
	}
	_, err = k.moveCheckpoint(ctx, cp, q.Partition, to)
	return err
}

func (s *Store) quarantineDoc(ctx context.Context, index string, seq uint64) (quarantineDoc, bool, error) {
	var out struct {
		Found  bool          `json:"found"`
		Source quarantineDoc `json:"_source"`
	}
	err := s.do(ctx, "GET", "/"+index+"/_doc/"+quarantineID(seq)+"?realtime=true", nil, &out)
	if statusOf(err) == http.StatusNotFound {
		return quarantineDoc{}, false, nil
	}
	if err != nil {
		return quarantineDoc{}, false, fmt.Errorf("search: read quarantine of seq %d: %w", seq, err)
	}
	return out.Source, out.Found, nil
}

// maxQuarantineListed bounds what [Store.Quarantined] lists.
const maxQuarantineListed = 1000

// Quarantined lists the live index's quarantined commits but those
// resolved, in log order.
func (s *Store) Quarantined(ctx context.Context) ([]projections.QuarantineView, error) {
	index, err := s.liveIndex(ctx)
	if err != nil {
		return nil, err
	}
	var res struct {
		Hits struct {
			Hits []struct {
				Source quarantineDoc `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	body := map[string]any{
		"size":  maxQuarantineListed,
		"query": map[string]any{"term": map[string]any{"doc_type": docTypeQuarantine}},
		"sort":  []any{map[string]any{"seq": "asc"}},
	}
	if err := s.do(ctx, "POST", "/"+index+"/_search", body, &res); err != nil {
		return nil, fmt.Errorf("search: quarantine: %w", err)
	}
	version := IndexVersion(index)
	out := []projections.QuarantineView{}
	for _, h := range res.Hits.Hits {
		if h.Source.State != projections.QuarantineResolved {
			out = append(out, h.Source.view(version))
		}
	}
	return out, nil
}

// ErrNotQuarantined means the live index has no such quarantined commit,
// or a retry resolved it already.
var ErrNotQuarantined = errors.New("no such quarantined commit")

// Acknowledge records that the quarantined commit at seq can never apply
// to the live index: it no longer counts as open.
func (s *Store) Acknowledge(ctx context.Context, seq uint64, note string) error {
	return s.setQuarantineState(ctx, seq, projections.QuarantineAcknowledged, note)
}

func (s *Store) setQuarantineState(ctx context.Context, seq uint64, state, note string) error {
	index, err := s.liveIndex(ctx)
	if err != nil {
		return err
	}
	d, ok, err := s.quarantineDoc(ctx, index, seq)
	if err != nil {
		return err
	}
	if !ok || d.State == projections.QuarantineResolved {
		return fmt.Errorf("search: seq %d: %w", seq, ErrNotQuarantined)
	}
	d.State, d.UpdatedAt = state, time.Now().UTC()
	if note != "" {
		d.Note = note
	}
	if err := s.do(ctx, "PUT", "/"+index+"/_doc/"+quarantineID(seq)+"?refresh=true", d, nil); err != nil {
		return fmt.Errorf("search: quarantine of seq %d: %w", seq, err)
	}
	return nil
}

// Retry applies the live index's quarantined commits again, after a fix:
// each order concerned gets its document rebuilt from its whole history
// up to its partition's checkpoint (which needs the store's Loader), and
// its quarantined commits are resolved. One that still fails keeps its
// place.
func (s *Store) Retry(ctx context.Context) ([]projections.RetryResult, error) {
	open, err := s.Quarantined(ctx)
	if err != nil {
		return nil, err
	}
	index, err := s.liveIndex(ctx)
	if err != nil {
		return nil, err
	}
	cps, _, err := s.checkpoints(ctx, index)
	if err != nil {
		return nil, err
	}
	var out []projections.RetryResult
	for _, q := range open {
		res := projections.RetryResult{Seq: q.Seq, AggregateID: q.AggregateID}
		err := errors.New("the commit's order is unknown: it cannot be applied again")
		if q.AggregateID != "" && q.Partition < len(cps) {
			err = s.reindex(ctx, index, q.AggregateID, cps[q.Partition])
		}
		if err == nil {
			err = s.setQuarantineState(ctx, q.Seq, projections.QuarantineResolved, "")
		}
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			res.Err = err.Error()
		} else {
			res.Resolved = true
		}
		out = append(out, res)
	}
	return out, nil
}

// reindex writes order id's document as its history up to seq makes it.
func (s *Store) reindex(ctx context.Context, index, id string, seq uint64) error {
	d, err := s.heal(ctx, id, seq, nil)
	if err != nil {
		return err
	}
	_, err = s.index(ctx, index, []*Document{d})
	return err
}

// ensure the Loader's records are what heal reads: the port's.
var _ Loader = eventlog.AggregateReader(nil)

// degradedOrders caches which orders of the live index have quarantined
// commits, so search hits can say so without a query of their own each:
// it is read again at most every degradedRecheck.
type degradedOrders struct {
	mu     sync.Mutex
	at     time.Time
	orders map[string]bool
}

// degradedRecheck is how long a search trusts what it read of the
// quarantine.
const degradedRecheck = time.Second

// markDegraded marks the hits whose order has quarantined commits. When
// the quarantine cannot be read, the hits go out unmarked (search still
// answers) and the failure is logged.
func (s *Store) markDegraded(ctx context.Context, hits []Hit) {
	if len(hits) == 0 {
		return
	}
	d := &s.degraded
	d.mu.Lock()
	orders, stale := d.orders, d.orders == nil || time.Since(d.at) > degradedRecheck
	d.mu.Unlock()
	if stale {
		q, err := s.Quarantined(ctx)
		if err != nil {
			s.log.Warn("search: reading the quarantine to mark degraded hits", slog.Any("err", err))
			return
		}
		orders = make(map[string]bool, len(q))
		for _, e := range q {
			orders[e.AggregateID] = true
		}
		d.mu.Lock()
		d.orders, d.at = orders, time.Now()
		d.mu.Unlock()
	}
	for i := range hits {
		hits[i].Degraded = orders[hits[i].OrderID]
	}
}
