package streams

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
)

// DLQStream holds the messages process managers gave up on, and requests
// to try them again:
//
//	dlq.dead.<owner>      one [DeadLetter] per message a handler failed on
//	dlq.redrive.<owner>   a dead letter an operator sent back to its owner
//	dlq.refused.<source>  one [eventlog.RefusedReport] per outside report Ordo refused
//	                      (a PSP webhook whose intent does not match its
//	                      payment), kept for the audit; never redriven
//
// A dead letter's id is its sequence in the stream. It is deleted when its
// redrive succeeds or fails into a new dead letter.
const DLQStream = "DLQ"

// ErrDeadLetterNotFound means no dead letter has the given id.
var ErrDeadLetterNotFound = errors.New("dead letter not found")

// DeadLetter is a message a process manager could not handle after its
// retries: where it came from, the message itself, and why it failed.
type DeadLetter struct {
	// ID is the dead letter's sequence in the DLQ stream, set when it is
	// read back.
	ID uint64 `json:"id"`
	// Owner is the process manager and Handler its handler.
	Owner   string `json:"owner"`
	Handler string `json:"handler"`
	// Stream, Seq and Subject locate the original message.
	Stream  string `json:"stream"`
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	// Data is the original message (a commit or a fired timer's body).
	Data []byte `json:"data"`
	// Error is the last error; Attempts counts the handler's tries.
	Error    string    `json:"error"`
	Attempts int       `json:"attempts"`
	FailedAt time.Time `json:"failed_at"`
	// CorrelationID is the correlation id of the original message.
	CorrelationID string `json:"correlation_id,omitempty"`
	// RedriveOf is the id of the dead letter whose redrive failed into
	// this one (0 for a first failure).
	RedriveOf uint64 `json:"redrive_of,omitempty"`
}

// AddRefusedReport stores a refused report and returns its id. The same
// report (source, cause and content) refused again within the duplicate
// window is stored once. Call [Store.OpenDLQ] first.
func (s *Store) AddRefusedReport(ctx context.Context, r eventlog.RefusedReport) (uint64, error) {
	if !ValidID(r.Source) {
		return 0, fmt.Errorf("add refused report: %w: source %q", eventlog.ErrInvalidID, truncate(r.Source))
	}
	r.ID = 0
	body, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("add refused report: %w", err)
	}
	sum := sha256.Sum256(append([]byte(r.Cause+"\x00"), r.Report...))
	msg := &nats.Msg{Subject: "dlq.refused." + r.Source, Data: body, Header: nats.Header{
		hdrMsgID: []string{"refused-" + r.Source + "-" + hex.EncodeToString(sum[:16])},
	}}
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("add refused report: %w", err)
	}
	return ack.Sequence, nil
}

// RefusedReports returns every refused report, oldest first.
func (s *Store) RefusedReports(ctx context.Context) ([]eventlog.RefusedReport, error) {
	var out []eventlog.RefusedReport
	err := s.readDLQ(ctx, "dlq.refused.>", func(seq uint64, data []byte) error {
		var r eventlog.RefusedReport
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("refused report %d: %w", seq, err)
		}
		r.ID = seq
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("refused reports: %w", err)
	}
	return out, nil
}

// OpenDLQ checks that the log has its DLQ stream, as it should: [Init]
// creates it with the log. It creates nothing: a missing DLQ is
// [eventlog.ErrStreamMissing], since dead letters were lost with it.
func (s *Store) OpenDLQ(ctx context.Context) error {
	return s.checkAux(ctx, DLQStream, checkDLQ)
}

// AddDeadLetter stores a dead letter and returns its id. msgID, when not
// empty, makes a retried store within the duplicate window a no-op.
func (s *Store) AddDeadLetter(ctx context.Context, dl DeadLetter, msgID string) (uint64, error) {
	if !ValidID(dl.Owner) {
		return 0, fmt.Errorf("add dead letter: %w: owner %q", eventlog.ErrInvalidID, truncate(dl.Owner))
	}
	dl.ID = 0
	body, err := json.Marshal(dl)
	if err != nil {
		return 0, fmt.Errorf("add dead letter: %w", err)
	}
	msg := &nats.Msg{Subject: "dlq.dead." + dl.Owner, Data: body, Header: nats.Header{}}
	if msgID != "" {
		msg.Header.Set(hdrMsgID, msgID)
	}
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("add dead letter: %w", err)
	}
	return ack.Sequence, nil
}

