package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ordo-shop/ordo/events"
)

// Aggregate types, as they appear in [events.Commit.AggregateType] and in
// every call that takes an aggType.
const (
	TypeOrder     = "order"
	TypeInventory = "inventory"
	TypePayment   = "payment"
)

// Streams: the name of each aggregate type's stream, as positions name it
// ("ORDERS:42").
const (
	StreamOrders    = "ORDERS"
	StreamInventory = "INVENTORY"
	StreamPayments  = "PAYMENTS"
)

// StreamOf returns the stream that holds an aggregate type's commits, or
// [ErrUnknownType].
func StreamOf(aggType string) (string, error) {
	switch aggType {
	case TypeOrder:
		return StreamOrders, nil
	case TypeInventory:
		return StreamInventory, nil
	case TypePayment:
		return StreamPayments, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownType, aggType)
}

// Partition returns the partition of an aggregate id in a stream of
// partitions partitions: FNV-1a (32 bit) of the id modulo the count. The
// count is fixed when a log is created; see [StreamReader.Partitions].
func Partition(id string, partitions int) int {
	// FNV-1a inlined (as in hash/fnv) to keep the append path free of
	// allocations.
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= prime32
	}
	return int(h % uint32(partitions))
}

// Record is one stored commit and its position in the log.
type Record struct {
	Stream string
	Seq    uint64
	Commit *events.Commit
}

// RawRecord is one stored commit as the log holds it, not decoded: its
// stream sequence and the envelope's JSON (see [events.Unmarshal]).
type RawRecord struct {
	Seq  uint64
	Data []byte
}

// StoredMsg is one message of a stream as stored, not decoded: for
// readers that check or copy the log as it is (orderctl verify, export).
type StoredMsg struct {
	Stream  string
	Seq     uint64
	Subject string
	// Time is when the log stored the message.
	Time time.Time
	// Data belongs to the callee only during the call.
	Data []byte
}

// AppendResult says where a commit was stored.
type AppendResult struct {
	// Stream and Seq are the commit's position in the log.
	Stream string
	Seq    uint64
	// Duplicate is true when the commit had already been stored by an
	// earlier append with the same commit id; Seq is that append's.
	Duplicate bool
}

// Errors a log answers with. Check them with [errors.Is].
var (
	// ErrConflict means the aggregate has moved past the expected
	// sequence: another commit won. Reload the aggregate and decide
	// again.
	ErrConflict = errors.New("concurrency conflict")
	// ErrInvalidID means an aggregate id is not 1 to 128 characters of
	// [A-Za-z0-9_-]; see [events.ValidID].
	ErrInvalidID = errors.New("invalid aggregate id")
	// ErrUnknownType means an aggregate type is not one of the Type
	// constants.
	ErrUnknownType = errors.New("unknown aggregate type")
	// ErrLeaderUnavailable means the log could not be asked (on
	// JetStream: no stream leader answered in time) and nothing was
	// stored: the call may be retried as is.
	ErrLeaderUnavailable = errors.New("no stream leader")
	// ErrOutcomeUnknown means an append reached the log but no answer
	// came back: the commit may or may not be stored. Retry the same
	// commit: a stored one answers as a duplicate.
	ErrOutcomeUnknown = errors.New("append outcome unknown")
	// ErrStreamMissing means a stream of the log is gone: the log was
	// destroyed (in part).
	ErrStreamMissing = errors.New("stream missing from the log")
	// ErrNoLog means there is no log where one was expected: nobody
	// created one there yet (or every stream of one was deleted).
	ErrNoLog = errors.New("no Ordo log on this NATS server")
	// ErrLogMismatch means the log found is not the one expected (its
	// id differs), or is not one log.
	ErrLogMismatch = errors.New("the streams are not the expected log")
	// ErrBadSignedFrom means the log's record of the sequence from which
	// on a stream's commits must be signed (decision 016; on JetStream
	// the stream metadata ordo.signed_from) is not a sequence. A reader
	// then takes every commit of the stream to need a signature (an
	// audit reports it).
	ErrBadSignedFrom = errors.New("stream metadata ordo.signed_from is not a stream sequence")
)

// Appender stores commits.
type Appender interface {
	// Append stores c as one commit on its aggregate if and only if the
	// aggregate's last commit is still at stream sequence expectedSeq (0:
	// the aggregate must have none), and fails with [ErrConflict]
	// otherwise. A commit whose id the log already holds (within its
	// duplicate window) is not stored again: the answer is success with
	// Duplicate set and the earlier sequence.
	Append(ctx context.Context, c *events.Commit, expectedSeq uint64) (AppendResult, error)
}

