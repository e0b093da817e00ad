package streams

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// fetchMaxBytes bounds the payload of one [Store.Fetch] reply;
// a batch that reaches it ends early and reports more.
const fetchMaxBytes = 8 << 20

// Fetch returns up to max commits of an aggregate type's stream from
// stream sequence fromSeq (0 counts as 1) on, in log order; none when
// the stream ends before fromSeq. The stream allows no deletes, so the
// batch is gap-free: a reader that has fetched everything before some
// sequence has seen every commit before it, whichever replica answered.
//
// It uses one direct batch get, which needs no consumer.
func (s *Store) Fetch(ctx context.Context, aggType string, fromSeq uint64, max int) ([]eventlog.Record, error) {
	stream, err := s.StreamName(aggType)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if max < 1 {
		return nil, fmt.Errorf("fetch %s: batch size %d", stream, max)
	}
	if fromSeq == 0 {
		fromSeq = 1
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var recs []eventlog.Record
	b := &directBatch{
		stream: stream,
		req:    directGetRequest{Seq: fromSeq, Batch: max, MaxBytes: fetchMaxBytes},
		fn: func(seq uint64, _ string, data []byte) error {
			c, err := events.Unmarshal(data)
			if err != nil {
				return fmt.Errorf("seq %d: %w", seq, err)
			}
			recs = append(recs, eventlog.Record{Stream: stream, Seq: seq, Commit: c})
			return nil
		},
	}
	if err := s.getBatch(ctx, b); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", stream, err)
	}
	return recs, nil
}

// Watch calls fn with the partition and stream sequence of every commit
// stored in an aggregate type's stream from now on, in log order, until
// stop is called or ctx ends. It reads headers only (an ordered consumer
// with HeadersOnly), so it is cheap: use it to wake readers that fetch
// the commits themselves. fn runs on one goroutine and must not block for
// long. After a reconnect a notification may be missed; readers should
// also poll now and then.
func (s *Store) Watch(ctx context.Context, aggType string, fn func(partition int, seq uint64)) (stop func(), err error) {
	stream, err := s.StreamName(aggType)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	cons, err := s.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverNewPolicy,
		HeadersOnly:   true,
	})
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", stream, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		parts := strings.SplitN(m.Subject(), ".", 3)
		if len(parts) != 3 {
			return
		}
		p, err := strconv.Atoi(parts[1])
		if err != nil {
			return
		}
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		fn(p, seq)
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.log.Debug("watch error", "stream", stream, "err", err)
	}))
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", stream, err)
	}
	var once sync.Once
	stopFn := func() {
		once.Do(func() {
			cc.Stop()
			<-cc.Closed()
			s.deleteConsumer(stream, cons)
		})
	}
	stopAfter := context.AfterFunc(ctx, stopFn)
	return func() { stopAfter(); stopFn() }, nil
}
