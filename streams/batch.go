package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/events"
)

// fetchMaxBytes bounds the payload of one [Store.FetchPartition] reply;
// a batch that reaches it ends early and reports more.
const fetchMaxBytes = 8 << 20

// Fetch returns up to max commits of an aggregate type's stream from
// stream sequence fromSeq (0 counts as 1) on, in log order; none when
// the stream ends before fromSeq. The stream allows no deletes, so the
// batch is gap-free: a reader that has fetched everything before some
// sequence has seen every commit before it, whichever replica answered.
//
// It uses one direct batch get, which needs no consumer.
func (s *Store) Fetch(ctx context.Context, aggType string, fromSeq uint64, max int) ([]Record, error) {
	stream, err := s.StreamName(aggType)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	recs, _, err := s.fetch(ctx, stream, "", fromSeq, max)
	return recs, err
}

// FetchPartition returns up to max commits of one partition of an
// aggregate type's stream (the subjects <prefix>.<partition>.*), starting
// at stream sequence fromSeq (0 counts as 1), in log order. more reports
// whether the partition held further commits when the batch was read.
//
// It uses one direct batch get, which any replica may answer: on a
// replicated stream a follower can lag the leader by a little. The
// server scans past the other partitions' commits to find this one's, so
// reading every partition this way costs more than one [Store.Fetch].
func (s *Store) FetchPartition(ctx context.Context, aggType string, partition int, fromSeq uint64, max int) (recs []Record, more bool, err error) {
	stream, err := s.StreamName(aggType)
	if err != nil {
		return nil, false, fmt.Errorf("fetch: %w", err)
	}
	filter, err := s.partitionFilter(aggType, partition)
	if err != nil {
		return nil, false, fmt.Errorf("fetch: %w", err)
	}
	return s.fetch(ctx, stream, filter, fromSeq, max)
}

// fetch reads one batch of stream, only subjects matching filter (a
// partition's wildcard) if it is not empty.
func (s *Store) fetch(ctx context.Context, stream, filter string, fromSeq uint64, max int) (recs []Record, more bool, err error) {
	what := stream
	if filter != "" {
		what = filter
	}
	if max < 1 {
		return nil, false, fmt.Errorf("fetch %s: batch size %d", what, max)
	}
	if fromSeq == 0 {
		fromSeq = 1
	}
	prefix := strings.TrimSuffix(filter, "*")
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	ch := make(chan *nats.Msg, max+4)
	inbox := s.nc.NewInbox()
	sub, err := s.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, false, fmt.Errorf("fetch %s: %w", what, err)
	}
	defer sub.Unsubscribe()
	body, err := json.Marshal(directGetRequest{Seq: fromSeq, NextFor: filter, Batch: max, MaxBytes: fetchMaxBytes})
	if err != nil {
		return nil, false, err
	}
	for try := 0; ; try++ {
		if err := s.nc.PublishRequest(jetstream.DefaultAPIPrefix+"DIRECT.GET."+stream, inbox, body); err != nil {
			return nil, false, fmt.Errorf("fetch %s: %w", what, err)
		}
		recs = recs[:0]
		retry := false
	read:
		for {
			var m *nats.Msg
			select {
			case m = <-ch:
			case <-ctx.Done():
				return nil, false, fmt.Errorf("fetch %s: %w", what, ctx.Err())
			}
			if status := m.Header.Get(hdrStatus); status != "" && len(m.Data) == 0 {
				switch status {
				case statusEOB:
					np, _ := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
					return recs, np > 0, nil
				case statusNotFound:
					return recs, false, nil
				case statusNoResponders:
					retry = true
					break read
				default:
					return nil, false, fmt.Errorf("fetch %s: status %s %s", what, status, m.Header.Get(hdrDescr))
				}
			}
			seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
			if err != nil || seq < fromSeq || (len(recs) > 0 && seq <= recs[len(recs)-1].Seq) {
				return nil, false, fmt.Errorf("fetch %s: sequence %q out of order", what, m.Header.Get(hdrSequence))
			}
			if subj := m.Header.Get(hdrSubject); !strings.HasPrefix(subj, prefix) {
				return nil, false, fmt.Errorf("fetch %s: got subject %q", what, subj)
			}
			c, err := events.Unmarshal(m.Data)
			if err != nil {
				return nil, false, fmt.Errorf("fetch %s seq %d: %w", stream, seq, err)
			}
			recs = append(recs, Record{Stream: stream, Seq: seq, Commit: c})
		}
		if !retry || try >= noResponderTries {
			return nil, false, fmt.Errorf("fetch %s: %w", what, nats.ErrNoResponders)
		}
		if err := sleepCtx(ctx, noResponderRetry); err != nil {
			return nil, false, fmt.Errorf("fetch %s: %w", what, err)
		}
	}
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
