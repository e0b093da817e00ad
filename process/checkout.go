package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/psp"
)

// CheckoutName is the checkout process manager's name: its consumers are
// checkout-orders, checkout-inventory, checkout-payments, checkout-timers
// and checkout-redrive.
const CheckoutName = "checkout"

// Timer kinds of the checkout.
const (
	timerPaymentTimeout = "payment_timeout"   // key: order id
	timerReconcile      = "payment_reconcile" // key: payment id
)

// Reasons and actors the checkout writes into commands. The actor keeps
// the name of the package the checkout began in: every commit it ever
// appended carries it.
const (
	ReasonOutOfStock     = "out_of_stock"
	ReasonPaymentTimeout = "payment_timeout"
	ReasonPaymentFailed  = "payment_failed"
	actor                = "sagas:" + CheckoutName
)

// Defaults of [CheckoutConfig].
const (
	DefaultPaymentTimeout = 15 * time.Minute
	DefaultReconcileAfter = 2 * time.Minute
)

// CheckoutConfig is what the checkout needs.
type CheckoutConfig struct {
	Orders    *command.Handler[order.State, order.Command]
	Inventory *command.Handler[inventory.State, inventory.Command]
	Payments  *command.Handler[payment.State, payment.Command]
	// PSP is the payment provider and Sync records its answers.
	PSP  psp.Client
	Sync *PaymentSync
	// Timers stores the payment timeouts and reconciliation checks.
	Timers eventlog.TimerScheduler
	// PaymentTimeout is how long an order waits for its payment before
	// it is cancelled (default 15 min).
	PaymentTimeout time.Duration
	// ReconcileAfter is how long a payment may stay pending before the
	// checkout asks the provider about it, and how often it asks again
	// (default 2 min). Reconciliation heals lost webhooks.
	ReconcileAfter time.Duration
	// Now is the clock for rescheduling reconciliation (default
	// time.Now). Timeouts derive from the causing commit's time.
	Now    func() time.Time
	Logger *slog.Logger
}

// Checkout is the checkout process manager (docs/architecture.md):
//
//	order.placed           reserve every line, all or nothing; all held →
//	                       order.MarkStockReserved; one short → order.Reject
//	                       (with the short SKUs), then release what is held
//	inventory.reservation_failed → the same rejection (a placed order only)
//	order.stock_reserved   create the PSP intent for the order total →
//	                       payment.Request → order.RequestPayment
//	order.payment_requested schedule the payment timeout and the
//	                       reconciliation check (durable timers)
//	payment.captured       order.MarkPaid; on a cancelled order: refund
//	payment.failed         order.Cancel (payment_failed)
//	payment.refunded       order.MarkRefunded: an order that has not
//	                       shipped becomes refunded, a shipped one gets
//	                       order.attention_required (customer service)
//	order.refunded         release every line (a paid order refunded at
//	                       the provider before it shipped)
//	order.rejected         release every line
//	order.cancelled        release every line; void a pending payment at
//	                       the PSP, refund a captured one
//	order.shipped          inventory.Commit for every line
//	timer payment_timeout  ask the PSP (a lost webhook may hide a capture),
//	                       then order.Cancel (payment_timeout) if still unpaid
//	timer payment_reconcile ask the PSP about a pending payment; ask again
//	                       later while it stays pending
//
// All state comes from the aggregates: the order knows its lines and
// payment, each SKU knows its reservations by order, the payment knows its
// intent. It is safe for concurrent use.
type Checkout struct {
	cfg CheckoutConfig
	log *slog.Logger
}

// NewCheckout returns the checkout process manager.
func NewCheckout(cfg CheckoutConfig) (*Checkout, error) {
	if cfg.Orders == nil || cfg.Inventory == nil || cfg.Payments == nil || cfg.PSP == nil || cfg.Sync == nil || cfg.Timers == nil {
		return nil, errors.New("process: checkout needs order, inventory and payment handlers, a PSP, a payment sync and timers")
	}
	if cfg.PaymentTimeout <= 0 {
		cfg.PaymentTimeout = DefaultPaymentTimeout
	}
	if cfg.ReconcileAfter <= 0 {
		cfg.ReconcileAfter = DefaultReconcileAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Checkout{cfg: cfg, log: cfg.Logger.With("pm", CheckoutName)}, nil
}

// Name implements [Manager].
func (c *Checkout) Name() string { return CheckoutName }

// Sources implements [Manager].
func (c *Checkout) Sources() []string {
	return []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment}
}

