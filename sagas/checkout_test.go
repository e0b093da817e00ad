package sagas_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/inventory"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/process"
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
	pid := process.PaymentIDFor(id)
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
	// A shipped order can be neither cancelled nor shipped again (the
	// same shipment repeated is an idempotent retry); the log is
	// unchanged by the refusals.
	before := e.seqs()
	if r := e.do("POST", "/v1/orders/"+id+"/cancel", e.token("cust-1", auth.RoleCustomer), nil); r.status != 422 || errCode(r) != "order_already_shipped" {
		t.Fatalf("cancel a shipped order: %d %s, want 422 order_already_shipped", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/orders/"+id+"/ship", e.admin, map[string]any{"carrier": "EMS", "tracking_number": "EMS2"}); r.status != 422 || errCode(r) != "order_already_shipped" {
		t.Fatalf("ship a shipped order again: %d %s, want 422 order_already_shipped", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/orders/"+id+"/ship", e.admin, map[string]any{"carrier": "SF", "tracking_number": "SF1"}); r.status != 200 {
		t.Fatalf("repeat the same shipment: %d %s, want 200 (already so)", r.status, r.raw)
	}
	if after := e.seqs(); after != before {
		t.Fatalf("refused commands changed the log: %s -> %s", before, after)
	}
	if r := e.do("POST", "/v1/orders/"+id+"/deliver", e.admin, map[string]any{}); r.status != 202 {
		t.Fatalf("deliver: %d %s", r.status, r.raw)
	}
	e.waitOrder(id, order.StatusDelivered)
	if r := e.do("POST", "/v1/orders/"+id+"/ship", e.admin, map[string]any{"carrier": "SF", "tracking_number": "SF1"}); r.status != 200 || r.body["status"] != "delivered" {
		t.Fatalf("repeat the shipment of a delivered order: %d %s, want 200 delivered (already so)", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/orders/"+id+"/ship", e.admin, map[string]any{"carrier": "SF", "tracking_number": "SF9"}); r.status != 422 || errCode(r) != "order_already_shipped" {
		t.Fatalf("ship a delivered order with another number: %d %s, want 422 order_already_shipped", r.status, r.raw)
	}
}

func errCode(r response) string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestCancelledOrderCannotBeShipped: a cancelled order gets 422 for ship
// (and deliver), and nothing is committed from its stock.
func TestCancelledOrderCannotBeShipped(t *testing.T) {
	e := newEnv(t, envOptions{simMode: pspsim.ModeManual})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 2})
	e.waitOrder(id, order.StatusPaymentPending)
	if r := e.do("POST", "/v1/orders/"+id+"/cancel", e.token("cust-1", auth.RoleCustomer), map[string]any{"reason": "no"}); r.status != 202 {
		t.Fatalf("cancel: %d %s", r.status, r.raw)
	}
	waitFor(t, "stock released and payment voided", func() bool {
		s, _ := e.sku("TEA")
		p, _ := e.payment(process.PaymentIDFor(id))
		return s.Reserved == 0 && p.Status == payment.StatusVoided
	})
	before := e.seqs()
	if r := e.do("POST", "/v1/orders/"+id+"/ship", e.admin, map[string]any{"carrier": "SF", "tracking_number": "SF9"}); r.status != 422 || errCode(r) != "order_not_shippable" {
		t.Fatalf("ship a cancelled order: %d %s, want 422 order_not_shippable", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/orders/"+id+"/deliver", e.admin, map[string]any{}); r.status != 422 {
		t.Fatalf("deliver a cancelled order: %d %s, want 422", r.status, r.raw)
	}
	if after := e.seqs(); after != before {
		t.Fatalf("refused commands changed the log: %s -> %s", before, after)
	}
	if tea, _ := e.sku("TEA"); tea.Sold != 0 || tea.OnHand != 10 {
		t.Fatalf("TEA %+v: a cancelled order sold stock", tea)
	}
}

// TestAPIAndSagasOnSeparateInstances runs the API (and the webhook) with
// command handlers of their own, as with ORDO_ROLES=api and
// ORDO_ROLES=sagas on two instances: the checkout's cached states never
// see the API's commits by themselves. Orders must still be paid,
// shipped, delivered, and a paid order cancelled by the customer
// refunded. (The checkout used to read the payment from its cache while
// handling payment.captured, find it "requested", and never mark the
// order paid; the same race, rarer, existed in one instance.)
func TestAPIAndSagasOnSeparateInstances(t *testing.T) {
	e := newEnv(t, envOptions{separateAPI: true})
	e.putSKU("TEA", 1999, 10)
	kept := e.place("cust-1", "k1", line{"TEA", 2})
	back := e.place("cust-2", "k2", line{"TEA", 3})
	e.waitOrder(kept, order.StatusPaid)
	e.waitOrder(back, order.StatusPaid)

	if r := e.do("POST", "/v1/orders/"+kept+"/ship", e.admin, map[string]any{"carrier": "SF", "tracking_number": "SF1"}); r.status != 202 {
		t.Fatalf("ship: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/orders/"+back+"/cancel", e.token("cust-2", auth.RoleCustomer), map[string]any{"reason": "no"}); r.status != 202 {
		t.Fatalf("cancel: %d %s", r.status, r.raw)
	}
	e.waitOrder(back, order.StatusRefunded)
	waitFor(t, "stock sold and released", func() bool {
		s, _ := e.sku("TEA")
		return s.Sold == 2 && s.Reserved == 0
	})
	if r := e.do("POST", "/v1/orders/"+kept+"/deliver", e.admin, map[string]any{}); r.status != 202 {
		t.Fatalf("deliver: %d %s", r.status, r.raw)
	}
	e.waitOrder(kept, order.StatusDelivered)
	p, _ := e.payment(process.PaymentIDFor(back))
	if in, err := e.client.Intent(t.Context(), p.IntentID); err != nil || in.Status != psp.StatusRefunded || in.Refunded != in.Amount.Amount {
		t.Fatalf("intent of the cancelled order: %+v %v, want refunded in full", in, err)
	}
}

func TestShortOrderIsRejectedAndReleasesWhatItHeld(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.putSKU("TEA", 1999, 10)
	e.putSKU("CUP", 500, 1)
	id := e.place("cust-1", "k1", line{"TEA", 4}, line{"CUP", 2})

	o := e.waitOrder(id, order.StatusRejected)
	if o.RejectReason != process.ReasonOutOfStock {
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
	if p, _ := e.payment(process.PaymentIDFor(id)); p.Exists {
		t.Fatalf("a rejected order has payment %+v", p)
	}
}

func TestPaymentTimeoutCancelsReleasesAndVoids(t *testing.T) {
	e := newEnv(t, envOptions{simMode: pspsim.ModeManual, paymentTimeout: 2 * time.Second})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 3})
	e.waitOrder(id, order.StatusPaymentPending)

	o := e.waitOrder(id, order.StatusCancelled)
	if o.CancelReason != process.ReasonPaymentTimeout {
		t.Fatalf("cancel reason %q, want %q", o.CancelReason, process.ReasonPaymentTimeout)
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

// TestTimeoutSurvivesRuntimeRestart sets a payment timeout, kills the
// runtime after the timer was stored and before it fires, lets it fire
// while no runtime runs, and starts a new runtime: the order ends
// cancelled, its stock released and its intent voided at the PSP.
func TestTimeoutSurvivesRuntimeRestart(t *testing.T) {
	e := newEnv(t, envOptions{simMode: pspsim.ModeManual, paymentTimeout: 3 * time.Second})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 1})
	e.waitOrder(id, order.StatusPaymentPending)
	sched, fired := "timer.sched.checkout.payment_timeout."+id, "timer.fire.checkout.payment_timeout."+id
	waitFor(t, "the payment timeout to be scheduled", func() bool { return e.timerMessage(sched) })
	if e.timerMessage(fired) {
		t.Fatal("the timeout fired before the runtime was killed; the test proves nothing")
	}
	e.killRuntime()
	// The timer is in JetStream, not in the runtime: it fires while no
	// runtime runs, and nothing acts on it until one starts.
	waitFor(t, "the timer to fire with no runtime running", func() bool { return e.timerMessage(fired) })
	if s, _ := e.order(id); s.Status != order.StatusPaymentPending {
		t.Fatalf("order is %s while no runtime ran", s.Status)
	}
	e.startRuntime()
	o := e.waitOrder(id, order.StatusCancelled)
	if o.CancelReason != process.ReasonPaymentTimeout {
		t.Fatalf("cancel reason %q", o.CancelReason)
	}
	waitFor(t, "payment voided and stock released", func() bool {
		p, _ := e.payment(o.PaymentID)
		s, _ := e.sku("TEA")
		return p.Status == payment.StatusVoided && s.Reserved == 0
	})
	tea, _ := e.sku("TEA")
	if tea.OnHand != 10 || ledgerQty(tea.Released, id) != 1 {
		t.Fatalf("TEA %+v: want 10 on hand and the order's unit released", tea)
	}
	p, _ := e.payment(o.PaymentID)
	if in, err := e.client.Intent(t.Context(), p.IntentID); err != nil || in.Status != psp.StatusVoided {
		t.Fatalf("intent at the PSP: %+v %v, want voided", in, err)
	}
}

// TestTimeoutAfterACaptureDoesNotCancel: the capture webhook is recorded
// while no runtime runs and the payment timeout fires meanwhile; when a
// runtime starts, the timer and payment.captured are handled in either
// order, and the order must end paid, not cancelled and refunded.
func TestTimeoutAfterACaptureDoesNotCancel(t *testing.T) {
	e := newEnv(t, envOptions{simMode: pspsim.ModeManual, paymentTimeout: 2 * time.Second})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 1})
	o := e.waitOrder(id, order.StatusPaymentPending)
	waitFor(t, "the payment timeout to be scheduled", func() bool {
		return e.timerMessage("timer.sched.checkout.payment_timeout." + id)
	})
	e.killRuntime()
	p, _ := e.payment(o.PaymentID)
	if _, err := e.sim.Approve(p.IntentID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the webhook to record the capture", func() bool {
		p, _ := e.payment(o.PaymentID)
		return p.Status == payment.StatusCaptured
	})
	waitFor(t, "the timeout to fire", func() bool { return e.timerMessage("timer.fire.checkout.payment_timeout." + id) })
	e.startRuntime()
	e.waitOrder(id, order.StatusPaid, order.StatusCancelled, order.StatusRefunded)
	waitFor(t, "the checkout to settle", func() bool {
		s := e.seqs()
		time.Sleep(300 * time.Millisecond)
		return s == e.seqs()
	})
	if s, commits := e.order(id); s.Status != order.StatusPaid {
		t.Fatalf("order is %s (%v), want paid: the shopper paid before the timeout", s.Status, eventTypes(commits))
	}
}

