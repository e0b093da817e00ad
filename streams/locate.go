package streams

import (
	"context"
	"fmt"

	"github.com/ordo-shop/ordo/eventlog"
)

// AggregateAt returns the aggregate whose subject the message at seq of
// aggType's stream was stored under, for a reader that cannot read the
// message's body (a projection setting a damaged commit aside names the
// order it belongs to). It returns "" and no error when the subject names
// no valid aggregate id.
func (s *Store) AggregateAt(ctx context.Context, aggType string, seq uint64) (string, error) {
	msg, err := s.MessageAt(ctx, aggType, seq)
	if err != nil {
		return "", fmt.Errorf("locate: %w", err)
	}
	id, _ := s.SubjectID(aggType, msg.Subject)
	if !ValidID(id) {
		return "", nil
	}
	return id, nil
}

// MessageAt returns the message at seq of aggType's stream as stored.
func (s *Store) MessageAt(ctx context.Context, aggType string, seq uint64) (eventlog.StoredMsg, error) {
	name, err := s.StreamName(aggType)
	if err != nil {
		return eventlog.StoredMsg{}, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		return eventlog.StoredMsg{}, fmt.Errorf("get %s seq %d: %w", name, seq, err)
	}
	m, err := st.GetMsg(ctx, seq)
	if err != nil {
		return eventlog.StoredMsg{}, fmt.Errorf("get %s seq %d: %w", name, seq, err)
	}
	return eventlog.StoredMsg{Stream: name, Seq: m.Sequence, Subject: m.Subject, Time: m.Time, Data: m.Data}, nil
}
