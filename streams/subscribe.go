package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// Redelivery backoff after a handler error: the first retry waits
// retryBase, each later one twice as long, up to retryMax.
const (
	retryBase = 100 * time.Millisecond
	retryMax  = 30 * time.Second
)

// SubscribeOptions configures [Store.Subscribe].
type SubscribeOptions struct {
	// Durable names a durable consumer whose position the server keeps
	// across restarts, shared by every subscriber that uses the name. The
	// empty string makes an ordered, ephemeral consumer that starts over
	// on every Subscribe.
	Durable string

	// FromSeq is the stream sequence a new consumer starts at; 0 starts
	// at the beginning. It has no effect on a durable that exists, which
	// resumes where it stopped (changing it is an error from the server).
	FromSeq uint64

	// Partitions restricts the subscription to these partition tokens
	// (filter subjects order.<p>.*); nil means every partition.
	Partitions []int

	// MaxDeliver caps deliveries of one message to a durable consumer
	// (0: no cap). After the last failed delivery the message is
	// terminated and logged; dead-lettering is the caller's business.
	MaxDeliver int

	// AckWait is how long a durable consumer waits for a handler before
	// redelivering (0: the server's default, 30s).
	AckWait time.Duration
}

// Subscription is a running subscription; see [Store.Subscribe].
type Subscription struct {
	cc        jetstream.ConsumeContext
	h         *handler
	cancel    context.CancelFunc
	once      sync.Once
	afterStop atomic.Pointer[func() bool]
}

// Stop stops delivery, cancels the handler's context and waits until the
// handler running, if any, has returned. It is safe to call more than
// once and from several goroutines, but not from inside the handler.
func (s *Subscription) Stop() {
	s.once.Do(func() {
		s.cancel()
		s.cc.Stop()
		<-s.cc.Closed()
		// Wait for a handler still running and keep any late one out.
		s.h.mu.Lock()
		s.h.stopped = true
		s.h.mu.Unlock()
	})
	if f := s.afterStop.Load(); f != nil {
		(*f)()
	}
}

// Subscribe delivers the commits of one aggregate type's stream to fn, one
// at a time in stream order, until [Subscription.Stop] is called or ctx is
// done. fn receives a context that is cancelled when the subscription
// stops.
//
// With a Durable name the subscription is a durable pull consumer with
// explicit acks, for process managers: fn returning nil acks the message;
// an error naks it with exponential backoff (100ms doubling up to 30s), so
// the server redelivers it, possibly after later messages. With no name it
// is an ordered ephemeral consumer, which cannot redeliver: fn's error is
// retried in place with the same backoff until it succeeds or the
// subscription stops. In both cases a message that does not decode as a
// commit is logged and dropped (terminated).
//
// fn must be idempotent: a message can be delivered more than once.
func (s *Store) Subscribe(ctx context.Context, aggType string, opts SubscribeOptions, fn func(context.Context, eventlog.Record) error) (*Subscription, error) {
	stream, err := s.StreamName(aggType)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if fn == nil {
		return nil, errors.New("subscribe: nil handler")
	}
	if opts.MaxDeliver < 0 || opts.AckWait < 0 {
		return nil, fmt.Errorf("subscribe %s: negative MaxDeliver or AckWait", stream)
	}
	var filters []string
	for _, p := range opts.Partitions {
		f, err := s.partitionFilter(aggType, p)
		if err != nil {
			return nil, fmt.Errorf("subscribe %s: %w", stream, err)
		}
		filters = append(filters, f)
	}
	if opts.Partitions != nil && len(filters) == 0 {
		return nil, fmt.Errorf("subscribe %s: empty partition list", stream)
	}
	deliver, startSeq := jetstream.DeliverAllPolicy, uint64(0)
	if opts.FromSeq > 0 {
		deliver, startSeq = jetstream.DeliverByStartSequencePolicy, opts.FromSeq
	}

	var cons jetstream.Consumer
	if opts.Durable != "" {
		cfg := jetstream.ConsumerConfig{
			Durable:        opts.Durable,
			DeliverPolicy:  deliver,
			OptStartSeq:    startSeq,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        opts.AckWait,
			MaxDeliver:     opts.MaxDeliver,
			FilterSubjects: filters,
		}
		if opts.MaxDeliver == 0 {
			cfg.MaxDeliver = -1
		}
		cons, err = s.js.CreateOrUpdateConsumer(ctx, stream, cfg)
	} else {
		cons, err = s.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
			DeliverPolicy:  deliver,
			OptStartSeq:    startSeq,
			FilterSubjects: filters,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", stream, err)
	}

	hctx, cancel := context.WithCancel(ctx)
	log := s.log.With("stream", stream, "durable", opts.Durable)
	h := &handler{ctx: hctx, stream: stream, durable: opts.Durable != "", maxDeliver: opts.MaxDeliver, fn: fn, log: log}
	cc, err := cons.Consume(h.handle, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		log.Warn("subscription error", "err", err)
	}))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe %s: %w", stream, err)
	}
	sub := &Subscription{cc: cc, h: h, cancel: cancel}
	stop := context.AfterFunc(ctx, sub.Stop)
	sub.afterStop.Store(&stop)
	return sub, nil
}

