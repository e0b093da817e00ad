package sagas_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/audit"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/psp"
)

// appendRaw appends a commit with the given events to an aggregate,
// bypassing the deciders, so a test can write a log the system would
// never write.
func (e *env) appendRaw(aggType, id, commitID, causation, actor string, evs ...events.Payload) {
	e.t.Helper()
	ctx := context.Background()
	last, ok, err := e.store.Last(ctx, aggType, id)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &events.Commit{
		CommitID: commitID, AggregateType: aggType, AggregateID: id, Version: 1,
		Metadata: events.Metadata{CausationID: causation, CorrelationID: id, Actor: actor, RecordedAt: time.Now().UTC()},
	}
	var prevHash string
	var expected uint64
	if ok {
		c.Version = last.Commit.LastVersion() + 1
		prevHash, expected = last.Commit.Hash, last.Seq
	}
	for _, p := range evs {
		ev, err := e.reg.Encode(p)
		if err != nil {
			e.t.Fatal(err)
		}
		c.Events = append(c.Events, ev)
	}
	if err := c.Seal(prevHash); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.Append(ctx, c, expected); err != nil {
		e.t.Fatalf("append %s %s: %v", aggType, id, err)
	}
}

// pspIntents is a PSP that holds the given intents.
type pspIntents []psp.Intent

func (p pspIntents) Intents() []psp.Intent { return p }

// TestInvariantChecksCatchViolations writes a log with one violation of
// each kind the randomized test checks and makes sure
// audit.CheckInvariants, as the test runs it on a settled shop, reports
// every one: an invariant check that cannot fail proves nothing.
func TestInvariantChecksCatchViolations(t *testing.T) {
	e := newEnv(t, envOptions{noRuntime: true})
	cny := func(n int64) events.Money { return events.Money{Amount: n, Currency: "CNY"} }
	place := func(id string, sku string, qty int64) {
		e.appendRaw(eventlog.TypeOrder, id, "place-"+id, "", "customer:c", events.OrderPlaced{
			OrderID: id, CustomerID: "c", Customer: events.Customer{Name: "A", Email: "a@example.com"},
			Lines:           []events.OrderLine{{SKU: sku, Qty: qty, UnitPrice: cny(100)}},
			ShippingAddress: events.Address{Line1: "1 Rd", City: "X", Country: "CN"}, Total: cny(100 * qty),
		})
	}
	adjust := func(sku string, delta, onHand int64) {
		e.appendRaw(eventlog.TypeInventory, sku, "adj-"+sku+"-"+time.Now().Format(time.RFC3339Nano), "", "admin:ops",
			events.InventoryStockAdjusted{SKU: sku, Delta: delta, OnHand: onHand})
	}
	const checkout = "sagas:checkout"

	// ord-a: placed, and left so (order.intermediate); SKU-A reserves
	// 3 for it and 3 for ord-b with 5 on hand (stock.oversold), and both
	// stay reserved (stock.reserved).
	place("ord-a", "SKU-A", 3)
	place("ord-b", "SKU-A", 3)
	adjust("SKU-A", 5, 5)
	e.appendRaw(eventlog.TypeInventory, "SKU-A", "r1", "place-ord-a", checkout, events.InventoryReserved{SKU: "SKU-A", OrderID: "ord-a", Qty: 3})
	e.appendRaw(eventlog.TypeInventory, "SKU-A", "r2", "place-ord-b", checkout, events.InventoryReserved{SKU: "SKU-A", OrderID: "ord-b", Qty: 3})

	// SKU-B: the test put in 10 but the adjustments add up to 12
	// (stock.adjustments), and its on-hand after an adjustment disagrees
	// with the deltas (stock.on_hand); it sells 1 for ord-c, which never
	// shipped (stock.sold_unshipped), and reserves twice for ord-c from
	// the same cause (command.applied_twice).
	adjust("SKU-B", 12, 11)
	place("ord-c", "SKU-B", 1)
	e.appendRaw(eventlog.TypeInventory, "SKU-B", "r3", "place-ord-c", checkout, events.InventoryReserved{SKU: "SKU-B", OrderID: "ord-c", Qty: 1})
	e.appendRaw(eventlog.TypeInventory, "SKU-B", "c3", "ship-ord-c", checkout, events.InventoryCommitted{SKU: "SKU-B", OrderID: "ord-c", Qty: 1})
	e.appendRaw(eventlog.TypeInventory, "SKU-B", "r4", "place-ord-c", checkout, events.InventoryReserved{SKU: "SKU-B", OrderID: "ord-c", Qty: 1})
	e.appendRaw(eventlog.TypeInventory, "SKU-B", "x4", "place-ord-c", checkout, events.InventoryReleased{SKU: "SKU-B", OrderID: "ord-c", Qty: 1})
	e.appendRaw(eventlog.TypeOrder, "ord-c", "cancel-c", "", "customer:c", events.OrderCancelled{OrderID: "ord-c", Reason: "x", CancelledBy: "customer"})

	// pay-d: captured for ord-d, which is cancelled, and never refunded
	// (payment.kept); its causation names nothing (command.causation).
	place("ord-d", "SKU-B", 1)
	e.appendRaw(eventlog.TypeOrder, "ord-d", "cancel-d", "", "customer:c", events.OrderCancelled{OrderID: "ord-d", Reason: "x", CancelledBy: "customer"})
	e.appendRaw(eventlog.TypePayment, "pay-d", "p1", "no-such-cause", checkout, events.PaymentRequested{PaymentID: "pay-d", OrderID: "ord-d", Amount: cny(100), Provider: "sim", IntentID: "pi_d"})
	e.appendRaw(eventlog.TypePayment, "pay-d", "p2", "psp-event:evt_1", "psp:sim", events.PaymentCaptured{PaymentID: "pay-d", Amount: cny(100)})
	// pay-e: left requested (payment.pending).
	e.appendRaw(eventlog.TypePayment, "pay-e", "p3", "place-ord-a", checkout, events.PaymentRequested{PaymentID: "pay-e", OrderID: "ord-a", Amount: cny(300), Provider: "sim", IntentID: "pi_e"})

	rep := checkLog(t, e, audit.InvariantOptions{
		Orders:         []string{"ord-a", "ord-b", "ord-c", "ord-d", "ord-never-written"}, // order.missing
		StockIn:        map[string]int64{"SKU-A": 5, "SKU-B": 10},
		ReportedOnHand: map[string]int64{"SKU-A": 4}, // the API says 4, the log 5 (stock.on_hand)
		// The PSP holds money for cancelled ord-d (psp.money).
		PSP:         pspIntents{{ID: "pi_d", Reference: "pay-d", OrderID: "ord-d", Amount: cny(100), Status: psp.StatusCaptured}},
		DeadLetters: func(context.Context) (int, error) { return 1, nil }, // dlq
	})
	t.Log("\n" + rep.Summary())
	for _, v := range rep.Violations {
		t.Log(v)
	}
	n := rep.ByInvariant()
	for _, inv := range []string{
		"stock.oversold", "stock.on_hand", "stock.adjustments", "stock.reserved", "stock.sold_unshipped",
		"order.intermediate", "order.missing", "payment.kept", "payment.pending", "psp.money",
		"command.applied_twice", "command.causation", "dlq",
	} {
		if n[inv] == 0 {
			t.Errorf("invariant %s: violation not detected", inv)
		}
	}
	if n["command.id_twice"] != 0 {
		t.Errorf("command.id_twice reported on a log without a repeated commit id")
	}
}
