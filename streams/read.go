package streams

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/events"
)

// Record is one stored commit and its position in the log.
type Record struct {
	Stream string
	Seq    uint64
	Commit *events.Commit
}

const (
	// defaultRequestTimeout bounds one request when the caller's context
	// has no deadline, so a lost reply cannot hang a read forever.
	defaultRequestTimeout = 10 * time.Second
	// loadBatch and loadMaxBytes size one direct batch get.
	loadBatch    = 256
	loadMaxBytes = 4 << 20
	// noResponderRetry is how long reads wait before asking again when no
	// server answers direct gets yet (a stream leader is being elected).
	noResponderRetry = 50 * time.Millisecond
	noResponderTries = 40
)

// Headers of direct get replies.
const (
	hdrStream     = "Nats-Stream"
	hdrSequence   = "Nats-Sequence"
	hdrSubject    = "Nats-Subject"
	hdrNumPending = "Nats-Num-Pending"
	hdrLastSeq    = "Nats-Last-Sequence"
	hdrStatus     = "Status"
	hdrDescr      = "Description"
)

// Status codes of direct get replies.
const (
	statusEOB          = "204"
	statusNotFound     = "404"
	statusBadRequest   = "408"
	statusNoResponders = "503"
)

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultRequestTimeout)
}

