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
	// PinnedGroup, if set, makes the consumer deliver to one client at a
	// time (JetStream's pinned-client priority policy with this priority
	// group): the first client that pulls is pinned, the others receive
	// nothing until it stops pulling for PinnedTTL (default 15s) or is
	// unpinned ([Store.UnpinConsumer]). Clients pull with
	// jetstream.PullPriorityGroup(PinnedGroup).
	PinnedGroup string
	PinnedTTL   time.Duration
	// DeliverNew makes a consumer created by this call start with the
	// commits appended after it (default: from the beginning of the
	// stream). An existing consumer resumes where it stopped either way;
	// the choice cannot be changed for an existing consumer.
	DeliverNew bool
}

func (o ConsumerOptions) config(filter string) (jetstream.ConsumerConfig, error) {
	if !ValidID(o.Durable) {
		return jetstream.ConsumerConfig{}, fmt.Errorf("%w: durable name %q", eventlog.ErrInvalidID, truncate(o.Durable))
	}
	if o.AckWait < 0 || o.MaxAckPending < 0 || o.PinnedTTL < 0 {
		return jetstream.ConsumerConfig{}, errors.New("negative AckWait, MaxAckPending or PinnedTTL")
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
	if o.DeliverNew {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	if o.PinnedGroup != "" {
		if !ValidID(o.PinnedGroup) {
			return jetstream.ConsumerConfig{}, fmt.Errorf("%w: priority group %q", eventlog.ErrInvalidID, truncate(o.PinnedGroup))
		}
		cfg.PriorityPolicy = jetstream.PriorityPolicyPinned
		cfg.PriorityGroups = []string{o.PinnedGroup}
		cfg.PinnedTTL = o.PinnedTTL
		if cfg.PinnedTTL == 0 {
			cfg.PinnedTTL = 15 * time.Second
		}
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

// UnpinConsumer ends the pin of a pinned consumer's group (see
// ConsumerOptions.PinnedGroup), so that the next client to pull is
// pinned at once instead of after the pin's TTL: a runtime that stops
// hands its consumers over this way.
func (s *Store) UnpinConsumer(ctx context.Context, stream, durable, group string) error {
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("unpin %s on %s: %w", durable, stream, err)
	}
	if err := st.UnpinConsumer(ctx, durable, group); err != nil {
		return fmt.Errorf("unpin %s on %s: %w", durable, stream, err)
	}
	return nil
}

// ConsumerBacklog returns how many messages a durable consumer on an
// aggregate type's stream has not delivered yet and how many it
// delivered without an ack: one request to the consumer's leader. A
// consumer that does not exist has no backlog.
func (s *Store) ConsumerBacklog(ctx context.Context, stream, durable string) (pending uint64, unacked int, err error) {
	cons, err := s.js.Consumer(ctx, stream, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("consumer backlog %s on %s: %w", durable, stream, err)
	}
	info := cons.CachedInfo()
	return info.NumPending, info.NumAckPending, nil
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
