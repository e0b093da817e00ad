package sagas_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/events"
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
	settled := func() bool {
		for _, id := range ids {
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
		}
		return true
	}
	// waitQuiet waits until every order has settled and no commit is
	// appended for 2 s. A liveness bound, not a timing: it gives up only
	// when the log has not moved for 90 s without settling, however long
	// a loaded machine takes overall.
	waitQuiet := func(what string) {
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
				t.Fatalf("no quiescence (%s): no commit for 90s and not settled", what)
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
	dls, err := e.store.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, e, theWorld{ids: ids, initial: initial, reportedOnHand: reported, intents: e.sim.Intents(), deadLetters: len(dls)}, soakCounts{
		kills: int(kills.Load()), cancels: int(cancels.Load()), ships: int(ships.Load()), refusals: int(refusals.Load()),
	})
}

type soakCounts struct{ kills, cancels, ships, refusals int }

// theWorld is what the invariants are checked against besides the log:
// what the test put in, and what the system's other parts say.
type theWorld struct {
	ids            []string         // the orders the shoppers placed
	initial        map[string]int64 // units the test put into each SKU
	reportedOnHand map[string]int64 // on_hand per SKU as GET /v1/skus/{sku} answers
	intents        []psp.Intent     // the PSP's intents
	deadLetters    int
}

// invariantResult is what checkLog found: the counts it prints and every
// violation.
type invariantResult struct {
	report     string
	failures   []string
	violations map[string]int // by invariant
}

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

// checkInvariants checks the log against the invariants, prints
// the counts and fails the test on any violation.
func checkInvariants(t *testing.T, e *env, w theWorld, c soakCounts) {
	t.Helper()
	res := checkLog(t, e, w)
	st := e.sim.Stats()
	var sb strings.Builder
	fmt.Fprintf(&sb, "  chaos: runtime killed and restarted %d times; %d customer cancels, %d shipments, %d refused (422) cancel/ship races\n", c.kills, c.cancels, c.ships, c.refusals)
	fmt.Fprintf(&sb, "  PSP: %d declined, %d never paid (timeouts); webhooks: %d events, %d delivered, %d lost, %d duplicated, %d reordered, %d retried deliveries\n",
		st.Declined, st.Unpaid, st.Events, st.Delivered, st.Lost, st.Duplicated, st.Reordered, st.Retried)
	out := res.report + sb.String()
	fmt.Print(out)
	t.Log("\n" + out)
	for i, f := range res.failures {
		if i == 20 {
			t.Errorf("... and %d more", len(res.failures)-20)
			break
		}
		t.Error(f)
	}
}

