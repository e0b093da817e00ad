package sagas_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/inventory"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/internal/psp/sim"
	"github.com/ordo-shop/ordo/sagas"
)

func TestPlacedOrderIsReservedPaidShippedAndDelivered(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.putSKU("TEA", 1999, 10)
	e.putSKU("CUP", 500, 3)
	id := e.place("cust-1", "k1", line{"TEA", 2}, line{"CUP", 1})

	o := e.waitOrder(id, order.StatusPaid)
	_, commits := e.order(id)
	want := []string{"order.placed", "order.stock_reserved", "order.payment_requested", "order.paid"}
	if got := eventTypes(commits); !reflect.DeepEqual(got, want) {
		t.Fatalf("order events %v, want %v", got, want)
	}
	pid := sagas.PaymentIDFor(id)
	if o.PaymentID != pid || o.CheckoutURL == "" {
		t.Fatalf("order payment %q %q, want %s and a checkout URL", o.PaymentID, o.CheckoutURL, pid)
	}
	p, _ := e.payment(pid)
	if p.Status != payment.StatusCaptured || p.Amount != (events.Money{Amount: 2*1999 + 500, Currency: "CNY"}) || p.OrderID != id {
		t.Fatalf("payment %+v", p)
	}
	for _, c := range commits[1:] {
		if c.Metadata.Actor != "sagas:checkout" || c.Metadata.CausationID == "" || c.Metadata.CorrelationID == "" {
			t.Errorf("commit %s v%d metadata %+v: want the checkout as actor with causation and correlation", c.AggregateID, c.Version, c.Metadata)
		}
	}
	tea, _ := e.sku("TEA")
	if tea.Reserved != 2 || ledgerQty(tea.Reservations, id) != 2 {
		t.Fatalf("TEA reserved %d (%v), want 2 for the order", tea.Reserved, tea.Reservations)
	}

	r := e.do("POST", "/v1/orders/"+id+"/ship", e.admin, map[string]any{"carrier": "SF", "tracking_number": "SF1"})
	if r.status != 202 {
		t.Fatalf("ship: %d %s", r.status, r.raw)
	}
	waitFor(t, "stock committed", func() bool {
		tea, _ := e.sku("TEA")
		cup, _ := e.sku("CUP")
		return tea.Sold == 2 && cup.Sold == 1
	})
	tea, _ = e.sku("TEA")
	if tea.OnHand != 8 || tea.Reserved != 0 {
		t.Fatalf("TEA after shipping: on hand %d reserved %d, want 8 and 0", tea.OnHand, tea.Reserved)
	}
	if r := e.do("POST", "/v1/orders/"+id+"/cancel", e.token("cust-1", auth.RoleCustomer), nil); r.status != 422 || r.body["error"].(map[string]any)["code"] != "order_already_shipped" {
		t.Fatalf("cancel a shipped order: %d %s, want 422 order_already_shipped", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/orders/"+id+"/deliver", e.admin, map[string]any{}); r.status != 202 {
		t.Fatalf("deliver: %d %s", r.status, r.raw)
	}
	e.waitOrder(id, order.StatusDelivered)
}

func TestShortOrderIsRejectedAndReleasesWhatItHeld(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.putSKU("TEA", 1999, 10)
	e.putSKU("CUP", 500, 1)
	id := e.place("cust-1", "k1", line{"TEA", 4}, line{"CUP", 2})

	o := e.waitOrder(id, order.StatusRejected)
	if o.RejectReason != sagas.ReasonOutOfStock {
		t.Fatalf("reject reason %q", o.RejectReason)
	}
	_, commits := e.order(id)
	var rejected events.OrderRejected
	for _, c := range commits {
		for _, ev := range c.Events {
			if ev.Type == "order.rejected" {
				p, err := e.reg.Decode(ev)
				if err != nil {
					t.Fatal(err)
				}
				rejected = p.(events.OrderRejected)
			}
		}
	}
	if !reflect.DeepEqual(rejected.ShortSKUs, []string{"CUP"}) {
		t.Fatalf("short SKUs %v, want [CUP]", rejected.ShortSKUs)
	}
	waitFor(t, "TEA released", func() bool { s, _ := e.sku("TEA"); return s.Reserved == 0 })
	tea, teaCommits := e.sku("TEA")
	if ledgerQty(tea.Released, id) != 4 || tea.OnHand != 10 {
		t.Fatalf("TEA %+v: want 4 released for the order and 10 on hand", tea)
	}
	if got := eventTypes(teaCommits); !slices.Contains(got, "inventory.reserved") || !slices.Contains(got, "inventory.released") {
		t.Fatalf("TEA events %v: want a reservation and its release", got)
	}
	if p, _ := e.payment(sagas.PaymentIDFor(id)); p.Exists {
		t.Fatalf("a rejected order has payment %+v", p)
	}
}

func TestPaymentTimeoutCancelsReleasesAndVoids(t *testing.T) {
	e := newEnv(t, envOptions{simMode: sim.ModeManual, paymentTimeout: 2 * time.Second})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 3})
	e.waitOrder(id, order.StatusPaymentPending)

	o := e.waitOrder(id, order.StatusCancelled)
	if o.CancelReason != sagas.ReasonPaymentTimeout {
		t.Fatalf("cancel reason %q, want %q", o.CancelReason, sagas.ReasonPaymentTimeout)
	}
	waitFor(t, "payment voided and stock released", func() bool {
		p, _ := e.payment(o.PaymentID)
		s, _ := e.sku("TEA")
		return p.Status == payment.StatusVoided && s.Reserved == 0
	})
	p, _ := e.payment(o.PaymentID)
	in, err := e.client.Intent(t.Context(), p.IntentID)
	if err != nil {
		t.Fatal(err)
	}
	if in.Status != psp.StatusVoided {
		t.Fatalf("intent at the PSP is %s, want voided", in.Status)
	}
	// The shopper clicks too late: the PSP refuses, nothing changes.
	if _, err := e.sim.Approve(in.ID); err == nil {
		t.Fatal("the PSP approved a voided intent")
	}
}

