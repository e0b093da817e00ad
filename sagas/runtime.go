package sagas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/process"
	"github.com/ordo-shop/ordo/streams"
)

// errStopping marks a failure caused by the runtime stopping: the message
// is neither retried nor dead-lettered, and the server redelivers it.
var errStopping = errors.New("process manager runtime stopping")

// Options tune a [Runtime]. Zero values take the defaults.
type Options struct {
	// Workers bounds the messages of one consumer handled at once
	// (default 32: handlers wait on the store, see decision 005). Messages
	// of one subject are handled one at a time.
	Workers int
	// AckWait is how long the server waits for a message's ack before it
	// redelivers it (default 30s).
	AckWait time.Duration
	// MaxRetries is how often a failed message is retried in place before
	// it is dead-lettered (default 5); the waits start at RetryInitial
	// (default 100ms) and double up to RetryMax (default 5s).
	MaxRetries   int
	RetryInitial time.Duration
	RetryMax     time.Duration
	// HandlerTimeout bounds one attempt (default 30s).
	HandlerTimeout time.Duration
	// CloseTimeout bounds how long Close waits for running handlers
	// (default 10s).
	CloseTimeout time.Duration
	// PinnedTTL is how long a consumer stays with a runtime that stopped
	// pulling without handing it over (killed) before another runtime
	// gets it (default 15s; see Runtime).
	PinnedTTL time.Duration
	// Logger receives the runtime's and watermill's logs (default:
	// discard).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.MaxRetries < 0 {
		o.MaxRetries = 0
	} else if o.MaxRetries == 0 {
		o.MaxRetries = 5
	}
	if o.RetryInitial <= 0 {
		o.RetryInitial = 100 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Second
	}
	if o.HandlerTimeout <= 0 {
		o.HandlerTimeout = 30 * time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 10 * time.Second
	}
	if o.PinnedTTL <= 0 {
		o.PinnedTTL = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// pinGroup is the priority group of the runtime's pinned consumers.
const pinGroup = "runtime"

// DurableName is the durable consumer through which process manager pm
// reads a stream (its main lane): checkout-orders, checkout-timers, ...
func DurableName(pm, stream string) string { return pm + "-" + strings.ToLower(stream) }

// urgentSuffix ends the name of an urgent lane's consumer.
const urgentSuffix = "-urgent"

// Lane is what one of a runtime's consumers has not handled yet.
type Lane struct {
	Stream, Durable string
	// Pending is what the consumer has not delivered yet, Unacked what
	// it delivered and was not acknowledged yet.
	Pending uint64
	Unacked int
}

// Backlog reports each of the runtime's consumers' backlog (one request
// per consumer), in the order they were added.
func (r *Runtime) Backlog(ctx context.Context) ([]Lane, error) {
	var out []Lane
	for _, l := range r.lanes {
		p, u, err := r.store.ConsumerBacklog(ctx, l.Stream, l.Durable)
		if err != nil {
			return nil, err
		}
		l.Pending, l.Unacked = p, u
		out = append(out, l)
	}
	return out, nil
}

// Runtime runs process managers; see the package documentation.
type Runtime struct {
	store    *streams.Store
	registry *events.Registry
	pms      []process.Manager
	opts     Options
	log      *slog.Logger
	lanes    []Lane // every consumer, filled by NewRuntime

	mu     sync.Mutex
	router *message.Router
	cancel context.CancelFunc
	done   chan struct{}
}

// NewRuntime returns a runtime for pms over store. Start it with
// [Runtime.Start].
func NewRuntime(store *streams.Store, registry *events.Registry, opts Options, pms ...process.Manager) (*Runtime, error) {
	if store == nil || registry == nil {
		return nil, errors.New("sagas: store and registry are required")
	}
	if len(pms) == 0 {
		return nil, errors.New("sagas: no process managers")
	}
	seen := map[string]bool{}
	for _, pm := range pms {
		if !events.ValidID(pm.Name()) || seen[pm.Name()] {
			return nil, fmt.Errorf("sagas: process manager name %q is invalid or used twice", pm.Name())
		}
		seen[pm.Name()] = true
		for _, src := range pm.Sources() {
			if _, err := store.StreamName(src); err != nil {
				return nil, fmt.Errorf("sagas: %s: %w", pm.Name(), err)
			}
		}
	}
	opts = opts.withDefaults()
	r := &Runtime{store: store, registry: registry, pms: pms, opts: opts, log: opts.Logger}
	for _, pm := range pms {
		for _, src := range pm.Sources() {
			stream, _ := store.StreamName(src)
			r.lanes = append(r.lanes, Lane{Stream: stream, Durable: DurableName(pm.Name(), stream)})
		}
		if u, ok := pm.(process.Urgent); ok {
			for _, src := range u.UrgentSources() {
				stream, err := store.StreamName(src)
				if err != nil {
					return nil, fmt.Errorf("sagas: %s: %w", pm.Name(), err)
				}
				r.lanes = append(r.lanes, Lane{Stream: stream, Durable: DurableName(pm.Name(), stream) + urgentSuffix})
			}
		}
		r.lanes = append(r.lanes, Lane{Stream: streams.TimersStream, Durable: DurableName(pm.Name(), "timers")},
			Lane{Stream: streams.DLQStream, Durable: DurableName(pm.Name(), "redrive")})
	}
	return r, nil
}

// Start provisions the TIMERS and DLQ streams and the consumers, and runs
// the router until ctx ends or Close is called. It returns once the router
// is running.
func (r *Runtime) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.router != nil {
		return errors.New("sagas: runtime already started")
	}
	if err := r.store.OpenTimers(ctx); err != nil {
		return err
	}
	if err := r.store.OpenDLQ(ctx); err != nil {
		return err
	}
	wlog := watermill.NewSlogLoggerWithLevelMapping(r.log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: r.opts.CloseTimeout}, wlog)
	if err != nil {
		return fmt.Errorf("sagas: %w", err)
	}
	sources := map[string]source{} // filled before the router runs
	sub := &jsSubscriber{workers: r.opts.Workers, log: r.log, source: func(topic string) (source, bool) {
		src, ok := sources[topic]
		return src, ok
	}}
	for _, pm := range r.pms {
		if err := r.addHandlers(router, sub, sources, pm); err != nil {
			return err
		}
	}
	retry := middleware.Retry{
		MaxRetries:          r.opts.MaxRetries,
		InitialInterval:     r.opts.RetryInitial,
		MaxInterval:         r.opts.RetryMax,
		Multiplier:          2,
		RandomizationFactor: 0.2,
		ResetContextOnRetry: true,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !errors.Is(p.Err, errStopping) && !process.IsPermanent(p.Err)
		},
		Logger: wlog,
	}
	router.AddMiddleware(
		middleware.CorrelationID,
		stopGuard,
		retry.Middleware,
		middleware.Recoverer,
		r.attempt,
	)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := router.Run(rctx); err != nil {
			r.log.Error("process manager router stopped", "err", err)
		}
	}()
	select {
	case <-router.Running():
	case <-done:
		cancel()
		return errors.New("sagas: router stopped while starting")
	case <-ctx.Done():
		cancel()
		<-done
		return ctx.Err()
	}
	r.router, r.cancel, r.done = router, cancel, done
	r.log.Info("process managers running", "count", len(r.pms), "workers", r.opts.Workers)
	return nil
}

