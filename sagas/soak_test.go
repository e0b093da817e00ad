package sagas_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/audit"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/process"
	"github.com/ordo-shop/ordo/sagas"
)

// TestRandomizedCheckoutKeepsItsInvariants places at least 200 orders over
// 20 scarce SKUs through the HTTP API while the PSP simulator declines
// payments and duplicates, reorders and loses webhooks, customers cancel
// at random, the warehouse ships at random, and the process manager
// runtime is killed and restarted at random points. After quiescence it
// reads the whole log and checks (and prints) the invariants.
//
// ORDO_SOAK_SEED reruns a seed; ORDO_SOAK_ORDERS changes the order count;
// ORDO_SOAK_SHOPPERS (default 4) and ORDO_SOAK_THINK (default 200ms, each
// shopper's mean pause between orders; 0 for none) change the rate, and
// ORDO_SOAK_WORKERS (default 8) the runtime's workers per consumer;
// ORDO_SOAK_SEPARATE_API=1 gives the API its own command handlers, as
// with the api and sagas roles on separate instances. (With it, the
// stock.on_hand check currently fails: GET /v1/skus/{sku} answers from
// the API instance's handler cache, which never learns the stock the
// sagas instance sold; see docs/decisions/005.)
func TestRandomizedCheckoutKeepsItsInvariants(t *testing.T) {
	if testing.Short() {
		t.Skip("randomized soak test")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ORDO_SOAK_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	nOrders := envInt(t, "ORDO_SOAK_ORDERS", 200)
	nShoppers := envInt(t, "ORDO_SOAK_SHOPPERS", 4)
	workers := envInt(t, "ORDO_SOAK_WORKERS", 8)
	think := 200 * time.Millisecond
	if s := os.Getenv("ORDO_SOAK_THINK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			t.Fatalf("ORDO_SOAK_THINK=%q: want a duration, 0 or more", s)
		}
		think = d
	}
	const nSKUs = 20
	t.Logf("seed %d (rerun with ORDO_SOAK_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var rngMu sync.Mutex
	roll := func(n int) int { rngMu.Lock(); defer rngMu.Unlock(); return rng.IntN(n) }

	e := newEnv(t, envOptions{
		faults:         psp.Faults{Decline: 0.15, Duplicate: 0.3, Reorder: 0.3, Loss: 0.15, Abandon: 0.1},
		seed:           seed,
		paymentTimeout: 4 * time.Second,
		reconcile:      time.Second,
		runtime:        sagas.Options{AckWait: 2 * time.Second, Workers: workers},
		separateAPI:    os.Getenv("ORDO_SOAK_SEPARATE_API") != "",
	})

	skus := make([]string, nSKUs)
	initial := map[string]int64{}
	for i := range skus {
		skus[i] = fmt.Sprintf("SKU-%02d", i)
		// 8..27 units per 200 orders: about half the demand.
		initial[skus[i]] = int64(8+roll(20)) * int64(max(1, nOrders/200))
		e.putSKU(skus[i], int64(100+roll(5000)), initial[skus[i]])
	}

	var (
		mu       sync.Mutex
		ids      []string
		owner    = map[string]string{}
		kills    atomic.Int32
		cancels  atomic.Int32
		ships    atomic.Int32
		refusals atomic.Int32 // 422 answers to cancel/ship races: expected
	)
	ctx, stopChaos := context.WithCancel(context.Background())
	var chaos sync.WaitGroup

	// The killer: the runtime dies and comes back at random points.
	chaos.Add(1)
	go func() {
		defer chaos.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(150+roll(600)) * time.Millisecond):
			}
			e.killRuntime()
			kills.Add(1)
			time.Sleep(time.Duration(roll(300)) * time.Millisecond)
			e.startRuntime()
		}
	}()
	pick := func() (string, string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(ids) == 0 {
			return "", "", false
		}
		id := ids[roll(len(ids))]
		return id, owner[id], true
	}
	// Customers cancel, the warehouse ships.
	chaos.Add(1)
	go func() {
		defer chaos.Done()
		for ctx.Err() == nil {
			time.Sleep(time.Duration(20+roll(60)) * time.Millisecond)
			id, cust, ok := pick()
			if !ok {
				continue
			}
			if roll(3) == 0 {
				r := e.do("POST", "/v1/orders/"+id+"/ship", e.admin, map[string]any{"carrier": "SF", "tracking_number": "T-" + id})
				switch r.status {
				case 202, 200: // 200: shipped already
					ships.Add(1)
				case 422:
					refusals.Add(1)
				default:
					t.Errorf("ship %s: %d %s", id, r.status, r.raw)
				}
				continue
			}
			r := e.do("POST", "/v1/orders/"+id+"/cancel", e.token(cust, auth.RoleCustomer), map[string]any{"reason": "changed my mind"})
			switch r.status {
			case 202, 200: // 200: cancelled (or refunded) already, by the checkout
				cancels.Add(1)
			case 422:
				refusals.Add(1)
			default:
				t.Errorf("cancel %s: %d %s", id, r.status, r.raw)
			}
		}
	}()

	// Shoppers: orders of 1-3 lines of 1-3 units from nShoppers
	// goroutines (by default 4, with pauses that spread 200 orders over
	// about ten seconds so that the chaos hits every phase).
	var shoppers sync.WaitGroup
	next := atomic.Int32{}
	for range nShoppers {
		shoppers.Add(1)
		go func() {
			defer shoppers.Done()
			for {
				n := int(next.Add(1))
				if n > nOrders {
					return
				}
				nLines := 1 + roll(3)
				perm := rand.New(rand.NewPCG(seed, uint64(n))).Perm(nSKUs)
				var lines []line
				for _, k := range perm[:nLines] {
					lines = append(lines, line{skus[k], int64(1 + roll(3))})
				}
				cust := fmt.Sprintf("cust-%d", n%37)
				id := e.place(cust, fmt.Sprintf("key-%d", n), lines...)
				mu.Lock()
				ids = append(ids, id)
				owner[id] = cust
				mu.Unlock()
				if think > 0 { // uniform in [think/2, 3think/2)
					time.Sleep(think/2 + time.Duration(roll(int(think))))
				}
			}
		}()
	}
	shoppers.Wait()
	time.Sleep(2 * time.Second) // let the chaos overlap the tail of the checkouts
	stopChaos()
	chaos.Wait()
	e.mu.Lock()
	running := e.rt != nil
	e.mu.Unlock()
	if !running {
		e.startRuntime()
	}

	// Quiescence: no order in an intermediate state, no payment pending,
	// and the log still for a while.
	intermediate := func(s order.Status) bool {
		return s == order.StatusPlaced || s == order.StatusStockReserved || s == order.StatusPaymentPending
	}
	settledOne := func(id string) bool {
		o, _ := e.order(id)
		if intermediate(o.Status) {
			return false
		}
		p, _ := e.payment(process.PaymentIDFor(id))
		if p.Exists && (p.Status == payment.StatusRequested || p.Status == payment.StatusAuthorized) {
			return false
		}
		if p.Status == payment.StatusCaptured && o.Status != order.StatusPaid && o.Status != order.StatusShipped && o.Status != order.StatusDelivered {
			return false // a refund is on its way
		}
		if o.Status == order.StatusRefunded && p.Status != payment.StatusRefunded {
			return false
		}
		return true
	}
	// open holds the orders not seen settled yet in this wait. Once the
	// chaos has stopped an order only moves towards settling, so one seen
	// settled is not read again: reading every order at every check took
	// longer than the wait itself with tens of thousands of orders (most
	// states no longer in the handlers' caches).
	var open []string
	settled := func() bool {
		still := open[:0]
		for _, id := range open {
			if !settledOne(id) {
				still = append(still, id)
			}
		}
		open = still
		return len(open) == 0
	}
	// unsettled names what keeps the shop from settling, for a failure.
	unsettled := func() string {
		var sb strings.Builder
		n := 0
		for _, id := range ids {
			if settledOne(id) {
				continue
			}
			o, ocs := e.order(id)
			p, pcs := e.payment(process.PaymentIDFor(id))
			n++
			if n <= 10 {
				fmt.Fprintf(&sb, "\n  order %s %s (%s), payment %s (%s)", id, o.Status, strings.Join(eventTypes(ocs), ","), p.Status, strings.Join(eventTypes(pcs), ","))
			}
		}
		dls, err := e.store.DeadLetters(context.Background())
		fmt.Fprintf(&sb, "\n  %d orders unsettled; %d dead letters (%v)", n, len(dls), err)
		for i, dl := range dls {
			if i == 5 {
				break
			}
			fmt.Fprintf(&sb, "\n  dead letter: %s seq %d %s: %s", dl.Stream, dl.Seq, dl.Subject, dl.Error)
		}
		return sb.String()
	}
	// waitQuiet waits until every order has settled and no commit is
	// appended for 2 s. A liveness bound, not a timing: it gives up only
	// when the log has not moved for 90 s without settling, however long
	// a loaded machine takes overall.
	waitQuiet := func(what string) {
		open = slices.Clone(ids)
		began := time.Now()
		moved := time.Now()
		last, stable := e.seqs(), 0
		for {
			switch s := e.seqs(); {
			case s != last:
				last, stable, moved = s, 0, time.Now()
			case settled():
				stable++
			default:
				stable = 0
			}
			if stable >= 10 { // 10 × 200ms settled without a new commit
				t.Logf("quiescence (%s) after %s", what, time.Since(began).Round(time.Millisecond))
				return
			}
			if time.Since(moved) > 90*time.Second {
				t.Fatalf("no quiescence (%s): no commit for 90s and not settled; %s", what, unsettled())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitQuiet("checkouts")

	// The warehouse ships every paid order and delivers half of them, so
	// that no stock may stay reserved.
	for i, id := range ids {
		o, _ := e.order(id)
		if o.Status != order.StatusPaid {
			continue
		}
		if r := e.do("POST", "/v1/orders/"+id+"/ship", e.admin, map[string]any{"carrier": "SF", "tracking_number": "T-" + id}); r.status != 202 {
			t.Fatalf("ship paid order %s: %d %s", id, r.status, r.raw)
		}
		ships.Add(1)
		if i%2 == 0 {
			if r := e.do("POST", "/v1/orders/"+id+"/deliver", e.admin, nil); r.status != 202 {
				t.Fatalf("deliver %s: %d %s", id, r.status, r.raw)
			}
		}
	}
	waitQuiet("shipping")
	e.stopRuntime()

	reported := map[string]int64{}
	for _, sku := range skus {
		r := e.do("GET", "/v1/skus/"+sku, e.admin, nil)
		if r.status != 200 {
			t.Fatalf("GET sku %s: %d %s", sku, r.status, r.raw)
		}
		reported[sku] = int64(r.body["on_hand"].(float64))
	}
	checkInvariants(t, e, audit.InvariantOptions{Orders: ids, StockIn: initial, ReportedOnHand: reported}, soakCounts{
		kills: int(kills.Load()), cancels: int(cancels.Load()), ships: int(ships.Load()), refusals: int(refusals.Load()),
	})
}

type soakCounts struct{ kills, cancels, ships, refusals int }

// envInt reads a positive count from the environment, def if unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive count", name, s)
	}
	return n
}