// UrgentSources implements [Urgent]: the order stream carries the
// compensations (cancelled, rejected, refunded orders give their stock
// back and void or refund their payment), which must not wait behind new
// orders.
func (c *Checkout) UrgentSources() []string { return []string{eventlog.TypeOrder} }

// IsUrgent implements [Urgent].
func (c *Checkout) IsUrgent(ev events.Payload) bool {
	switch ev.(type) {
	case events.OrderCancelled, events.OrderRejected, events.OrderRefunded:
		return true
	}
	return false
}

// cause identifies what made the checkout act: a commit's event or a
// timer. Command ids derive from it.
type cause struct {
	id    string
	index int
	corr  string
	at    time.Time
	// aggType, aggID and seq locate the commit being handled (empty for a
	// timer): a state read of that aggregate must be at least this new.
	aggType, aggID string
	seq            uint64
}

func (z cause) cmdID(step, aggType, aggID string) string {
	return CommandID(CheckoutName, z.id, z.index, step, aggType, aggID)
}

func (z cause) meta(orderID string) events.Metadata {
	corr := z.corr
	if corr == "" {
		corr = orderID
	}
	return events.Metadata{CorrelationID: corr, CausationID: z.id, Actor: actor}
}

// timerData is the body of the checkout's timers.
type timerData struct {
	OrderID   string    `json:"order_id"`
	PaymentID string    `json:"payment_id,omitempty"`
	Due       time.Time `json:"due"`
}

// Handle implements [Manager].
func (c *Checkout) Handle(ctx context.Context, m Message) error {
	if m.Timer != nil {
		return c.onTimer(ctx, m)
	}
	for i, ev := range m.Events {
		if m.Urgent && !c.IsUrgent(ev) {
			continue
		}
		z := cause{id: m.Commit.CommitID, index: i, corr: m.Commit.Metadata.CorrelationID, at: m.Commit.Metadata.RecordedAt,
			aggType: m.Commit.AggregateType, aggID: m.Commit.AggregateID, seq: m.Seq}
		var err error
		switch e := ev.(type) {
		case events.OrderPlaced:
			err = c.reserve(ctx, z, e.OrderID)
		case events.InventoryReservationFailed:
			err = c.onReservationFailed(ctx, z, e)
		case events.OrderStockReserved:
			err = c.requestPayment(ctx, z, e.OrderID)
		case events.OrderPaymentRequested:
			err = c.schedule(ctx, z, e)
		case events.OrderRejected:
			err = c.releaseAll(ctx, z, e.OrderID)
		case events.OrderCancelled:
			if err = c.releaseAll(ctx, z, e.OrderID); err == nil {
				err = c.settlePayment(ctx, z, e.OrderID)
			}
		case events.OrderShipped:
			err = c.commitAll(ctx, z, e.OrderID)
		case events.OrderRefunded:
			// A cancelled order gave its stock back already (nothing
			// to release); a paid one refunded at the provider before
			// it shipped gives it back now.
			err = c.releaseAll(ctx, z, e.OrderID)
		case events.PaymentCaptured:
			err = c.onCaptured(ctx, z, e.PaymentID)
		case events.PaymentFailed:
			err = c.onPaymentFailed(ctx, z, e)
		case events.PaymentRefunded:
			err = c.onRefunded(ctx, z, e.PaymentID)
		}
		if err != nil {
			return fmt.Errorf("%s on %s %s: %w", ev.EventType(), m.Commit.AggregateType, m.Commit.AggregateID, err)
		}
	}
	return nil
}

// isRule reports whether err is a business rule refusal: the aggregate
// has moved on, which for a process manager usually means "already done
// or overtaken".
func isRule(err error) bool {
	var de *aggregates.DomainError
	return errors.As(err, &de) && de.Kind == aggregates.KindRule
}

func ended(s order.Status) bool {
	return s == order.StatusRejected || s == order.StatusCancelled || s == order.StatusRefunded
}

