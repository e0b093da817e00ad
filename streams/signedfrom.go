package streams

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ordo-shop/ordo/eventlog"
)

// [SignedFromKey] (identity.go) records the stream sequence from which on
// every commit must be signed (decision 016). A stream created new records
// 1, so a forger who can append but holds no signing key cannot pass an
// unsigned commit off as history from before signing began. Stream
// metadata is changed only with the admin's rights, not the service's.

// SignedFrom returns the stream sequence from which on every commit of
// aggType's stream must be signed, as the stream's metadata records it,
// or 0 when it records none. A value that is not a sequence returns 1
// (everything must be signed) with an error wrapping
// [eventlog.ErrBadSignedFrom].
func (s *Store) SignedFrom(ctx context.Context, aggType string) (uint64, error) {
	stream, err := s.StreamName(aggType)
	if err != nil {
		return 0, fmt.Errorf("signed from: %w", err)
	}
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("signed from of %s: %w", stream, err)
	}
	v, ok := st.CachedInfo().Config.Metadata[SignedFromKey]
	if !ok {
		return 0, nil
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil || seq == 0 {
		return 1, fmt.Errorf("%s: %w: %q", stream, eventlog.ErrBadSignedFrom, v)
	}
	return seq, nil
}
