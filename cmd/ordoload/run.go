package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/pause"
)

// settings is one run's settings (the flags, checked).
type settings struct {
	URL      string
	Mode     string  // "closed" or "open"
	Shoppers int     // closed loop: concurrent shoppers
	Rate     float64 // open loop: orders started per second
	// MaxInFlight bounds the open loop's orders in progress.
	MaxInFlight int
	Customers   int
	Duration    time.Duration
	Drain       time.Duration
	SKUs        int
	Hot         bool
	Stock       int64
	Pay         string // "auto" or "manual"
	Think       time.Duration
	Abandon     float64
	Decline     float64
	CancelRatio float64
	ShipRatio   float64
	// PaymentTimeout is the server's ORDO_PAYMENT_TIMEOUT: abandoned
	// orders are due for cancellation this long after their payment was
	// requested.
	PaymentTimeout time.Duration
	// Poll is the pause before a shopper first reads an order's status,
	// and between its first two reads; each next one is twice as long,
	// up to PollMax. ProbePoll is the release probe's pause between its
	// catalog reads.
	Poll, PollMax, ProbePoll time.Duration
	ProbeEvery               time.Duration
	// MetricsURL is orderd's metrics, to follow the process managers'
	// backlog through the run ("" for none).
	MetricsURL string
	Progress   time.Duration
	// UnreachableRetry is how long a request safe to send again is
	// retried while the server does not answer (0: never).
	UnreachableRetry time.Duration
	RunID            string
	Seed             uint64
}

// runner is one run in progress.
type runner struct {
	cfg    settings
	cl     *client
	log    io.Writer
	skus   []string
	probe  string
	hotSKU string

	start, loadEnd time.Time

	// Histograms: place → 202 by the generator's clock, from sending
	// the attempt that was accepted; placed → decided, placed → paid and
	// timer lateness by the server's, from the order's timeline; release
	// delay from the probe; start lag (open loop) against the schedule.
	toAccepted, toDecided, toPaid, lateness, release, startLag *histogram
	// timerDue holds the orders the payment timeout cancelled while
	// their shopper waited for the payment (order id -> true).
	timerDue sync.Map

	attempts, accepted, placeFailed atomic.Int64
	reserved, rejected, paid        atomic.Int64
	shipped, cancelled, timedOut    atomic.Int64
	declined, failed                atomic.Int64
	keptPaid                        atomic.Int64 // paid and left so (neither cancelled nor shipped)
	soldUnits                       atomic.Int64 // units of orders paid and not cancelled
	skipped                         atomic.Int64 // open loop: starts the in-flight bound refused
	parked                          atomic.Int64 // customers rested on too_many_unpaid_orders
	rested                          atomic.Int64 // ns, summed over those rests
	firstRejected                   atomic.Int64 // ns since start of the first rejection (hot)
	seq                             atomic.Int64
	// abandoned counts the orders left unpaid; those still waiting for
	// their timeout at the end are in flight.
	abandoned, watcherSettled atomic.Int64

	watchers sync.WaitGroup // abandoned orders waiting for their timeout
	flows    sync.WaitGroup
}

// customer is one simulated shopper's identity.
type customer struct {
	id   string
	name string
	n    int
}

func (r *runner) rng() *rand.Rand {
	return rand.New(rand.NewPCG(r.cfg.Seed, uint64(r.seq.Add(1))))
}

