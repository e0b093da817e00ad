package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// Manager reacts to commits and timers by sending commands: a process
// manager. A runtime (package sagas) calls Handle at least once per
// message, concurrently for messages of different aggregates: it must be
// idempotent and safe for concurrent use. An error fails the attempt: the
// runtime retries, then dead-letters the message. Wrap an error with
// [Permanent] to skip the retries.
type Manager interface {
	// Name names the process manager in consumer names, timers and dead
	// letters; it must satisfy events.ValidID.
	Name() string
	// Sources lists the aggregate types whose commits it handles
	// (eventlog.TypeOrder, ...).
	Sources() []string
	// Handle handles one message.
	Handle(ctx context.Context, m Message) error
}

// Message is one commit or one fired timer, as a process manager sees it.
type Message struct {
	// Stream, Seq and Subject locate the message in the log.
	Stream  string
	Seq     uint64
	Subject string
	// Commit and Events are set for a commit: the envelope and its
	// decoded events, in order.
	Commit *events.Commit
	Events []events.Payload
	// Timer is set for a fired timer.
	Timer *eventlog.FiredTimer
	// Redelivered is true when the message was delivered before, or is
	// the redrive of a dead letter.
	Redelivered bool
	// Urgent is true when the message came through the urgent lane of
	// an [Urgent] manager: it handles only the commit's urgent events
	// (the same commit reaches it again, in order, through the main
	// lane).
	Urgent bool
}

// Urgent is implemented by a process manager some of whose events must
// not wait behind the others, such as compensations behind new orders.
// A runtime reads each stream UrgentSources names a second time, through
// a consumer of its own that never waits for the main one, and hands
// the manager every commit with an urgent event with Message.Urgent set.
// The main lane still delivers every commit, so the manager sees an
// urgent event twice (and in either order relative to the events before
// it in the main lane): its handling must be idempotent across the two,
// which command ids derived from the commit make it.
type Urgent interface {
	Manager
	// UrgentSources lists the aggregate types read twice.
	UrgentSources() []string
	// IsUrgent reports whether an event goes through the urgent lane.
	IsUrgent(ev events.Payload) bool
}

// permanentError marks an error retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so the runtime dead-letters the message at once
// instead of retrying it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// [Permanent].
func IsPermanent(err error) bool {
	var perm permanentError
	return errors.As(err, &perm)
}

// CommandID returns the deterministic id of a command a process manager
// sends: the same process manager, cause (the causing commit id, or a
// timer's id), event index, step and target aggregate always give the same
// id, so a redelivered event's commands are recognised as already
// applied.
func CommandID(pm, cause string, index int, step, aggType, aggID string) string {
	h := sha256.New()
	for _, s := range []string{pm, cause, strconv.Itoa(index), step, aggType, aggID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return pm + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}