// Close stops the router, waits up to Options.CloseTimeout for running
// handlers and releases the consumers. Messages not acknowledged are
// redelivered to the next runtime.
func (r *Runtime) Close() error {
	r.mu.Lock()
	router, cancel, done := r.router, r.cancel, r.done
	r.mu.Unlock()
	if router == nil {
		return nil
	}
	cancel()
	err := router.Close()
	<-done
	return err
}

// addHandlers adds one router handler per source of pm, one for its
// timers and one for its redrives.
func (r *Runtime) addHandlers(router *message.Router, sub *jsSubscriber, sources map[string]source, pm process.Manager) error {
	name := pm.Name()
	dlq, err := middleware.PoisonQueueWithFilter(&dlqPublisher{store: r.store, owner: name, log: r.log}, "dlq."+name, shouldDeadLetter)
	if err != nil {
		return fmt.Errorf("sagas: %w", err)
	}
	consumer := func(durable string) streams.ConsumerOptions {
		return streams.ConsumerOptions{Durable: durable, AckWait: r.opts.AckWait, MaxAckPending: 4 * r.opts.Workers,
			PinnedGroup: pinGroup, PinnedTTL: r.opts.PinnedTTL}
	}
	add := func(topic string, src source, fn message.NoPublishHandlerFunc) {
		src.group = pinGroup
		src.unpin = r.unpin(src.stream)
		sources[topic] = src
		h := router.AddConsumerHandler(topic, topic, sub, fn)
		if strings.HasSuffix(topic, urgentSuffix) {
			h.AddMiddleware(r.urgentGiveUp)
		} else {
			h.AddMiddleware(dlq)
		}
	}
	for _, aggType := range pm.Sources() {
		aggType := aggType
		stream, _ := r.store.StreamName(aggType)
		durable := DurableName(name, stream)
		add(name+"."+strings.ToLower(stream), source{
			stream: stream,
			open: func(ctx context.Context) (jetstream.Consumer, error) {
				return r.store.DurableConsumer(ctx, aggType, consumer(durable))
			},
		}, r.commitHandler(pm, nil))
	}
	if u, ok := pm.(process.Urgent); ok {
		for _, aggType := range u.UrgentSources() {
			aggType := aggType
			stream, _ := r.store.StreamName(aggType)
			durable := DurableName(name, stream) + urgentSuffix
			add(name+"."+strings.ToLower(stream)+urgentSuffix, source{
				stream: stream,
				open: func(ctx context.Context) (jetstream.Consumer, error) {
					// It starts with the commits appended after it was
					// made: the main lane handles every earlier one.
					opts := consumer(durable)
					opts.DeliverNew = true
					return r.store.DurableConsumer(ctx, aggType, opts)
				},
			}, r.commitHandler(pm, u))
		}
	}
	timers := DurableName(name, "timers")
	add(name+".timers", source{
		stream: streams.TimersStream,
		open: func(ctx context.Context) (jetstream.Consumer, error) {
			return r.store.TimerConsumer(ctx, name, consumer(timers))
		},
	}, r.timerHandler(pm))
	redrive := DurableName(name, "redrive")
	add(name+".redrive", source{
		stream: streams.DLQStream,
		open: func(ctx context.Context) (jetstream.Consumer, error) {
			return r.store.RedriveConsumer(ctx, name, consumer(redrive))
		},
	}, r.redriveHandler(pm))
	return nil
}

