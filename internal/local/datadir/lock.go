package datadir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/ordo-shop/ordo/internal/pause"
)

// ErrHeld means another process holds a lock [Flock] was asked for.
var ErrHeld = errors.New("the lock is held by another process")

// Flock takes an exclusive lock on the file at path (created, mode 0600,
// if missing) without waiting: an error wrapping [ErrHeld] if another
// process holds it. The lock dies with the process, so a SIGKILLed
// holder never leaves a stale lock behind.
func Flock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", path, ErrHeld)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

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
