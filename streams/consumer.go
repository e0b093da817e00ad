package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
)

// ConsumerOptions configures a durable consumer made by
// [Store.DurableConsumer], [Store.TimerConsumer] or [Store.RedriveConsumer]
// for a process manager that acknowledges each message itself.
type ConsumerOptions struct {
	// Durable names the consumer; the server keeps its position across
	// restarts. Required; it must satisfy [ValidID].
	Durable string
	// AckWait is how long the server waits for an ack before it
	// redelivers (default 30s).
	AckWait time.Duration
	// MaxAckPending bounds the messages delivered and not yet acked
	// (default 1000).
	MaxAckPending int
}

func (o ConsumerOptions) config(filter string) (jetstream.ConsumerConfig, error) {
	if !ValidID(o.Durable) {
		return jetstream.ConsumerConfig{}, fmt.Errorf("%w: durable name %q", eventlog.ErrInvalidID, truncate(o.Durable))
	}
	if o.AckWait < 0 || o.MaxAckPending < 0 {
		return jetstream.ConsumerConfig{}, errors.New("negative AckWait or MaxAckPending")
	}
	if o.AckWait == 0 {
		o.AckWait = 30 * time.Second
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = 1000
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       o.Durable,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxAckPending: o.MaxAckPending,
		MaxDeliver:    -1,
	}
	if filter != "" {
		cfg.FilterSubject = filter
	}
	return cfg, nil
}

// DurableConsumer creates (or updates) a durable pull consumer over every
// commit of an aggregate type's stream, with explicit acks, and returns it
// for the caller to consume, for runtimes that drive acknowledgements
// themselves, such as the process managers' runtime in package sagas. A new consumer starts at the beginning of the
// stream; an existing one resumes where it stopped.
func (s *Store) DurableConsumer(ctx context.Context, aggType string, opts ConsumerOptions) (jetstream.Consumer, error) {
	stream, err := s.StreamName(aggType)
	if err != nil {
		return nil, fmt.Errorf("durable consumer: %w", err)
	}
	cfg, err := opts.config("")
	if err != nil {
		return nil, fmt.Errorf("durable consumer on %s: %w", stream, err)
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("durable consumer %s on %s: %w", opts.Durable, stream, err)
	}
	return cons, nil
}

// auxStreamConfig is the configuration of a stream beside the commit
// streams (dead letters, timers): file storage, no limits, the log's
// replicas, the duplicate window, direct gets.
func auxStreamConfig(name, description, subjects string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              name,
		Description:       description,
		Subjects:          []string{subjects},
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        -1,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Duplicates:        DefaultDuplicateWindow,
		AllowDirect:       true,
	}
}

// checkAux checks that the DLQ or TIMERS stream exists with a
// configuration check accepts and the store's log id.
func (s *Store) checkAux(ctx context.Context, name string, check func(jetstream.StreamConfig) error) error {
	st, err := s.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("streams: %w: the log has no stream %s: it was deleted, or the log predates it: "+
			"run `orderctl init` (for a log without an id it adds the stream; for one with an id it says what was lost)", eventlog.ErrStreamMissing, name)
	}
	if err != nil {
		return fmt.Errorf("streams: open %s: %w", name, err)
	}
	sc := st.CachedInfo().Config
	if err := check(sc); err != nil {
		return err
	}
	if id := sc.Metadata[LogIDKey]; id != s.info.ID {
		return fmt.Errorf("streams: %w: stream %s carries log id %q, the log is %q", eventlog.ErrLogMismatch, name, id, s.info.ID)
	}
	return nil
}
