package process_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/process"
)

// One test per row of the checkout's event table (see process.Checkout),
// each on the in-memory log: the state before the row is set up, the
// row's one event (or timer) is delivered, and what the checkout did is
// read back from the log and the payment provider.

func holds(s inventory.State, orderID string) bool { return s.Reservations.Has(orderID) }

// order.placed: reserve every line; all held → order.MarkStockReserved.
func TestOrderPlacedReservesEveryLine(t *testing.T) {
	r := newRig(t)
	r.define("A", 10)
	r.define("B", 10)
	m := r.mark()
	r.place("o-1", line{"A", 2}, line{"B", 1})
	r.deliver(m, "order.placed")
	if st := r.order("o-1").Status; st != order.StatusStockReserved {
		t.Fatalf("order is %s, want stock_reserved", st)
	}
	for _, sku := range []string{"A", "B"} {
		if !holds(r.sku(sku), "o-1") {
			t.Errorf("%s holds nothing for o-1", sku)
		}
	}
	if a := r.sku("A"); a.Available() != 8 {
		t.Errorf("A has %d available, want 8", a.Available())
	}
}

// order.placed with a SKU short: order.Reject with the short SKU, then
// release what is held.
func TestOrderPlacedWithAShortSKUIsRejected(t *testing.T) {
	r := newRig(t)
	r.define("A", 10)
	r.define("B", 0)
	m := r.mark()
	r.place("o-1", line{"A", 2}, line{"B", 1})
	r.deliver(m, "order.placed")
	o := r.order("o-1")
	if o.Status != order.StatusRejected || o.RejectReason != process.ReasonOutOfStock {
		t.Fatalf("order is %s (%s), want rejected (out_of_stock)", o.Status, o.RejectReason)
	}
	if holds(r.sku("A"), "o-1") {
		t.Fatal("A still holds stock for a rejected order")
	}
	if a := r.sku("A"); a.Available() != 10 {
		t.Fatalf("A has %d available, want 10", a.Available())
	}
}

// inventory.reservation_failed → the same rejection, for a placed order.
func TestReservationFailedRejectsAPlacedOrder(t *testing.T) {
	r := newRig(t)
	r.define("B", 0)
	r.place("o-1", line{"B", 1})
	m := r.mark()
	if _, err := r.stock.Handle(r.ctx, command.Request[inventory.Command]{AggregateID: "B", Command: inventory.Reserve{OrderID: "o-1", Qty: 1}}); err != nil {
		t.Fatal(err)
	}
	r.deliver(m, "inventory.reservation_failed")
	if o := r.order("o-1"); o.Status != order.StatusRejected || o.RejectReason != process.ReasonOutOfStock {
		t.Fatalf("order is %s (%s), want rejected (out_of_stock)", o.Status, o.RejectReason)
	}
	if evs := r.events(m); !slices.Contains(evs, "order.rejected") {
		t.Fatalf("appended %v, want order.rejected", evs)
	}
}

// order.stock_reserved: create the PSP intent for the order total →
// payment.Request → order.RequestPayment.
func TestStockReservedRequestsThePayment(t *testing.T) {
	r := newRig(t)
	r.define("A", 10)
	m := r.mark()
	r.place("o-1", line{"A", 3})
	r.deliver(m, "order.placed")
	r.deliver(m, "order.stock_reserved")
	o := r.order("o-1")
	if o.Status != order.StatusPaymentPending || o.PaymentID != process.PaymentIDFor("o-1") {
		t.Fatalf("order is %s with payment %q, want payment_pending with %s", o.Status, o.PaymentID, process.PaymentIDFor("o-1"))
	}
	p := r.payment("o-1")
	if p.Status != payment.StatusRequested || p.Amount != cny(3000) || p.OrderID != "o-1" {
		t.Fatalf("payment %+v, want requested, 30.00 for o-1", p)
	}
	if in := r.intent("o-1"); in.Amount != o.Total || in.Reference != p.ID || in.Status != psp.StatusRequiresPayment {
		t.Fatalf("intent %+v, want %s for %s awaiting payment", in, o.Total, p.ID)
	}
}