// setup puts the run's SKUs in the catalog: fresh ones, named after the
// run, so that a flash sale starts with exactly its stock.
func (r *runner) setup(ctx context.Context) error {
	put := func(sku, name string, stock int64) error {
		_, err := r.cl.do(ctx, call{kind: "PUT /v1/skus/{sku}", method: "PUT", url: "/v1/skus/" + sku, role: auth.RoleAdmin, sub: "ordoload",
			body: map[string]any{"name": name, "price": map[string]any{"amount": 1999, "currency": "CNY"}, "on_hand": stock}, want: 200}, nil)
		if err != nil {
			return fmt.Errorf("put SKU %s: %w", sku, err)
		}
		return nil
	}
	if r.cfg.Hot {
		r.hotSKU = "LOAD-" + r.cfg.RunID + "-HOT"
		r.skus = []string{r.hotSKU}
		if err := put(r.hotSKU, "Flash sale "+r.cfg.RunID, r.cfg.Stock); err != nil {
			return err
		}
	} else {
		for i := range r.cfg.SKUs {
			sku := fmt.Sprintf("LOAD-%s-%d", r.cfg.RunID, i)
			r.skus = append(r.skus, sku)
			if err := put(sku, fmt.Sprintf("Load item %d", i), r.cfg.Stock); err != nil {
				return err
			}
		}
	}
	if r.cfg.ProbeEvery > 0 {
		r.probe = "LOAD-" + r.cfg.RunID + "-PROBE"
		if err := put(r.probe, "Release probe", 1_000_000); err != nil {
			return err
		}
	}
	return nil
}

// run drives the load for cfg.Duration, lets the orders in progress
// finish for at most cfg.Drain, and returns the summary.
func run(ctx context.Context, cfg settings, cl *client, log io.Writer) (*summary, error) {
	r := &runner{
		cfg: cfg, cl: cl, log: log,
		toAccepted: newHistogram(), toDecided: newHistogram(), toPaid: newHistogram(),
		lateness: newHistogram(), release: newHistogram(), startLag: newHistogram(),
	}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	pool := make(chan *customer, cfg.Customers)
	for i := range cfg.Customers {
		pool <- &customer{id: fmt.Sprintf("load-%s-c%d", cfg.RunID, i), name: "Load Shopper " + strconv.Itoa(i), n: i}
	}

	r.start = time.Now()
	r.loadEnd = r.start.Add(cfg.Duration)
	loadCtx, stopLoad := context.WithDeadline(ctx, r.loadEnd)
	defer stopLoad()
	// Orders in progress (and abandoned orders waiting for their
	// timeout) go on until the drain ends.
	flowCtx, stopFlows := context.WithDeadline(ctx, r.loadEnd.Add(cfg.Drain))
	defer stopFlows()

	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if cfg.Progress > 0 {
		progressWG.Add(1)
		go func() { defer progressWG.Done(); r.progress(progressDone) }()
	}
	// The backlog is followed until the drain's end at the latest, and
	// read for a while after the flows end: the checkout may still be
	// busy when the last shopper saw its order settle.
	var backlog *backlogReport
	backlogDone := make(chan struct{})
	var backlogWG sync.WaitGroup
	if cfg.MetricsURL != "" {
		followCtx, stopFollow := context.WithDeadline(ctx, r.loadEnd.Add(cfg.Drain))
		defer stopFollow()
		backlogWG.Add(1)
		go func() {
			defer backlogWG.Done()
			backlog = followBacklog(followCtx, cfg.MetricsURL, r.loadEnd, backlogDone)
		}()
	}
	var probeWG sync.WaitGroup
	if r.probe != "" {
		probeWG.Add(1)
		go func() { defer probeWG.Done(); r.runProbe(loadCtx, flowCtx) }()
	}

	if cfg.Mode == "open" {
		r.openLoop(loadCtx, flowCtx, pool)
	} else {
		r.closedLoop(loadCtx, flowCtx, pool)
	}
	// The load phase: its duration, or less when the run was
	// interrupted (closed-loop shoppers return only once their last
	// order is done, which is the drain's work).
	ran := min(time.Since(r.start), cfg.Duration)
	// Everything started has until the drain's end.
	waitCtx(flowCtx, &r.flows)
	waitCtx(flowCtx, &r.watchers)
	probeWG.Wait()
	stopFlows()
	r.flows.Wait()
	r.watchers.Wait()
	close(progressDone)
	progressWG.Wait()
	drained := time.Since(r.start) - ran
	close(backlogDone)
	backlogWG.Wait()

	s := r.summarize(ran, drained)
	s.Backlog = backlog
	if r.hotSKU != "" {
		// Read even when the run was interrupted.
		s.Hot = r.checkHot(context.WithoutCancel(ctx), s.InFlight)
		s.Violations = append(s.Violations, s.Hot.Violations...)
	}
	return s, nil
}