// directGetRequest is the body of a direct get ($JS.API.DIRECT.GET.<stream>).
type directGetRequest struct {
	Seq      uint64 `json:"seq,omitempty"`
	NextFor  string `json:"next_by_subj,omitempty"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// Load returns every commit of one aggregate stored after stream sequence
// afterSeq (0: all of them), in log order.
//
// It reads with the server's direct batch get, which any replica of the
// stream may answer without creating a consumer. On a replicated stream a
// follower may lag a little behind the leader; an append decided on such
// a read fails with [ErrConflict] and the caller reloads.
func (s *Store) Load(ctx context.Context, aggType, id string, afterSeq uint64) ([]Record, error) {
	var recs []Record
	err := s.LoadRaw(ctx, aggType, id, afterSeq, func(m StoredMsg) error {
		c, err := events.Unmarshal(m.Data)
		if err != nil {
			return fmt.Errorf("load %s: %s seq %d: %w", m.Subject, m.Stream, m.Seq, err)
		}
		recs = append(recs, Record{Stream: m.Stream, Seq: m.Seq, Commit: c})
		return nil
	})
	return recs, err
}

// LoadRaw is [Store.Load] without decoding: fn sees each message of one
// aggregate's subject after afterSeq, in log order, as stored (Time is
// not set). It stops at fn's first error and returns it.
func (s *Store) LoadRaw(ctx context.Context, aggType, id string, afterSeq uint64, fn func(StoredMsg) error) error {
	stream, subj, err := s.locate(aggType, id)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	// One core NATS inbox per load: the replies to a batch get are several
	// messages, which the connection's request multiplexer does not
	// support. A channel sized for one batch (and its end-of-batch status)
	// avoids SubscribeSync's 64k-message buffer.
	ch := make(chan *nats.Msg, loadBatch+4)
	inbox := s.nc.NewInbox()
	sub, err := s.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return fmt.Errorf("load %s: %w", subj, err)
	}
	defer sub.Unsubscribe()

	next := afterSeq + 1
	var fnErr error
	for {
		more, last, err := s.directBatch(ctx, ch, inbox, stream, subj, next, func(seq uint64, data []byte) error {
			fnErr = fn(StoredMsg{Stream: stream, Seq: seq, Subject: subj, Data: data})
			return fnErr
		})
		if fnErr != nil {
			return fnErr
		}
		if err != nil {
			return fmt.Errorf("load %s: %w", subj, err)
		}
		if !more {
			return nil
		}
		next = last + 1
	}
}

// directBatch asks for up to loadBatch messages on subj from sequence
// start on, with replies to inbox (delivered on ch), hands each to fn in
// order and reports whether more are pending and the last sequence it
// delivered.
func (s *Store) directBatch(ctx context.Context, ch <-chan *nats.Msg, inbox, stream, subj string, start uint64, fn func(seq uint64, data []byte) error) (more bool, last uint64, err error) {
	body, err := json.Marshal(directGetRequest{Seq: start, NextFor: subj, Batch: loadBatch, MaxBytes: loadMaxBytes})
	if err != nil {
		return false, 0, err
	}
	for try := 0; ; try++ {
		if err := s.nc.PublishRequest(jetstream.DefaultAPIPrefix+"DIRECT.GET."+stream, inbox, body); err != nil {
			return false, 0, err
		}
		retry, more, err := s.readBatch(ctx, ch, stream, subj, start, &last, fn)
		if err != nil || !retry {
			return more, last, err
		}
		if try >= noResponderTries {
			return false, 0, fmt.Errorf("direct get on %s: %w", stream, nats.ErrNoResponders)
		}
		if err := sleepCtx(ctx, noResponderRetry); err != nil {
			return false, 0, err
		}
	}
}

// readBatch reads the replies to one direct batch get until its end. It
// reports retry when no server answered the request.
func (s *Store) readBatch(ctx context.Context, ch <-chan *nats.Msg, stream, subj string, start uint64, last *uint64, fn func(seq uint64, data []byte) error) (retry, more bool, err error) {
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return false, false, ctx.Err()
		}
		if status := m.Header.Get(hdrStatus); status != "" && len(m.Data) == 0 {
			switch status {
			case statusEOB:
				np, _ := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
				if np > 0 && *last < start {
					return false, false, fmt.Errorf("direct get on %s: end of batch with %d pending and nothing delivered", stream, np)
				}
				return false, np > 0, nil
			case statusNotFound:
				// Nothing at or after start.
				return false, false, nil
			case statusNoResponders:
				return true, false, nil
			default:
				return false, false, fmt.Errorf("direct get on %s: status %s %s", stream, status, m.Header.Get(hdrDescr))
			}
		}
		seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
		if err != nil || seq < start || seq <= *last {
			return false, false, fmt.Errorf("direct get on %s: sequence %q out of order after %d", stream, m.Header.Get(hdrSequence), *last)
		}
		if got := m.Header.Get(hdrSubject); got != subj {
			return false, false, fmt.Errorf("direct get on %s: got subject %q, want %q", stream, got, subj)
		}
		if err := fn(seq, m.Data); err != nil {
			return false, false, err
		}
		*last = seq
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Last returns the aggregate's last commit, or false if it has none. It
// uses a direct get of the last message on the aggregate's subject; like
// [Store.Load] it may be answered by a replica that lags slightly.
func (s *Store) Last(ctx context.Context, aggType, id string) (Record, bool, error) {
	stream, subj, err := s.locate(aggType, id)
	if err != nil {
		return Record{}, false, fmt.Errorf("last: %w", err)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var m *nats.Msg
	for try := 0; ; try++ {
		m, err = s.nc.RequestWithContext(ctx, jetstream.DefaultAPIPrefix+"DIRECT.GET."+stream+"."+subj, nil)
		if !errors.Is(err, nats.ErrNoResponders) || try >= noResponderTries {
			break
		}
		if err := sleepCtx(ctx, noResponderRetry); err != nil {
			return Record{}, false, fmt.Errorf("last %s: %w", subj, err)
		}
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("last %s: %w", subj, err)
	}
	if len(m.Data) == 0 && m.Header.Get(hdrStatus) != "" {
		if m.Header.Get(hdrStatus) == statusNotFound {
			return Record{}, false, nil
		}
		return Record{}, false, fmt.Errorf("last %s: status %s %s", subj, m.Header.Get(hdrStatus), m.Header.Get(hdrDescr))
	}
	seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
	if err != nil {
		return Record{}, false, fmt.Errorf("last %s: bad sequence header %q", subj, m.Header.Get(hdrSequence))
	}
	c, err := events.Unmarshal(m.Data)
	if err != nil {
		return Record{}, false, fmt.Errorf("last %s seq %d: %w", subj, seq, err)
	}
	return Record{Stream: stream, Seq: seq, Commit: c}, true, nil
}

// LastSeq returns the last sequence of an aggregate type's stream (0 if
// it is empty), as the stream leader knows it.
func (s *Store) LastSeq(ctx context.Context, aggType string) (uint64, error) {
	stream, err := s.StreamName(aggType)
	if err != nil {
		return 0, fmt.Errorf("last seq: %w", err)
	}
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("last seq of %s: %w", stream, err)
	}
	return st.CachedInfo().State.LastSeq, nil
}

// Identity names an aggregate type's stream as one log: a short tag of
// the stream's name and creation time. A stream deleted and created again
// under the same name is another log with another identity; read models
// built from one log record it to recognise another.
func (s *Store) Identity(ctx context.Context, aggType string) (string, error) {
	stream, err := s.StreamName(aggType)
	if err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return "", fmt.Errorf("identity of %s: %w", stream, err)
	}
	sum := sha256.Sum256([]byte(stream + "\x00" + st.CachedInfo().Created.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(sum[:4]), nil
}

// Replay calls fn for every commit of an aggregate type's stream from
// sequence fromSeq (0 counts as 1) up to the stream's last sequence when
// Replay was called, in log order, through an ordered consumer. It stops
// at fn's first error and returns it. A commit that does not decode is an
// error too: the log is meant to hold only valid commits.
func (s *Store) Replay(ctx context.Context, aggType string, fromSeq uint64, fn func(Record) error) error {
	return s.ReplayRaw(ctx, aggType, fromSeq, func(m StoredMsg) error {
		c, err := events.Unmarshal(m.Data)
		if err != nil {
			return fmt.Errorf("replay %s seq %d: %w", m.Stream, m.Seq, err)
		}
		return fn(Record{Stream: m.Stream, Seq: m.Seq, Commit: c})
	})
}

// StoredMsg is one message of a stream as stored, not decoded: for
// readers that check or copy the log as it is (orderctl verify, export).
type StoredMsg struct {
	Stream  string
	Seq     uint64
	Subject string
	// Time is when the server stored the message.
	Time time.Time
	// Data belongs to the callee only during the call.
	Data []byte
}

// ReplayRaw is [Store.Replay] without decoding: fn sees every message of
// the stream from fromSeq up to the last sequence when ReplayRaw was
// called, in log order, as stored, whatever it holds.
func (s *Store) ReplayRaw(ctx context.Context, aggType string, fromSeq uint64, fn func(StoredMsg) error) error {
	stream, err := s.StreamName(aggType)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if fromSeq == 0 {
		fromSeq = 1
	}
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("replay %s: %w", stream, err)
	}
	state := st.CachedInfo().State
	last := state.LastSeq
	if last < fromSeq || state.Msgs == 0 {
		return nil
	}
	cons, err := s.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   fromSeq,
	})
	if err != nil {
		return fmt.Errorf("replay %s: %w", stream, err)
	}
	defer s.deleteConsumer(stream, cons)
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return fmt.Errorf("replay %s: %w", stream, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("replay %s: %w", stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("replay %s: %w", stream, err)
		}
		seq := md.Sequence.Stream
		if err := fn(StoredMsg{Stream: stream, Seq: seq, Subject: m.Subject(), Time: md.Timestamp, Data: m.Data()}); err != nil {
			return err
		}
		// NumPending 0: nothing after this message, even when the stream's
		// last sequence was deleted and will never be delivered.
		if seq >= last || md.NumPending == 0 {
			return nil
		}
	}
}

// deleteConsumer removes an ordered consumer from the server at once
// instead of leaving it to expire. Best effort: the server deletes it
// anyway after its inactivity threshold.
func (s *Store) deleteConsumer(stream string, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.js.DeleteConsumer(ctx, stream, info.Name)
}
