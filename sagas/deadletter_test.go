package sagas

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/command"
)

// A message whose handler failed because the event store was electing a
// leader is redelivered, not dead-lettered: an election after a crash
// outlasts the in-place retries.
func TestLeaderFailuresAreNotDeadLettered(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("reserve: load inventory x: %w", eventlog.ErrLeaderUnavailable),
		fmt.Errorf("request payment: append: %w", eventlog.ErrOutcomeUnknown),
		fmt.Errorf("captured: read payment p-1: %w", command.ErrNotYetReadable),
	} {
		if shouldDeadLetter(err) {
			t.Errorf("%v would be dead-lettered", err)
		}
	}
	if !shouldDeadLetter(errors.New("psp refused the request")) {
		t.Error("an ordinary failure would not be dead-lettered")
	}
}
