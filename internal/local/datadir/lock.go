package datadir

import (
	"context"
	"errors"
	"time"

	"github.com/ordo-shop/ordo/internal/pause"
)

// ErrHeld means another process holds a lock [Flock] was asked for.
var ErrHeld = errors.New("the lock is held by another process")

// flockPoll is how often FlockWait tries again.
const flockPoll = 100 * time.Millisecond

// FlockWait is [Flock] that waits, bounded by ctx, while another process
// holds the lock.
func FlockWait(ctx context.Context, path string) (unlock func(), err error) {
	err = pause.Until(ctx, flockPoll, flockPoll, func() (bool, error) {
		unlock, err = Flock(path)
		if errors.Is(err, ErrHeld) {
			return false, nil
		}
		return true, err
	})
	return unlock, err
}