// waitCtx waits for wg or for ctx to end.
func waitCtx(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// closedLoop runs cfg.Shoppers shoppers, each taking a customer, playing
// one order, giving the customer back, until the load ends.
func (r *runner) closedLoop(loadCtx, flowCtx context.Context, pool chan *customer) {
	var wg sync.WaitGroup
	for range r.cfg.Shoppers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := r.rng()
			for loadCtx.Err() == nil {
				var c *customer
				select {
				case c = <-pool:
				case <-loadCtx.Done():
					return
				}
				r.flows.Add(1)
				r.playOrder(loadCtx, flowCtx, rng, c, pool)
				r.flows.Done()
			}
		}()
	}
	wg.Wait()
}

// openLoop starts orders at cfg.Rate per second on a fixed schedule
// whatever the answers do, each with a free customer, at most
// cfg.MaxInFlight at a time. A start due while the bound is reached (or
// no customer is free) is skipped and counted: the generator fell
// behind. How late each start was against its schedule goes into
// startLag.
func (r *runner) openLoop(loadCtx, flowCtx context.Context, pool chan *customer) {
	slots := make(chan struct{}, r.cfg.MaxInFlight)
	for i := 0; ; i++ {
		due := r.start.Add(time.Duration(float64(i) / r.cfg.Rate * float64(time.Second)))
		if !due.Before(r.loadEnd) || pause.For(loadCtx, time.Until(due)) != nil {
			return
		}
		r.startLag.Record(time.Since(due))
		select {
		case slots <- struct{}{}:
		default:
			r.skipped.Add(1)
			continue
		}
		var c *customer
		select {
		case c = <-pool:
		default:
			<-slots
			r.skipped.Add(1)
			continue
		}
		r.flows.Add(1)
		go func(i int) {
			defer r.flows.Done()
			defer func() { <-slots }()
			r.playOrder(loadCtx, flowCtx, rand.New(rand.NewPCG(r.cfg.Seed, uint64(i)<<1|1)), c, pool)
		}(i)
	}
}

// playOrder plays one order of customer c and gives c back to the pool
// (later, when the server asked that customer to wait).
func (r *runner) playOrder(loadCtx, flowCtx context.Context, rng *rand.Rand, c *customer, pool chan *customer) {
	rest, err := r.order(loadCtx, flowCtx, rng, c)
	switch {
	case rest > 0:
		r.parked.Add(1)
		r.rested.Add(int64(rest))
		time.AfterFunc(rest, func() { pool <- c })
		return
	case err != nil && loadCtx.Err() == nil:
		// Something failed: a pause, so a server that is down is not
		// hammered in a tight loop.
		_ = pause.For(loadCtx, 100*time.Millisecond)
	}
	pool <- c
}

// orderBody is what a shopper sends to place an order.
func (r *runner) orderBody(rng *rand.Rand, c *customer) (map[string]any, int64) {
	var lines []any
	var units int64
	if r.cfg.Hot {
		lines, units = []any{map[string]any{"sku": r.hotSKU, "qty": 1}}, 1
	} else {
		n := 1 + rng.IntN(min(2, len(r.skus)))
		first := rng.IntN(len(r.skus))
		for i := range n {
			q := 1 + rng.Int64N(3)
			lines = append(lines, map[string]any{"sku": r.skus[(first+i)%len(r.skus)], "qty": q})
			units += q
		}
	}
	return map[string]any{
		"customer":         map[string]any{"name": c.name, "email": fmt.Sprintf("shopper%d@example.com", c.n)},
		"lines":            lines,
		"shipping_address": map[string]any{"name": c.name, "line1": "1 Load Street", "city": "Shanghai", "postal_code": "200000", "country": "CN"},
	}, units
}

// The order's statuses the flow waits for.
const (
	stPlaced         = "placed"
	stStockReserved  = "stock_reserved"
	stPaymentPending = "payment_pending"
	stPaid           = "paid"
	stShipped        = "shipped"
	stDelivered      = "delivered"
	stRejected       = "rejected"
	stCancelled      = "cancelled"
	stRefunded       = "refunded"
)

