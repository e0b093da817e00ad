package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ordo-shop/ordo/internal/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestBacklogSeries: each lane's pending and unacknowledged messages are
// series of their own, read again at each scrape; a read that fails
// reports the backlog down instead of old numbers.
func TestBacklogSeries(t *testing.T) {
	m, err := metrics.New()
	if err != nil {
		t.Fatal(err)
	}
	lanes := []metrics.Lane{
		{Stream: "ORDERS", Consumer: "checkout-orders", Pending: 40, Unacked: 3},
		{Stream: "TIMERS", Consumer: "checkout-timers", Pending: 0, Unacked: 1},
	}
	var fail error
	if err := m.Backlog(func(context.Context) ([]metrics.Lane, error) { return lanes, fail }); err != nil {
		t.Fatal(err)
	}
	body := scrape(t, m)
	for _, line := range []string{
		"ordo_process_backlog_up 1",
		`ordo_process_backlog_messages{consumer="checkout-orders",state="pending",stream="ORDERS"} 40`,
		`ordo_process_backlog_messages{consumer="checkout-orders",state="unacked",stream="ORDERS"} 3`,
		`ordo_process_backlog_messages{consumer="checkout-timers",state="pending",stream="TIMERS"} 0`,
		`ordo_process_backlog_messages{consumer="checkout-timers",state="unacked",stream="TIMERS"} 1`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("no %q in\n%s", line, body)
		}
	}
	lanes[0].Pending = 7
	if body := scrape(t, m); !strings.Contains(body, `ordo_process_backlog_messages{consumer="checkout-orders",state="pending",stream="ORDERS"} 7`+"\n") {
		t.Errorf("the second scrape did not read the backlog again:\n%s", body)
	}
	fail = errors.New("no responders")
	body = scrape(t, m)
	if !strings.Contains(body, "ordo_process_backlog_up 0\n") || strings.Contains(body, "ordo_process_backlog_messages{") {
		t.Errorf("a failed read should report up 0 and no lanes:\n%s", body)
	}
}