// AggregateReader reads one aggregate's commits. Both reads return at
// least every commit acknowledged before the call began.
type AggregateReader interface {
	// Load returns the aggregate's commits stored after stream sequence
	// afterSeq (0: all), in log order.
	Load(ctx context.Context, aggType, id string, afterSeq uint64) ([]Record, error)
	// Last returns the aggregate's last commit, or false if it has none.
	Last(ctx context.Context, aggType, id string) (Record, bool, error)
}

// AggregateLog is the log as a command handler sees it, one aggregate at
// a time.
type AggregateLog interface {
	Appender
	AggregateReader
}

// StreamReader reads a whole stream in log order, for readers that keep
// their own position (projections).
type StreamReader interface {
	// Partitions is the stream's partition count; Partition is an
	// aggregate id's partition ([Partition] with that count).
	Partitions() int
	Partition(id string) int
	// LastSeq is the sequence of the stream's last commit (0: empty).
	LastSeq(ctx context.Context, aggType string) (uint64, error)
	// Fetch returns up to max commits from sequence fromSeq (0 counts as
	// 1) on, in log order and gap-free; none when the stream ends before
	// fromSeq. It may return fewer than the stream holds (on JetStream a
	// replica that lags the leader may answer): a reader that must reach
	// a position asks again from where the batch ended.
	Fetch(ctx context.Context, aggType string, fromSeq uint64, max int) ([]Record, error)
	// FetchRaw is Fetch without decoding.
	FetchRaw(ctx context.Context, aggType string, fromSeq uint64, max int) ([]RawRecord, error)
	// Watch calls fn with the partition and sequence of commits stored
	// from now on, until stop is called or ctx ends, to wake readers that
	// then fetch. A notification may be missed: readers poll now and
	// then too. fn must not block for long, nor call stop.
	Watch(ctx context.Context, aggType string, fn func(partition int, seq uint64)) (stop func(), err error)
}

// Log is a whole log: what both implementations offer and the
// acceptance suite (package logtest) checks.
type Log interface {
	AggregateLog
	StreamReader
	// ListIDs returns the id of every aggregate of a type that has a
	// commit, in no particular order.
	ListIDs(ctx context.Context, aggType string) ([]string, error)
}

// Timer is a message to be delivered to its owner at a time: a process
// manager's deadline, kept by the log so that it survives restarts.
type Timer struct {
	// Owner is the process manager that handles the timer, such as
	// "checkout"; Kind and Key say what it is about ("payment_timeout",
	// an order id). Each must satisfy [events.ValidID]. Scheduling the
	// same owner, kind and key again replaces a pending timer.
	Owner, Kind, Key string
	// At is when the timer fires. A time in the past fires at once.
	At time.Time
	// Data is the timer's body, delivered unchanged.
	Data []byte
}

// FiredTimer is a timer that fired, as its owner receives it.
type FiredTimer struct {
	Owner, Kind, Key string
	Data             []byte
}

// TimerScheduler keeps durable timers.
type TimerScheduler interface {
	ScheduleTimer(ctx context.Context, t Timer) error
}

// RefusedReport is a report from outside (such as a payment provider's
// webhook) that was authentic but contradicted the log, so it was refused
// and changed nothing. It is kept so an auditor or operator can see it.
type RefusedReport struct {
	// ID is the report's position among the refused reports, set when
	// read back.
	ID uint64 `json:"id"`
	// Source names where it came from ("psp"); Cause identifies the
	// report (such as "psp-event:evt_123").
	Source string `json:"source"`
	Cause  string `json:"cause"`
	// AggregateType and AggregateID name what the report was about.
	AggregateType string `json:"aggregate_type,omitempty"`
	AggregateID   string `json:"aggregate_id,omitempty"`
	// Report is the refused content (JSON); Reason says why.
	Report     json.RawMessage `json:"report"`
	Reason     string          `json:"reason"`
	RefusedAt  time.Time       `json:"refused_at"`
	Correlated string          `json:"correlation_id,omitempty"`
}

// RefusalLog keeps refused reports. The same report (source, cause and
// content) refused again soon after is kept once.
type RefusalLog interface {
	AddRefusedReport(ctx context.Context, r RefusedReport) (uint64, error)
}