// urgentGiveUp ends the urgent lane's work on a message that still fails
// after its retries: it is acknowledged, not dead-lettered, since the
// main lane handles the same commit (and dead-letters it if it fails
// there too).
func (r *Runtime) urgentGiveUp(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err != nil && !errors.Is(err, errStopping) {
			r.log.Warn("urgent lane gives up; the main lane will handle the commit", "stream", msg.Metadata.Get(mdStream),
				"seq", msg.Metadata.Get(mdSeq), "err", err)
			return out, nil
		}
		return out, err
	}
}

// unpin returns the hand-over of a pinned consumer on stream: if the
// stopping subscription still holds the pin, the next runtime to pull
// gets it at once instead of after PinnedTTL. A pin held by another
// runtime is left alone.
func (r *Runtime) unpin(stream string) func(ctx context.Context, cons jetstream.Consumer, pinID string) {
	return func(ctx context.Context, cons jetstream.Consumer, pinID string) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		info, err := cons.Info(ctx)
		if err != nil {
			r.log.Debug("consumer not handed over", "stream", stream, "err", err)
			return
		}
		for _, g := range info.PriorityGroups {
			if g.Group == pinGroup && g.PinnedClientID == pinID {
				if err := r.store.UnpinConsumer(ctx, stream, info.Name, pinGroup); err != nil {
					r.log.Debug("consumer not handed over", "stream", stream, "consumer", info.Name, "err", err)
				}
			}
		}
	}
}

// Metadata keys of the runtime's watermill messages.
const (
	mdStream    = "ordo_stream"
	mdSeq       = "ordo_seq"
	mdSubject   = "ordo_subject"
	mdDelivered = "ordo_delivered"
	mdAttempts  = "ordo_attempts"
	mdRedrive   = "ordo_redrive_of"
)

// shouldDeadLetter says whether a failure that outlived the in-place
// retries goes to the dead-letter stream: not when the runtime is
// stopping, and not when the event store's stream leader failed (an
// election after a crash takes 4-10 s, longer than the in-place retries),
// nor when the log did not show yet the commit being handled (a replica
// delivered it before the stream leader applied it; a slow leader can
// take longer than the in-place retries too): such a message is
// redelivered by the server, with its backoff, until it can be handled.
func shouldDeadLetter(err error) bool {
	return !errors.Is(err, errStopping) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, eventlog.ErrLeaderUnavailable) && !errors.Is(err, eventlog.ErrOutcomeUnknown) &&
		!errors.Is(err, command.ErrNotYetReadable)
}

// stopGuard turns the failure of a message whose subscription is ending
// into errStopping, so it is neither retried nor dead-lettered.
func stopGuard(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err != nil && msg.Context().Err() != nil {
			return out, fmt.Errorf("%w: %w", errStopping, err)
		}
		return out, err
	}
}

// attempt counts the handler's attempts on a message, bounds each with
// the handler timeout, and marks failures of a stopping runtime.
func (r *Runtime) attempt(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		n, _ := strconv.Atoi(msg.Metadata.Get(mdAttempts))
		msg.Metadata.Set(mdAttempts, strconv.Itoa(n+1))
		parent := msg.Context()
		ctx, cancel := context.WithTimeout(parent, r.opts.HandlerTimeout)
		defer cancel()
		msg.SetContext(ctx)
		defer msg.SetContext(parent) // also when the handler panics
		out, err := h(msg)
		if err != nil && parent.Err() != nil {
			return out, fmt.Errorf("%w: %w", errStopping, err)
		}
		return out, err
	}
}

