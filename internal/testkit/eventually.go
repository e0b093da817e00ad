package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/pause"
)

// pollEvery is how often [Eventually] asks.
const pollEvery = 20 * time.Millisecond

// Eventually calls cond at once and then every 20 ms until it reports
// done, and fails the test if it has not within bound. The bound is a
// liveness bound: it ends a test that would otherwise hang, is never what
// the test checks, and so is generous. An error from cond means "not
// yet, because": the wait goes on, and the last such error is named when
// the bound is reached.
func Eventually(tb testing.TB, what string, bound time.Duration, cond func() (done bool, err error)) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var last error
	err := pause.Until(ctx, pollEvery, pollEvery, func() (bool, error) {
		done, err := cond()
		if err != nil {
			last = err
		}
		return done, nil
	})
	switch {
	case err == nil:
	case last != nil:
		tb.Fatalf("waited %s for %s in vain; last: %v", bound, what, last)
	default:
		tb.Fatalf("waited %s for %s in vain", bound, what)
	}
}

// Holds adapts a condition without a reason to [Eventually].
func Holds(cond func() bool) func() (bool, error) {
	return func() (bool, error) { return cond(), nil }
}
