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
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/sagas"
	"github.com/ordo-shop/ordo/streams"
)

// TestRandomizedCheckoutKeepsItsInvariants places at least 200 orders over
// 20 scarce SKUs through the HTTP API while the PSP simulator declines
// payments and duplicates, reorders and loses webhooks, customers cancel
// at random, the warehouse ships at random, and the process manager
// runtime is killed and restarted at random points. After quiescence it
// reads the whole log and checks (and prints) the invariants.
//
// ORDO_SOAK_SEED reruns a seed; ORDO_SOAK_ORDERS changes the order count.
func TestRandomizedCheckoutKeepsItsInvariants(t *testing.T) {
	if testing.Short() {
		t.Skip("randomized soak test")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ORDO_SOAK_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	nOrders := 200
	if s := os.Getenv("ORDO_SOAK_ORDERS"); s != "" {
		nOrders, _ = strconv.Atoi(s)
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
		runtime:        sagas.Options{AckWait: 2 * time.Second, Workers: 8},
	})

	skus := make([]string, nSKUs)
	initial := map[string]int64{}
	for i := range skus {
		skus[i] = fmt.Sprintf("SKU-%02d", i)
		initial[skus[i]] = int64(8 + roll(20)) // 8..27 units: about half the demand
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
				case 202:
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
			case 202:
				cancels.Add(1)
			case 422:
				refusals.Add(1)
			default:
				t.Errorf("cancel %s: %d %s", id, r.status, r.raw)
			}
		}
	}()

	// Shoppers: orders of 1-3 lines of 1-3 units from 4 goroutines,
	// spread over about ten seconds so that the chaos hits every phase.
	var shoppers sync.WaitGroup
	next := atomic.Int32{}
	for range 4 {
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
				time.Sleep(time.Duration(100+roll(200)) * time.Millisecond)
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
			p, _ := e.payment(sagas.PaymentIDFor(id))
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
	waitQuiet := func(what string) {
		deadline := time.Now().Add(90 * time.Second)
		last, stable := "", 0
		for {
			if settled() {
				if s := e.seqs(); s == last {
					stable++
				} else {
					last, stable = s, 0
				}
				if stable >= 10 { // 10 × 200ms without a new commit
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no quiescence (%s) within 90s", what)
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

	checkInvariants(t, e, ids, initial, soakCounts{
		kills: int(kills.Load()), cancels: int(cancels.Load()), ships: int(ships.Load()), refusals: int(refusals.Load()),
	})
}

type soakCounts struct{ kills, cancels, ships, refusals int }

// checkInvariants reads every commit of every stream and checks the
// issue's invariants, printing the counts.
func checkInvariants(t *testing.T, e *env, ids []string, initial map[string]int64, c soakCounts) {
	t.Helper()
	ctx := context.Background()
	var (
		failures   []string
		commitIDs  = map[string]string{}
		dupCommits int
		commits    int
		fail       = func(f string, a ...any) { failures = append(failures, fmt.Sprintf(f, a...)) }
	)
	type agg struct {
		typ, id string
		events  []events.Payload
	}
	byAgg := map[string]*agg{}
	var order_ []string
	for _, typ := range []string{streams.TypeOrder, streams.TypeInventory, streams.TypePayment} {
		err := e.store.Replay(ctx, typ, 0, func(r streams.Record) error {
			commits++
			cm := r.Commit
			if prev, ok := commitIDs[cm.CommitID]; ok {
				dupCommits++
				fail("commit id %s used twice: %s and %s %s", cm.CommitID, prev, cm.AggregateType, cm.AggregateID)
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
				order_ = append(order_, k)
			}
			a.events = append(a.events, evs...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// Inventory: never oversold or negative, on hand = adjustments − sold,
	// nothing reserved, and per order at most one reservation, release
	// and commit per SKU.
	var skuCount, unitsOnHand, unitsSold, unitsReserved, adjustments int64
	effectTwice, oversold := 0, 0
	for _, k := range order_ {
		a := byAgg[k]
		if a.typ != streams.TypeInventory {
			continue
		}
		skuCount++
		s := inventory.Initial(a.id)
		var adj, sold int64
		seen := map[string]bool{}
		for _, ev := range a.events {
			s = inventory.Evolve(s, ev)
			switch ev := ev.(type) {
			case events.InventoryStockAdjusted:
				adj += ev.Delta
			case events.InventoryRestocked:
				adj += ev.Qty
			case events.InventoryCommitted:
				sold += ev.Qty
			}
			switch ev := ev.(type) {
			case events.InventoryReserved, events.InventoryReleased, events.InventoryCommitted:
				key := fmt.Sprintf("%s %s", ev.EventType(), orderOf(ev))
				if seen[key] {
					effectTwice++
					fail("%s: %s twice", a.id, key)
				}
				seen[key] = true
			}
			if s.OnHand < 0 || s.Reserved < 0 || s.Reserved > s.OnHand || s.Sold < 0 {
				oversold++
				fail("%s oversold or negative after %s: on hand %d, reserved %d, sold %d", a.id, ev.EventType(), s.OnHand, s.Reserved, s.Sold)
			}
		}
		if s.OnHand != adj-sold {
			fail("%s: on hand %d ≠ adjustments %d − sold %d", a.id, s.OnHand, adj, sold)
		}
		if s.Reserved != 0 || s.Reservations.Len() != 0 {
			fail("%s: %d units still reserved (%v)", a.id, s.Reserved, s.Reservations)
		}
		if adj != initial[a.id] {
			fail("%s: adjustments %d, the test set %d", a.id, adj, initial[a.id])
		}
		unitsOnHand += s.OnHand
		unitsReserved += s.Reserved
		unitsSold += sold
		adjustments += adj
	}

	// Orders and payments.
	orderStatus := map[string]order.Status{}
	statusCount := map[order.Status]int{}
	for _, k := range order_ {
		a := byAgg[k]
		if a.typ != streams.TypeOrder {
			continue
		}
		s := order.Initial(a.id)
		seen := map[string]bool{}
		for _, ev := range a.events {
			s = order.Evolve(s, ev)
			if seen[ev.EventType()] {
				effectTwice++
				fail("order %s: %s twice", a.id, ev.EventType())
			}
			seen[ev.EventType()] = true
		}
		orderStatus[a.id] = s.Status
		statusCount[s.Status]++
		if s.Status == order.StatusPlaced || s.Status == order.StatusStockReserved || s.Status == order.StatusPaymentPending {
			fail("order %s left in intermediate state %s", a.id, s.Status)
		}
	}
	if len(orderStatus) != len(ids) {
		fail("%d orders in the log, %d placed", len(orderStatus), len(ids))
	}
	payCount := map[payment.Status]int{}
	captured := 0
	for _, k := range order_ {
		a := byAgg[k]
		if a.typ != streams.TypePayment {
			continue
		}
		s := payment.Initial(a.id)
		seen := map[string]bool{}
		var capturedAmt, refundedAmt int64
		for _, ev := range a.events {
			s = payment.Evolve(s, ev)
			if seen[ev.EventType()] {
				effectTwice++
				fail("payment %s: %s twice", a.id, ev.EventType())
			}
			seen[ev.EventType()] = true
			switch ev := ev.(type) {
			case events.PaymentCaptured:
				capturedAmt += ev.Amount.Amount
			case events.PaymentRefunded:
				refundedAmt += ev.Amount.Amount
			}
		}
		payCount[s.Status]++
		if capturedAmt > 0 {
			captured++
			ost := orderStatus[s.OrderID]
			keeps := ost == order.StatusPaid || ost == order.StatusShipped || ost == order.StatusDelivered
			if !(keeps && refundedAmt == 0) && !(refundedAmt == capturedAmt && s.Status == payment.StatusRefunded) {
				fail("payment %s captured %d for order %s (%s), refunded %d", a.id, capturedAmt, s.OrderID, ost, refundedAmt)
			}
		}
		if s.Status == payment.StatusRequested || s.Status == payment.StatusAuthorized {
			fail("payment %s left %s", a.id, s.Status)
		}
	}

	// The money at the PSP: every captured intent is refunded or pays an
	// order the shopper gets.
	pspCaptured, pspRefunded := 0, 0
	for _, in := range e.sim.Intents() {
		switch in.Status {
		case psp.StatusCaptured:
			pspCaptured++
			ost := orderStatus[in.OrderID]
			if ost != order.StatusShipped && ost != order.StatusDelivered && ost != order.StatusPaid {
				fail("PSP holds the money of intent %s for order %s, which is %s", in.ID, in.OrderID, ost)
			}
		case psp.StatusRefunded:
			pspRefunded++
		case psp.StatusRequiresPayment, psp.StatusAuthorized:
			fail("intent %s for order %s still pending at the PSP", in.ID, in.OrderID)
		}
	}
	dls, err := e.store.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 0 {
		fail("%d dead letters, first: %+v", len(dls), dls[0])
	}

	st := e.sim.Stats()
	var sb strings.Builder
	fmt.Fprintf(&sb, "randomized checkout: %d orders over %d SKUs, %d commits\n", len(ids), skuCount, commits)
	fmt.Fprintf(&sb, "  chaos: runtime killed and restarted %d times; %d customer cancels, %d shipments, %d refused (422) cancel/ship races\n", c.kills, c.cancels, c.ships, c.refusals)
	fmt.Fprintf(&sb, "  PSP: %d declined, %d never paid (timeouts); webhooks: %d events, %d delivered, %d lost, %d duplicated, %d reordered, %d retried deliveries\n",
		st.Declined, st.Unpaid, st.Events, st.Delivered, st.Lost, st.Duplicated, st.Reordered, st.Retried)
	fmt.Fprintf(&sb, "  orders: %s\n", countString(statusCount))
	fmt.Fprintf(&sb, "  payments: %s; %d ever captured; PSP: %d captured, %d refunded\n", countString(payCount), captured, pspCaptured, pspRefunded)
	fmt.Fprintf(&sb, "  stock: %d units adjusted in, %d sold, %d on hand, %d reserved\n", adjustments, unitsSold, unitsOnHand, unitsReserved)
	fmt.Fprintf(&sb, "  invariants: oversold or negative SKU states: %d; on-hand = adjustments − sold checked for %d SKUs; orders in intermediate states: %d; commit ids used twice: %d; effects applied twice: %d; dead letters: %d\n",
		oversold, skuCount, statusCount[order.StatusPlaced]+statusCount[order.StatusStockReserved]+statusCount[order.StatusPaymentPending], dupCommits, effectTwice, len(dls))
	fmt.Fprintf(&sb, "  violations: %d\n", len(failures))
	fmt.Print(sb.String())
	t.Log("\n" + sb.String())
	for i, f := range failures {
		if i == 20 {
			t.Errorf("... and %d more", len(failures)-20)
			break
		}
		t.Error(f)
	}
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
