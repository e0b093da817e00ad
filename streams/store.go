package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// Defaults applied by [Open] to zero [Config] fields.
const (
	DefaultPartitions      = 16
	DefaultReplicas        = 1
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultLeaderWait      = 2 * time.Second
)

// MaxPartitions bounds [Config.Partitions].
const MaxPartitions = 1024

// partitionsKey is the stream metadata key that records the partition
// count the stream was created with.
const partitionsKey = "ordo.partitions"

// ErrStreamConfig means a stream of the log has a configuration that
// would lose what it holds or break the store (limits, deletes or purges
// allowed, other subjects, memory storage): someone changed it. [Open]
// and [Init] refuse it. The other errors of the Store are those of the
// port, package eventlog.
var ErrStreamConfig = errors.New("stream configuration changed")

// Config configures the event store. The zero value is valid: every field
// has a documented default.
type Config struct {
	// Partitions is the number of partition tokens in subjects (default
	// 16, at most [MaxPartitions]). It is used only when the streams are
	// created and is recorded in their metadata; afterwards the recorded
	// value wins, because changing it would move aggregates to other
	// subjects.
	Partitions int

	// Replicas is the number of copies of each stream (default 1; use 3
	// in production). Used when the streams are created.
	Replicas int

	// DuplicateWindow is how long the server remembers commit ids to
	// answer a retried append as a duplicate (default 2 minutes). Used
	// when the streams are created.
	DuplicateWindow time.Duration

	// LeaderWait bounds how long one call waits for a stream leader that
	// does not answer before it gives up with [eventlog.ErrLeaderUnavailable] or
	// [eventlog.ErrOutcomeUnknown] (default 2s). A planned leader change completes
	// within it, so callers see nothing; a crashed leader is replaced only
	// after nats-server's election timeout (4-9 s, not configurable), and
	// callers are told so promptly instead of waiting out their deadline.
	LeaderWait time.Duration

	// LogID, if set, is the id the log must have (ORDO_LOG_ID, or the
	// local default's marker): [Open] and [Init] refuse a log with
	// another id or none with [eventlog.ErrLogMismatch], and Init creates no new
	// log in its place.
	LogID string

	// RecreateLost lets [Init] recreate the DLQ or TIMERS stream of a log
	// that lost it, accepting that the dead letters or timers it held are
	// gone (orderctl init --recreate-lost). Open ignores it.
	RecreateLost bool

	// OnStreamMissing, if set, is called when a call of the Store finds
	// one of the log's streams gone (its error is then
	// [eventlog.ErrStreamMissing]). It must not block. orderd uses it to check
	// the whole log at once for its /readyz.
	OnStreamMissing func(stream string)

	// Logger receives what the store cannot return as an error, such as
	// a subscription dropping a message that does not decode. Default:
	// discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	switch {
	case c.Partitions == 0:
		c.Partitions = DefaultPartitions
	case c.Partitions < 0 || c.Partitions > MaxPartitions:
		errs = append(errs, fmt.Errorf("partitions %d not in 1..%d", c.Partitions, MaxPartitions))
	}
	switch {
	case c.Replicas == 0:
		c.Replicas = DefaultReplicas
	case c.Replicas < 0 || c.Replicas > 5:
		errs = append(errs, fmt.Errorf("replicas %d not in 1..5", c.Replicas))
	}
	switch {
	case c.DuplicateWindow == 0:
		c.DuplicateWindow = DefaultDuplicateWindow
	case c.DuplicateWindow < 0:
		errs = append(errs, fmt.Errorf("duplicate window %s is negative", c.DuplicateWindow))
	}
	switch {
	case c.LeaderWait == 0:
		c.LeaderWait = DefaultLeaderWait
	case c.LeaderWait < 0:
		errs = append(errs, fmt.Errorf("leader wait %s is negative", c.LeaderWait))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("streams config: %w", errors.Join(errs...))
	}
	return c, nil
}

// aggKind describes where one aggregate type lives.
type aggKind struct {
	stream string // ORDERS
	prefix string // order
}

