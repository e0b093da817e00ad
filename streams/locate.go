package streams

import (
	"context"
	"fmt"
)

// AggregateAt returns the aggregate whose subject the message at seq of
// aggType's stream was stored under, for a reader that cannot read the
// message's body (a projection setting a damaged commit aside names the
// order it belongs to). It returns "" and no error when the subject names
// no valid aggregate id.
func (s *Store) AggregateAt(ctx context.Context, aggType string, seq uint64) (string, error) {
	name, err := s.StreamName(aggType)
	if err != nil {
		return "", err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		return "", fmt.Errorf("locate %s seq %d: %w", name, seq, err)
	}
	msg, err := st.GetMsg(ctx, seq)
	if err != nil {
		return "", fmt.Errorf("locate %s seq %d: %w", name, seq, err)
	}
	id, _ := s.SubjectID(aggType, msg.Subject)
	if !ValidID(id) {
		return "", nil
	}
	return id, nil
}
