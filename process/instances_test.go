package process_test

import (
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/process"
)

// secondInstance is another orderd on the rig's log: handlers and a
// checkout of its own. With pinned consumers (decision 024) its checkout
// may hold the payments or the timers lane while the rig's checkout
// holds the orders lane; its orders handler knows an order only as far
// as this instance itself read or appended it.
type secondInstance struct {
	orders   *command.Handler[order.State, order.Command]
	checkout *process.Checkout
}

func (r *rig) secondInstance() *secondInstance {
	r.t.Helper()
	orders, err := command.NewHandler(order.Decider(), r.log, r.reg, command.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	stock, err := command.NewHandler(inventory.Decider(), r.log, r.reg, command.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	payments, err := command.NewHandler(payment.Decider(), r.log, r.reg, command.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	sync, err := process.NewPaymentSync(payments, r.log, "sim", nil)
	if err != nil {
		r.t.Fatal(err)
	}
	checkout, err := process.NewCheckout(process.CheckoutConfig{
		Orders: orders, Inventory: stock, Payments: payments, PSP: r.client, Sync: sync, Timers: r.log,
		PaymentTimeout: paymentTimeout, ReconcileAfter: reconcileAfter,
		Now: func() time.Time { return r.now },
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return &secondInstance{orders: orders, checkout: checkout}
}

// pendingPlacedElsewhere is pending, with the order placed through the
// second instance's API: that instance's orders handler knows the order
// as placed, and the rig's checkout (the orders lane) carries it to
// payment_pending.
func (r *rig) pendingPlacedElsewhere(id string) *secondInstance {
	r.t.Helper()
	b := r.secondInstance()
	r.define("A", 10)
	m := r.mark()
	r.placeVia(b.orders, id, line{"A", 2})
	r.settle(m)
	if st := r.order(id).Status; st != order.StatusPaymentPending {
		r.t.Fatalf("set-up: order %s is %s, want payment_pending", id, st)
	}
	return b
}

func (b *secondInstance) deliver(r *rig, m mark, eventType string) {
	r.t.Helper()
	for _, rec := range r.since(m) {
		for _, ev := range rec.Commit.Events {
			if ev.Type != eventType {
				continue
			}
			evs, err := r.reg.DecodeAll(rec.Commit)
			if err != nil {
				r.t.Fatal(err)
			}
			if err := b.checkout.Handle(r.ctx, process.Message{Stream: rec.Stream, Seq: rec.Seq, Commit: rec.Commit, Events: evs}); err != nil {
				r.t.Fatalf("second instance's checkout on %s: %v", eventType, err)
			}
			return
		}
	}
	r.t.Fatalf("no %s appended since %v", eventType, m)
}

func (b *secondInstance) fire(r *rig, tm eventlog.Timer) {
	r.t.Helper()
	if err := b.checkout.Handle(r.ctx, process.Message{Stream: "TIMERS", Timer: &eventlog.FiredTimer{Owner: tm.Owner, Kind: tm.Kind, Key: tm.Key, Data: tm.Data}}); err != nil {
		r.t.Fatalf("second instance's checkout on timer %s %s: %v", tm.Kind, tm.Key, err)
	}
}

// payment.captured handled on the instance whose API placed the order:
// its handler still knows the order as placed, but the order waits for
// this payment and is marked paid. (The checkout took the stale state
// for the log's, did nothing, and the order waited for its payment for
// ever: the capture was recorded, so neither a reconciliation nor the
// timeout acted on it.)
func TestCaptureOnTheInstanceThatPlacedTheOrderMarksItPaid(t *testing.T) {
	r := newRig(t)
	b := r.pendingPlacedElsewhere("o-1")
	if _, err := r.sim.Approve(r.intent("o-1").ID); err != nil {
		t.Fatal(err)
	}
	m := r.mark()
	r.report("o-1")
	b.deliver(r, m, "payment.captured")
	if o := r.order("o-1"); o.Status != order.StatusPaid {
		t.Fatalf("order is %s, want paid", o.Status)
	}
}

// The payment timeout fired on the instance whose API placed the order
// cancels it: nobody paid.
func TestPaymentTimeoutOnTheInstanceThatPlacedTheOrderCancelsIt(t *testing.T) {
	r := newRig(t)
	b := r.pendingPlacedElsewhere("o-1")
	b.fire(r, r.timer("payment_timeout", "o-1"))
	if o := r.order("o-1"); o.Status != order.StatusCancelled || o.CancelReason != process.ReasonPaymentTimeout {
		t.Fatalf("order is %s (%s), want cancelled (payment_timeout)", o.Status, o.CancelReason)
	}
}

// A reconciliation on the instance whose API placed the order asks the
// provider, records the capture whose webhook was lost, and checks
// nothing again.
func TestReconcileOnTheInstanceThatPlacedTheOrderRecordsALostCapture(t *testing.T) {
	r := newRig(t)
	b := r.pendingPlacedElsewhere("o-1")
	if _, err := r.sim.Approve(r.intent("o-1").ID); err != nil { // no webhook
		t.Fatal(err)
	}
	pid := process.PaymentIDFor("o-1")
	first := r.timer("payment_reconcile", pid)
	r.now = first.At.Add(time.Second)
	m := r.mark()
	b.fire(r, first)
	if p := r.payment("o-1"); p.Status != payment.StatusCaptured {
		t.Fatalf("payment is %s, want captured", p.Status)
	}
	b.deliver(r, m, "payment.captured")
	if o := r.order("o-1"); o.Status != order.StatusPaid {
		t.Fatalf("order is %s, want paid", o.Status)
	}
	if again := r.timer("payment_reconcile", pid); !again.At.Equal(first.At) {
		t.Fatalf("a next check was set at %s for a captured payment", again.At)
	}
}
