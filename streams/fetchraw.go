package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/pause"
)

// rawGetRequest is a direct batch get that asks for payloads only.
type rawGetRequest struct {
	Seq       uint64 `json:"seq"`
	Batch     int    `json:"batch"`
	MaxBytes  int    `json:"max_bytes"`
	NoHeaders bool   `json:"no_hdr"`
}

// FetchRaw is [Store.Fetch] without decoding: up to max commits of an
// aggregate type's stream from stream sequence fromSeq (0 counts as 1) on,
// in log order, gap-free, as stored. It is for readers that decode only
// what they need, such as projections; Data belongs to the caller, and
// the commit's aggregate id (inside Data) gives its partition
// ([Store.Partition]).
//
// It asks the server for payloads without headers, which costs the
// server (and the client) much less per message than [Store.Fetch]. The
// replies then carry no sequences: the end-of-batch reply names the last
// sequence sent, and when that is fromSeq + n - 1 for n replies the batch
// is exactly fromSeq .. fromSeq+n-1 (replies come in increasing order).
// Otherwise (the stream starts after fromSeq) the batch is read again
// with headers.
func (s *Store) FetchRaw(ctx context.Context, aggType string, fromSeq uint64, max int) ([]eventlog.RawRecord, error) {
	stream, err := s.StreamName(aggType)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if max < 1 {
		return nil, fmt.Errorf("fetch %s: batch size %d", stream, max)
	}
	if fromSeq == 0 {
		fromSeq = 1
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	body, err := json.Marshal(rawGetRequest{Seq: fromSeq, Batch: max, MaxBytes: fetchMaxBytes, NoHeaders: true})
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		recs, end, err := s.rawBatch(ctx, stream, body, fromSeq, max)
		if err != nil {
			return nil, err
		}
		switch status := end.Header.Get(hdrStatus); status {
		case statusEOB:
			if len(recs) == 0 {
				return recs, nil
			}
			last, err := strconv.ParseUint(end.Header.Get(hdrLastSeq), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("fetch %s: end of batch without a last sequence", stream)
			}
			if last != recs[len(recs)-1].Seq {
				// Not contiguous from fromSeq: read it with sequences.
				return s.fetchRawWithSeqs(ctx, stream, fromSeq, max)
			}
			return recs, nil
		case statusNotFound:
			return recs[:0], nil
		case statusNoResponders:
			if try >= noResponderTries {
				return nil, fmt.Errorf("fetch %s: %w", stream, nats.ErrNoResponders)
			}
			if err := pause.For(ctx, noResponderRetry); err != nil {
				return nil, fmt.Errorf("fetch %s: %w", stream, err)
			}
		case "":
			return nil, fmt.Errorf("fetch %s: a reply with headers to a request without", stream)
		default:
			return nil, fmt.Errorf("fetch %s: status %s %s", stream, status, end.Header.Get(hdrDescr))
		}
	}
}

// rawBatch sends one direct batch get without headers and collects the
// replies with a message handler (nats.go hands the handler whatever has
// arrived in one go, cheaper than a channel receive per message) until a
// status message ends the batch; it returns the payloads, numbered from
// fromSeq, and that status message.
func (s *Store) rawBatch(ctx context.Context, stream string, body []byte, fromSeq uint64, max int) ([]eventlog.RawRecord, *nats.Msg, error) {
	recs := make([]eventlog.RawRecord, 0, max)
	var end *nats.Msg
	done := make(chan struct{})
	inbox := s.nc.NewInbox()
	sub, err := s.nc.Subscribe(inbox, func(m *nats.Msg) {
		if end != nil {
			return
		}
		if len(m.Data) > 0 && m.Header == nil {
			recs = append(recs, eventlog.RawRecord{Seq: fromSeq + uint64(len(recs)), Data: m.Data})
			return
		}
		end = m
		close(done)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("fetch %s: %w", stream, err)
	}
	defer sub.Unsubscribe()
	if err := s.nc.PublishRequest(jetstream.DefaultAPIPrefix+"DIRECT.GET."+stream, inbox, body); err != nil {
		return nil, nil, fmt.Errorf("fetch %s: %w", stream, err)
	}
	select {
	case <-done: // the handler wrote recs and end before closing done
		return recs, end, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("fetch %s: %w", stream, ctx.Err())
	}
}

// fetchRawWithSeqs reads one batch again, asking for headers to learn
// each message's sequence.
func (s *Store) fetchRawWithSeqs(ctx context.Context, stream string, fromSeq uint64, max int) ([]eventlog.RawRecord, error) {
	body, err := json.Marshal(directGetRequest{Seq: fromSeq, Batch: max, MaxBytes: fetchMaxBytes})
	if err != nil {
		return nil, err
	}
	ch := make(chan *nats.Msg, max+4)
	inbox := s.nc.NewInbox()
	sub, err := s.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", stream, err)
	}
	defer sub.Unsubscribe()
	if err := s.nc.PublishRequest(jetstream.DefaultAPIPrefix+"DIRECT.GET."+stream, inbox, body); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", stream, err)
	}
	var recs []eventlog.RawRecord
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("fetch %s: %w", stream, ctx.Err())
		}
		if status := m.Header.Get(hdrStatus); status != "" && len(m.Data) == 0 {
			switch status {
			case statusEOB, statusNotFound:
				return recs, nil
			default:
				return nil, fmt.Errorf("fetch %s: status %s %s", stream, status, m.Header.Get(hdrDescr))
			}
		}
		seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
		if err != nil || seq < fromSeq || (len(recs) > 0 && seq <= recs[len(recs)-1].Seq) {
			return nil, fmt.Errorf("fetch %s: sequence %q out of order", stream, m.Header.Get(hdrSequence))
		}
		recs = append(recs, eventlog.RawRecord{Seq: seq, Data: m.Data})
	}
}
