package process_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/memlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/process"
)

// rig is the checkout with real parts and no server: the in-memory log,
// the command handlers, the payment provider's simulator in manual mode
// (nobody pays until a test says so, and it sends no webhooks) served on
// a loopback port, and a payment sync. Nothing delivers commits to the
// checkout by itself: a test delivers exactly the commits it means to,
// as the runtime would, and looks at what the checkout did.
type rig struct {
	t        *testing.T
	ctx      context.Context
	log      *memlog.Log
	reg      *events.Registry
	orders   *command.Handler[order.State, order.Command]
	stock    *command.Handler[inventory.State, inventory.Command]
	payments *command.Handler[payment.State, payment.Command]
	sim      *pspsim.Sim
	client   psp.Client
	sync     *process.PaymentSync
	checkout *process.Checkout
	now      time.Time
}

// Timeouts of the rig's checkout.
const (
	paymentTimeout = 15 * time.Minute
	reconcileAfter = 2 * time.Minute
)

func newRig(t *testing.T) *rig {
	t.Helper()
	log, err := memlog.New(memlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ctx: t.Context(), log: log, reg: reg, now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	if r.orders, err = command.NewHandler(order.Decider(), log, reg, command.Options{}); err != nil {
		t.Fatal(err)
	}
	if r.stock, err = command.NewHandler(inventory.Decider(), log, reg, command.Options{}); err != nil {
		t.Fatal(err)
	}
	if r.payments, err = command.NewHandler(payment.Decider(), log, reg, command.Options{}); err != nil {
		t.Fatal(err)
	}
	if r.sim, err = pspsim.New(pspsim.Config{Mode: pspsim.ModeManual, Secret: []byte("webhook-secret-webhook-secret-webhook!")}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.sim.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = r.sim.Close() })
	r.sim.SetBaseURL(srv.URL)
	client, err := psp.NewHTTPClient(srv.URL, "sim", r.sim.APIKey(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.client = client
	if r.sync, err = process.NewPaymentSync(r.payments, log, "sim", nil); err != nil {
		t.Fatal(err)
	}
	r.checkout, err = process.NewCheckout(process.CheckoutConfig{
		Orders: r.orders, Inventory: r.stock, Payments: r.payments, PSP: client, Sync: r.sync, Timers: log,
		PaymentTimeout: paymentTimeout, ReconcileAfter: reconcileAfter,
		Now: func() time.Time { return r.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var types = []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment}

// mark is a position in every stream.
type mark map[string]uint64

// mark returns the end of every stream now.
func (r *rig) mark() mark {
	r.t.Helper()
	m := mark{}
	for _, typ := range types {
		last, err := r.log.LastSeq(r.ctx, typ)
		if err != nil {
			r.t.Fatal(err)
		}
		m[typ] = last
	}
	return m
}

// since returns the commits appended after m, stream by stream.
func (r *rig) since(m mark) []eventlog.Record {
	r.t.Helper()
	var out []eventlog.Record
	for _, typ := range types {
		recs, err := r.log.Fetch(r.ctx, typ, m[typ]+1, 10000)
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, recs...)
	}
	return out
}

// handle hands one commit to the checkout, as the runtime would.
func (r *rig) handle(rec eventlog.Record) error {
	r.t.Helper()
	evs, err := r.reg.DecodeAll(rec.Commit)
	if err != nil {
		r.t.Fatal(err)
	}
	return r.checkout.Handle(r.ctx, process.Message{Stream: rec.Stream, Seq: rec.Seq, Commit: rec.Commit, Events: evs})
}

// deliver hands the checkout every commit appended after m that holds an
// event of type eventType (and only those), and fails the test if there
// is none or the checkout fails.
func (r *rig) deliver(m mark, eventType string) {
	r.t.Helper()
	n := 0
	for _, rec := range r.since(m) {
		for _, ev := range rec.Commit.Events {
			if ev.Type == eventType {
				if err := r.handle(rec); err != nil {
					r.t.Fatalf("checkout on %s at %s:%d: %v", eventType, rec.Stream, rec.Seq, err)
				}
				n++
				break
			}
		}
	}
	if n == 0 {
		r.t.Fatalf("no %s appended since %v", eventType, m)
	}
}

// settle delivers every commit appended after m, and those they cause,
// until the checkout appends nothing more: what the runtime does while
// nothing else happens.
func (r *rig) settle(m mark) {
	r.t.Helper()
	for range 100 {
		recs := r.since(m)
		if len(recs) == 0 {
			return
		}
		next := r.mark()
		for _, rec := range recs {
			if err := r.handle(rec); err != nil {
				r.t.Fatalf("checkout on %s:%d: %v", rec.Stream, rec.Seq, err)
			}
		}
		m = next
	}
	r.t.Fatal("the checkout keeps appending")
}

// events returns the types of the events appended after m, in order per
// stream.
func (r *rig) events(m mark) []string {
	r.t.Helper()
	var out []string
	for _, rec := range r.since(m) {
		for _, ev := range rec.Commit.Events {
			out = append(out, ev.Type)
		}
	}
	return out
}

func cny(minor int64) events.Money { return events.Money{Amount: minor, Currency: "CNY"} }

// define puts a SKU in the catalog at 10.00 with onHand units.
func (r *rig) define(sku string, onHand int64) {
	r.t.Helper()
	if _, err := r.stock.Handle(r.ctx, command.Request[inventory.Command]{
		AggregateID: sku, Command: inventory.Define{Name: sku, Price: cny(1000), OnHand: onHand},
	}); err != nil {
		r.t.Fatal(err)
	}
}

// line is one order line: qty units of sku.
type line struct {
	sku string
	qty int64
}

// place places an order of lines at 10.00 a unit.
func (r *rig) place(id string, lines ...line) {
	r.t.Helper()
	r.placeVia(r.orders, id, lines...)
}

// placeVia places the order through the orders handler h, as the API of
// the instance h belongs to would.
func (r *rig) placeVia(h *command.Handler[order.State, order.Command], id string, lines ...line) {
	r.t.Helper()
	var ls []events.OrderLine
	for _, l := range lines {
		ls = append(ls, events.OrderLine{SKU: l.sku, Qty: l.qty, UnitPrice: cny(1000)})
	}
	if _, err := h.Handle(r.ctx, command.Request[order.Command]{
		AggregateID: id, CommandID: "place-" + id,
		Command: order.Place{
			OrderID: id, CustomerID: "c-1", Customer: events.Customer{Name: "Li Lei", Email: "li@example.com"},
			Lines:           ls,
			ShippingAddress: events.Address{Line1: "1 Road", City: "Hangzhou", Country: "CN"},
			IdempotencyKey:  "key-" + id, RequestHash: "hash-" + id,
		},
	}); err != nil {
		r.t.Fatal(err)
	}
}

// orderCmd sends a command to an order, as the API would.
func (r *rig) orderCmd(id string, cmd order.Command) {
	r.t.Helper()
	if _, err := r.orders.Handle(r.ctx, command.Request[order.Command]{AggregateID: id, Command: cmd}); err != nil {
		r.t.Fatal(err)
	}
}

// cancel cancels an order as its customer would.
func (r *rig) cancel(id string) {
	r.t.Helper()
	r.orderCmd(id, order.Cancel{Reason: "changed_mind", By: "customer"})
}

// paymentEnds checks that the order's payment is atPSP at the simulator
// and inLog in the log.
func (r *rig) paymentEnds(orderID string, atPSP psp.Status, inLog payment.Status) {
	r.t.Helper()
	if in := r.intent(orderID); in.Status != atPSP {
		r.t.Fatalf("intent is %s, want %s", in.Status, atPSP)
	}
	if p := r.payment(orderID); p.Status != inLog {
		r.t.Fatalf("payment is %s, want %s", p.Status, inLog)
	}
}

func (r *rig) order(id string) order.State {
	r.t.Helper()
	res, err := r.orders.State(r.ctx, id, command.Current)
	if err != nil {
		r.t.Fatal(err)
	}
	return res.State
}

func (r *rig) sku(id string) inventory.State {
	r.t.Helper()
	res, err := r.stock.State(r.ctx, id, command.Current)
	if err != nil {
		r.t.Fatal(err)
	}
	return res.State
}

func (r *rig) payment(orderID string) payment.State {
	r.t.Helper()
	res, err := r.payments.State(r.ctx, process.PaymentIDFor(orderID), command.Current)
	if err != nil {
		r.t.Fatal(err)
	}
	return res.State
}

// intent returns the intent of an order's payment at the simulator.
func (r *rig) intent(orderID string) psp.Intent {
	r.t.Helper()
	p := r.payment(orderID)
	for _, in := range r.sim.Intents() {
		if in.ID == p.IntentID {
			return in
		}
	}
	r.t.Fatalf("the simulator has no intent %q for order %s", p.IntentID, orderID)
	return psp.Intent{}
}

// report records what the simulator says about the order's intent, as
// its webhook would.
func (r *rig) report(orderID string) {
	r.t.Helper()
	if _, err := r.sync.Apply(r.ctx, r.intent(orderID), "test-report"); err != nil {
		r.t.Fatal(err)
	}
}

// pending places an order of two units of A and one of B (both stocked)
// and settles it: stock reserved, payment requested, the order waiting
// for it.
func (r *rig) pending(id string) {
	r.t.Helper()
	r.define("A", 10)
	r.define("B", 10)
	m := r.mark()
	r.place(id, line{"A", 2}, line{"B", 1})
	r.settle(m)
	if st := r.order(id).Status; st != order.StatusPaymentPending {
		r.t.Fatalf("set-up: order %s is %s, want payment_pending", id, st)
	}
}

// paid is pending, then paid at the simulator and settled.
func (r *rig) paid(id string) {
	r.t.Helper()
	r.pending(id)
	if _, err := r.sim.Approve(r.intent(id).ID); err != nil {
		r.t.Fatal(err)
	}
	m := r.mark()
	r.report(id)
	r.settle(m)
	if st := r.order(id).Status; st != order.StatusPaid {
		r.t.Fatalf("set-up: order %s is %s, want paid", id, st)
	}
}

// timer returns the pending timer of a kind for a key.
func (r *rig) timer(kind, key string) eventlog.Timer {
	r.t.Helper()
	for _, tm := range r.log.Timers() {
		if tm.Owner == process.CheckoutName && tm.Kind == kind && tm.Key == key {
			return tm
		}
	}
	r.t.Fatalf("no %s timer for %s among %v", kind, key, r.log.Timers())
	return eventlog.Timer{}
}

// fire hands a timer to the checkout as fired.
func (r *rig) fire(tm eventlog.Timer) {
	r.t.Helper()
	err := r.checkout.Handle(r.ctx, process.Message{Stream: "TIMERS", Timer: &eventlog.FiredTimer{Owner: tm.Owner, Kind: tm.Kind, Key: tm.Key, Data: tm.Data}})
	if err != nil {
		r.t.Fatalf("checkout on timer %s %s: %v", tm.Kind, tm.Key, err)
	}
}

// refundAtPSP refunds the order's payment at the simulator, as the
// merchant would in the provider's dashboard, without telling Ordo.
func (r *rig) refundAtPSP(orderID string) {
	r.t.Helper()
	in := r.intent(orderID)
	if _, err := r.client.Refund(r.ctx, in.ID, psp.RefundRequest{Amount: in.Amount}, "dashboard-refund-"+in.ID); err != nil {
		r.t.Fatal(err)
	}
}

// redeliver hands the checkout every commit appended after m again, as
// the runtime does after a crash before the ack, and fails the test if
// that appends anything.
func (r *rig) redeliver(m mark) {
	r.t.Helper()
	recs := r.since(m)
	end := r.mark()
	for _, rec := range recs {
		if err := r.handle(rec); err != nil {
			r.t.Fatalf("checkout on %s:%d again: %v", rec.Stream, rec.Seq, err)
		}
	}
	if again := r.events(end); len(again) > 0 {
		r.t.Fatalf("redelivered commits appended %v", again)
	}
}