// DeadLetters returns every dead letter still in the DLQ stream, oldest
// first.
func (s *Store) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.readDLQ(ctx, "dlq.dead.>", func(seq uint64, data []byte) error {
		var dl DeadLetter
		if err := json.Unmarshal(data, &dl); err != nil {
			return fmt.Errorf("dead letter %d: %w", seq, err)
		}
		dl.ID = seq
		out = append(out, dl)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	return out, nil
}

// readDLQ calls f for every message of the DLQ stream on subjects
// matching filter, oldest first. A log from before log ids that has no
// DLQ yet has no messages; a log with an id always has one, and a missing
// DLQ is [eventlog.ErrStreamMissing].
func (s *Store) readDLQ(ctx context.Context, filter string, f func(seq uint64, data []byte) error) error {
	st, err := s.js.Stream(ctx, DLQStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if s.info.ID != "" {
			return s.checkAux(ctx, DLQStream, checkDLQ)
		}
		return nil // nothing was ever stored
	}
	if err != nil {
		return err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return err
	}
	if len(info.State.Subjects) == 0 {
		return nil
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	cons, err := s.js.OrderedConsumer(ctx, DLQStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return err
	}
	defer s.deleteConsumer(DLQStream, cons)
	var last uint64 // the stream sequence of the last message read
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(dlqNextWait))
		if err != nil {
			// A message counted when the read began can be gone before
			// it is delivered (a redrive removes its dead letter, an
			// operator acks a refusal): the read is complete when the
			// stream holds nothing under filter after the last one read.
			if ctx.Err() == nil && (errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)) {
				lm, lerr := st.GetLastMsgForSubject(ctx, filter)
				switch {
				case errors.Is(lerr, jetstream.ErrMsgNotFound):
					return nil
				case lerr == nil && lm.Sequence <= last:
					return nil
				case lerr == nil:
					continue // more is there: wait for it
				}
			}
			return err
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		last = md.Sequence.Stream
		if err := f(md.Sequence.Stream, m.Data()); err != nil {
			return err
		}
		if md.NumPending == 0 {
			return nil
		}
	}
}

// dlqNextWait is how long readDLQ waits for the next message before it
// asks whether one is still there to come.
const dlqNextWait = time.Second

// DeadLetter returns one dead letter by id.
func (s *Store) DeadLetter(ctx context.Context, id uint64) (DeadLetter, error) {
	st, err := s.js.Stream(ctx, DLQStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if s.info.ID != "" {
			return DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, s.checkAux(ctx, DLQStream, checkDLQ))
		}
		return DeadLetter{}, fmt.Errorf("%w: %d", ErrDeadLetterNotFound, id)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, err)
	}
	m, err := st.GetMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("%w: %d", ErrDeadLetterNotFound, id)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, err)
	}
	if !strings.HasPrefix(m.Subject, "dlq.dead.") {
		return DeadLetter{}, fmt.Errorf("%w: %d is not a dead letter", ErrDeadLetterNotFound, id)
	}
	var dl DeadLetter
	if err := json.Unmarshal(m.Data, &dl); err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, err)
	}
	dl.ID = id
	return dl, nil
}

// Redrive sends dead letter id back to its owner, which handles it again
// through its [Store.RedriveConsumer]. Asking twice within the duplicate
// window sends it once.
func (s *Store) Redrive(ctx context.Context, id uint64) (DeadLetter, error) {
	dl, err := s.DeadLetter(ctx, id)
	if err != nil {
		return DeadLetter{}, err
	}
	body, err := json.Marshal(dl)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("redrive %d: %w", id, err)
	}
	msg := &nats.Msg{
		Subject: "dlq.redrive." + dl.Owner,
		Data:    body,
		Header:  nats.Header{hdrMsgID: []string{"redrive-" + strconv.FormatUint(id, 10)}},
	}
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return DeadLetter{}, fmt.Errorf("redrive %d: %w", id, err)
	}
	return dl, nil
}

// DeleteDeadLetter removes a dead letter; removing one that is gone is not
// an error.
func (s *Store) DeleteDeadLetter(ctx context.Context, id uint64) error {
	st, err := s.js.Stream(ctx, DLQStream)
	if err != nil {
		return fmt.Errorf("delete dead letter %d: %w", id, err)
	}
	if err := st.DeleteMsg(ctx, id); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && !isNotFoundAPI(err) {
		return fmt.Errorf("delete dead letter %d: %w", id, err)
	}
	return nil
}

func isNotFoundAPI(err error) bool {
	return hasCode(err, jetstream.JSErrCodeMessageNotFound) || hasCode(err, 10057) // sequence not found
}

// RedriveConsumer creates (or updates) a durable consumer of the redrive
// requests for owner; each message is a JSON [DeadLetter].
func (s *Store) RedriveConsumer(ctx context.Context, owner string, opts ConsumerOptions) (jetstream.Consumer, error) {
	if !ValidID(owner) {
		return nil, fmt.Errorf("redrive consumer: %w: owner %q", eventlog.ErrInvalidID, truncate(owner))
	}
	cfg, err := opts.config("dlq.redrive." + owner)
	if err != nil {
		return nil, fmt.Errorf("redrive consumer: %w", err)
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, DLQStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("redrive consumer %s: %w", opts.Durable, err)
	}
	return cons, nil
}
