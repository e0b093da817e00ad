package main

import (
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/psp"
)

// refundAtPSP refunds an order's payment through the in-process
// simulator's API, with the key orderd generated into its data dir, as
// the merchant would from the provider's dashboard.
func (ta *testApp) refundAtPSP(h []*events.Commit) {
	ta.t.Helper()
	pr := paymentRequested(ta.t.(*testing.T), h)
	var intent psp.Intent
	for _, in := range ta.pay.sim.Intents() {
		if in.Reference == pr.PaymentID {
			intent = in
		}
	}
	if intent.ID == "" {
		ta.t.Fatalf("the simulator has no intent for %s", pr.PaymentID)
	}
	if _, err := ta.pay.client.Refund(ta.t.Context(), intent.ID, psp.RefundRequest{Amount: intent.Amount}, "dashboard:"+intent.ID); err != nil {
		ta.t.Fatal(err)
	}
}

// TestPSPRefundAfterPaidThroughTheRuntime: the whole orderd (API, process
// managers on JetStream, the in-process simulator and its webhooks). A
// refund made at the provider for a paid order refunds the order and gives
// its stock back, once; the order can no longer be shipped. For a shipped
// order the stock stays sold and the timeline shows the customer-service
// task.
func TestPSPRefundAfterPaidThroughTheRuntime(t *testing.T) {
	ta := mustStart(t, func(c *config.Config) {
		withSagas("auto")(c)
		c.Roles = []string{"api", "sagas", "projections"}
	})
	ta.putSKU("TEA-250", 1999, 10)
	available := func() float64 {
		r := ta.do("GET", "/v1/skus/TEA-250", ta.admin, nil)
		n, _ := r.body["available"].(float64)
		return n
	}

	r := ta.place(ta.alice, "k-refund", orderBody(line("TEA-250", 3)))
	if r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	paid := r.body["order_id"].(string)
	ta.refundAtPSP(ta.waitEvent(paid, "order.paid"))
	h := ta.waitEvent(paid, "order.refunded")
	if got := eventTypes(h); count(got, "order.refunded") != 1 {
		t.Fatalf("history %v", got)
	}
	waitUntil(t, "the refunded order's stock to come back", func() bool { return available() == 10 })
	if s := ta.do("POST", "/v1/orders/"+paid+"/ship", ta.admin, map[string]any{"carrier": "SF", "tracking_number": "SF1"}); s.status != 422 || s.code() != "order_not_shippable" {
		t.Fatalf("ship a refunded order: %d %s, want 422 order_not_shippable", s.status, s.raw)
	}

	r = ta.place(ta.alice, "k-shipped", orderBody(line("TEA-250", 2)))
	if r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	shipped := r.body["order_id"].(string)
	ta.waitEvent(shipped, "order.paid")
	if s := ta.do("POST", "/v1/orders/"+shipped+"/ship", ta.admin, map[string]any{"carrier": "SF", "tracking_number": "SF2"}); s.status != 202 {
		t.Fatalf("ship: %d %s", s.status, s.raw)
	}
	ta.refundAtPSP(ta.waitEvent(shipped, "order.shipped"))
	h = ta.waitEvent(shipped, "order.attention_required")
	if got := eventTypes(h); slices.Contains(got, "order.refunded") || count(got, "order.attention_required") != 1 {
		t.Fatalf("history of the shipped order %v", got)
	}
	var detail string
	waitUntil(t, "the timeline to show the task", func() bool {
		tl := ta.do("GET", "/v1/orders/"+shipped+"/timeline", ta.agent, nil)
		entries, _ := tl.body["entries"].([]any)
		for _, e := range entries {
			m, _ := e.(map[string]any)
			if m["event"] == "order.attention_required" {
				detail, _ = m["detail"].(string)
				return m["status"] == "shipped"
			}
		}
		return false
	})
	if detail != events.AttentionRefundedAfterShipment+": payment "+paymentRequested(t, h).PaymentID {
		t.Fatalf("task detail %q", detail)
	}
	if n := available(); n != 8 {
		t.Fatalf("%v available after the shipped order's refund, want 8 (its units stay sold)", n)
	}
}

// TestUnpaidOrderLimit: with ORDO_MAX_UNPAID_ORDERS=2, a customer's third
// unpaid order is 429 too_many_unpaid_orders with Retry-After, another
// customer is not affected, and paying one (on the simulator's pay page,
// through the process managers) frees a slot.
func TestUnpaidOrderLimit(t *testing.T) {
	ta := mustStart(t, func(c *config.Config) {
		withSagas("manual")(c)
		c.MaxUnpaidOrders = 2
	})
	ta.putSKU("TEA-250", 1999, 100)
	var ids []string
	for _, key := range []string{"k-1", "k-2"} {
		r := ta.place(ta.alice, key, orderBody(line("TEA-250", 1)))
		if r.status != 202 {
			t.Fatalf("place %s: %d %s", key, r.status, r.raw)
		}
		ids = append(ids, r.body["order_id"].(string))
	}
	r := ta.place(ta.alice, "k-3", orderBody(line("TEA-250", 1)))
	if n, err := strconv.Atoi(r.retryAfter); r.status != 429 || r.code() != "too_many_unpaid_orders" || err != nil || n < 1 || n > 30 {
		t.Fatalf("third unpaid order: %d %s (Retry-After %q), want 429 too_many_unpaid_orders within the 30 s payment timeout", r.status, r.raw, r.retryAfter)
	}
	if r := ta.place(ta.bob, "k-1", orderBody(line("TEA-250", 1))); r.status != 202 {
		t.Fatalf("another customer: %d %s", r.status, r.raw)
	}
	pr := paymentRequested(t, ta.waitEvent(ids[0], "order.payment_requested"))
	resp, err := http.Post(payAction(pr.CheckoutURL, "approve"), "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ta.waitEvent(ids[0], "order.paid")
	if r := ta.place(ta.alice, "k-3", orderBody(line("TEA-250", 1))); r.status != 202 {
		t.Fatalf("after paying one: %d %s", r.status, r.raw)
	}
}
