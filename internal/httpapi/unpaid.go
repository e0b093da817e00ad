package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/internal/command"
)

// unpaidLimit caps how many orders one customer may have waiting for
// payment (placed, stock reserved, payment pending) through this instance,
// so that nobody can hold a SKU's stock with unpaid orders for the whole
// payment timeout (decision 021).
//
// It remembers, per customer, the orders this instance placed that were
// still unpaid when it last looked; before placing another it reads each
// of them from the log ([command.Current]: the checkout that pays or
// cancels them may run elsewhere) and forgets those that were paid or
// ended. Places of one customer on this instance wait for each other, so
// two at once cannot both take the last slot. An instance does not see
// the orders another instance placed, nor, after a restart, those it
// placed before: with N instances one customer can have at most N × max
// unpaid orders, and a restart can let max more through until those
// earlier orders are paid or time out.
type unpaidLimit struct {
	max int
	// timeout is the payment timeout: an order unpaid this long after it
	// was placed is about to be cancelled (Retry-After), and an entry
	// nobody looked at for forgetAfter is dropped.
	timeout time.Duration
	now     func() time.Time

	mu        sync.Mutex
	customers map[string]*unpaidSlots
	lastSweep time.Time
}

// unpaidSlots is one customer's unpaid orders placed through this
// instance. users (guarded by unpaidLimit.mu) counts the places that hold
// or wait for mu; open is guarded by mu.
type unpaidSlots struct {
	mu    sync.Mutex
	users int
	open  map[string]time.Time // order id → when this instance placed it
}

// unpaidStatus reports whether an order in status st waits for payment.
func unpaidStatus(st order.Status) bool {
	return st == order.StatusPlaced || st == order.StatusStockReserved || st == order.StatusPaymentPending
}

func newUnpaidLimit(max int, timeout time.Duration, now func() time.Time) *unpaidLimit {
	if max <= 0 {
		return nil
	}
	return &unpaidLimit{max: max, timeout: timeout, now: now, customers: map[string]*unpaidSlots{}}
}

// forgetAfter is how long an entry may go unchecked before a sweep drops
// it: four payment timeouts, by when the checkout has paid or cancelled
// the order unless it is down.
func (l *unpaidLimit) forgetAfter() time.Duration { return 4 * l.timeout }

// acquire returns the customer's slots, locked; release them with
// [unpaidLimit.release].
func (l *unpaidLimit) acquire(customer string) *unpaidSlots {
	l.mu.Lock()
	now := l.now()
	if now.Sub(l.lastSweep) > l.timeout {
		l.lastSweep = now
		l.sweep(now)
	}
	sl := l.customers[customer]
	if sl == nil {
		sl = &unpaidSlots{open: map[string]time.Time{}}
		l.customers[customer] = sl
	}
	sl.users++
	l.mu.Unlock()
	sl.mu.Lock()
	return sl
}

func (l *unpaidLimit) release(customer string, sl *unpaidSlots) {
	sl.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	sl.users--
	if sl.users == 0 && len(sl.open) == 0 {
		delete(l.customers, customer)
	}
}

// sweep drops the entries of customers nobody is placing for that are
// older than forgetAfter; l.mu is held, so nobody can take those slots
// meanwhile.
func (l *unpaidLimit) sweep(now time.Time) {
	for c, sl := range l.customers {
		if sl.users > 0 {
			continue
		}
		for id, at := range sl.open {
			if now.Sub(at) > l.forgetAfter() {
				delete(sl.open, id)
			}
		}
		if len(sl.open) == 0 {
			delete(l.customers, c)
		}
	}
}

// admit decides whether the customer holding sl may place order id: yes
// if it is one of the orders already counted (a retry), or if fewer than
// max of the others are still unpaid, or if the order exists already (a
// retry the instance does not remember: the handler answers with the
// order). Otherwise it is 429 too_many_unpaid_orders with Retry-After
// saying when the oldest of them times out.
func (l *unpaidLimit) admit(ctx context.Context, orders *command.Handler[order.State, order.Command], sl *unpaidSlots, id string) error {
	if _, ok := sl.open[id]; ok {
		return nil
	}
	for oid := range sl.open {
		res, err := orders.State(ctx, oid, command.Current)
		if err != nil {
			return err
		}
		if !unpaidStatus(res.State.Status) {
			delete(sl.open, oid)
		}
	}
	if len(sl.open) < l.max {
		return nil
	}
	res, err := orders.State(ctx, id, command.Current)
	if err != nil {
		return err
	}
	if res.State.Exists {
		return nil
	}
	oldest := l.now()
	for _, at := range sl.open {
		if at.Before(oldest) {
			oldest = at
		}
	}
	wait := max(time.Second, oldest.Add(l.timeout).Sub(l.now()))
	e := errorf(http.StatusTooManyRequests, "too_many_unpaid_orders",
		"%d orders of this customer are waiting for payment, the most allowed; pay or cancel one, or wait until one times out", len(sl.open))
	e.RetryAfter = int((wait + time.Second - 1) / time.Second)
	return e
}

// placed counts order id, placed now and in status st, against the
// customer's slots.
func (l *unpaidLimit) placed(sl *unpaidSlots, id string, st order.Status) {
	if unpaidStatus(st) {
		if _, ok := sl.open[id]; !ok {
			sl.open[id] = l.now()
		}
	}
}