// order returns the order's state as the orders handler knows it
// ([command.Cached]): a read of an aggregate other than the one whose
// commit is handled, whose answer only picks the next command (which the
// handler decides again on the log's state) or reads fields that never
// change (lines, total). Where a state older than the log's would pick
// no command at all, read it with [Checkout.orderNow].
func (c *Checkout) order(ctx context.Context, id string) (order.State, error) {
	res, err := c.cfg.Orders.State(ctx, id, command.Cached)
	return res.State, err
}

// orderNow returns the order's state as the log has it ([command.Current],
// one read of its last commit), for the steps that decide from it whether
// to send a command at all: a payment's capture, its reconciliation, its
// timeout. This instance's handler may know the order only as far as it
// appended or read it itself: on a cluster the orders lane can run on
// another instance (pinned consumers, decision 024), and an order this
// instance's API placed stays "placed" in its cache while the other
// instance carries it to payment_pending. A capture handled on that
// stale state did nothing, and since the capture was recorded neither a
// reconciliation nor the timeout acted on it again: the order waited for
// its payment for ever.
func (c *Checkout) orderNow(ctx context.Context, id string) (order.State, error) {
	res, err := c.cfg.Orders.State(ctx, id, command.Current)
	return res.State, err
}

// orderAt returns the order's state, at least as new as the commit being
// handled when that commit is the order's.
func (c *Checkout) orderAt(ctx context.Context, z cause, id string) (order.State, error) {
	res, err := c.cfg.Orders.State(ctx, id, z.freshness(order.AggregateType, id))
	return res.State, err
}

// paymentAt returns the payment's state, at least as new as the commit
// being handled when that commit is the payment's.
func (c *Checkout) paymentAt(ctx context.Context, z cause, id string) (payment.State, error) {
	res, err := c.cfg.Payments.State(ctx, id, z.freshness(payment.AggregateType, id))
	return res.State, err
}

// freshness is how new a read of an aggregate must be while handling z:
// the aggregate of the commit being handled includes that commit (the
// log can deliver a commit before the command that appended it has
// updated the handler's cache, and another instance's commit never
// reaches the cache by itself: the checkout then saw a payment "not
// captured" while handling its payment.captured, and the order was never
// marked paid); any other is read as the handler knows it.
func (z cause) freshness(aggType, id string) command.Freshness {
	if z.aggType == aggType && z.aggID == id {
		return command.Includes(z.seq)
	}
	return command.Cached
}

func (c *Checkout) orderCmd(ctx context.Context, z cause, step, id string, cmd order.Command) (command.Result[order.State], error) {
	return c.cfg.Orders.Handle(ctx, command.Request[order.Command]{
		AggregateID: id, CommandID: z.cmdID(step, order.AggregateType, id), Command: cmd, Metadata: z.meta(id),
	})
}

func (c *Checkout) stockCmd(ctx context.Context, z cause, step, orderID, sku string, cmd inventory.Command) (command.Result[inventory.State], error) {
	return c.cfg.Inventory.Handle(ctx, command.Request[inventory.Command]{
		AggregateID: sku, CommandID: z.cmdID(step, inventory.AggregateType, sku), Command: cmd, Metadata: z.meta(orderID),
	})
}

func (c *Checkout) paymentCmd(ctx context.Context, z cause, step, orderID, pid string, cmd payment.Command) (command.Result[payment.State], error) {
	return c.cfg.Payments.Handle(ctx, command.Request[payment.Command]{
		AggregateID: pid, CommandID: z.cmdID(step, payment.AggregateType, pid), Command: cmd, Metadata: z.meta(orderID),
	})
}

// holds reports whether a SKU holds (or has sold) stock for an order.
func holds(s inventory.State, orderID string) bool {
	return s.Reservations.Has(orderID) || s.Committed.Has(orderID)
}

