package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ordo-shop/ordo/eventlog"
)

// While the event store changes leaders, commands answer 503 with
// Retry-After and a code that says whether the command may have taken
// effect, whatever else the error wraps.
func TestFailoverErrorsSayWhetherTheOutcomeIsKnown(t *testing.T) {
	cases := []struct {
		err  error
		code string
	}{
		{fmt.Errorf("append order x: %w: no leader answered within 2s (last attempt: %v)", eventlog.ErrLeaderUnavailable, context.DeadlineExceeded), "leader_unavailable"},
		{fmt.Errorf("load order x: %w", fmt.Errorf("%w: stream ORDERS", eventlog.ErrLeaderUnavailable)), "leader_unavailable"},
		// The append was cut short by the request's deadline: it was sent.
		{fmt.Errorf("append order x: %w: %w", eventlog.ErrOutcomeUnknown, context.DeadlineExceeded), "outcome_unknown"},
		{fmt.Errorf("append: %w", context.DeadlineExceeded), "timeout"},
		{errors.New("nats: connection closed"), "unavailable"},
	}
	s := &Server{log: slog.New(slog.DiscardHandler)}
	for _, c := range cases {
		w := httptest.NewRecorder()
		s.writeError(w, httptest.NewRequest("POST", "/v1/orders", nil), c.err)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%v: status %d, Retry-After %q; want 503 with Retry-After", c.err, w.Code, w.Header().Get("Retry-After"))
		}
		if got := classify(c.err).Code; got != c.code {
			t.Errorf("%v: code %q, want %q", c.err, got, c.code)
		}
	}
}