func TestDeclinedPaymentCancelsAndReleases(t *testing.T) {
	e := newEnv(t, envOptions{faults: psp.Faults{Decline: 1}})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 2})
	o := e.waitOrder(id, order.StatusCancelled)
	if o.CancelReason != process.ReasonPaymentFailed {
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
	// payment.refunded comes first and causes order.refunded.
	_, ocommits := e.order(id)
	var payRefunded, orderRefunded *events.Commit
	for _, c := range pcommits {
		if slices.Contains(eventTypes([]*events.Commit{c}), "payment.refunded") {
			payRefunded = c
		}
	}
	for _, c := range ocommits {
		if slices.Contains(eventTypes([]*events.Commit{c}), "order.refunded") {
			orderRefunded = c
		}
	}
	if payRefunded == nil || orderRefunded == nil || orderRefunded.Metadata.CausationID != payRefunded.CommitID {
		t.Fatalf("payment.refunded %+v, order.refunded %+v: want order.refunded caused by payment.refunded", payRefunded, orderRefunded)
	}
	if got := eventTypes(ocommits); !reflect.DeepEqual(got, []string{"order.placed", "order.stock_reserved", "order.payment_requested", "order.paid", "order.cancelled", "order.refunded"}) {
		t.Fatalf("order events %v", got)
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
	e := newEnv(t, envOptions{simMode: pspsim.ModeManual, faults: psp.Faults{Loss: 1}})
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

// TestLateCaptureWebhookIsRefunded: the customer cancels while no
// runtime runs (so nothing voids the intent), then the shopper's payment
// goes through at the PSP and its webhook arrives after the cancellation
// and records the capture. When the runtime comes back, the captured
// payment of the cancelled order is refunded in full automatically, the
// order ends refunded and its stock is released.
func TestLateCaptureWebhookIsRefunded(t *testing.T) {
	e := newEnv(t, envOptions{simMode: pspsim.ModeManual})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 2})
	o := e.waitOrder(id, order.StatusPaymentPending)
	waitFor(t, "the payment timeout to be scheduled", func() bool {
		return e.timerMessage("timer.sched.checkout.payment_timeout." + id)
	})
	e.killRuntime()
	if r := e.do("POST", "/v1/orders/"+id+"/cancel", e.token("cust-1", auth.RoleCustomer), map[string]any{"reason": "too slow"}); r.status != 202 || r.body["status"] != "cancelled" {
		t.Fatalf("cancel: %d %s", r.status, r.raw)
	}
	p, _ := e.payment(o.PaymentID)
	if _, err := e.sim.Approve(p.IntentID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the late webhook to record the capture", func() bool {
		p, _ := e.payment(o.PaymentID)
		return p.Status == payment.StatusCaptured
	})
	if s, _ := e.order(id); s.Status != order.StatusCancelled {
		t.Fatalf("order is %s when the late capture arrives, want cancelled", s.Status)
	}
	_, pcommits := e.payment(o.PaymentID)
	if c := pcommits[len(pcommits)-1]; !strings.HasPrefix(c.Metadata.CausationID, "psp-event:") {
		t.Fatalf("the capture was caused by %q, want the webhook", c.Metadata.CausationID)
	}

	e.startRuntime()
	e.waitOrder(id, order.StatusRefunded)
	p, pcommits = e.payment(o.PaymentID)
	if got, want := eventTypes(pcommits), []string{"payment.requested", "payment.captured", "payment.refunded"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("payment events %v, want %v", got, want)
	}
	in, err := e.client.Intent(t.Context(), p.IntentID)
	if err != nil || in.Status != psp.StatusRefunded || in.Refunded != in.Amount.Amount || in.Amount != p.Amount {
		t.Fatalf("intent at the PSP: %+v %v, want refunded in full (%s)", in, err, p.Amount)
	}
	waitFor(t, "stock released", func() bool { s, _ := e.sku("TEA"); return s.Reserved == 0 })
	if tea, _ := e.sku("TEA"); tea.OnHand != 10 || tea.Sold != 0 {
		t.Fatalf("TEA %+v", tea)
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
	// The capture was recorded by the reconciliation timer asking the PSP.
	_, pcommits := e.payment(process.PaymentIDFor(id))
	if got := eventTypes(pcommits); !reflect.DeepEqual(got, []string{"payment.requested", "payment.captured"}) {
		t.Fatalf("payment events %v", got)
	}
	if c := pcommits[1].Metadata.CausationID; !strings.HasPrefix(c, "timer:payment_reconcile:") {
		t.Fatalf("the capture was caused by %q, want the reconciliation timer", c)
	}
}

