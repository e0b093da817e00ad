package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ordo-shop/ordo/internal/pause"
)

// How long a read waits for a server's next reply before it presumes that
// server dead and asks again. A direct get goes to one member of a queue
// group (any replica of the stream, and mirrors that inherit direct gets),
// and a request that member took with it when it died is never answered:
// without a budget of its own the read would wait for the caller's whole
// deadline. The next request goes to a live member. The budget doubles on
// every silent attempt, so a server that is only slow is asked less and
// less often, not flooded.
const (
	attemptTimeout    = 250 * time.Millisecond
	maxAttemptTimeout = 2 * time.Second
)

// directBatch is one direct batch get, possibly asked several times: each
// message delivered moves the request on, so a request asked again (of
// another server) continues after what was already delivered.
type directBatch struct {
	stream string
	req    directGetRequest
	// fn receives each message in log order.
	fn func(seq uint64, subject string, data []byte) error
	// last is the sequence of the last message delivered (0: none).
	last uint64
	// more says the server had more messages pending after the batch.
	more bool
}

// attemptEnd says how one attempt of a batch ended.
type attemptEnd int

const (
	// answered: the batch ended, with or without messages.
	answered attemptEnd = iota
	// unanswered: no server listens for the request (no responders), for
	// example while a stream leader is being elected; ask again later.
	unanswered
	// silent: the server stopped replying within the attempt budget; ask
	// again at once.
	silent
)

// getBatch runs the batch to its end, asking again after a silent server at
// once and after no responders after a pause, until ctx is done.
func (s *Store) getBatch(ctx context.Context, b *directBatch) error {
	budget, waits := attemptTimeout, 0
	for {
		end, err := s.askBatch(ctx, b, budget)
		if err != nil {
			return err
		}
		switch {
		case end == answered:
			return nil
		case b.req.Batch == 0:
			// Everything asked for was delivered, only the end of the
			// batch was lost: the caller asks for more if it wants.
			b.more = true
			return nil
		case end == silent:
			budget = min(2*budget, maxAttemptTimeout)
		default:
			if waits++; waits > noResponderTries {
				if err := s.streamGone(b.stream, nats.ErrNoResponders); err != nil {
					return err
				}
				return fmt.Errorf("direct get on %s: %w", b.stream, nats.ErrNoResponders)
			}
			if err := pause.For(ctx, noResponderRetry); err != nil {
				return err
			}
		}
	}
}

// askBatch sends the batch's request once, on an inbox of its own (a late
// reply to an earlier attempt cannot mix in), and takes the replies until
// the batch ends or the server falls silent for budget.
func (s *Store) askBatch(ctx context.Context, b *directBatch, budget time.Duration) (attemptEnd, error) {
	body, err := json.Marshal(b.req)
	if err != nil {
		return answered, err
	}
	// A channel sized for the batch and its end-of-batch status avoids
	// SubscribeSync's 64k-message buffer.
	ch := make(chan *nats.Msg, b.req.Batch+4)
	inbox := s.nc.NewInbox()
	sub, err := s.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return answered, err
	}
	defer sub.Unsubscribe()
	if err := s.nc.PublishRequest(jetstream.DefaultAPIPrefix+"DIRECT.GET."+b.stream, inbox, body); err != nil {
		return answered, err
	}
	timer := time.NewTimer(budget)
	defer timer.Stop()
	first := b.req.Seq
	for {
		select {
		case m := <-ch:
			if end, done, err := b.take(m, first); done || err != nil {
				return end, err
			}
			timer.Reset(budget)
		case <-timer.C:
			return silent, nil
		case <-ctx.Done():
			return answered, ctx.Err()
		}
	}
}

// take handles one reply of an attempt that asked from sequence first on,
// and reports whether it ended the attempt.
func (b *directBatch) take(m *nats.Msg, first uint64) (attemptEnd, bool, error) {
	if status := m.Header.Get(hdrStatus); status != "" && len(m.Data) == 0 {
		switch status {
		case statusEOB:
			np, _ := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
			if np > 0 && b.last < first {
				return answered, true, fmt.Errorf("direct get on %s: end of batch with %d pending and nothing delivered", b.stream, np)
			}
			b.more = np > 0
			return answered, true, nil
		case statusNotFound:
			// Nothing at or after the requested sequence.
			return answered, true, nil
		case statusNoResponders:
			return unanswered, true, nil
		default:
			return answered, true, fmt.Errorf("direct get on %s: status %s %s", b.stream, status, m.Header.Get(hdrDescr))
		}
	}
	seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
	if err != nil || seq < first || seq <= b.last {
		return answered, true, fmt.Errorf("direct get on %s: sequence %q out of order after %d", b.stream, m.Header.Get(hdrSequence), b.last)
	}
	if err := b.fn(seq, m.Header.Get(hdrSubject), m.Data); err != nil {
		return answered, true, err
	}
	b.last = seq
	b.req.Seq = seq + 1
	b.req.Batch--
	return answered, false, nil
}
