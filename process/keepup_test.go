package process_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/process"
)

// countingPSP counts the status lookups a checkout makes.
type countingPSP struct {
	psp.Client
	lookups atomic.Int32
}

func (c *countingPSP) Intent(ctx context.Context, id string) (psp.Intent, error) {
	c.lookups.Add(1)
	return c.Client.Intent(ctx, id)
}

// Every line of an order is tried, in parallel: with two SKUs short the
// rejection names both, and what the third held is released.
func TestOrderPlacedTriesEveryLineAndNamesEveryShortSKU(t *testing.T) {
	r := newRig(t)
	r.define("A", 10)
	r.define("B", 0)
	r.define("C", 0)
	m := r.mark()
	r.place("o-1", line{"A", 2}, line{"B", 1}, line{"C", 1})
	r.deliver(m, "order.placed")
	if o := r.order("o-1"); o.Status != order.StatusRejected {
		t.Fatalf("order is %s, want rejected", o.Status)
	}
	var short []string
	for _, rec := range r.since(m) {
		evs, err := r.reg.DecodeAll(rec.Commit)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if rej, ok := ev.(events.OrderRejected); ok {
				short = rej.ShortSKUs
			}
		}
	}
	if !slices.Equal(short, []string{"B", "C"}) {
		t.Fatalf("rejected with short SKUs %v, want [B C]", short)
	}
	if a := r.sku("A"); a.Available() != 10 || holds(a, "o-1") {
		t.Fatalf("A has %d available and holds for o-1: %v; want 10, nothing held", a.Available(), holds(a, "o-1"))
	}
}

// A reconciliation of a payment whose capture another instance recorded
// (this checkout's handler has not seen it) asks the PSP nothing, sets no
// next check and appends nothing: the capture's own events decide. A
// payment really still pending is asked about once and checked again
// later.
func TestReconcileOfASettledPaymentAddsNoWork(t *testing.T) {
	r := newRig(t)
	r.pending("o-1")
	pid := process.PaymentIDFor("o-1")
	first := r.timer("payment_reconcile", pid)
	counting := &countingPSP{Client: r.client}
	checkout, err := process.NewCheckout(process.CheckoutConfig{
		Orders: r.orders, Inventory: r.stock, Payments: r.payments, PSP: counting, Sync: r.sync, Timers: r.log,
		PaymentTimeout: paymentTimeout, ReconcileAfter: reconcileAfter,
		Now: func() time.Time { return r.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	fire := func(tm eventlog.Timer) {
		t.Helper()
		if err := checkout.Handle(r.ctx, process.Message{Stream: "TIMERS", Timer: &eventlog.FiredTimer{Owner: tm.Owner, Kind: tm.Kind, Key: tm.Key, Data: tm.Data}}); err != nil {
			t.Fatal(err)
		}
	}
	// Still pending: one lookup, and a next check.
	r.now = first.At.Add(time.Second)
	fire(first)
	next := r.timer("payment_reconcile", pid)
	if counting.lookups.Load() != 1 || !next.At.Equal(r.now.Add(reconcileAfter)) {
		t.Fatalf("pending payment: %d lookups, next check at %s; want 1 and %s", counting.lookups.Load(), next.At, r.now.Add(reconcileAfter))
	}
	// Captured, recorded through another instance's handler.
	if _, err := r.sim.Approve(r.intent("o-1").ID); err != nil {
		t.Fatal(err)
	}
	other, err := command.NewHandler(payment.Decider(), r.log, r.reg, command.Options{})
	if err != nil {
		t.Fatal(err)
	}
	otherSync, err := process.NewPaymentSync(other, r.log, "sim", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := otherSync.Apply(r.ctx, r.intent("o-1"), "webhook-elsewhere"); err != nil {
		t.Fatal(err)
	}
	m := r.mark()
	r.now = next.At.Add(time.Second)
	fire(next)
	if n := counting.lookups.Load(); n != 1 {
		t.Fatalf("the PSP was asked %d times, want 1 (not again for a recorded capture)", n)
	}
	if evs := r.events(m); len(evs) != 0 {
		t.Fatalf("reconciling a recorded capture appended %v", evs)
	}
	if again := r.timer("payment_reconcile", pid); !again.At.Equal(next.At) {
		t.Fatalf("a next check was set at %s for a captured payment", again.At)
	}
}
