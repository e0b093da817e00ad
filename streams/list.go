package streams

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
)

// ListIDs returns the id of every aggregate of a type that has at least
// one commit, in no particular order. It asks the server for the stream's
// subjects, so it costs one request per page of subjects rather than a
// read of the log; use it for small collections such as the catalog.
func (s *Store) ListIDs(ctx context.Context, aggType string) ([]string, error) {
	k, ok := kinds[aggType]
	if !ok {
		return nil, fmt.Errorf("list ids: %w: %q", eventlog.ErrUnknownType, aggType)
	}
	st, err := s.js.Stream(ctx, k.stream)
	if err != nil {
		return nil, fmt.Errorf("list ids of %s: %w", k.stream, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(k.prefix+".*.*"))
	if err != nil {
		return nil, fmt.Errorf("list ids of %s: %w", k.stream, err)
	}
	ids := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		// subject = <prefix>.<partition>.<id>
		parts := strings.SplitN(subj, ".", 3)
		if len(parts) == 3 {
			ids = append(ids, parts[2])
		}
	}
	return ids, nil
}