var kinds = map[string]aggKind{
	eventlog.TypeOrder:     {stream: eventlog.StreamOrders, prefix: "order"},
	eventlog.TypeInventory: {stream: eventlog.StreamInventory, prefix: "sku"},
	eventlog.TypePayment:   {stream: eventlog.StreamPayments, prefix: "payment"},
}

// kindOrder fixes the order streams are provisioned in.
var kindOrder = []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment}

// Store is Ordo's event store on JetStream: one stream per aggregate type,
// one subject per aggregate, one message per commit. It is the only
// package that knows subjects.
//
// A Store is safe for concurrent use. It holds no per-aggregate state: the
// optimistic concurrency check happens in the server.
type Store struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	partitions int
	leaderWait time.Duration
	log        *slog.Logger
	info       LogInfo
	onMissing  func(stream string)
}

// Open opens the log on nc's server (see [Init], which creates it) and
// returns a Store on nc. It creates nothing.
//
// It fails with [eventlog.ErrNoLog] when the server has none of the log's
// streams, with [eventlog.ErrStreamMissing] when it lacks some (the log was
// destroyed in part; DLQ and TIMERS may be missing only from a log made
// before logs had an id, whose process managers created them when first
// needed), and with [eventlog.ErrLogMismatch] when the streams carry different log
// ids, or not cfg.LogID when that is set. It fails too if a stream would
// break the store: other subjects, memory storage, no direct gets,
// deletes or purges allowed on a commit stream, retention limits, a
// missing partition count, or commit streams that disagree on it.
//
// The commit streams' recorded partition count wins over cfg.Partitions;
// their replicas and duplicate window are left as they are (change them
// with a stream update).
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, errors.New("streams: open: nil connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("streams: open: %w", err)
	}
	v, err := surveyLog(ctx, js)
	if err != nil {
		return nil, err
	}
	li, err := openLog(v, cfg.LogID)
	if err != nil {
		return nil, err
	}
	return &Store{nc: nc, js: js, partitions: li.Partitions, leaderWait: cfg.LeaderWait, log: cfg.Logger, info: li, onMissing: cfg.OnStreamMissing}, nil
}

// Log describes the log the store was opened on, as it was then.
func (s *Store) Log() LogInfo { return s.info }

// CheckLog checks, with one stream info request per stream, that the
// log the store was opened on is still whole: every stream it had is
// there, with a configuration that keeps what it holds and the same log
// id. The errors are those of [Open].
func (s *Store) CheckLog(ctx context.Context) error {
	v, err := surveyLog(ctx, s.js)
	if err != nil {
		return err
	}
	if len(v.configs) == 0 {
		return fmt.Errorf("streams: %w: every stream of the log %s is gone (%s)", eventlog.ErrStreamMissing, s.info.ID, strings.Join(logStreams, ", "))
	}
	li, err := openLog(v, s.info.ID)
	if err != nil {
		return err
	}
	if li.Partitions != s.info.Partitions {
		return fmt.Errorf("streams: %w: the log now records %d partitions, it had %d", eventlog.ErrLogMismatch, li.Partitions, s.info.Partitions)
	}
	return nil
}

func streamConfig(k aggKind, partitions int, cfg Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              k.stream,
		Description:       "Ordo " + k.prefix + " commits, one message per command",
		Subjects:          []string{k.prefix + ".*.*"},
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            0,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        -1,
		Discard:           jetstream.DiscardNew,
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		Duplicates:        cfg.DuplicateWindow,
		AllowDirect:       true,
		DenyDelete:        true,
		DenyPurge:         true,
		Metadata:          map[string]string{partitionsKey: strconv.Itoa(partitions)},
	}
}