// checkInvariants checks the log of the settled shop against the
// issue's invariants (audit.CheckInvariants: what opts gives, the PSP
// simulator's intents and the dead letters besides), prints the counts
// and fails the test on any violation.
func checkInvariants(t *testing.T, e *env, opts audit.InvariantOptions, c soakCounts) {
	t.Helper()
	rep := checkLog(t, e, opts)
	st := e.sim.Stats()
	var sb strings.Builder
	fmt.Fprintf(&sb, "randomized checkout: %d orders placed; ", len(opts.Orders))
	sb.WriteString(rep.Summary())
	fmt.Fprintf(&sb, "  chaos: runtime killed and restarted %d times; %d customer cancels, %d shipments, %d refused (422) cancel/ship races\n", c.kills, c.cancels, c.ships, c.refusals)
	fmt.Fprintf(&sb, "  PSP: %d declined, %d never paid (timeouts); webhooks: %d events, %d delivered, %d lost, %d duplicated, %d reordered, %d retried deliveries\n",
		st.Declined, st.Unpaid, st.Events, st.Delivered, st.Lost, st.Duplicated, st.Reordered, st.Retried)
	out := sb.String()
	fmt.Print(out)
	t.Log("\n" + out)
	for i, v := range rep.Violations {
		if i == 20 {
			t.Errorf("... and %d more", len(rep.Violations)-20)
			break
		}
		t.Error(v)
	}
}

// checkLog runs audit.CheckInvariants on the env's log as on a settled
// shop, with the simulator as the PSP and the env's dead letters, unless
// opts brings its own.
func checkLog(t testing.TB, e *env, opts audit.InvariantOptions) audit.InvariantReport {
	t.Helper()
	opts.Registry, opts.Settled = e.reg, true
	if opts.PSP == nil {
		opts.PSP = e.sim
	}
	if opts.DeadLetters == nil {
		opts.DeadLetters = func(ctx context.Context) (int, error) {
			dls, err := e.store.DeadLetters(ctx)
			return len(dls), err
		}
	}
	rep, err := audit.CheckInvariants(context.Background(), e.store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