// reserve reserves every line of a placed order, the lines' SKUs in
// parallel (each SKU's commands are serialised by its handler, and a
// busy SKU no longer delays the others of the order). All held: the
// order is marked reserved. A SKU short: the order is rejected with the
// short SKUs, in line order, and everything it holds released.
func (c *Checkout) reserve(ctx context.Context, z cause, orderID string) error {
	o, err := c.orderAt(ctx, z, orderID)
	if err != nil {
		return err
	}
	if o.Status != order.StatusPlaced {
		if ended(o.Status) {
			return c.releaseAll(ctx, z, orderID)
		}
		return nil
	}
	held := make([]bool, len(o.Lines))
	if err := c.eachLine(o, func(i int, l events.OrderLine) error {
		res, err := c.stockCmd(ctx, z, "reserve", orderID, l.SKU, inventory.Reserve{OrderID: orderID, Qty: l.Qty})
		held[i] = err == nil && holds(res.State, orderID)
		return err
	}); err != nil {
		return err
	}
	var short []string
	for i, l := range o.Lines {
		if !held[i] {
			short = append(short, l.SKU)
		}
	}
	if len(short) == 0 {
		_, err = c.orderCmd(ctx, z, "mark_stock_reserved", orderID, order.MarkStockReserved{})
	} else {
		_, err = c.orderCmd(ctx, z, "reject", orderID, order.Reject{Reason: ReasonOutOfStock, ShortSKUs: short})
	}
	if err != nil && !isRule(err) {
		return err
	}
	return c.releaseIfEnded(ctx, z, orderID)
}

// releaseIfEnded releases the order's stock if the order has ended: a
// reservation that lands after the order was rejected or cancelled (a
// concurrent or redelivered handler) must not stay held.
func (c *Checkout) releaseIfEnded(ctx context.Context, z cause, orderID string) error {
	o, err := c.order(ctx, orderID)
	if err != nil {
		return err
	}
	if ended(o.Status) {
		return c.releaseAll(ctx, z, orderID)
	}
	return nil
}

func (c *Checkout) onReservationFailed(ctx context.Context, z cause, e events.InventoryReservationFailed) error {
	o, err := c.order(ctx, e.OrderID)
	if err != nil {
		return err
	}
	if !o.Exists || o.Status != order.StatusPlaced {
		return nil
	}
	_, err = c.orderCmd(ctx, z, "reject", e.OrderID, order.Reject{Reason: ReasonOutOfStock, ShortSKUs: []string{e.SKU}})
	if err != nil && !isRule(err) {
		return err
	}
	return c.releaseIfEnded(ctx, z, e.OrderID)
}

// releaseAll gives back whatever the order holds on each of its SKUs,
// the SKUs in parallel.
func (c *Checkout) releaseAll(ctx context.Context, z cause, orderID string) error {
	o, err := c.order(ctx, orderID)
	if err != nil {
		return err
	}
	return c.eachLine(o, func(_ int, l events.OrderLine) error {
		_, err := c.stockCmd(ctx, z, "release", orderID, l.SKU, inventory.Release{OrderID: orderID})
		return err
	})
}