func TestTimeoutSurvivesRuntimeRestart(t *testing.T) {
	e := newEnv(t, envOptions{simMode: sim.ModeManual, paymentTimeout: 3 * time.Second})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 1})
	e.waitOrder(id, order.StatusPaymentPending)
	// The timer is in JetStream, not in the runtime: a runtime that is
	// gone when it fires, and a new one started later, still cancel.
	e.killRuntime()
	time.Sleep(3500 * time.Millisecond)
	if s, _ := e.order(id); s.Status != order.StatusPaymentPending {
		t.Fatalf("order is %s while no runtime ran", s.Status)
	}
	e.startRuntime()
	o := e.waitOrder(id, order.StatusCancelled)
	if o.CancelReason != sagas.ReasonPaymentTimeout {
		t.Fatalf("cancel reason %q", o.CancelReason)
	}
}

func TestDeclinedPaymentCancelsAndReleases(t *testing.T) {
	e := newEnv(t, envOptions{faults: psp.Faults{Decline: 1}})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 2})
	o := e.waitOrder(id, order.StatusCancelled)
	if o.CancelReason != sagas.ReasonPaymentFailed {
		t.Fatalf("cancel reason %q", o.CancelReason)
	}
	waitFor(t, "stock released", func() bool { s, _ := e.sku("TEA"); return s.Reserved == 0 })
	p, _ := e.payment(o.PaymentID)
	if p.Status != payment.StatusFailed {
		t.Fatalf("payment is %s, want failed", p.Status)
	}
}

func TestCustomerCancelsPaidOrderAndIsRefunded(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 2})
	e.waitOrder(id, order.StatusPaid)
	r := e.do("POST", "/v1/orders/"+id+"/cancel", e.token("cust-1", auth.RoleCustomer), map[string]any{"reason": "changed my mind"})
	if r.status != 202 || r.body["status"] != "cancelled" {
		t.Fatalf("cancel: %d %s", r.status, r.raw)
	}
	o := e.waitOrder(id, order.StatusRefunded)
	p, pcommits := e.payment(o.PaymentID)
	if p.Status != payment.StatusRefunded {
		t.Fatalf("payment %s, want refunded", p.Status)
	}
	// payment.refunded is recorded before order.refunded.
	_, ocommits := e.order(id)
	var payRefundedAt, orderRefundedAt time.Time
	for _, c := range pcommits {
		if slices.Contains(eventTypes([]*events.Commit{c}), "payment.refunded") {
			payRefundedAt = c.Metadata.RecordedAt
		}
	}
	for _, c := range ocommits {
		if slices.Contains(eventTypes([]*events.Commit{c}), "order.refunded") {
			orderRefundedAt = c.Metadata.RecordedAt
		}
	}
	if payRefundedAt.IsZero() || orderRefundedAt.Before(payRefundedAt) {
		t.Fatalf("payment.refunded at %v, order.refunded at %v", payRefundedAt, orderRefundedAt)
	}
	waitFor(t, "stock released", func() bool { s, _ := e.sku("TEA"); return s.Reserved == 0 })
	in, err := e.client.Intent(t.Context(), p.IntentID)
	if err != nil || in.Status != psp.StatusRefunded || in.Refunded != in.Amount.Amount {
		t.Fatalf("intent at the PSP: %+v %v, want refunded in full", in, err)
	}
}

func TestCaptureAfterCancellationIsRefunded(t *testing.T) {
	// Every webhook is lost and the shopper pays at the PSP just before
	// the customer cancels: the void finds the intent captured, so the
	// capture is recorded and refunded in full.
	e := newEnv(t, envOptions{simMode: sim.ModeManual, faults: psp.Faults{Loss: 1}})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 1})
	o := e.waitOrder(id, order.StatusPaymentPending)
	p, _ := e.payment(o.PaymentID)
	if _, err := e.sim.Approve(p.IntentID); err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/v1/orders/"+id+"/cancel", e.token("cust-1", auth.RoleCustomer), nil)
	if r.status != 202 {
		t.Fatalf("cancel: %d %s", r.status, r.raw)
	}
	e.waitOrder(id, order.StatusRefunded)
	_, pcommits := e.payment(o.PaymentID)
	want := []string{"payment.requested", "payment.captured", "payment.refunded"}
	if got := eventTypes(pcommits); !reflect.DeepEqual(got, want) {
		t.Fatalf("payment events %v, want %v", got, want)
	}
}

func TestLostWebhooksHealByReconciliation(t *testing.T) {
	e := newEnv(t, envOptions{faults: psp.Faults{Loss: 1}, reconcile: time.Second})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 1})
	e.waitOrder(id, order.StatusPaid)
	if st := e.sim.Stats(); st.Lost == 0 || st.Delivered != 0 {
		t.Fatalf("sim stats %+v: the webhook should have been lost", st)
	}
}

func ledgerQty(l inventory.Ledger, orderID string) int64 {
	q, _ := l.Get(orderID)
	return q
}
