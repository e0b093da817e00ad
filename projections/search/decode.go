package search

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/streams"
)

// commit is one order commit as the fold reads it: what [apply] needs
// and nothing else.
type commit struct {
	Seq           uint64
	AggregateType string
	AggregateID   string
	Version       uint64
	RecordedAt    time.Time
	// Types and Payloads are the events' types and decoded payloads
	// (nil for an event type the registry does not know).
	Types    []string
	Payloads []events.Payload
}

// decodeRaw decodes a commit as stored. It is the one place that turns
// bytes into a [commit]: a faster decoder of order commits can replace
// its body, as long as it decodes what the registry decodes.
func decodeRaw(reg *events.Registry, rec streams.RawRecord) (*commit, error) {
	c, err := events.Unmarshal(rec.Data)
	if err != nil {
		return nil, fmt.Errorf("seq %d: %w", rec.Seq, err)
	}
	return decodeRecord(reg, streams.Record{Seq: rec.Seq, Commit: c})
}

// decodeRecord decodes the events of a commit [streams.Store] read.
func decodeRecord(reg *events.Registry, r streams.Record) (*commit, error) {
	c := r.Commit
	oc := &commit{
		Seq: r.Seq, AggregateType: c.AggregateType, AggregateID: c.AggregateID, Version: c.Version,
		RecordedAt: c.Metadata.RecordedAt,
		Types:      make([]string, len(c.Events)), Payloads: make([]events.Payload, len(c.Events)),
	}
	for i, ev := range c.Events {
		p, err := reg.Decode(ev)
		if err != nil && !errors.Is(err, events.ErrUnknownEventType) {
			return nil, fmt.Errorf("seq %d: %w", r.Seq, err)
		}
		oc.Types[i], oc.Payloads[i] = ev.Type, p
	}
	return oc, nil
}

var _ projections.DecodingSink = (*Sink)(nil)

// Decode implements [projections.DecodingSink]: the runner calls it on
// its reader goroutine, so decoding overlaps earlier batches' bulk
// requests.
func (k *Sink) Decode(rec streams.RawRecord) (string, any, error) {
	c, err := decodeRaw(k.st.reg, rec)
	if err != nil {
		return "", nil, err
	}
	return c.AggregateID, c, nil
}

// CommitDecoded implements [projections.DecodingSink].
func (k *Sink) CommitDecoded(ctx context.Context, partition int, from, to uint64, recs []projections.Decoded) error {
	cs := make([]*commit, len(recs))
	for i, r := range recs {
		c, ok := r.Value.(*commit)
		if !ok {
			return fmt.Errorf("search: seq %d: decoded as %T, not by this sink", r.Seq, r.Value)
		}
		cs[i] = c
	}
	return k.commit(ctx, partition, from, to, cs)
}