// order.payment_requested: schedule the payment timeout and the
// reconciliation check, both counted from the request.
func TestPaymentRequestedSchedulesTimers(t *testing.T) {
	r := newRig(t)
	r.define("A", 10)
	m := r.mark()
	r.place("o-1", line{"A", 1})
	r.deliver(m, "order.placed")
	r.deliver(m, "order.stock_reserved")
	if n := len(r.log.Timers()); n != 0 {
		t.Fatalf("%d timers before order.payment_requested", n)
	}
	r.deliver(m, "order.payment_requested")
	var requestedAt time.Time
	for _, rec := range r.since(m) {
		if rec.Commit.AggregateType == order.AggregateType && rec.Commit.Events[0].Type == "order.payment_requested" {
			requestedAt = rec.Commit.Metadata.RecordedAt
		}
	}
	pid := process.PaymentIDFor("o-1")
	for _, c := range []struct {
		kind, key string
		after     time.Duration
	}{{"payment_timeout", "o-1", paymentTimeout}, {"payment_reconcile", pid, reconcileAfter}} {
		tm := r.timer(c.kind, c.key)
		if !tm.At.Equal(requestedAt.Add(c.after)) {
			t.Errorf("%s timer at %s, want %s after the request (%s)", c.kind, tm.At, c.after, requestedAt)
		}
		var body struct {
			OrderID   string `json:"order_id"`
			PaymentID string `json:"payment_id"`
		}
		if err := json.Unmarshal(tm.Data, &body); err != nil || body.OrderID != "o-1" || body.PaymentID != pid {
			t.Errorf("%s timer body %s (%v)", c.kind, tm.Data, err)
		}
	}
}

// payment.captured → order.MarkPaid.
func TestCapturedPaymentMarksTheOrderPaid(t *testing.T) {
	r := newRig(t)
	r.pending("o-1")
	if _, err := r.sim.Approve(r.intent("o-1").ID); err != nil {
		t.Fatal(err)
	}
	m := r.mark()
	r.report("o-1")
	r.deliver(m, "payment.captured")
	if o := r.order("o-1"); o.Status != order.StatusPaid || !o.Paid {
		t.Fatalf("order is %s, want paid", o.Status)
	}
}

// payment.captured on a cancelled order: refund.
func TestCaptureOnACancelledOrderIsRefunded(t *testing.T) {
	r := newRig(t)
	r.pending("o-1")
	r.cancel("o-1")
	if _, err := r.sim.Approve(r.intent("o-1").ID); err != nil {
		t.Fatal(err)
	}
	m := r.mark()
	r.report("o-1")
	r.deliver(m, "payment.captured") // order.cancelled is not delivered
	r.paymentEnds("o-1", psp.StatusRefunded, payment.StatusRefunded)
}

// payment.failed → order.Cancel (payment_failed).
func TestFailedPaymentCancelsTheOrder(t *testing.T) {
	r := newRig(t)
	r.pending("o-1")
	if _, err := r.sim.Decline(r.intent("o-1").ID, "card_declined"); err != nil {
		t.Fatal(err)
	}
	m := r.mark()
	r.report("o-1")
	r.deliver(m, "payment.failed")
	if o := r.order("o-1"); o.Status != order.StatusCancelled || o.CancelReason != process.ReasonPaymentFailed {
		t.Fatalf("order is %s (%s), want cancelled (payment_failed)", o.Status, o.CancelReason)
	}
}

// payment.refunded → order.MarkRefunded.
func TestRefundedPaymentMarksTheOrderRefunded(t *testing.T) {
	r := newRig(t)
	r.paid("o-1")
	m := r.mark()
	r.cancel("o-1")
	r.deliver(m, "order.cancelled") // refunds at the PSP and records payment.refunded
	if o := r.order("o-1"); o.Status != order.StatusCancelled {
		t.Fatalf("order is %s before payment.refunded is handled, want cancelled", o.Status)
	}
	r.deliver(m, "payment.refunded")
	if o := r.order("o-1"); o.Status != order.StatusRefunded {
		t.Fatalf("order is %s, want refunded", o.Status)
	}
}

// A refund the provider reports for a paid order that has not shipped:
// payment.refunded → order.MarkRefunded → order.refunded → release every
// line, once; the order can no longer be shipped. Duplicated webhooks
// and redelivered commits change nothing.
func TestPSPRefundOfPaidOrderReleasesItsStock(t *testing.T) {
	r := newRig(t)
	r.paid("o-1")
	r.refundAtPSP("o-1")
	m := r.mark()
	r.report("o-1")
	r.report("o-1") // the webhook, duplicated
	r.settle(m)
	o := r.order("o-1")
	if o.Status != order.StatusRefunded || !o.Refunded {
		t.Fatalf("order is %s (refunded %v), want refunded", o.Status, o.Refunded)
	}
	for _, sku := range []string{"A", "B"} {
		if s := r.sku(sku); holds(s, "o-1") || s.Committed.Has("o-1") || s.Available() != 10 {
			t.Errorf("%s: holds %v, sold %v, %d available; want released, 10", sku, holds(s, "o-1"), s.Committed.Has("o-1"), s.Available())
		}
	}
	got := r.events(m)
	for _, typ := range []string{"payment.refunded", "order.refunded", "inventory.released"} {
		want := 1
		if typ == "inventory.released" {
			want = 2
		}
		if n := count(got, typ); n != want {
			t.Errorf("%d %s, want %d: %v", n, typ, want, got)
		}
	}
	r.redeliver(m)
	r.report("o-1")
	if _, err := r.orders.Handle(r.ctx, command.Request[order.Command]{AggregateID: "o-1", Command: order.Ship{Carrier: "SF", TrackingNumber: "SF1"}}); !errors.Is(err, order.ErrNotShippable) {
		t.Fatalf("ship after the refund: %v, want order_not_shippable", err)
	}
}

