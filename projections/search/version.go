package search

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrOtherLog is the error of [Store.CheckLog]: the index was built from
// another log.
var ErrOtherLog = errors.New("the search index was built from another log")

// CheckLog returns an error wrapping [ErrOtherLog] if the live index was
// built from another log than this Store's (another data dir, or the
// stream was recreated): one that recorded another log identity than
// [Options.Log], or whose checkpoints are past last, this log's end. Its
// projector would skip this log's commits as applied and search would
// answer with another log's orders.
func (s *Store) CheckLog(ctx context.Context, last uint64) error {
	status, err := s.Status(ctx, last)
	if err != nil {
		return err
	}
	if status.Log != "" && s.opts.Log != "" && status.Log != s.opts.Log {
		return fmt.Errorf("%w: %s was built from log %s, this is log %s", ErrOtherLog, status.Index, status.Log, s.opts.Log)
	}
	for p, cp := range status.Checkpoints {
		if cp > last {
			return fmt.Errorf("%w: %s has applied up to sequence %d on partition %d, the log ends at %d", ErrOtherLog, status.Index, cp, p, last)
		}
	}
	return nil
}

// IndexVersion is N of an index named <prefix>orders_vN, such as
// [Status.Index]; 0 if the name has no version.
func IndexVersion(index string) int {
	i := strings.LastIndex(index, "orders_v")
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(index[i+len("orders_v"):])
	if err != nil || n < 0 {
		return 0
	}
	return n
}