func (r *Runtime) location(msg *message.Message) (stream, subject string, seq uint64, redelivered bool) {
	seq, _ = strconv.ParseUint(msg.Metadata.Get(mdSeq), 10, 64)
	d, _ := strconv.Atoi(msg.Metadata.Get(mdDelivered))
	return msg.Metadata.Get(mdStream), msg.Metadata.Get(mdSubject), seq, d > 1
}

func (r *Runtime) decodeCommit(stream, subject string, seq uint64, data []byte) (process.Message, error) {
	c, err := events.Unmarshal(data)
	if err != nil {
		return process.Message{}, process.Permanent(fmt.Errorf("%s seq %d: %w", stream, seq, err))
	}
	evs, err := r.registry.DecodeAll(c)
	if err != nil {
		return process.Message{}, process.Permanent(fmt.Errorf("%s seq %d: %w", stream, seq, err))
	}
	return process.Message{Stream: stream, Seq: seq, Subject: subject, Commit: c, Events: evs}, nil
}

// commitHandler hands commits to pm; with urgent set (the urgent lane)
// only commits with an urgent event, marked Urgent.
func (r *Runtime) commitHandler(pm process.Manager, urgent process.Urgent) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		stream, subject, seq, redelivered := r.location(msg)
		m, err := r.decodeCommit(stream, subject, seq, msg.Payload)
		if err != nil {
			if urgent != nil {
				return nil // the main lane dead-letters it
			}
			return err
		}
		if urgent != nil {
			if !slices.ContainsFunc(m.Events, urgent.IsUrgent) {
				return nil
			}
			m.Urgent = true
		}
		m.Redelivered = redelivered
		corr := m.Commit.Metadata.CorrelationID
		if corr == "" {
			corr = m.Commit.AggregateID
		}
		middleware.SetCorrelationID(corr, msg)
		return pm.Handle(msg.Context(), m)
	}
}

func (r *Runtime) timerHandler(pm process.Manager) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		stream, subject, seq, redelivered := r.location(msg)
		t, err := streams.ParseFiredTimer(subject, msg.Payload)
		if err != nil {
			return process.Permanent(err)
		}
		middleware.SetCorrelationID(t.Key, msg)
		return pm.Handle(msg.Context(), process.Message{Stream: stream, Seq: seq, Subject: subject, Timer: &t, Redelivered: redelivered})
	}
}

// redriveHandler handles a dead letter sent back by an operator as the
// original message. On success the dead letter is deleted; on failure
// the dead-letter publisher replaces it with the new failure. The
// watermill message keeps the dead letter as its payload (retries run
// this handler again on the same message).
func (r *Runtime) redriveHandler(pm process.Manager) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		var dl streams.DeadLetter
		if err := json.Unmarshal(msg.Payload, &dl); err != nil {
			return process.Permanent(fmt.Errorf("redrive request is not a dead letter: %w", err))
		}
		// From here on a failure is a failure of the original message.
		msg.Metadata.Set(mdStream, dl.Stream)
		msg.Metadata.Set(mdSeq, strconv.FormatUint(dl.Seq, 10))
		msg.Metadata.Set(mdSubject, dl.Subject)
		msg.Metadata.Set(mdRedrive, strconv.FormatUint(dl.ID, 10))
		if dl.CorrelationID != "" {
			middleware.SetCorrelationID(dl.CorrelationID, msg)
		}
		var m process.Message
		if dl.Stream == streams.TimersStream {
			t, err := streams.ParseFiredTimer(dl.Subject, dl.Data)
			if err != nil {
				return process.Permanent(err)
			}
			m = process.Message{Stream: dl.Stream, Seq: dl.Seq, Subject: dl.Subject, Timer: &t}
		} else {
			var err error
			if m, err = r.decodeCommit(dl.Stream, dl.Subject, dl.Seq, dl.Data); err != nil {
				return err
			}
		}
		m.Redelivered = true
		if err := pm.Handle(msg.Context(), m); err != nil {
			return err
		}
		if err := r.store.DeleteDeadLetter(msg.Context(), dl.ID); err != nil {
			r.log.Warn("redriven dead letter handled but not deleted", "id", dl.ID, "err", err)
		}
		r.log.Info("dead letter redriven", "id", dl.ID, "owner", pm.Name(), "stream", dl.Stream, "seq", dl.Seq)
		return nil
	}
}
