package projections

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrPoison marks a failure that applying the same commit again cannot
// cure: the commit does not decode, does not fold onto what the read
// model holds, or the store refuses its data (an integrity or data error
// from PostgreSQL, a 400 from Elasticsearch). A [Runner] whose sink is a
// [Quarantiner] retries such a commit [MaxPoisonAttempts] times and then
// sets it aside instead of stopping its partition for good. Anything not
// marked so (a lost connection, a server that is down) is retried for as
// long as it takes.
var ErrPoison = errors.New("poison commit")

// Poison marks err as [ErrPoison], keeping its chain.
func Poison(err error) error {
	if err == nil || errors.Is(err, ErrPoison) {
		return err
	}
	return poisonError{err}
}

type poisonError struct{ err error }

func (e poisonError) Error() string { return e.err.Error() }
func (e poisonError) Unwrap() []error {
	return []error{ErrPoison, e.err}
}

// States of a quarantined commit.
const (
	// QuarantineOpen: set aside, and the instance reports itself
	// degraded until an operator retries or acknowledges it.
	QuarantineOpen = "open"
	// QuarantineAcknowledged: an operator accepted that it cannot apply;
	// it stays recorded and its order stays marked degraded.
	QuarantineAcknowledged = "acknowledged"
	// QuarantineResolved: a retry applied it.
	QuarantineResolved = "resolved"
)

// MaxPoisonAttempts is how often a [Runner] applies one commit that fails
// with [ErrPoison] before it quarantines it.
const MaxPoisonAttempts = 3

// Quarantined is a commit a [Runner] set aside.
type Quarantined struct {
	Seq uint64
	// Partition is the partition whose checkpoint passed it.
	Partition int
	// AggregateID is the commit's aggregate, "" when not even that could
	// be read.
	AggregateID string
	Err         string
	Attempts    int
}

// Quarantiner is a [Sink] that can set aside a commit it cannot apply.
type Quarantiner interface {
	// Quarantine records q where operators see it, marks q's aggregate as
	// degraded (queries say so rather than show a state that misses a
	// commit), and moves the partition's checkpoint from from to to, all
	// at once: (from, to] holds no commit of the partition but q. Like
	// [Sink.Commit] it returns [ErrCheckpointMoved], having done nothing,
	// if the checkpoint is not from.
	Quarantine(ctx context.Context, from, to uint64, q Quarantined) error
}

// Undecodable is the [Decoded] value of a commit its [DecodingSink]
// could not decode; a [Runner] never hands it to CommitDecoded, it
// quarantines it.
type Undecodable struct {
	AggregateID string // "" when unknown
	Err         error
}

// AggregateLocator is a [RawSource] that can name the aggregate of a
// stored message whose body cannot be read, from the subject it was
// stored under ([streams.Store.AggregateAt]).
type AggregateLocator interface {
	AggregateAt(ctx context.Context, aggType string, seq uint64) (string, error)
}

// CountQuarantine counts the open and the acknowledged commits of q.
func CountQuarantine(q []QuarantineView) (open, acknowledged int) {
	for _, e := range q {
		switch e.State {
		case QuarantineOpen:
			open++
		case QuarantineAcknowledged:
			acknowledged++
		}
	}
	return open, acknowledged
}

// RetryResult is what a retry of quarantined commits did with one.
type RetryResult struct {
	Seq         uint64 `json:"seq"`
	AggregateID string `json:"aggregate_id"`
	// Resolved: the order was projected again from the log, this commit
	// included. Otherwise Err says why it still does not apply.
	Resolved bool   `json:"resolved"`
	Err      string `json:"error,omitempty"`
}

// poisonWait is how long a runner waits before applying a poison commit
// again.
func poisonWait(attempt int) time.Duration {
	return time.Duration(attempt) * 100 * time.Millisecond
}

// quarantine is a quarantine's outcome, logged where operators look.
func (r *Runner) logQuarantine(q Quarantined) {
	r.log.Error("projection: commit quarantined; its order is marked degraded (orderctl projections status; orderctl projections retry after a fix)",
		"stream_seq", q.Seq, "partition", q.Partition, "aggregate_id", q.AggregateID, "attempts", q.Attempts, "err", q.Err)
}

func undecodableErr(seq uint64, u Undecodable) error {
	return Poison(fmt.Errorf("seq %d does not decode: %w", seq, u.Err))
}
