package streams

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// LoadFromReplica is the load the store used before it was bounded by
// the stream leader: direct batch gets only, which any replica may
// answer. Benchmarks compare it with [Store.Load].
func (s *Store) LoadFromReplica(ctx context.Context, aggType, id string, afterSeq uint64) ([]eventlog.Record, error) {
	stream, subj, err := s.locate(aggType, id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var recs []eventlog.Record
	_, err = s.loadDirect(ctx, stream, subj, afterSeq, func(seq uint64, data []byte) error {
		c, err := events.Unmarshal(data)
		recs = append(recs, eventlog.Record{Stream: stream, Seq: seq, Commit: c})
		return err
	})
	return recs, err
}

// LastFromReplica is the Last the store used before it read through the
// stream leader: a direct get of the subject's last message, which any
// replica may answer.
func (s *Store) LastFromReplica(ctx context.Context, aggType, id string) (eventlog.Record, bool, error) {
	stream, subj, err := s.locate(aggType, id)
	if err != nil {
		return eventlog.Record{}, false, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	m, err := s.nc.RequestWithContext(ctx, jetstream.DefaultAPIPrefix+"DIRECT.GET."+stream+"."+subj, nil)
	if err != nil {
		return eventlog.Record{}, false, err
	}
	if m.Header.Get(hdrStatus) == statusNotFound {
		return eventlog.Record{}, false, nil
	}
	var seq uint64
	if _, err := fmt.Sscan(m.Header.Get(hdrSequence), &seq); err != nil {
		return eventlog.Record{}, false, err
	}
	c, err := events.Unmarshal(m.Data)
	return eventlog.Record{Stream: stream, Seq: seq, Commit: c}, err == nil, err
}
