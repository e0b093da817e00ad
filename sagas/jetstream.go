package sagas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/streams"
)

// source is one durable consumer a topic reads.
type source struct {
	stream string
	open   func(ctx context.Context) (jetstream.Consumer, error)
}

// jsSubscriber is a watermill message.Subscriber over durable JetStream
// pull consumers (watermill-nats publishes to the stream name and creates
// ephemeral consumers, so Ordo drives JetStream itself). Each topic names
// a source, a durable consumer: subscribers of one topic share it, as a
// consumer group. Messages are spread over workers by subject, so one
// aggregate's messages are handled one at a time in order while different
// aggregates proceed in parallel, and a worker takes its next message only
// once the last is acked or nacked. A JetStream message is acked when its
// watermill message is acked, nacked with backoff when it is nacked, and
// left alone when the subscription ends first (the server redelivers it
// after AckWait).
//
// A watermill message's UUID is the JetStream message's id (Nats-Msg-Id:
// a commit's id), or stream:sequence without one; its metadata holds the
// message's headers other than the server's (Nats-*) and the runtime's
// keys (mdStream, ...); its context ends when it is acked or nacked, or
// when its subscription ends. It passes watermill's universal Pub/Sub
// tests (pubsub_test.go).
type jsSubscriber struct {
	workers int
	log     *slog.Logger
	// source returns the consumer a topic reads.
	source func(topic string) (source, bool)

	mu     sync.Mutex
	closed bool
	stops  []context.CancelFunc
	wg     sync.WaitGroup
}

// Subscribe implements message.Subscriber.
func (s *jsSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	src, ok := s.source(topic)
	if !ok {
		return nil, fmt.Errorf("sagas: no source for topic %q", topic)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("sagas: subscriber closed")
	}
	ctx, stop := context.WithCancel(ctx)
	s.stops = append(s.stops, stop)
	s.mu.Unlock()

	cons, err := src.open(ctx)
	if err != nil {
		stop()
		return nil, err
	}
	out := make(chan *message.Message)
	queues := make([]chan jetstream.Msg, s.workers)
	for i := range queues {
		queues[i] = make(chan jetstream.Msg, 4)
	}
	log := s.log.With("topic", topic)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		h := fnv.New32a()
		h.Write([]byte(m.Subject()))
		select {
		case queues[h.Sum32()%uint32(len(queues))] <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(2*s.workers), jetstream.PullExpiry(pullExpiry), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if ctx.Err() == nil {
			log.Warn("consumer error", "err", err)
		}
	}))
	if err != nil {
		stop()
		return nil, fmt.Errorf("sagas: consume %s: %w", topic, err)
	}
	var workers sync.WaitGroup
	for _, q := range queues {
		workers.Add(1)
		go func() {
			defer workers.Done()
			s.work(ctx, src.stream, q, out, log)
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-ctx.Done()
		cc.Stop()
		workers.Wait()
		close(out)
	}()
	return out, nil
}

