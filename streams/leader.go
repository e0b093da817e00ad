package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/pause"
)

// codeClusterNotAvail is JSClusterNotAvailErr, "JetStream system
// temporarily unavailable": the stream has no leader at the moment (one
// is being elected). nats.go has no constant for it.
const codeClusterNotAvail jetstream.ErrorCode = 10008

// msgGetRequest is the body of the JetStream API's STREAM.MSG.GET: the
// last message on a subject, or the first on a subject at or after a
// sequence. The API serves one message per request, without batches.
type msgGetRequest struct {
	Seq       uint64 `json:"seq,omitempty"`
	LastFor   string `json:"last_by_subj,omitempty"`
	NextFor   string `json:"next_by_subj,omitempty"`
	NoHeaders bool   `json:"no_hdr,omitempty"`
}

// msgGetResponse is the JetStream API's answer to STREAM.MSG.GET.
type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *leaderMsg          `json:"message,omitempty"`
}

// leaderMsg is one message as the stream leader returned it.
type leaderMsg struct {
	Subject string `json:"subject"`
	Seq     uint64 `json:"seq"`
	Data    []byte `json:"data,omitempty"`
}

// leaderGet reads one message through the stream leader, or reports that
// the leader has none that matches. On a cluster only the stream leader
// answers STREAM.MSG.GET (the other servers drop the request), and the
// leader has applied every write it acknowledged, so unlike a direct get
// the answer is never older than an acknowledged append.
//
// It asks again when no answer comes within the attempt budget (the
// leader may have died, and its successor answers the next request) and,
// after a pause, when the stream has no leader yet or nobody listens. It
// gives up with [eventlog.ErrLeaderUnavailable] once no leader has answered for the
// store's leader wait, or when ctx is done.
func (s *Store) leaderGet(ctx context.Context, stream string, req msgGetRequest) (*leaderMsg, bool, error) {
	req.NoHeaders = true
	body, err := json.Marshal(req)
	if err != nil {
		return nil, false, err
	}
	giveUp := time.Now().Add(s.leaderWait)
	budget := attemptTimeout
	for {
		m, found, err := s.askLeader(ctx, stream, body, min(budget, max(time.Until(giveUp), time.Millisecond)))
		switch {
		case err == nil:
			return m, found, nil
		case ctx.Err() != nil:
			return nil, false, fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		case !errors.Is(err, context.DeadlineExceeded) && !leaderless(err):
			return nil, false, err
		case !time.Now().Before(giveUp):
			return nil, false, s.noLeader(stream, err)
		case errors.Is(err, context.DeadlineExceeded):
			budget = min(2*budget, maxAttemptTimeout)
		default:
			if err := pause.For(ctx, noResponderRetry); err != nil {
				return nil, false, err
			}
		}
	}
}

// leaderless says err means the stream has no leader at the moment: the
// servers say so (error 10008, once they noticed the leader is gone) or
// nobody listens (no responders).
func leaderless(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) || hasCode(err, codeClusterNotAvail)
}

// noLeader is the error of a call that waited the leader wait in vain;
// last is what the last attempt got, kept as text so that the caller's
// checks see [eventlog.ErrLeaderUnavailable] and not a deadline of the store's own.
func (s *Store) noLeader(stream string, last error) error {
	if err := s.streamGone(stream, last); err != nil {
		return err
	}
	return fmt.Errorf("%w: stream %s: no leader answered within %s (last attempt: %v)", eventlog.ErrLeaderUnavailable, stream, s.leaderWait, last)
}

// askLeader sends one STREAM.MSG.GET and waits at most budget for the
// answer.
func (s *Store) askLeader(ctx context.Context, stream string, body []byte, budget time.Duration) (*leaderMsg, bool, error) {
	actx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	resp, err := s.nc.RequestWithContext(actx, jetstream.DefaultAPIPrefix+"STREAM.MSG.GET."+stream, body)
	if err != nil {
		return nil, false, err
	}
	var r msgGetResponse
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, false, fmt.Errorf("decode message get response: %w", err)
	}
	switch {
	case r.Error != nil && r.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, false, nil
	case r.Error != nil && r.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return nil, false, s.streamGone(stream, r.Error)
	case r.Error != nil:
		return nil, false, r.Error
	case r.Message == nil:
		return nil, false, errors.New("message get response without a message")
	}
	return r.Message, true, nil
}

// streamGone returns [eventlog.ErrStreamMissing] naming stream, wrapping cause, if
// the server says the stream does not exist (one stream info request,
// made only after a call failed in a way a deleted stream would make it
// fail: nobody answers on its subjects), and tells [Config.OnStreamMissing].
// It returns nil if the stream exists or the server does not say.
func (s *Store) streamGone(stream string, cause error) error {
	if !hasCode(cause, jetstream.JSErrCodeStreamNotFound) {
		ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
		defer cancel()
		if _, err := s.js.Stream(ctx, stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
	}
	if s.onMissing != nil {
		s.onMissing(stream)
	}
	return fmt.Errorf("%w: stream %s of the log is gone: the log was destroyed (in part); restore it from a backup (last error: %v)",
		eventlog.ErrStreamMissing, stream, cause)
}
