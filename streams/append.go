package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/pause"
)

// Header names the store writes and the server reads.
const (
	hdrMsgID           = "Nats-Msg-Id"
	hdrExpectedSubjSeq = "Nats-Expected-Last-Subject-Sequence"
)

// Append stores a commit as one message on its aggregate's subject, if and
// only if the aggregate's last commit is still at stream sequence
// expectedSeq (0: the aggregate must not exist yet).
//
// The commit id is the message id, so a retried append is recognised: it
// returns success with Duplicate set and the original sequence. The server
// reports such a retry in two ways, and Append handles both: on a
// replicated stream it answers with a duplicate acknowledgement; on an R1
// stream it checks the expected sequence first and reports a conflict, so
// on every conflict Append reads the aggregate's last commit and, if that
// is this commit, reports the duplicate. A retry after another commit has
// followed this one (or after the duplicate window) is reported as
// [eventlog.ErrConflict]; callers that reload will find their commit in the
// history.
//
// On a replicated stream a retry can also arrive while the first attempt
// is still being replicated; the server refuses it as "in process" and
// Append waits for the first attempt to settle.
//
// While the stream has no leader (one is being elected) Append asks again
// for up to the store's leader wait, so a planned leader change goes
// unnoticed; then it gives up rather than wait out ctx.
//
// Errors: the commit's own [events.ErrInvalidCommit], [eventlog.ErrUnknownType],
// [eventlog.ErrInvalidID], [eventlog.ErrConflict] (wrapping the server's error),
// [eventlog.ErrLeaderUnavailable] when nothing was stored, [eventlog.ErrOutcomeUnknown] when
// an attempt was sent and not acknowledged (retry with the same commit),
// or another answer of the server.
func (s *Store) Append(ctx context.Context, c *events.Commit, expectedSeq uint64) (eventlog.AppendResult, error) {
	if c == nil {
		return eventlog.AppendResult{}, fmt.Errorf("append: %w: nil commit", events.ErrInvalidCommit)
	}
	if err := c.Validate(); err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append %s: %w", c.CommitID, err)
	}
	stream, subj, err := s.locate(c.AggregateType, c.AggregateID)
	if err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append %s: %w", c.CommitID, err)
	}
	data, err := events.Marshal(c)
	if err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append %s: %w", subj, err)
	}
	msg := &nats.Msg{
		Subject: subj,
		Data:    data,
		// Keys are already in canonical form, so set the map directly.
		Header: nats.Header{
			hdrMsgID:           []string{c.CommitID},
			hdrExpectedSubjSeq: []string{strconv.FormatUint(expectedSeq, 10)},
		},
	}
	ack, err := s.publish(ctx, stream, msg)
	if err == nil {
		return eventlog.AppendResult{Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
	}
	if !isConflict(err) {
		return eventlog.AppendResult{}, fmt.Errorf("append %s: %w", subj, err)
	}
	// A conflict may be our own earlier append of this very commit.
	last, ok, lerr := s.lastFromLeader(ctx, stream, subj)
	if lerr != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append %s at expected seq %d: %w: %w (reading the last commit: %w)", subj, expectedSeq, eventlog.ErrConflict, err, lerr)
	}
	if ok && last.Commit.CommitID == c.CommitID {
		return eventlog.AppendResult{Stream: last.Stream, Seq: last.Seq, Duplicate: true}, nil
	}
	return eventlog.AppendResult{}, fmt.Errorf("append %s at expected seq %d: %w: %w", subj, expectedSeq, eventlog.ErrConflict, err)
}

// publish sends msg until the stream leader answers it. No responders (no
// leader holds the stream's subjects) and "in process" (an earlier attempt
// is still being replicated) are asked again after a pause, until the
// leader wait ends. An attempt that got no answer at all may have been
// stored: that is [eventlog.ErrOutcomeUnknown], as is the end of the wait after
// such an attempt or after "in process".
func (s *Store) publish(ctx context.Context, stream string, msg *nats.Msg) (*jetstream.PubAck, error) {
	giveUp := time.Now().Add(s.leaderWait)
	sent := false // some attempt may have been stored
	inProcess := inProcessWait
	for {
		actx, cancel := context.WithDeadline(ctx, giveUp)
		ack, err := s.js.PublishMsg(actx, msg, noPublishRetries)
		cancel()
		var wait time.Duration
		switch {
		case err == nil:
			return ack, nil
		case hasCode(err, codeDuplicateInProcess):
			sent = true
			wait, inProcess = inProcess, min(2*inProcess, inProcessMaxWait)
		case leaderless(err):
			wait = noResponderRetry
		case hasCode(err, jetstream.JSErrCodeStreamNotFound):
			return nil, s.streamGone(stream, err)
		case isAPIError(err):
			return nil, err
		default:
			// Sent and not answered (the wait or ctx ended, the
			// connection broke): the leader may have stored it.
			return nil, fmt.Errorf("%w: %s sent, not acknowledged: %v", eventlog.ErrOutcomeUnknown, msg.Subject, err)
		}
		if time.Until(giveUp) < wait || pause.For(ctx, wait) != nil {
			if sent {
				return nil, fmt.Errorf("%w: %s: an earlier attempt is still unacknowledged after %s: %v", eventlog.ErrOutcomeUnknown, msg.Subject, s.leaderWait, err)
			}
			return nil, s.noLeader(stream, err)
		}
	}
}

// noPublishRetries turns off nats.go's own retries on no responders:
// publish pauses and asks again itself. nats.go's would end a wait cut
// short by the deadline with one more request on the expired context,
// whose error would pass for an unanswered append.
var noPublishRetries = jetstream.WithRetryAttempts(0)

// codeDuplicateInProcess is JSStreamDuplicateMessageConflict: "duplicate
// message id is in process" (nats.go has no constant for it).
const codeDuplicateInProcess jetstream.ErrorCode = 10158

// How long Append waits between retries while an earlier attempt of the
// same commit is still being replicated.
const (
	inProcessWait    = 2 * time.Millisecond
	inProcessMaxWait = 100 * time.Millisecond
)

func isConflict(err error) bool {
	return hasCode(err, jetstream.JSErrCodeStreamWrongLastSequence) ||
		hasCode(err, jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func isAPIError(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr)
}

func hasCode(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return err != nil && errors.As(err, &apiErr) && apiErr.ErrorCode == code
}