// ended reports whether an order in status st can no longer be paid.
func ended(st string) bool { return st == stRejected || st == stCancelled || st == stRefunded }

// order plays one order: place, wait for the decision, pay (or not),
// then cancel, ship or keep it. It returns how long c must rest when the
// server refused the order for that customer's unpaid orders.
func (r *runner) order(loadCtx, flowCtx context.Context, rng *rand.Rand, c *customer) (time.Duration, error) {
	body, units := r.orderBody(rng, c)
	key := fmt.Sprintf("%s-%d-%d", r.cfg.RunID, c.n, r.seq.Add(1))
	var acc accepted
	var sent time.Time
	// The place is retried after Retry-After inside the client. A place sent before the load ended gets its answer (until the
	// drain ends): an order placed but not known would leave the
	// accounting, and a flash sale's stock check, open.
	if loadCtx.Err() != nil {
		return 0, nil
	}
	for {
		sent = time.Now()
		r.attempts.Add(1)
		_, err := r.cl.do(flowCtx, call{kind: "POST /v1/orders", method: "POST", url: "/v1/orders", role: auth.RoleCustomer, sub: c.id, key: key, body: body, want: 202}, &acc)
		if err == nil {
			break
		}
		var ae *apiError
		if errors.As(err, &ae) && r.cl.giveBack[ae.Code] {
			r.cl.retries.add(ae.key(), 1)
			return ae.RetryAfter, nil
		}
		r.cl.errors.add("place: "+errorKey(err), 1)
		r.placeFailed.Add(1)
		return 0, err
	}
	r.toAccepted.Record(time.Since(sent))
	r.accepted.Add(1)
	id := acc.OrderID

	abandoned, err := r.follow(flowCtx, rng, c, id, units)
	if !abandoned && flowCtx.Err() == nil {
		// An order the payment timeout cancelled while the shopper waited
		// (the simulator abandoned it in auto mode) counts for timer
		// lateness too; a customer's own cancel does not.
		var lateness *histogram
		if _, due := r.timerDue.LoadAndDelete(id); due {
			lateness = r.lateness
		}
		r.measure(flowCtx, c, id, lateness)
	}
	return 0, err
}

// follow plays an accepted order to its outcome: wait for the decision,
// pay (or not), then cancel, ship or keep it. It counts the outcome
// (none when the drain ends first: the order is in flight) and reports
// whether the order was abandoned to a watcher.
func (r *runner) follow(ctx context.Context, rng *rand.Rand, c *customer, id string, units int64) (abandoned bool, _ error) {
	fail := func(what string, err error) error {
		if ctx.Err() != nil {
			return nil // in flight at the end: counted as such
		}
		r.cl.errors.add(what+": "+errorKey(err), 1)
		r.failed.Add(1)
		return err
	}
	v, err := r.await(ctx, c, id, func(v orderView) bool { return v.Status != stPlaced })
	if err != nil {
		return false, fail("await decision", err)
	}
	if v.Status == stRejected {
		r.rejected.Add(1)
		r.firstRejected.CompareAndSwap(0, int64(time.Since(r.start)))
		return false, nil
	}
	r.reserved.Add(1)

	roll := rng.Float64()
	cancel := roll < r.cfg.CancelRatio
	ship := !cancel && roll < r.cfg.CancelRatio+r.cfg.ShipRatio
	if r.cfg.Pay == "manual" {
		v, err = r.await(ctx, c, id, func(v orderView) bool {
			return (v.Status == stPaymentPending && v.Payment.CheckoutURL != "") || ended(v.Status) || v.Status == stPaid
		})
		if err != nil {
			return false, fail("await payment_pending", err)
		}
		if v.Status == stPaymentPending {
			pay := rng.Float64()
			switch {
			case cancel:
				// Changed their mind before paying.
				return false, r.cancel(ctx, c, id, fail)
			case pay < r.cfg.Abandon:
				r.abandon(ctx, c, id, time.Now())
				return true, nil
			case pay < r.cfg.Abandon+r.cfg.Decline:
				return false, r.payClick(ctx, c, id, v, "decline", fail)
			}
			if err := pause.For(ctx, r.think(rng)); err != nil {
				return false, nil
			}
			if err := r.payClick(ctx, c, id, v, "approve", fail); err != nil {
				return false, err
			}
		}
	}
	v, err = r.await(ctx, c, id, func(v orderView) bool { return !unpaid(v.Status) })
	if err != nil {
		return false, fail("await paid", err)
	}
	if v.Status != stPaid && v.Status != stShipped && v.Status != stDelivered {
		// Declined by the simulator (auto mode with declines), or
		// cancelled by the timeout before the shopper's approval.
		if v.StatusReason == "payment_timeout" {
			r.timedOut.Add(1)
			r.timerDue.Store(id, true) // its lateness is measured with the rest
		} else {
			r.declined.Add(1)
		}
		return false, nil
	}
	r.paid.Add(1)
	switch {
	case cancel:
		return false, r.cancel(ctx, c, id, fail)
	case ship:
		_, err := r.cl.do(ctx, call{kind: "POST /v1/orders/{id}/ship", method: "POST", url: "/v1/orders/" + id + "/ship", role: auth.RoleAdmin, sub: "ordoload",
			body: map[string]any{"carrier": "LOAD", "tracking_number": "LT" + strconv.FormatInt(r.seq.Add(1), 10)}, want: 202, idempotent: true}, nil)
		if err != nil {
			return false, fail("ship", err)
		}
		r.shipped.Add(1)
	default:
		r.keptPaid.Add(1)
	}
	r.soldUnits.Add(units)
	return false, nil
}