// eachLine runs fn for every line of o (with its index) at once and
// joins their errors.
func (c *Checkout) eachLine(o order.State, fn func(int, events.OrderLine) error) error {
	if len(o.Lines) == 1 {
		return fn(0, o.Lines[0])
	}
	errs := make([]error, len(o.Lines))
	var wg sync.WaitGroup
	for i, l := range o.Lines {
		wg.Go(func() { errs[i] = fn(i, l) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// commitAll turns a shipped order's reservations into sold stock.
func (c *Checkout) commitAll(ctx context.Context, z cause, orderID string) error {
	o, err := c.order(ctx, orderID)
	if err != nil {
		return err
	}
	for _, l := range o.Lines {
		if _, err := c.stockCmd(ctx, z, "commit", orderID, l.SKU, inventory.Commit{OrderID: orderID}); err != nil {
			return err
		}
	}
	return nil
}

// requestPayment creates the PSP intent for the order's total, records
// the payment and makes the order wait for it.
func (c *Checkout) requestPayment(ctx context.Context, z cause, orderID string) error {
	o, err := c.orderAt(ctx, z, orderID)
	if err != nil {
		return err
	}
	switch {
	case ended(o.Status):
		// The order ended after its stock was reserved but before its
		// payment was recorded. An earlier attempt at this step may have
		// created the intent at the PSP and died before recording it, and
		// the PSP may even have captured it: ask for the intent again under
		// the same idempotency key (it is the same intent if one was
		// made), record it, and void or refund it with the order's other
		// compensations.
		if _, err := c.recordIntent(ctx, z, o); err != nil {
			return err
		}
		return c.settlePayment(ctx, z, orderID)
	case o.Status != order.StatusStockReserved:
		return nil
	}
	pid := PaymentIDFor(orderID)
	p, err := c.recordIntent(ctx, z, o)
	if err != nil {
		return err
	}
	_, err = c.orderCmd(ctx, z, "request_payment", orderID, order.RequestPayment{PaymentID: pid, Amount: p.Amount, CheckoutURL: p.CheckoutURL})
	if err == nil || !isRule(err) {
		return err
	}
	// The order moved on while the intent was being created: if it was
	// cancelled, its cancellation may not have seen this payment.
	if o, err = c.order(ctx, orderID); err != nil {
		return err
	}
	if ended(o.Status) {
		return c.settlePayment(ctx, z, orderID)
	}
	return nil
}

// recordIntent returns the order's payment, first creating its intent at
// the PSP and recording it if the log has no payment yet. The intent is
// created before it is recorded (the payment's first event carries the
// intent), so a crash in between leaves an intent the log does not know:
// the idempotency key, derived from the payment id, makes the next attempt
// find that same intent instead of creating another.
func (c *Checkout) recordIntent(ctx context.Context, z cause, o order.State) (payment.State, error) {
	pid := PaymentIDFor(o.ID)
	cur, err := c.cfg.Payments.State(ctx, pid, command.Cached)
	if err != nil || cur.State.Exists {
		return cur.State, err
	}
	in, err := c.cfg.PSP.CreateIntent(ctx, psp.CreateIntentRequest{Reference: pid, OrderID: o.ID, Amount: o.Total}, pid+":create")
	if err != nil {
		return payment.State{}, fmt.Errorf("create intent: %w", err)
	}
	if in.Amount != o.Total || in.Reference != pid {
		return payment.State{}, Permanent(fmt.Errorf("the PSP created intent %s for %s %s, not for %s %s", in.ID, in.Reference, in.Amount, pid, o.Total))
	}
	res, err := c.paymentCmd(ctx, z, "request", o.ID, pid, payment.Request{
		OrderID: o.ID, Amount: o.Total, Provider: c.cfg.PSP.Provider(), IntentID: in.ID, CheckoutURL: in.CheckoutURL,
	})
	if err != nil {
		return payment.State{}, err
	}
	return res.State, nil
}

// schedule sets the payment timeout and the first reconciliation check,
// both counted from when the payment was requested.
func (c *Checkout) schedule(ctx context.Context, z cause, e events.OrderPaymentRequested) error {
	due := z.at.Add(c.cfg.PaymentTimeout)
	if err := c.setTimer(ctx, timerPaymentTimeout, e.OrderID, timerData{OrderID: e.OrderID, PaymentID: e.PaymentID, Due: due}); err != nil {
		return err
	}
	if c.cfg.ReconcileAfter < c.cfg.PaymentTimeout {
		at := z.at.Add(c.cfg.ReconcileAfter)
		return c.setTimer(ctx, timerReconcile, e.PaymentID, timerData{OrderID: e.OrderID, PaymentID: e.PaymentID, Due: at})
	}
	return nil
}

func (c *Checkout) setTimer(ctx context.Context, kind, key string, d timerData) error {
	body, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return c.cfg.Timers.ScheduleTimer(ctx, eventlog.Timer{Owner: CheckoutName, Kind: kind, Key: key, At: d.Due, Data: body})
}

func (c *Checkout) onTimer(ctx context.Context, m Message) error {
	var d timerData
	if err := json.Unmarshal(m.Timer.Data, &d); err != nil {
		return Permanent(fmt.Errorf("timer %s %s: %w", m.Timer.Kind, m.Timer.Key, err))
	}
	z := cause{id: "timer:" + m.Timer.Kind + ":" + m.Timer.Key + ":" + d.Due.UTC().Format(time.RFC3339Nano), at: d.Due}
	switch m.Timer.Kind {
	case timerPaymentTimeout:
		return c.onPaymentTimeout(ctx, z, d)
	case timerReconcile:
		return c.onReconcile(ctx, z, d)
	default:
		return Permanent(fmt.Errorf("unknown timer kind %q", m.Timer.Kind))
	}
}

// onPaymentTimeout cancels an order still waiting for its payment. It
// asks the PSP first: a capture whose webhook was lost is recorded
// instead of being cancelled and refunded.
func (c *Checkout) onPaymentTimeout(ctx context.Context, z cause, d timerData) error {
	o, err := c.orderNow(ctx, d.OrderID)
	if err != nil {
		return err
	}
	if o.Status != order.StatusPaymentPending && o.Status != order.StatusStockReserved {
		return nil
	}
	pid := PaymentIDFor(d.OrderID)
	if outcome, err := c.reconcile(ctx, z, pid); err != nil {
		c.log.Warn("payment timeout: cannot ask the PSP, cancelling anyway", "order", d.OrderID, "err", err)
	} else if outcome == psp.StatusCaptured || outcome == psp.StatusFailed || outcome == psp.StatusRefunded {
		return nil // the payment events take it from here
	} else if outcome == "" {
		// No pending payment: if it was settled already (a capture
		// recorded before its order.paid), its events decide.
		cur, err := c.cfg.Payments.State(ctx, pid, command.Current)
		if err != nil {
			return err
		}
		switch cur.State.Status {
		case payment.StatusCaptured, payment.StatusRefunded, payment.StatusFailed:
			return nil
		}
	}
	_, err = c.orderCmd(ctx, z, "cancel", d.OrderID, order.Cancel{Reason: ReasonPaymentTimeout, By: ReasonPaymentTimeout})
	if err != nil && !isRule(err) {
		return err
	}
	return nil
}

// onReconcile asks the PSP about a payment that is still pending and
// checks again later while it stays pending and its order waits. A check
// that finds the order no longer waiting does nothing; one for a payment
// the log no longer has pending (its capture, decline or refund is
// recorded, and the checkout handles it in the payments lane) asks
// nobody and is not set again: a reconciliation never adds work for a
// payment whose events are merely waiting to be handled.
func (c *Checkout) onReconcile(ctx context.Context, z cause, d timerData) error {
	o, err := c.orderNow(ctx, d.OrderID)
	if err != nil {
		return err
	}
	if o.Exists && o.Status != order.StatusPaymentPending && o.Status != order.StatusStockReserved {
		return nil
	}
	status, err := c.reconcile(ctx, z, d.PaymentID)
	if err != nil {
		return err
	}
	if !status.Pending() {
		return nil
	}
	next := c.cfg.Now().Add(c.cfg.ReconcileAfter)
	return c.setTimer(ctx, timerReconcile, d.PaymentID, timerData{OrderID: d.OrderID, PaymentID: d.PaymentID, Due: next})
}

// reconcile applies the PSP's view of a pending payment and returns the
// intent's status ("" if there is no pending payment). The payment is
// read as the log has it (command.Current), not as this instance's
// handler last saw it: a payment another instance recorded as captured
// (its webhook) is not asked about again, so a reconciliation only
// costs the provider a request for a payment that is really overdue.
func (c *Checkout) reconcile(ctx context.Context, z cause, pid string) (psp.Status, error) {
	cur, err := c.cfg.Payments.State(ctx, pid, command.Current)
	if err != nil {
		return "", err
	}
	p := cur.State
	if !p.Exists || (p.Status != payment.StatusRequested && p.Status != payment.StatusAuthorized) {
		return "", nil
	}
	in, err := c.cfg.PSP.Intent(ctx, p.IntentID)
	if err != nil {
		return "", fmt.Errorf("intent %s: %w", p.IntentID, err)
	}
	if _, err := c.cfg.Sync.Apply(ctx, in, z.id); err != nil {
		return "", err
	}
	if in.Status != psp.StatusRequiresPayment {
		c.log.Info("reconciled payment", "payment", pid, "status", string(in.Status))
	}
	return in.Status, nil
}

// settlePayment undoes the payment of an ended order: a pending one is
// voided at the PSP (if the PSP says it was captured after all, the
// capture is recorded and its refund follows), a captured one refunded.
func (c *Checkout) settlePayment(ctx context.Context, z cause, orderID string) error {
	pid := PaymentIDFor(orderID)
	cur, err := c.cfg.Payments.State(ctx, pid, command.Cached)
	if err != nil {
		return err
	}
	p := cur.State
	if !p.Exists {
		return nil
	}
	switch p.Status {
	case payment.StatusRequested, payment.StatusAuthorized:
		in, err := c.cfg.PSP.Void(ctx, p.IntentID, pid+":void")
		if err != nil {
			return fmt.Errorf("void intent %s: %w", p.IntentID, err)
		}
		if _, err := c.cfg.Sync.Apply(ctx, in, z.id); err != nil {
			return err
		}
		if in.Status == psp.StatusCaptured {
			// Captured before the void arrived (a state this instance had
			// not seen yet): the money goes back.
			return c.refund(ctx, z, p)
		}
		return nil
	case payment.StatusCaptured:
		return c.refund(ctx, z, p)
	}
	return nil
}

// refund pays a captured payment back in full at the PSP and records it;
// payment.refunded then marks the order refunded.
func (c *Checkout) refund(ctx context.Context, z cause, p payment.State) error {
	in, err := c.cfg.PSP.Refund(ctx, p.IntentID, psp.RefundRequest{Amount: p.Amount}, p.ID+":refund")
	if errors.Is(err, psp.ErrInvalidState) {
		// Not captured at the PSP (yet): record what it says.
		if in, err = c.cfg.PSP.Intent(ctx, p.IntentID); err != nil {
			return fmt.Errorf("intent %s: %w", p.IntentID, err)
		}
	} else if err != nil {
		return fmt.Errorf("refund intent %s: %w", p.IntentID, err)
	}
	_, err = c.cfg.Sync.Apply(ctx, in, z.id)
	return err
}

// onCaptured marks the order paid, or refunds a payment captured after
// its order ended.
func (c *Checkout) onCaptured(ctx context.Context, z cause, pid string) error {
	p, err := c.paymentAt(ctx, z, pid)
	if err != nil {
		return err
	}
	if p.Status != payment.StatusCaptured {
		c.log.Debug("payment.captured: the payment has moved on", "payment", pid, "payment_status", string(p.Status))
		return nil // refunded since, or a stale event
	}
	o, err := c.orderNow(ctx, p.OrderID)
	if err != nil {
		return err
	}
	c.log.Debug("payment.captured", "payment", pid, "order", o.ID, "order_status", string(o.Status))
	switch o.Status {
	case order.StatusStockReserved:
		// The webhook overtook order.RequestPayment: record the request
		// first (the same command the checkout would send).
		if _, err := c.orderCmd(ctx, z, "request_payment", o.ID, order.RequestPayment{PaymentID: pid, Amount: p.Amount, CheckoutURL: p.CheckoutURL}); err != nil && !isRule(err) {
			return err
		}
		fallthrough
	case order.StatusPaymentPending:
		_, err := c.orderCmd(ctx, z, "mark_paid", o.ID, order.MarkPaid{PaymentID: pid, Amount: p.Amount})
		if err == nil || !isRule(err) {
			return err
		}
		if o, err = c.order(ctx, p.OrderID); err != nil {
			return err
		}
		if ended(o.Status) {
			return c.refund(ctx, z, p)
		}
		return nil
	case order.StatusCancelled, order.StatusRejected:
		return c.refund(ctx, z, p)
	}
	return nil
}

func (c *Checkout) onPaymentFailed(ctx context.Context, z cause, e events.PaymentFailed) error {
	p, err := c.paymentAt(ctx, z, e.PaymentID)
	if err != nil {
		return err
	}
	orderID := p.OrderID
	if orderID == "" {
		return nil
	}
	_, err = c.orderCmd(ctx, z, "cancel", orderID, order.Cancel{Reason: ReasonPaymentFailed, By: "payment"})
	if err != nil && !isRule(err) {
		return err
	}
	return nil
}

func (c *Checkout) onRefunded(ctx context.Context, z cause, pid string) error {
	p, err := c.paymentAt(ctx, z, pid)
	if err != nil {
		return err
	}
	// The order decides what the refund means: refunded (its stock is
	// released on order.refunded) or, shipped, a task for customer
	// service. A rejected order stays rejected.
	_, err = c.orderCmd(ctx, z, "mark_refunded", p.OrderID, order.MarkRefunded{PaymentID: pid, Amount: p.Amount})
	if err != nil && isRule(err) {
		c.log.Warn("payment refunded but its order cannot be marked refunded", "payment", pid, "order", p.OrderID, "err", err)
		return nil
	}
	return err
}
