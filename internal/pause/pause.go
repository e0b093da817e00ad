// Package pause holds the two ways Ordo waits in its own loops: a sleep
// that ends early when its context ends ([For]), and a poll of a
// condition with a pause that grows between tries ([Until]).
package pause

import (
	"context"
	"time"
)

// For pauses for d, or until ctx ends, whichever comes first. It returns
// ctx's error if ctx ended (also when it had ended before the call),
// else nil. A d of zero or less does not pause.
func For(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Until calls cond until it reports done or returns an error, pausing
// between calls: first, then twice as long each time up to longest. It
// returns cond's error, or ctx's error if ctx ends first. cond is called
// at once, and is not called again once ctx has ended.
func Until(ctx context.Context, first, longest time.Duration, cond func() (done bool, err error)) error {
	wait := first
	for {
		done, err := cond()
		if done || err != nil {
			return err
		}
		if err := For(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, longest)
	}
}

// Within checks cond every interval, from at once, until it holds or d
// has passed, and reports whether it held: a bounded wait for something
// outside Ordo (a process to exit) that no context governs.
func Within(d, every time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return Until(ctx, every, every, func() (bool, error) { return cond(), nil }) == nil
}