// measure reads an order's timeline once its flow is done and records,
// by the server's clock (each entry's time is its commit's), how long
// after order.placed the order was decided (order.stock_reserved or
// order.rejected) and paid (order.paid), and, for an order abandoned to
// the payment timeout (timeout > 0), how late order.cancelled was
// against its due time: order.payment_requested's time plus the timeout.
func (r *runner) measure(ctx context.Context, c *customer, id string, lateness *histogram) {
	var tl timeline
	if _, err := r.cl.do(ctx, call{kind: "GET /v1/orders/{id}/timeline", method: "GET", url: "/v1/orders/" + id + "/timeline", role: auth.RoleCustomer, sub: c.id, want: 200}, &tl); err != nil {
		if ctx.Err() == nil {
			r.cl.errors.add("timeline: "+errorKey(err), 1)
		}
		return
	}
	at := map[string]time.Time{}
	for _, e := range tl.Entries {
		if _, seen := at[e.Event]; !seen {
			at[e.Event] = e.At
		}
	}
	placed, ok := at["order.placed"]
	if !ok {
		return
	}
	decided, ok := at["order.stock_reserved"]
	if !ok {
		decided, ok = at["order.rejected"]
	}
	if ok {
		r.toDecided.Record(decided.Sub(placed))
	}
	if paid, ok := at["order.paid"]; ok {
		r.toPaid.Record(paid.Sub(placed))
	}
	requested, ok1 := at["order.payment_requested"]
	cancelled, ok2 := at["order.cancelled"]
	if lateness != nil && ok1 && ok2 {
		lateness.Record(cancelled.Sub(requested.Add(r.cfg.PaymentTimeout)))
	}
}

// unpaid reports whether an order in status st still waits for its
// payment.
func unpaid(st string) bool { return st == stStockReserved || st == stPaymentPending }

// think is how long a shopper looks at the pay page: up to twice
// cfg.Think, uniformly.
func (r *runner) think(rng *rand.Rand) time.Duration {
	if r.cfg.Think <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(2 * int64(r.cfg.Think)))
}

// cancel cancels an order as its customer.
func (r *runner) cancel(ctx context.Context, c *customer, id string, fail func(string, error) error) error {
	_, err := r.cl.do(ctx, call{kind: "POST /v1/orders/{id}/cancel", method: "POST", url: "/v1/orders/" + id + "/cancel", role: auth.RoleCustomer, sub: c.id,
		body: map[string]any{"reason": "changed my mind"}, want: 202, idempotent: true}, nil)
	if err != nil {
		return fail("cancel", err)
	}
	r.cancelled.Add(1)
	return nil
}