// checkLog reads every commit of every aggregate stream and checks,
// computing each quantity from the events themselves (not from the
// process manager's or the handlers' memory):
//
//	stock.oversold      no SKU ever has more reserved than on hand, or a
//	                    negative on hand; no order releases or commits
//	                    more than it holds
//	stock.on_hand       on hand (as the SKU's events fold it, and as the
//	                    API reports it) = Σ adjustments − Σ sold
//	stock.adjustments   Σ adjustments = what the test put in
//	stock.reserved      nothing left reserved
//	stock.sold_unshipped stock sold only for shipped or delivered orders
//	order.intermediate  no order placed, stock_reserved or payment_pending
//	order.missing       every placed order is in the log
//	payment.kept        every captured payment belongs to a paid, shipped
//	                    or delivered order, or is refunded in full
//	payment.pending     no payment requested or authorized
//	psp.money           the PSP agrees: every captured intent pays a kept
//	                    order, every refund is full, nothing pending, and
//	                    its status matches the payment's in the log
//	command.id_twice    no commit id appears twice
//	command.applied_twice no two commits on one aggregate have the same
//	                    causation and the same events; no order or payment
//	                    records an event type twice; no SKU reserves,
//	                    releases or commits twice for one order
//	command.causation   every commit the checkout or the PSP sync made is
//	                    caused by a commit in the log, a timer or a PSP
//	                    event
//	dlq                 no dead letters
func checkLog(t testing.TB, e *env, w theWorld) invariantResult {
	t.Helper()
	ctx := context.Background()
	res := invariantResult{violations: map[string]int{}}
	fail := func(inv, f string, a ...any) {
		res.violations[inv]++
		res.failures = append(res.failures, inv+": "+fmt.Sprintf(f, a...))
	}
	type agg struct {
		typ, id string
		commits []*events.Commit
		events  [][]events.Payload // per commit
	}
	var (
		byAgg     = map[string]*agg{}
		keys      []string
		commitIDs = map[string]string{}
		nCommits  int
	)
	for _, typ := range []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment} {
		err := logtest.Replay(ctx, e.store, typ, 0, func(r eventlog.Record) error {
			nCommits++
			cm := r.Commit
			if prev, ok := commitIDs[cm.CommitID]; ok {
				fail("command.id_twice", "commit id %s used by %s and by %s %s", cm.CommitID, prev, cm.AggregateType, cm.AggregateID)
			}
			commitIDs[cm.CommitID] = cm.AggregateType + " " + cm.AggregateID
			evs, err := e.reg.DecodeAll(cm)
			if err != nil {
				return err
			}
			k := typ + "/" + cm.AggregateID
			a := byAgg[k]
			if a == nil {
				a = &agg{typ: typ, id: cm.AggregateID}
				byAgg[k] = a
				keys = append(keys, k)
			}
			a.commits = append(a.commits, cm)
			a.events = append(a.events, evs)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// Commands: causation and double application, from the envelopes.
	for _, k := range keys {
		a := byAgg[k]
		effects := map[string]string{}
		for _, cm := range a.commits {
			cause := cm.Metadata.CausationID
			if cause == "" {
				continue // an API command: its id is the idempotency key's
			}
			key := cause + " " + strings.Join(eventTypes([]*events.Commit{cm}), ",")
			if prev, ok := effects[key]; ok {
				fail("command.applied_twice", "%s %s: commits %s and %s both apply %s", a.typ, a.id, prev, cm.CommitID, key)
			}
			effects[key] = cm.CommitID
			byUs := strings.HasPrefix(cm.Metadata.Actor, "sagas:") || strings.HasPrefix(cm.Metadata.Actor, "psp:")
			_, known := commitIDs[cause]
			if byUs && !known && !strings.HasPrefix(cause, "timer:") && !strings.HasPrefix(cause, "psp-event:") {
				fail("command.causation", "%s %s v%d (%s by %s) is caused by %q, which is no commit, timer or PSP event", a.typ, a.id, cm.Version, cm.CommitID, cm.Metadata.Actor, cause)
			}
		}
	}

	// Orders.
	orderStatus := map[string]order.Status{}
	statusCount := map[order.Status]int{}
	for _, k := range keys {
		a := byAgg[k]
		if a.typ != eventlog.TypeOrder {
			continue
		}
		s := order.Initial(a.id)
		seen := map[string]bool{}
		for _, evs := range a.events {
			for _, ev := range evs {
				s = order.Evolve(s, ev)
				if seen[ev.EventType()] {
					fail("command.applied_twice", "order %s: %s twice", a.id, ev.EventType())
				}
				seen[ev.EventType()] = true
			}
		}
		orderStatus[a.id] = s.Status
		statusCount[s.Status]++
		if s.Status == order.StatusPlaced || s.Status == order.StatusStockReserved || s.Status == order.StatusPaymentPending {
			fail("order.intermediate", "order %s left %s", a.id, s.Status)
		}
	}
	for _, id := range w.ids {
		if _, ok := orderStatus[id]; !ok {
			fail("order.missing", "order %s was placed but is not in the log", id)
		}
	}
	kept := func(s order.Status) bool {
		return s == order.StatusPaid || s == order.StatusShipped || s == order.StatusDelivered
	}

	// Inventory, folded independently of the aggregate's Evolve.
	var skuCount, unitsOnHand, unitsSold, unitsReserved, unitsAdjusted int64
	for _, k := range keys {
		a := byAgg[k]
		if a.typ != eventlog.TypeInventory {
			continue
		}
		skuCount++
		folded := inventory.Initial(a.id)
		var adj, sold, reserved int64
		held := map[string]int64{}
		seen := map[string]bool{}
		for _, evs := range a.events {
			for _, ev := range evs {
				folded = inventory.Evolve(folded, ev)
				switch ev := ev.(type) {
				case events.InventoryStockAdjusted:
					adj += ev.Delta
				case events.InventoryRestocked:
					adj += ev.Qty
				case events.InventoryReserved:
					held[ev.OrderID] += ev.Qty
					reserved += ev.Qty
				case events.InventoryReleased:
					if ev.Qty != held[ev.OrderID] {
						fail("stock.oversold", "%s: order %s releases %d but holds %d", a.id, ev.OrderID, ev.Qty, held[ev.OrderID])
					}
					reserved -= ev.Qty
					delete(held, ev.OrderID)
				case events.InventoryCommitted:
					if ev.Qty != held[ev.OrderID] {
						fail("stock.oversold", "%s: order %s sells %d but holds %d", a.id, ev.OrderID, ev.Qty, held[ev.OrderID])
					}
					if st := orderStatus[ev.OrderID]; st != order.StatusShipped && st != order.StatusDelivered {
						fail("stock.sold_unshipped", "%s: %d sold for order %s, which is %s", a.id, ev.Qty, ev.OrderID, st)
					}
					reserved -= ev.Qty
					sold += ev.Qty
					delete(held, ev.OrderID)
				}
				switch ev := ev.(type) {
				case events.InventoryReserved, events.InventoryReleased, events.InventoryCommitted:
					key := ev.EventType() + " " + orderOf(ev)
					if seen[key] {
						fail("command.applied_twice", "%s: %s twice", a.id, key)
					}
					seen[key] = true
				}
				if onHand := adj - sold; onHand < 0 || reserved < 0 || reserved > onHand {
					fail("stock.oversold", "%s after %s: on hand %d, reserved %d", a.id, ev.EventType(), onHand, reserved)
				}
			}
		}
		if folded.OnHand != adj-sold {
			fail("stock.on_hand", "%s: the SKU's events fold to on hand %d; adjustments %d − sold %d = %d", a.id, folded.OnHand, adj, sold, adj-sold)
		}
		if got, ok := w.reportedOnHand[a.id]; ok && got != adj-sold {
			fail("stock.on_hand", "%s: the API reports on hand %d; adjustments %d − sold %d = %d", a.id, got, adj, sold, adj-sold)
		}
		if want, ok := w.initial[a.id]; ok && adj != want {
			fail("stock.adjustments", "%s: adjustments add up to %d, the test put in %d", a.id, adj, want)
		}
		if reserved != 0 || len(held) != 0 {
			fail("stock.reserved", "%s: %d units still reserved (%v)", a.id, reserved, held)
		}
		unitsOnHand += adj - sold
		unitsReserved += reserved
		unitsSold += sold
		unitsAdjusted += adj
	}

	// Payments.
	payCount := map[payment.Status]int{}
	logPayment := map[string]payment.State{}
	everCaptured, refundedInFull := 0, 0
	for _, k := range keys {
		a := byAgg[k]
		if a.typ != eventlog.TypePayment {
			continue
		}
		s := payment.Initial(a.id)
		seen := map[string]bool{}
		var capturedAmt, refundedAmt int64
		for _, evs := range a.events {
			for _, ev := range evs {
				s = payment.Evolve(s, ev)
				if seen[ev.EventType()] {
					fail("command.applied_twice", "payment %s: %s twice", a.id, ev.EventType())
				}
				seen[ev.EventType()] = true
				switch ev := ev.(type) {
				case events.PaymentCaptured:
					capturedAmt += ev.Amount.Amount
				case events.PaymentRefunded:
					refundedAmt += ev.Amount.Amount
				}
			}
		}
		logPayment[s.ID] = s
		payCount[s.Status]++
		if capturedAmt > 0 {
			everCaptured++
			ost := orderStatus[s.OrderID]
			full := refundedAmt == capturedAmt && s.Status == payment.StatusRefunded
			if full {
				refundedInFull++
			}
			if !(kept(ost) && refundedAmt == 0) && !full {
				fail("payment.kept", "payment %s captured %d for order %s (%s), refunded %d", a.id, capturedAmt, s.OrderID, ost, refundedAmt)
			}
		}
		if s.Status == payment.StatusRequested || s.Status == payment.StatusAuthorized {
			fail("payment.pending", "payment %s left %s", a.id, s.Status)
		}
	}

	// The money at the PSP.
	pspCaptured, pspRefunded := 0, 0
	for _, in := range w.intents {
		lp, ok := logPayment[in.Reference]
		switch in.Status {
		case psp.StatusCaptured:
			pspCaptured++
			if ost := orderStatus[in.OrderID]; !kept(ost) {
				fail("psp.money", "the PSP holds the money of intent %s for order %s, which is %s", in.ID, in.OrderID, ost)
			}
			if !ok || lp.Status != payment.StatusCaptured {
				fail("psp.money", "intent %s is captured at the PSP, its payment %s is %q in the log", in.ID, in.Reference, lp.Status)
			}
		case psp.StatusRefunded:
			pspRefunded++
			if in.Refunded != in.Amount.Amount {
				fail("psp.money", "intent %s refunded %d of %d", in.ID, in.Refunded, in.Amount.Amount)
			}
			if !ok || lp.Status != payment.StatusRefunded {
				fail("psp.money", "intent %s is refunded at the PSP, its payment %s is %q in the log", in.ID, in.Reference, lp.Status)
			}
		case psp.StatusRequiresPayment, psp.StatusAuthorized:
			fail("psp.money", "intent %s for order %s still pending at the PSP", in.ID, in.OrderID)
		}
	}
	if w.deadLetters != 0 {
		fail("dlq", "%d dead letters", w.deadLetters)
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "randomized checkout: %d orders over %d SKUs, %d commits read back from the log\n", len(w.ids), skuCount, nCommits)
	fmt.Fprintf(&sb, "  orders: %s\n", countString(statusCount))
	fmt.Fprintf(&sb, "  payments: %s; %d ever captured (%d refunded in full); PSP: %d captured, %d refunded\n", countString(payCount), everCaptured, refundedInFull, pspCaptured, pspRefunded)
	fmt.Fprintf(&sb, "  stock: %d units adjusted in, %d sold, %d on hand, %d reserved\n", unitsAdjusted, unitsSold, unitsOnHand, unitsReserved)
	names := []string{"stock.oversold", "stock.on_hand", "stock.adjustments", "stock.reserved", "stock.sold_unshipped", "order.intermediate", "order.missing",
		"payment.kept", "payment.pending", "psp.money", "command.id_twice", "command.applied_twice", "command.causation", "dlq"}
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, res.violations[n]))
	}
	fmt.Fprintf(&sb, "  violations by invariant: %s (total %d)\n", strings.Join(parts, ", "), len(res.failures))
	res.report = sb.String()
	return res
}

func orderOf(ev events.Payload) string {
	switch ev := ev.(type) {
	case events.InventoryReserved:
		return ev.OrderID
	case events.InventoryReleased:
		return ev.OrderID
	case events.InventoryCommitted:
		return ev.OrderID
	}
	return ""
}

func countString[K ~string](m map[K]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[K(k)]))
	}
	return strings.Join(parts, ", ")
}