func (s *jsSubscriber) work(ctx context.Context, stream string, q <-chan jetstream.Msg, out chan<- *message.Message, log *slog.Logger) {
	for {
		var m jetstream.Msg
		select {
		case m = <-q:
		case <-ctx.Done():
			return
		}
		md, err := m.Metadata()
		if err != nil {
			log.Error("dropping message without metadata", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		seq := md.Sequence.Stream
		id := m.Headers().Get(jetstream.MsgIDHeader)
		if id == "" {
			id = stream + ":" + strconv.FormatUint(seq, 10)
		}
		wm := message.NewMessage(id, m.Data())
		for k, vs := range m.Headers() {
			if len(vs) > 0 && !strings.HasPrefix(k, "Nats-") {
				wm.Metadata.Set(k, vs[0])
			}
		}
		wm.Metadata.Set(mdStream, stream)
		wm.Metadata.Set(mdSeq, strconv.FormatUint(seq, 10))
		wm.Metadata.Set(mdSubject, m.Subject())
		wm.Metadata.Set(mdDelivered, strconv.FormatUint(md.NumDelivered, 10))
		mctx, done := context.WithCancel(ctx)
		wm.SetContext(mctx)
		if !s.deliver(ctx, m, wm, seq, md.NumDelivered, out, log) {
			done()
			return
		}
		done()
	}
}

// deliver hands wm to the router and settles m as wm is: acked, nacked
// with backoff, or left to the server's redelivery if ctx ends first
// (then it reports false).
func (s *jsSubscriber) deliver(ctx context.Context, m jetstream.Msg, wm *message.Message, seq, delivered uint64, out chan<- *message.Message, log *slog.Logger) bool {
	select {
	case out <- wm:
	case <-ctx.Done():
		return false
	}
	select {
	case <-wm.Acked():
		if err := m.Ack(); err != nil {
			log.Warn("ack failed", "seq", seq, "err", err)
		}
	case <-wm.Nacked():
		if err := m.NakWithDelay(nakDelay(int(delivered))); err != nil {
			log.Warn("nak failed", "seq", seq, "err", err)
		}
	case <-ctx.Done():
		return false
	}
	return true
}

// pullExpiry is how long one pull request waits at the server. The
// server sends heartbeats every half of it, and a subscription that
// misses two pulls again: that is how it notices a pull request that
// was lost, with a consumer leader that crashed (its successor knows
// nothing of the requests it held) or with JetStream restarted inside
// the embedded server after a full disk. With nats.go's default (30 s)
// the checkout stopped for 25-30 s after each such loss, and on a busy
// machine it did not catch up with the orders that came in meanwhile;
// 5 s costs one request per consumer every 5 s when idle.
const pullExpiry = 5 * time.Second

// nakDelay is the redelivery delay after a message's delivery-th failed
// delivery: 1s doubling up to 1 minute.
func nakDelay(delivery int) time.Duration {
	d := time.Second
	for i := 1; i < delivery && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

// Close implements message.Subscriber: it ends every subscription and
// waits until their output channels are closed.
func (s *jsSubscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	stops := s.stops
	s.stops = nil
	s.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	s.wg.Wait()
	return nil
}

// dlqPublisher is the watermill message.Publisher the poison queue
// middleware publishes to: it stores each message as a
// streams.DeadLetter.
type dlqPublisher struct {
	store *streams.Store
	owner string
	log   *slog.Logger
}

// Publish implements message.Publisher.
func (p *dlqPublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		seq, _ := strconv.ParseUint(msg.Metadata.Get(mdSeq), 10, 64)
		attempts, _ := strconv.Atoi(msg.Metadata.Get(mdAttempts))
		redriveOf, _ := strconv.ParseUint(msg.Metadata.Get(mdRedrive), 10, 64)
		data := msg.Payload
		if redriveOf != 0 {
			// A failed redrive: the payload is the earlier dead letter.
			var old streams.DeadLetter
			if err := json.Unmarshal(msg.Payload, &old); err == nil {
				data = old.Data
			}
		}
		dl := streams.DeadLetter{
			Owner:         p.owner,
			Handler:       msg.Metadata.Get(middleware.PoisonedHandlerKey),
			Stream:        msg.Metadata.Get(mdStream),
			Seq:           seq,
			Subject:       msg.Metadata.Get(mdSubject),
			Data:          data,
			Error:         msg.Metadata.Get(middleware.ReasonForPoisonedKey),
			Attempts:      attempts,
			FailedAt:      time.Now().UTC(),
			CorrelationID: middleware.MessageCorrelationID(msg),
			RedriveOf:     redriveOf,
		}
		// The original message's identity makes a retried store (the
		// message was redelivered before its ack) a no-op.
		msgID := "dead-" + p.owner + "-" + dl.Stream + "-" + strconv.FormatUint(seq, 10) + "-" + strconv.FormatUint(redriveOf, 10)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		id, err := p.store.AddDeadLetter(ctx, dl, msgID)
		if err == nil && redriveOf != 0 {
			err = p.store.DeleteDeadLetter(ctx, redriveOf)
		}
		cancel()
		if err != nil {
			return err
		}
		p.log.Error("message dead-lettered", "id", id, "owner", p.owner, "handler", dl.Handler,
			"stream", dl.Stream, "seq", seq, "attempts", attempts, "err", dl.Error)
	}
	return nil
}

// Close implements message.Publisher.
func (p *dlqPublisher) Close() error { return nil }
