package search

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/pause"
)

// LogEnd tells where the log's ORDERS stream ends; every
// [eventlog.StreamReader] (such as package streams' Store) implements it.
type LogEnd interface {
	LastSeq(ctx context.Context, aggType string) (uint64, error)
}

var _ LogEnd = eventlog.StreamReader(nil)

// CheckOwned is [Store.CheckLog] against the end log has now: an error
// wrapping [ErrOtherLog] if the live index was built from another log.
func (s *Store) CheckOwned(ctx context.Context, log LogEnd) error {
	last, err := log.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil {
		return err
	}
	return s.CheckLog(ctx, last)
}

// WaitOwned makes sure, before anything is projected into the live index
// or served from it, that it belongs to this log ([Store.CheckOwned]),
// trying again every retry while Elasticsearch or the log does not
// answer (each failure is told to onRetry, if set). It returns nil once
// the index is this log's (or there is none yet), an error wrapping
// [ErrOtherLog] if it is another's, or ctx's error if ctx ends first.
func (s *Store) WaitOwned(ctx context.Context, log LogEnd, retry time.Duration, onRetry func(error)) error {
	for {
		err := s.CheckOwned(ctx, log)
		if err == nil || errors.Is(err, ErrOtherLog) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if onRetry != nil {
			onRetry(err)
		}
		if err := pause.For(ctx, retry); err != nil {
			return err
		}
	}
}

// LocalPrefix is the index prefix of a local default in a shared local
// Elasticsearch, which other data dirs (and earlier lives of this one)
// use too: prefix, then logID (the identity of the log the index is
// built from), then "-". So a new log never finds the index of another
// and skips its sequences as applied, and a restart finds its own
// again. Without a logID (the log did not answer) a tag of dataDir's
// absolute path stands in for it, which still keeps data dirs apart.
func LocalPrefix(prefix, logID, dataDir string) string {
	tag := logID
	if tag == "" {
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			abs = dataDir
		}
		sum := sha256.Sum256([]byte(abs))
		tag = hex.EncodeToString(sum[:4])
	}
	return prefix + tag + "-"
}
