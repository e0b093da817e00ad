package sagas_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/sagas"
)

// TestBacklogOnlyShrinksOnceTheLoadStops: orders are placed while no
// runtime runs (a backlog, as behind a load the checkout could not
// absorb); then the load stops and a runtime starts, with reconciliation
// due half a second after each payment request, so that its timers fire
// while the backlog drains. The orders still to be carried forward only
// ever decrease; the consumers' backlog never holds more than the work
// those orders can still cause (it does rise at first: handling a commit
// appends the order's next one, which every lane of its stream counts);
// it empties, and it stays empty: no reconciliation feeds work back
// (decision 024). The bound only ends a hung test; nothing here is timed.
func TestBacklogOnlyShrinksOnceTheLoadStops(t *testing.T) {
	const workers = 4
	e := newEnv(t, envOptions{noRuntime: true, simMode: pspsim.ModeAuto, reconcile: 500 * time.Millisecond,
		paymentTimeout: 5 * time.Minute, runtime: sagas.Options{Workers: workers},
		// The webhook records captures through handlers of its own, as on
		// another instance: the checkout's cache does not see them.
		separateAPI: true})
	skus := []string{"HOT", "A", "B", "C"}
	for _, s := range skus {
		e.putSKU(s, 100, 100000)
	}
	const n = 120
	ids := make([]string, n)
	for i := range n {
		// Every order takes the hot SKU and one other.
		ids[i] = e.place(fmt.Sprintf("c-%d", i%7), fmt.Sprintf("k-%d", i), line{"HOT", 1}, line{skus[1+i%3], 2})
	}
	e.startRuntime()
	e.mu.Lock()
	rt := e.rt
	e.mu.Unlock()

	backlog := func() (int, string) {
		lanes, err := rt.Backlog(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sum := 0
		var sb strings.Builder
		for _, l := range lanes {
			sum += int(l.Pending) + l.Unacked
			fmt.Fprintf(&sb, " %s=%d+%d", l.Durable, l.Pending, l.Unacked)
		}
		return sum, sb.String()
	}
	unpaid := func() int {
		c := 0
		for _, id := range ids {
			if s, _ := e.order(id); s.Status != order.StatusPaid {
				c++
			}
		}
		return c
	}
	start, detail := backlog()
	lanes, err := rt.Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// What the consumers may hold delivered and unacknowledged at once.
	inFlight := len(lanes) * 4 * workers
	// What one order still causes once placed: on ORDERS stock_reserved,
	// payment_requested and paid, each counted by the main and the urgent
	// lane; two reservations on INVENTORY; payment.requested and
	// payment.captured on PAYMENTS; two timers.
	const perOrder = 3*2 + 2 + 2 + 2
	t.Logf("backlog at the start: %d (%s)", start, detail)
	prevUnpaid := n
	var samples []string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		sum, detail := backlog()
		left := unpaid()
		samples = append(samples, fmt.Sprintf("%d/%d", sum, left))
		if limit := start + prevUnpaid*perOrder + inFlight; sum > limit {
			t.Fatalf("backlog grew to %d (%s), above the %d its %d unpaid orders can cause; samples (backlog/unpaid) %v", sum, detail, limit, prevUnpaid, samples)
		}
		if left > prevUnpaid {
			t.Fatalf("orders to carry forward went up from %d to %d; samples %v", prevUnpaid, left, samples)
		}
		prevUnpaid = left
		if sum == 0 && left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog not empty: %d (%s), %d orders unpaid; samples %v", sum, detail, left, samples)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("samples (backlog/unpaid): %v", samples)
	// Emptied, it stays empty while the reconciliation timers of all
	// those payments come due.
	for range 10 {
		time.Sleep(300 * time.Millisecond)
		if sum, detail := backlog(); sum != 0 {
			t.Fatalf("backlog came back after it emptied: %d (%s)", sum, detail)
		}
	}
	hot, _ := e.sku("HOT")
	if hot.Available() != 100000-n {
		t.Fatalf("HOT has %d available, want %d", hot.Available(), 100000-n)
	}
}