// checkStream validates an existing stream's configuration and returns its
// partition count.
func checkStream(k aggKind, sc jetstream.StreamConfig) (int, error) {
	var problems []string
	if want := []string{k.prefix + ".*.*"}; !slices.Equal(sc.Subjects, want) {
		problems = append(problems, fmt.Sprintf("subjects %v, want %v", sc.Subjects, want))
	}
	if sc.Storage != jetstream.FileStorage {
		problems = append(problems, "not file storage")
	}
	if sc.Retention != jetstream.LimitsPolicy {
		problems = append(problems, fmt.Sprintf("retention %s, want limits", sc.Retention))
	}
	if !sc.AllowDirect {
		problems = append(problems, "direct get not allowed")
	}
	if !sc.DenyDelete || !sc.DenyPurge {
		problems = append(problems, "deletes or purges allowed")
	}
	if sc.MaxMsgs > 0 || sc.MaxBytes > 0 || sc.MaxAge > 0 || sc.MaxMsgsPerSubject > 0 {
		problems = append(problems, "has retention limits")
	}
	p, err := strconv.Atoi(sc.Metadata[partitionsKey])
	if err != nil || p < 1 || p > MaxPartitions {
		problems = append(problems, fmt.Sprintf("metadata %s = %q is not a partition count", partitionsKey, sc.Metadata[partitionsKey]))
	}
	if len(problems) > 0 {
		return 0, fmt.Errorf("streams: %w: stream %s exists but %s", ErrStreamConfig, k.stream, strings.Join(problems, "; "))
	}
	return p, nil
}

// ValidID reports whether id can name an aggregate: 1 to 128 characters of
// [A-Za-z0-9_-]. Anything else could inject subject tokens or wildcards.
// It is [events.ValidID], so the API, the deciders and the tokens share
// the rule.
func ValidID(id string) bool { return events.ValidID(id) }

// Partitions returns the number of partition tokens in subjects, as
// recorded in the streams.
func (s *Store) Partitions() int { return s.partitions }

// Partition returns the partition token of an aggregate id: FNV-1a (32
// bit) of the id modulo the partition count.
func (s *Store) Partition(id string) int {
	return eventlog.Partition(id, s.partitions)
}

// StreamName returns the stream that holds an aggregate type's commits.
func (s *Store) StreamName(aggType string) (string, error) { return StreamOf(aggType) }

// StreamOf returns the stream that holds an aggregate type's commits:
// ORDERS, INVENTORY or PAYMENTS.
func StreamOf(aggType string) (string, error) {
	k, ok := kinds[aggType]
	if !ok {
		return "", fmt.Errorf("%w: %q", eventlog.ErrUnknownType, aggType)
	}
	return k.stream, nil
}

// Subject returns the subject of one aggregate, such as order.7.o-123.
func (s *Store) Subject(aggType, id string) (string, error) {
	_, subj, err := s.locate(aggType, id)
	return subj, err
}

// locate returns the stream and subject of an aggregate.
func (s *Store) locate(aggType, id string) (stream, subject string, err error) {
	k, ok := kinds[aggType]
	if !ok {
		return "", "", fmt.Errorf("%w: %q", eventlog.ErrUnknownType, aggType)
	}
	if !ValidID(id) {
		return "", "", fmt.Errorf("%w: %q", eventlog.ErrInvalidID, truncate(id))
	}
	b := make([]byte, 0, len(k.prefix)+len(id)+6)
	b = append(b, k.prefix...)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(eventlog.Partition(id, s.partitions)), 10)
	b = append(b, '.')
	b = append(b, id...)
	return k.stream, string(b), nil
}

func truncate(id string) string {
	if len(id) > 40 {
		return id[:40] + "..."
	}
	return id
}

// SubjectID returns the aggregate id a subject of aggType's stream names
// (the part after the partition token), and whether the subject is the
// one [Store.Subject] gives that id: a commit stored under any other
// subject was not put there by Append.
func (s *Store) SubjectID(aggType, subject string) (id string, ok bool) {
	k, known := kinds[aggType]
	if !known || !strings.HasPrefix(subject, k.prefix+".") {
		return "", false
	}
	rest := subject[len(k.prefix)+1:]
	dot := strings.IndexByte(rest, '.')
	if dot < 0 {
		return "", false
	}
	id = rest[dot+1:]
	want, err := s.Subject(aggType, id)
	return id, err == nil && want == subject
}
