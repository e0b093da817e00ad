package streams

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

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
// afterSeq (0: all of them), in log order: at least every commit the
// stream leader had stored when Load began, so a command decided on the
// result (including "not found" and every refusal, which append nothing
// that the leader could check) sees every acknowledged append.
//
// It reads the bulk with the server's direct batch get, which needs no
// consumer and which any replica may answer, including one that has not
// yet applied the latest writes (or a mirror that inherited direct gets).
// The stream leader's last sequence on the aggregate's subject bounds the
// read from below: what such a replica lacks is read from the leader.
func (s *Store) Load(ctx context.Context, aggType, id string, afterSeq uint64) ([]eventlog.Record, error) {
	var recs []eventlog.Record
	err := s.LoadRaw(ctx, aggType, id, afterSeq, func(m eventlog.StoredMsg) error {
		c, err := events.Unmarshal(m.Data)
		if err != nil {
			return fmt.Errorf("load %s: %s seq %d: %w", m.Subject, m.Stream, m.Seq, err)
		}
		recs = append(recs, eventlog.Record{Stream: m.Stream, Seq: m.Seq, Commit: c})
		return nil
	})
	return recs, err
}

// LoadRaw is [Store.Load] without decoding: fn sees each message of one
// aggregate's subject after afterSeq, in log order, as stored (Time is
// not set). It stops at fn's first error and returns it.
func (s *Store) LoadRaw(ctx context.Context, aggType, id string, afterSeq uint64, fn func(eventlog.StoredMsg) error) error {
	stream, subj, err := s.locate(aggType, id)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	floor, found, err := s.leaderGet(ctx, stream, msgGetRequest{LastFor: subj})
	if err != nil {
		return fmt.Errorf("load %s: last sequence from the stream leader: %w", subj, err)
	}
	if !found || floor.Seq <= afterSeq {
		return nil
	}
	var fnErr error
	each := func(seq uint64, data []byte) error {
		fnErr = fn(eventlog.StoredMsg{Stream: stream, Seq: seq, Subject: subj, Data: data})
		return fnErr
	}
	last, err := s.loadDirect(ctx, stream, subj, afterSeq, each)
	if err == nil && last < floor.Seq {
		// The replica that answered lags behind the leader.
		err = s.loadFromLeader(ctx, stream, subj, last, floor.Seq, each)
	}
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", subj, err)
	}
	return nil
}

// loadDirect reads a subject's messages after afterSeq with direct batch
// gets, as far as the replica that answers has them, and returns the
// last sequence delivered (afterSeq if none).
func (s *Store) loadDirect(ctx context.Context, stream, subj string, afterSeq uint64, fn func(seq uint64, data []byte) error) (uint64, error) {
	last := afterSeq
	for {
		b := &directBatch{
			stream: stream,
			req:    directGetRequest{Seq: last + 1, NextFor: subj, Batch: loadBatch, MaxBytes: loadMaxBytes},
			fn: func(seq uint64, got string, data []byte) error {
				if got != subj {
					return fmt.Errorf("direct get on %s: got subject %q, want %q", stream, got, subj)
				}
				return fn(seq, data)
			},
		}
		err := s.getBatch(ctx, b)
		last = max(last, b.last)
		if err != nil || !b.more {
			return last, err
		}
	}
}

// loadFromLeader reads a subject's messages after sequence after up to
// sequence upTo through the stream leader, one request per message: the
// tail a lagging replica did not have, usually the latest commit or two.
func (s *Store) loadFromLeader(ctx context.Context, stream, subj string, after, upTo uint64, fn func(seq uint64, data []byte) error) error {
	for after < upTo {
		m, found, err := s.leaderGet(ctx, stream, msgGetRequest{Seq: after + 1, NextFor: subj})
		if err != nil {
			return fmt.Errorf("from the stream leader: %w", err)
		}
		if !found || m.Subject != subj || m.Seq <= after {
			return fmt.Errorf("the stream leader has no message on %s after seq %d, yet its last is at seq %d", subj, after, upTo)
		}
		if err := fn(m.Seq, m.Data); err != nil {
			return err
		}
		after = m.Seq
	}
	return nil
}

// Last returns the aggregate's last commit, or false if it has none, as
// the stream leader has it: a command decided against it sees every
// acknowledged append.
func (s *Store) Last(ctx context.Context, aggType, id string) (eventlog.Record, bool, error) {
	stream, subj, err := s.locate(aggType, id)
	if err != nil {
		return eventlog.Record{}, false, fmt.Errorf("last: %w", err)
	}
	rec, ok, err := s.lastFromLeader(ctx, stream, subj)
	if err != nil {
		return eventlog.Record{}, false, fmt.Errorf("last %s: %w", subj, err)
	}
	return rec, ok, nil
}

// lastFromLeader reads and decodes a subject's last message through the
// stream leader.
func (s *Store) lastFromLeader(ctx context.Context, stream, subj string) (eventlog.Record, bool, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	m, ok, err := s.leaderGet(ctx, stream, msgGetRequest{LastFor: subj})
	if err != nil || !ok {
		return eventlog.Record{}, false, err
	}
	c, err := events.Unmarshal(m.Data)
	if err != nil {
		return eventlog.Record{}, false, fmt.Errorf("%s seq %d: %w", stream, m.Seq, err)
	}
	return eventlog.Record{Stream: stream, Seq: m.Seq, Commit: c}, true, nil
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

// ReplayRaw calls fn for every message of an aggregate type's stream
// from sequence fromSeq (0 counts as 1) up to the stream's last sequence
// when ReplayRaw was called, in log order, as stored, whatever it holds,
// through an ordered consumer. It stops at fn's first error and returns
// it.
func (s *Store) ReplayRaw(ctx context.Context, aggType string, fromSeq uint64, fn func(eventlog.StoredMsg) error) error {
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
		if err := fn(eventlog.StoredMsg{Stream: stream, Seq: seq, Subject: m.Subject(), Time: md.Timestamp, Data: m.Data()}); err != nil {
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
