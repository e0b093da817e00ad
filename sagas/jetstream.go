package sagas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// group is the priority group of a pinned consumer (one client at a
	// time receives its messages), "" for a shared one.
	group string
	// unpin, for a pinned consumer, hands the pin over when the
	// subscription ends: pinID is the pin the subscription last held.
	unpin func(ctx context.Context, cons jetstream.Consumer, pinID string)
}

// jsSubscriber is a watermill message.Subscriber over durable JetStream
// pull consumers (watermill-nats publishes to the stream name and creates
// ephemeral consumers, so Ordo drives JetStream itself). Each topic names
// a source, a durable consumer: subscribers of one topic share it, as a
// consumer group, unless the source is pinned (then one subscriber at a
// time receives its messages). Messages are handled by up to `workers`
// goroutines, keyed by subject: one subject's (one aggregate's) messages
// are handled one at a time in stream order, the next only once the last
// is acked or nacked, while different subjects proceed in parallel. A
// subject waiting for its previous message holds no worker, so one slow
// aggregate never stops the others (the consumer's MaxAckPending bounds
// what waits in memory). A JetStream message is acked when its watermill
// message is acked, nacked with backoff when it is nacked, and left alone
// when the subscription ends first (the server redelivers it after
// AckWait).
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
	q := newKeyedQueue()
	var pin pinHolder
	log := s.log.With("topic", topic)
	opts := []jetstream.PullConsumeOpt{
		jetstream.PullMaxMessages(2 * s.workers), jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if ctx.Err() == nil {
				log.Warn("consumer error", "err", err)
			}
		}),
	}
	if src.group != "" {
		opts = append(opts, jetstream.PullPriorityGroup(src.group))
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if src.group != "" {
			pin.seen(m.Headers().Get(pinIDHeader))
		}
		q.push(m.Subject(), m)
	}, opts...)
	if err != nil {
		stop()
		return nil, fmt.Errorf("sagas: consume %s: %w", topic, err)
	}
	var workers sync.WaitGroup
	for range s.workers {
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
		q.close()
		workers.Wait()
		if src.unpin != nil {
			if id := pin.get(); id != "" {
				src.unpin(context.WithoutCancel(ctx), cons, id)
			}
		}
		close(out)
	}()
	return out, nil
}

// pinIDHeader is the header in which a pinned consumer's messages carry
// the pin id of the client they were delivered to.
const pinIDHeader = "Nats-Pin-Id"

// pinHolder remembers the last pin id a subscription's messages carried.
type pinHolder struct {
	mu sync.Mutex
	id string
}

func (p *pinHolder) seen(id string) {
	if id == "" {
		return
	}
	p.mu.Lock()
	p.id = id
	p.mu.Unlock()
}

func (p *pinHolder) get() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.id
}

// keyedQueue holds the messages delivered and not yet handled, one FIFO
// per key (subject), and the keys ready for a worker: a key is ready
// when it has messages and no worker holds it. push never blocks.
type keyedQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	byKey  map[string][]jetstream.Msg
	busy   map[string]bool
	ready  []string
	closed bool
}

func newKeyedQueue() *keyedQueue {
	q := &keyedQueue{byKey: map[string][]jetstream.Msg{}, busy: map[string]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *keyedQueue) push(key string, m jetstream.Msg) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	waiting := len(q.byKey[key]) > 0
	q.byKey[key] = append(q.byKey[key], m)
	if !waiting && !q.busy[key] {
		q.ready = append(q.ready, key)
		q.cond.Signal()
	}
}

// take waits for a ready key and returns its oldest message; the key is
// held until done(key). It returns false once the queue is closed.
func (q *keyedQueue) take() (string, jetstream.Msg, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return "", nil, false
	}
	key := q.ready[0]
	q.ready[0] = ""
	q.ready = q.ready[1:]
	msgs := q.byKey[key]
	m := msgs[0]
	msgs[0] = nil
	if len(msgs) == 1 {
		delete(q.byKey, key)
	} else {
		q.byKey[key] = msgs[1:]
	}
	q.busy[key] = true
	return key, m, true
}

// done releases a key taken by take: if more of its messages wait, it is
// ready again (behind the keys already ready, so a busy aggregate takes
// its turn with the others).
func (q *keyedQueue) done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.busy, key)
	if len(q.byKey[key]) > 0 && !q.closed {
		q.ready = append(q.ready, key)
		q.cond.Signal()
	}
}

// close wakes every worker waiting in take; what is queued is dropped
// (the server redelivers it after AckWait).
func (q *keyedQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.byKey, q.ready = nil, nil
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (s *jsSubscriber) work(ctx context.Context, stream string, q *keyedQueue, out chan<- *message.Message, log *slog.Logger) {
	for {
		key, m, ok := q.take()
		if !ok {
			return
		}
		handled := s.handle(ctx, stream, m, out, log)
		q.done(key)
		if !handled {
			return
		}
	}
}

// handle turns m into a watermill message, delivers it and settles m; it
// reports false when the subscription ended first.
func (s *jsSubscriber) handle(ctx context.Context, stream string, m jetstream.Msg, out chan<- *message.Message, log *slog.Logger) bool {
	md, err := m.Metadata()
	if err != nil {
		log.Error("dropping message without metadata", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return true
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
	defer done()
	wm.SetContext(mctx)
	return s.deliver(ctx, m, wm, seq, md.NumDelivered, out, log)
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