// The refund's webhook overtakes the capture's handling: the order still
// waits for its payment when payment.refunded arrives, and becomes
// refunded all the same, its stock released.
func TestPSPRefundOvertakingTheCapture(t *testing.T) {
	r := newRig(t)
	r.pending("o-1")
	if _, err := r.sim.Approve(r.intent("o-1").ID); err != nil {
		t.Fatal(err)
	}
	r.refundAtPSP("o-1")
	m := r.mark()
	r.report("o-1") // records the capture and the refund
	r.settle(m)
	if o := r.order("o-1"); o.Status != order.StatusRefunded {
		t.Fatalf("order is %s, want refunded", o.Status)
	}
	if a := r.sku("A"); holds(a, "o-1") || a.Available() != 10 {
		t.Fatalf("A still holds stock for the refunded order")
	}
	r.redeliver(m)
}

// A refund the provider reports for a shipped order: the stock stays
// sold, the order stays shipped and gets one customer-service task.
func TestPSPRefundOfShippedOrderNeedsAttention(t *testing.T) {
	r := newRig(t)
	r.paid("o-1")
	m := r.mark()
	r.orderCmd("o-1", order.Ship{Carrier: "SF", TrackingNumber: "SF1"})
	r.settle(m)
	r.refundAtPSP("o-1")
	m = r.mark()
	r.report("o-1")
	r.settle(m)
	o := r.order("o-1")
	if o.Status != order.StatusShipped || o.Attention != events.AttentionRefundedAfterShipment || !o.Refunded {
		t.Fatalf("order is %s, attention %q, refunded %v; want shipped with %s", o.Status, o.Attention, o.Refunded, events.AttentionRefundedAfterShipment)
	}
	if a := r.sku("A"); !a.Committed.Has("o-1") || a.OnHand != 8 {
		t.Fatalf("A: sold to o-1 %v, on hand %d; want sold, 8", a.Committed.Has("o-1"), a.OnHand)
	}
	if got := r.events(m); count(got, "order.attention_required") != 1 || count(got, "inventory.released") != 0 {
		t.Fatalf("events after the refund: %v", got)
	}
	r.redeliver(m)
	r.report("o-1")
	if got := r.events(m); count(got, "order.attention_required") != 1 {
		t.Fatalf("a duplicated webhook opened another task: %v", got)
	}
}

func count(types []string, typ string) int {
	n := 0
	for _, t := range types {
		if t == typ {
			n++
		}
	}
	return n
}

// order.rejected → release every line.
func TestRejectedOrderReleasesEveryLine(t *testing.T) {
	r := newRig(t)
	r.define("A", 10)
	r.place("o-1", line{"A", 2})
	if _, err := r.stock.Handle(r.ctx, command.Request[inventory.Command]{AggregateID: "A", Command: inventory.Reserve{OrderID: "o-1", Qty: 2}}); err != nil {
		t.Fatal(err)
	}
	m := r.mark()
	r.orderCmd("o-1", order.Reject{Reason: process.ReasonOutOfStock, ShortSKUs: []string{"A"}})
	r.deliver(m, "order.rejected")
	if a := r.sku("A"); holds(a, "o-1") || a.Available() != 10 {
		t.Fatalf("A: holds for o-1 %v, %d available; want released, 10", holds(a, "o-1"), a.Available())
	}
}

// order.cancelled with a pending payment: release every line, void the
// payment at the PSP.
func TestCancelledOrderReleasesAndVoidsThePayment(t *testing.T) {
	r := newRig(t)
	r.pending("o-1")
	m := r.mark()
	r.cancel("o-1")
	r.deliver(m, "order.cancelled")
	for _, sku := range []string{"A", "B"} {
		if holds(r.sku(sku), "o-1") {
			t.Errorf("%s still holds stock for the cancelled order", sku)
		}
	}
	r.paymentEnds("o-1", psp.StatusVoided, payment.StatusVoided)
}