// payClick presses a button of the order's pay page through its signed
// link. A decline ends the flow once the order is cancelled for it.
func (r *runner) payClick(ctx context.Context, c *customer, id string, v orderView, action string, fail func(string, error) error) error {
	u, err := payAction(v.Payment.CheckoutURL, action)
	if err != nil {
		return fail("pay link", err)
	}
	if _, err := r.cl.do(ctx, call{kind: "POST /pay/{id}/" + action, method: "POST", url: u, want: 303}, nil); err != nil {
		return fail(action, err)
	}
	if action == "approve" {
		return nil
	}
	v, err = r.await(ctx, c, id, func(v orderView) bool { return ended(v.Status) || v.Status == stPaid })
	if err != nil {
		return fail("await declined", err)
	}
	if v.Status == stPaid {
		return fail("decline", fmt.Errorf("order %s was paid after its payment was declined", id))
	}
	r.declined.Add(1)
	return nil
}

// abandon leaves an order unpaid: a watcher waits for the payment
// timeout to cancel it and measures how late the cancellation was
// against its due time (the payment request's time in the timeline plus
// the payment timeout, both by the server's clock).
func (r *runner) abandon(ctx context.Context, c *customer, id string, seen time.Time) {
	r.watchers.Add(1)
	r.abandoned.Add(1)
	go func() {
		defer r.watchers.Done()
		// Nothing happens before the due time: wait for it, then poll
		// slowly (the measure comes from the timeline, not the poll).
		if pause.For(ctx, time.Until(seen.Add(r.cfg.PaymentTimeout))) != nil {
			return
		}
		v, err := r.awaitEvery(ctx, c, id, r.cfg.PollMax, func(v orderView) bool { return !unpaid(v.Status) })
		if err != nil {
			if ctx.Err() == nil {
				r.cl.errors.add("await timeout: "+errorKey(err), 1)
				r.failed.Add(1)
				r.watcherSettled.Add(1)
			}
			return
		}
		r.watcherSettled.Add(1)
		if v.Status != stCancelled {
			r.cl.errors.add("abandoned order ended "+v.Status, 1)
			r.failed.Add(1)
			return
		}
		r.timedOut.Add(1)
		r.measure(ctx, c, id, r.lateness)
	}()
}

// await polls the order's view until done holds: after cfg.Poll, then
// after twice as long each time up to cfg.PollMax, as a shopper glancing
// at a status page would (nothing a shopper waits for is ready at once,
// and reads that find nothing new are load the storefront adds, not work
// the checkout does). An order the read model does not have yet (404) is
// polled again. The polls only drive the shopper; the latencies come from
// the timeline ([runner.measure]).
func (r *runner) await(ctx context.Context, c *customer, id string, done func(orderView) bool) (orderView, error) {
	return r.awaitEvery(ctx, c, id, r.cfg.Poll, done)
}

