package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/events"
)

// Header names the store writes and the server reads.
const (
	hdrMsgID           = "Nats-Msg-Id"
	hdrExpectedSubjSeq = "Nats-Expected-Last-Subject-Sequence"
)

// AppendResult says where a commit was stored.
type AppendResult struct {
	// Stream and Seq are the commit's position in the log.
	Stream string
	Seq    uint64
	// Duplicate is true when the commit had already been stored by an
	// earlier append with the same commit id; Seq is that append's.
	Duplicate bool
}

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
// [ErrConflict]; callers that reload will find their commit in the
// history.
//
// On a replicated stream a retry can also arrive while the first attempt
// is still being replicated; the server refuses it as "in process" and
// Append waits (until ctx is done) for the first attempt to settle.
//
// Errors: the commit's own [events.ErrInvalidCommit], [ErrUnknownType],
// [ErrInvalidID], [ErrConflict] (wrapping the server's error), or a
// transport error, after which the outcome is unknown and the append may
// be retried with the same commit.
func (s *Store) Append(ctx context.Context, c *events.Commit, expectedSeq uint64) (AppendResult, error) {
	if c == nil {
		return AppendResult{}, fmt.Errorf("append: %w: nil commit", events.ErrInvalidCommit)
	}
	if err := c.Validate(); err != nil {
		return AppendResult{}, fmt.Errorf("append %s: %w", c.CommitID, err)
	}
	stream, subj, err := s.locate(c.AggregateType, c.AggregateID)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append %s: %w", c.CommitID, err)
	}
	data, err := events.Marshal(c)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append %s: %w", subj, err)
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
	ack, err := s.js.PublishMsg(ctx, msg)
	// A replicated stream refuses a message whose id is still being
	// replicated from an earlier attempt; once that is applied, the same
	// publish gets a duplicate ack (or a normal answer if it failed).
	for wait := inProcessWait; hasCode(err, codeDuplicateInProcess); wait = min(2*wait, inProcessMaxWait) {
		if serr := sleepCtx(ctx, wait); serr != nil {
			return AppendResult{}, fmt.Errorf("append %s: %w (waiting for an earlier attempt still in process: %w)", subj, err, serr)
		}
		ack, err = s.js.PublishMsg(ctx, msg)
	}
	if err == nil {
		return AppendResult{Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
	}
	if !isConflict(err) {
		return AppendResult{}, fmt.Errorf("append %s: %w", subj, err)
	}
	// A conflict may be our own earlier append of this very commit.
	last, ok, lerr := s.lastFromLeader(ctx, stream, subj)
	if lerr != nil {
		return AppendResult{}, fmt.Errorf("append %s at expected seq %d: %w: %w (reading the last commit: %w)", subj, expectedSeq, ErrConflict, err, lerr)
	}
	if ok && last.Commit.CommitID == c.CommitID {
		return AppendResult{Stream: last.Stream, Seq: last.Seq, Duplicate: true}, nil
	}
	return AppendResult{}, fmt.Errorf("append %s at expected seq %d: %w: %w", subj, expectedSeq, ErrConflict, err)
}

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

func hasCode(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return err != nil && errors.As(err, &apiErr) && apiErr.ErrorCode == code
}
