package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/testkit"
)

// TestCheckoutBacklogRefusesNewOrders: with the process managers stopped
// the checkout's backlog grows with every order; past
// ORDO_CHECKOUT_MAX_BACKLOG a place is 429 checkout_busy with
// Retry-After (and counted in ordo_admission_refused_total), while reads
// and a cancel go through. Once the process managers run again and catch
// up, orders are admitted again.
func TestCheckoutBacklogRefusesNewOrders(t *testing.T) {
	dir := t.TempDir()
	pg := testkit.Postgres(t)
	cfg := func(roles ...string) func(*config.Config) {
		return func(c *config.Config) {
			c.DataDir = dir
			c.PostgresURL = pg
			c.Roles = roles
			c.PSPMode = "auto"
			c.PaymentTimeout = time.Minute
			c.CheckoutMaxBacklog = 5
		}
	}
	// The first start (with the process managers) makes the checkout's
	// consumers; the second runs the API alone, so nothing handles what
	// is placed.
	ta := mustStart(t, cfg("api", "sagas"))
	ta.putSKU("TEA-250", 1999, 1000)
	first := ta.place(ta.alice, "k-first", orderBody(line("TEA-250", 1)))
	if first.status != 202 {
		t.Fatalf("place: %d %s", first.status, first.raw)
	}
	ta.waitEvent(first.body["order_id"].(string), "order.paid")
	if err := ta.close(); err != nil {
		t.Fatal(err)
	}

	ta = mustStart(t, cfg("api"))
	var ids []string
	for i := range 6 {
		r := ta.place(ta.alice, "k-"+strconv.Itoa(i), orderBody(line("TEA-250", 1)))
		if r.status != 202 {
			t.Fatalf("place %d below the bound: %d %s", i, r.status, r.raw)
		}
		ids = append(ids, r.body["order_id"].(string))
	}
	// The backlog is sampled at most every 250 ms: wait for a refusal.
	var busy response
	testkit.Eventually(t, "a place to be refused", 30*time.Second, func() (bool, error) {
		busy = ta.place(ta.bob, "k-busy", orderBody(line("TEA-250", 1)))
		return busy.status == 429, nil
	})
	if n, err := strconv.Atoi(busy.retryAfter); busy.code() != "checkout_busy" || err != nil || n < 1 || n > 30 {
		t.Fatalf("refused place: %d %s (Retry-After %q), want 429 checkout_busy with 1-30 s", busy.status, busy.raw, busy.retryAfter)
	}
	if r := ta.do("GET", "/v1/skus/TEA-250", ta.admin, nil); r.status != 200 {
		t.Fatalf("read while the checkout is busy: %d %s", r.status, r.raw)
	}
	if r := ta.do("POST", "/v1/orders/"+ids[0]+"/cancel", ta.alice, map[string]any{"reason": "too slow"}); r.status != 202 {
		t.Fatalf("cancel while the checkout is busy: %d %s", r.status, r.raw)
	}
	if m := ta.metrics(); !strings.Contains(string(m.raw), `ordo_admission_refused_total{reason="checkout_busy"}`) {
		t.Fatalf("metrics without the refusal count:\n%s", m.raw)
	}
	if err := ta.close(); err != nil {
		t.Fatal(err)
	}

	// With the process managers running again the backlog drains and the
	// same place (same key) is admitted.
	ta = mustStart(t, cfg("api", "sagas"))
	testkit.Eventually(t, "the place to be admitted again", 60*time.Second, func() (bool, error) {
		r := ta.place(ta.bob, "k-busy", orderBody(line("TEA-250", 1)))
		return r.status == 202, nil
	})
	ta.waitEvent(ids[0], "order.cancelled")
	ta.waitEvent(ids[5], "order.paid")
}