func ledgerQty(l inventory.Ledger, orderID string) int64 {
	q, _ := l.Get(orderID)
	return q
}

// lostCreateAnswer is a PSP client whose first CreateIntent reaches the
// PSP (the intent is made) but whose answer is lost; before the error
// comes back, then runs (the customer cancels, say).
type lostCreateAnswer struct {
	psp.Client
	then func()
	once sync.Once
}

func (l *lostCreateAnswer) CreateIntent(ctx context.Context, req psp.CreateIntentRequest, key string) (psp.Intent, error) {
	in, err := l.Client.CreateIntent(ctx, req, key)
	lost := false
	l.once.Do(func() { lost = true; l.then() })
	if lost && err == nil {
		return psp.Intent{}, errors.New("connection reset by peer (the intent was made)")
	}
	return in, err
}

// TestIntentMadeButNotRecordedIsSettled: the PSP made the intent (and,
// approving at once, captured it) but its answer was lost, and the
// customer cancelled before the step was retried. The retry must not
// walk away from the money: it finds the same intent under the same
// idempotency key, records it, and refunds it in full.
func TestIntentMadeButNotRecordedIsSettled(t *testing.T) {
	var e *env
	var id string
	wrap := func(c psp.Client) psp.Client {
		return &lostCreateAnswer{Client: c, then: func() {
			r := e.do("POST", "/v1/orders/"+id+"/cancel", e.token("cust-1", auth.RoleCustomer), map[string]any{"reason": "changed my mind"})
			if r.status != 202 {
				t.Errorf("cancel: %d %s", r.status, r.raw)
			}
		}}
	}
	e = newEnv(t, envOptions{simMode: pspsim.ModeAuto, noRuntime: true, pspWrap: wrap})
	e.putSKU("TEA", 1999, 10)
	id = e.place("cust-1", "k1", line{"TEA", 1})
	e.startRuntime()

	pid := process.PaymentIDFor(id)
	waitFor(t, "the payment to be settled", func() bool {
		p, _ := e.payment(pid)
		return p.Status == payment.StatusRefunded || p.Status == payment.StatusVoided
	})
	p, pcommits := e.payment(pid)
	in, err := e.client.Intent(t.Context(), p.IntentID)
	if err != nil {
		t.Fatal(err)
	}
	switch in.Status {
	case psp.StatusRefunded:
		if in.Refunded != in.Amount.Amount || p.Status != payment.StatusRefunded {
			t.Fatalf("intent %+v, payment %s %v: want refunded in full", in, p.Status, eventTypes(pcommits))
		}
	case psp.StatusVoided:
		if p.Status != payment.StatusVoided {
			t.Fatalf("intent voided, payment %s %v", p.Status, eventTypes(pcommits))
		}
	default:
		t.Fatalf("intent at the PSP is %s after the order was cancelled (payment events %v)", in.Status, eventTypes(pcommits))
	}
	o := e.waitOrder(id, order.StatusCancelled, order.StatusRefunded)
	if o.Status == order.StatusPaid {
		t.Fatalf("order %s", o.Status)
	}
	waitFor(t, "stock released", func() bool { s, _ := e.sku("TEA"); return s.Reserved == 0 })
}