// order.cancelled with a captured payment: release, refund.
func TestCancelledPaidOrderIsRefunded(t *testing.T) {
	r := newRig(t)
	r.paid("o-1")
	m := r.mark()
	r.cancel("o-1")
	r.deliver(m, "order.cancelled")
	if holds(r.sku("A"), "o-1") {
		t.Error("A still holds stock for the cancelled order")
	}
	r.paymentEnds("o-1", psp.StatusRefunded, payment.StatusRefunded)
}

// order.shipped → inventory.Commit for every line.
func TestShippedOrderCommitsItsStock(t *testing.T) {
	r := newRig(t)
	r.paid("o-1")
	m := r.mark()
	r.orderCmd("o-1", order.Ship{Carrier: "SF", TrackingNumber: "SF123"})
	r.deliver(m, "order.shipped")
	for sku, qty := range map[string]int64{"A": 2, "B": 1} {
		s := r.sku(sku)
		if n, ok := s.Committed.Get("o-1"); !ok || n != qty || holds(s, "o-1") {
			t.Errorf("%s: committed %d (%v), still reserved %v; want %d committed", sku, n, ok, holds(s, "o-1"), qty)
		}
	}
}

// timer payment_timeout: the PSP says nobody paid → order.Cancel
// (payment_timeout).
func TestPaymentTimeoutCancelsAnUnpaidOrder(t *testing.T) {
	r := newRig(t)
	r.pending("o-1")
	r.fire(r.timer("payment_timeout", "o-1"))
	if o := r.order("o-1"); o.Status != order.StatusCancelled || o.CancelReason != process.ReasonPaymentTimeout {
		t.Fatalf("order is %s (%s), want cancelled (payment_timeout)", o.Status, o.CancelReason)
	}
}

// timer payment_timeout after a capture whose webhook was lost: the PSP
// is asked first, the capture recorded, and the order not cancelled.
func TestPaymentTimeoutAfterALostCaptureDoesNotCancel(t *testing.T) {
	r := newRig(t)
	r.pending("o-1")
	if _, err := r.sim.Approve(r.intent("o-1").ID); err != nil { // no webhook
		t.Fatal(err)
	}
	m := r.mark()
	r.fire(r.timer("payment_timeout", "o-1"))
	if p := r.payment("o-1"); p.Status != payment.StatusCaptured {
		t.Fatalf("payment is %s, want captured", p.Status)
	}
	if o := r.order("o-1"); o.Status != order.StatusPaymentPending {
		t.Fatalf("order is %s, want payment_pending until payment.captured is handled", o.Status)
	}
	r.deliver(m, "payment.captured")
	if o := r.order("o-1"); o.Status != order.StatusPaid {
		t.Fatalf("order is %s, want paid", o.Status)
	}
}

// timer payment_reconcile: ask the PSP about a pending payment; ask
// again later while it stays pending.
func TestReconcileAsksAgainWhilePending(t *testing.T) {
	r := newRig(t)
	r.pending("o-1")
	pid := process.PaymentIDFor("o-1")
	first := r.timer("payment_reconcile", pid)
	r.now = first.At.Add(time.Second)
	m := r.mark()
	r.fire(first)
	if evs := r.events(m); len(evs) != 0 {
		t.Fatalf("a pending payment reconciled into %v, want nothing", evs)
	}
	if next := r.timer("payment_reconcile", pid); !next.At.Equal(r.now.Add(reconcileAfter)) {
		t.Fatalf("next check at %s, want %s", next.At, r.now.Add(reconcileAfter))
	}
}

// timer payment_reconcile after a capture whose webhook was lost: the
// capture is recorded.
func TestReconcileRecordsALostCapture(t *testing.T) {
	r := newRig(t)
	r.pending("o-1")
	if _, err := r.sim.Approve(r.intent("o-1").ID); err != nil {
		t.Fatal(err)
	}
	r.fire(r.timer("payment_reconcile", process.PaymentIDFor("o-1")))
	if p := r.payment("o-1"); p.Status != payment.StatusCaptured {
		t.Fatalf("payment is %s, want captured", p.Status)
	}
}

// A redelivered event changes nothing the first delivery did.
func TestRedeliveredEventsAppendNothing(t *testing.T) {
	r := newRig(t)
	r.define("A", 10)
	m := r.mark()
	r.place("o-1", line{"A", 1})
	r.settle(m)
	again := r.mark()
	for _, rec := range r.since(m) {
		if err := r.handle(rec); err != nil {
			t.Fatal(err)
		}
	}
	if evs := r.events(again); len(evs) != 0 {
		t.Fatalf("redelivery appended %v", evs)
	}
}