func (r *runner) awaitEvery(ctx context.Context, c *customer, id string, first time.Duration, done func(orderView) bool) (orderView, error) {
	var v orderView
	if err := pause.For(ctx, first); err != nil {
		return v, err
	}
	err := pause.Until(ctx, first, max(first, r.cfg.PollMax), func() (bool, error) {
		v = orderView{}
		_, err := r.cl.do(ctx, call{kind: "GET /v1/orders/{id}", method: "GET", url: "/v1/orders/" + id, role: auth.RoleCustomer, sub: c.id, want: 200}, &v)
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == 404 {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return done(v), nil
	})
	return v, err
}

// runProbe measures the release delay: one order at a time on a SKU of
// its own, placed by a customer of its own, is cancelled once its stock
// is reserved, and the SKU's catalog entry is polled until its reserved
// count is back to zero. The delay runs from the cancel's 202 (the
// cancellation is in the log) to the first catalog answer showing the
// stock released.
func (r *runner) runProbe(loadCtx, flowCtx context.Context) {
	c := &customer{id: "load-" + r.cfg.RunID + "-probe", name: "Release Probe", n: -1}
	for n := 0; loadCtx.Err() == nil; n++ {
		if r.probeOnce(flowCtx, c, n) != nil && loadCtx.Err() == nil {
			_ = pause.For(loadCtx, r.cfg.ProbeEvery)
		}
		if pause.For(loadCtx, r.cfg.ProbeEvery) != nil {
			return
		}
	}
}

func (r *runner) probeOnce(ctx context.Context, c *customer, n int) error {
	var acc accepted
	body := map[string]any{
		"customer":         map[string]any{"name": c.name, "email": "probe@example.com"},
		"lines":            []any{map[string]any{"sku": r.probe, "qty": 1}},
		"shipping_address": map[string]any{"name": c.name, "line1": "1 Load Street", "city": "Shanghai", "country": "CN"},
	}
	if _, err := r.cl.do(ctx, call{kind: "probe: POST /v1/orders", method: "POST", url: "/v1/orders", role: auth.RoleCustomer, sub: c.id,
		key: fmt.Sprintf("%s-probe-%d", r.cfg.RunID, n), body: body, want: 202}, &acc); err != nil {
		r.cl.errors.add("probe place: "+errorKey(err), 1)
		return err
	}
	v, err := r.await(ctx, c, acc.OrderID, func(v orderView) bool { return v.Status != stPlaced && v.Status != stStockReserved })
	if err != nil || ended(v.Status) {
		return err
	}
	if _, err := r.cl.do(ctx, call{kind: "probe: POST /v1/orders/{id}/cancel", method: "POST", url: "/v1/orders/" + acc.OrderID + "/cancel", role: auth.RoleCustomer, sub: c.id,
		body: map[string]any{"reason": "release probe"}, want: 202, idempotent: true}, nil); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusOK {
			// Ended before the probe's cancel (its payment declined by a
			// fault): the cancel changed nothing, there is no release
			// of the probe's to time.
			return nil
		}
		r.cl.errors.add("probe cancel: "+errorKey(err), 1)
		return err
	}
	cancelled := time.Now()
	return pause.Until(ctx, r.cfg.ProbePoll, r.cfg.ProbePoll, func() (bool, error) {
		var s skuView
		if _, err := r.cl.do(ctx, call{kind: "probe: GET /v1/skus/{sku}", method: "GET", url: "/v1/skus/" + r.probe, role: auth.RoleAdmin, sub: "ordoload", want: 200}, &s); err != nil {
			return false, err
		}
		if s.Reserved == 0 {
			r.release.Record(time.Since(cancelled))
			return true, nil
		}
		return false, nil
	})
}

// progress prints one line to the log every cfg.Progress until done.
func (r *runner) progress(done chan struct{}) {
	t := time.NewTicker(r.cfg.Progress)
	defer t.Stop()
	var last int64
	lastAt := r.start
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			acc := r.accepted.Load()
			rate := float64(acc-last) / now.Sub(lastAt).Seconds()
			last, lastAt = acc, now
			phase := "load"
			if now.After(r.loadEnd) {
				phase = "drain"
			}
			fmt.Fprintf(r.log, "ordoload %5.0fs %s: placed %d (%.1f/s), paid %d, rejected %d, cancelled %d, timed out %d, shipped %d, in flight %d, retries %d, unreachable %d, errors %d, place→202 p99 %s\n",
				now.Sub(r.start).Seconds(), phase, acc, rate, r.paid.Load(), r.rejected.Load(), r.cancelled.Load(), r.timedOut.Load(), r.shipped.Load(),
				r.inFlight(), r.cl.retries.total(), r.cl.unreachable.total(), r.cl.errors.total(), ms(r.toAccepted.Quantile(0.99)))
		}
	}
}

// inFlight is how many accepted orders have no outcome yet.
func (r *runner) inFlight() int64 {
	return r.accepted.Load() - r.rejected.Load() - r.keptPaid.Load() - r.shipped.Load() - r.cancelled.Load() -
		r.timedOut.Load() - r.declined.Load() - r.failed.Load()
}