// handler runs fn for one subscription.
type handler struct {
	// ctx is the subscription's lifetime, cancelled by Stop.
	ctx        context.Context
	stream     string
	durable    bool
	maxDeliver int
	fn         func(context.Context, eventlog.Record) error
	log        *slog.Logger

	// mu is held while a message is handled; Stop takes it to wait for
	// the handler and sets stopped.
	mu      sync.RWMutex
	stopped bool
}

func (h *handler) handle(m jetstream.Msg) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.stopped || h.ctx.Err() != nil {
		return
	}
	md, err := m.Metadata()
	if err != nil {
		h.log.Error("dropping message without metadata", "subject", m.Subject(), "err", err)
		h.term(m, "no metadata")
		return
	}
	seq := md.Sequence.Stream
	c, err := events.Unmarshal(m.Data())
	if err != nil {
		h.log.Error("dropping message that is not a commit", "seq", seq, "subject", m.Subject(), "err", err)
		h.term(m, "not a commit")
		return
	}
	rec := eventlog.Record{Stream: h.stream, Seq: seq, Commit: c}

	if !h.durable {
		for attempt := 1; ; attempt++ {
			err := h.fn(h.ctx, rec)
			if err == nil {
				return
			}
			if h.ctx.Err() != nil {
				return
			}
			h.log.Warn("handler failed, retrying", "seq", seq, "attempt", attempt, "err", err)
			if sleepCtx(h.ctx, backoff(attempt)) != nil {
				return
			}
		}
	}

	err = h.fn(h.ctx, rec)
	if err == nil {
		if aerr := m.Ack(); aerr != nil {
			h.log.Warn("ack failed", "seq", seq, "err", aerr)
		}
		return
	}
	attempt := int(md.NumDelivered)
	if h.maxDeliver > 0 && attempt >= h.maxDeliver {
		h.log.Error("handler failed on the last delivery, dropping message", "seq", seq, "attempt", attempt, "err", err)
		h.term(m, "handler failed "+strconv.Itoa(attempt)+" times")
		return
	}
	h.log.Warn("handler failed, redelivering", "seq", seq, "attempt", attempt, "err", err)
	if nerr := m.NakWithDelay(backoff(attempt)); nerr != nil {
		h.log.Warn("nak failed", "seq", seq, "err", nerr)
	}
}

func (h *handler) term(m jetstream.Msg, reason string) {
	if !h.durable {
		return
	}
	if err := m.TermWithReason(reason); err != nil {
		h.log.Warn("term failed", "subject", m.Subject(), "err", err)
	}
}

// backoff returns the wait before retry number attempt (1-based).
func backoff(attempt int) time.Duration {
	d := retryBase
	for i := 1; i < attempt && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}
