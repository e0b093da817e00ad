package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/process"
	"github.com/ordo-shop/ordo/streams"
)

// TestBacklogOnlyShrinksOnAClusterWithTwoInstances is
// sagas/TestBacklogOnlyShrinksOnceTheLoadStops in the production shape:
// two orderd instances, both with the sagas role, on a three-node
// cluster with R3 streams. They share one payment provider (the
// simulator on its own, in auto mode: every payment is captured by
// itself), as production does with ORDO_PSP_URL: each instance's
// in-process simulator would know only the intents its own checkout
// made, and a reconciliation on the other instance would ask the wrong
// one. Its webhooks reach the instances in turn, as through a load
// balancer. Reconciliation is due half a second after each payment
// request, so its timers fire while the backlog drains.
//
// The backlog is real: clients place orders as fast as they are answered
// through both APIs at once while both instances' process managers run,
// with admission control off, so the checkout falls behind by what it
// did not absorb while the load ran. Its consumers are pinned (decision
// 024): each one's messages go to one instance at a time, whichever
// JetStream pinned. The instances start together, so the lanes often
// split between them (the orders and payments lanes on different
// instances, say); which split a run got is logged from the instances'
// metrics. Every order takes one unit of a hot SKU that has stock for
// three quarters of them: the rest are rejected, and their other lines
// released, while the paid ones drain.
//
// Once the placing stops, every 200 ms: the orders not yet paid,
// rejected or cancelled (read from the log) only ever decrease; the
// summed backlog of every consumer of the checkout (every lane of every
// stream, shared by both instances) never holds more than it held when
// the load stopped plus what the orders still open then can cause; it
// empties. Then, while the reconciliation timers still scheduled fire,
// nothing but those timers' own messages appears, no reconciliation is
// scheduled again, and once none is left the backlog stays at 0: no
// reconciliation feeds work back. Every order ended paid or rejected, and
// each SKU holds exactly the paid orders' units. The bound only ends a
// hung test; nothing here is timed.
//
// It found two ways for a paid order never to be marked paid, with
// every lane empty: a capture handled on the instance whose API had
// placed the order, whose cache still knew it as placed, did nothing
// (process/instances_test.go; 155 and 195 orders stuck in two runs with
// the lanes split); and a capture delivered before the stream leader
// showed it was read without it, as "moved on" (one order in a few runs;
// internal/command TestIncludesNeverAnswersWithoutTheCommit).
func TestBacklogOnlyShrinksOnAClusterWithTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	const (
		n        = 480     // orders
		hotStock = 360     // units of HOT: three quarters of the orders get one
		plenty   = 100_000 // units of every other SKU
		clients  = 16
	)
	servers, nc := testkit.Cluster(t, 3)
	testkit.InitLog(t, servers[0].ClientURL(), streams.Config{Replicas: 3}) // orderctl init
	const secret = "psp-secret-psp-secret-psp-secret-psp!"
	sim, err := pspsim.New(pspsim.Config{Mode: pspsim.ModeAuto, Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	pg := testkit.Postgres(t)
	cfgs := make([]config.Config, 2)
	for i := range cfgs {
		cfgs[i] = testConfig(t, func(c *config.Config) {
			c.NATSURL = servers[i].ClientURL()
			c.Replicas = 3
			c.PostgresURL = pg
			c.Roles = []string{"api", "sagas"}
			// One provider for both instances, as in production: a
			// reconciliation on either instance asks the provider that
			// made the intent.
			c.PSPURL, c.PSPAPIKey, c.PSPWebhookSecret = simURL, sim.APIKey(), secret
			c.PSPReconcileAfter = 500 * time.Millisecond
			c.PaymentTimeout = time.Hour // no order is cancelled
			c.MaxUnpaidOrders = 0        // few customers, many open orders each
			c.CheckoutMaxBacklog = 0     // admission off: the test wants the backlog it would refuse
		})
	}
	// Started together, the instances' runtimes race for each consumer's
	// pin, so the lanes usually split between them; started one after
	// the other, the first would hold every lane.
	insts := startTogether(t, cfgs)
	sim.SetWebhookURL(roundRobin(t, insts) + "/v1/psp/webhook")

	skus := []string{"HOT", "A", "B", "C"}
	for i, s := range skus {
		stock := int64(plenty)
		if s == "HOT" {
			stock = hotStock
		}
		insts[i%2].putSKU(s, 1000+int64(i), stock)
	}

	ids, errs := placeConcurrently(insts, clients, n, func(i int) any {
		return orderBody(line("HOT", 1), line(skus[1+i%3], 2))
	})
	for _, e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}

	ctx := context.Background()
	w, err := newOrderWatch(insts[0].store)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	timers, err := js.Stream(ctx, streams.TimersStream)
	if err != nil {
		t.Fatal(err)
	}
	s := &backlogSampler{t: t, rt: insts[0], w: w, ids: ids, timers: timers}

	// The load stopped. What the consumers hold now, the reconciliations
	// still scheduled and the orders still open bound what can follow.
	first := s.sample()
	// What one open order can still cause: on ORDERS stock_reserved,
	// payment_requested and paid, each counted by the main and the
	// urgent lane; two reservations on INVENTORY; payment.requested and
	// payment.captured on PAYMENTS; its reconciliation firing, twice if
	// the provider had not captured yet when it first asked. A rejected
	// order causes less (rejected on both lanes, a reservation and its
	// release).
	const perOrder = 3*2 + 2 + 2 + 2
	// Orders already settled when the load stopped can still have their
	// reconciliation fire once. The bound uses the orders open at the
	// start, not at each sample: an order that settled since may still
	// have its last commits waiting in the lanes.
	limit := first.backlog + first.reconciles + first.open*perOrder
	t.Logf("when the load stopped: backlog %d (%s), %d orders open, %d reconciliations scheduled; bound %d",
		first.backlog, first.detail, first.open, first.reconciles, limit)
	if first.backlog == 0 || first.open == 0 {
		t.Logf("the checkout kept up with the load: no backlog to drain")
	}

	// Drain: until every order is settled and every lane empty.
	var trail []string
	prev, cur, peak := first, first, first.backlog
	idle := 0
	started := time.Now()
	deadline := started.Add(5 * time.Minute)
	for {
		trail = append(trail, fmt.Sprintf("%d/%d", cur.backlog, cur.open))
		peak = max(peak, cur.backlog)
		if cur.backlog > limit {
			t.Fatalf("backlog grew to %d (%s), above the %d the load left; samples (backlog/open) %v", cur.backlog, cur.detail, limit, trail)
		}
		if cur.open > prev.open {
			t.Fatalf("open orders went up from %d to %d; samples %v", prev.open, cur.open, trail)
		}
		if cur.backlog == 0 && cur.open == 0 {
			break
		}
		// Open orders with nothing in the lanes and no reconciliation
		// scheduled are stuck: only their payment timeout, an hour away,
		// would move them (a webhook the provider is still retrying
		// would, but each payment's reconciliation records its capture
		// too). After 150 such samples, longer than the provider's
		// webhook retries last, waiting out the bound would tell nothing
		// more.
		if cur.backlog == 0 && cur.reconciles == 0 {
			idle++
		} else {
			idle = 0
		}
		if idle == 150 || time.Now().After(deadline) {
			t.Fatalf("not drained: backlog %d (%s), %d orders open, %d reconciliations scheduled; samples %v; open orders:\n%s",
				cur.backlog, cur.detail, cur.open, cur.reconciles, trail, s.describeOpen(sim))
		}
		time.Sleep(200 * time.Millisecond)
		prev, cur = cur, s.sample()
	}
	emptied, drainSamples := time.Since(started), len(trail)

	// Empty, with every order settled. The reconciliations still
	// scheduled fire now: each may put its own timer message on the
	// timers lane (empty a moment ago), and finds its payment settled, so
	// it appends nothing and is not scheduled again.
	fires, quietSamples := cur.reconciles, 0
	for cur.reconciles > 0 {
		time.Sleep(200 * time.Millisecond)
		next := s.sample()
		quietSamples++
		if next.reconciles > cur.reconciles {
			t.Fatalf("reconciliations scheduled again after every order settled: %d, then %d", cur.reconciles, next.reconciles)
		}
		if next.open != 0 || next.backlog != next.timers || next.timers > fires {
			t.Fatalf("work came back after the backlog emptied: %d orders open, backlog %d (%s), %d reconciliations were left to fire",
				next.open, next.backlog, next.detail, fires)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reconciliations still scheduled", next.reconciles)
		}
		cur = next
	}
	// Nothing is scheduled but the payment timeouts, an hour away:
	// nothing may appear.
	for range 15 {
		time.Sleep(200 * time.Millisecond)
		quietSamples++
		if cur := s.sample(); cur.backlog != 0 || cur.open != 0 {
			t.Fatalf("backlog came back after it emptied: %d (%s), %d orders open", cur.backlog, cur.detail, cur.open)
		}
	}
	t.Logf("drained: max backlog %d, empty after %.1fs and %d samples; then %d reconciliations left to fire, %d samples with nothing else in the lanes; samples (backlog/open) %v",
		peak, emptied.Seconds(), drainSamples, fires, quietSamples, trail)
	// Which instance did the checkout's work: only the checkout appends
	// to inventory (but for the SKUs' definitions); orders are the APIs'
	// too (the places).
	one, two := appended(insts[0]), appended(insts[1])
	t.Logf("commits appended by instance 1 / 2: inventory %d / %d, order %d / %d",
		one["inventory"], two["inventory"], one["order"], two["order"])

	// Every order ended paid or rejected, the hot SKU's paid units are
	// exactly its stock, and each SKU holds exactly the paid orders'
	// units (nothing ships here, so nothing is sold).
	statuses := map[order.Status]int{}
	reservedFor := map[string]int64{}
	for i, id := range ids {
		st := w.states[id]
		statuses[st.Status]++
		if st.Status == order.StatusPaid {
			reservedFor["HOT"]++
			reservedFor[skus[1+i%3]] += 2
		}
	}
	if statuses[order.StatusPaid] != hotStock || statuses[order.StatusRejected] != n-hotStock {
		t.Errorf("orders by status %v, want %d paid and %d rejected", statuses, hotStock, n-hotStock)
	}
	for _, sku := range skus {
		st := loadSKU(t, insts[1], sku)
		onHand := int64(plenty)
		if sku == "HOT" {
			onHand = hotStock
		}
		if st.OnHand != onHand || st.Reserved != reservedFor[sku] || st.Sold != 0 || st.Available() != onHand-reservedFor[sku] {
			t.Errorf("%s: on hand %d, reserved %d, sold %d, available %d; want %d on hand, %d reserved for the paid orders",
				sku, st.OnHand, st.Reserved, st.Sold, st.Available(), onHand, reservedFor[sku])
		}
	}
	if dls, err := insts[0].store.DeadLetters(ctx); err != nil || len(dls) != 0 {
		t.Errorf("dead letters: %d %v", len(dls), err)
	}
}

// startTogether starts an orderd for each configuration at once.
func startTogether(t *testing.T, cfgs []config.Config) []*testApp {
	t.Helper()
	apps := make([]*app, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Go(func() { apps[i], errs[i] = start(context.Background(), cfg, slog.New(slog.DiscardHandler)) })
	}
	wg.Wait()
	out := make([]*testApp, 0, len(cfgs))
	for i, a := range apps {
		if errs[i] != nil {
			t.Errorf("start instance %d: %v", i+1, errs[i])
			continue
		}
		out = append(out, newTestApp(t, a))
	}
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// appended counts the commits an instance appended, by aggregate type,
// from its metrics (ordo_commands_total with outcome "appended").
func appended(ta *testApp) map[string]int {
	ta.t.Helper()
	resp, err := http.Get(ta.metricsURL)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		ta.t.Fatalf("GET %s: %d %v", ta.metricsURL, resp.StatusCode, err)
	}
	out := map[string]int{}
	for l := range strings.Lines(string(raw)) {
		labels, value, ok := strings.Cut(strings.TrimSpace(l), "} ")
		if !ok || !strings.HasPrefix(labels, "ordo_commands_total{") || !strings.Contains(labels, `outcome="appended"`) {
			continue
		}
		_, agg, _ := strings.Cut(labels, `aggregate="`)
		agg, _, _ = strings.Cut(agg, `"`)
		var n float64
		if _, err := fmt.Sscan(value, &n); err != nil {
			ta.t.Fatalf("metrics line %q: %v", l, err)
		}
		out[agg] += int(n)
	}
	return out
}

// roundRobin serves a URL whose requests go to the instances in turn,
// as a load balancer in front of them would pass the provider's
// webhooks.
func roundRobin(t *testing.T, insts []*testApp) string {
	t.Helper()
	var proxies []*httputil.ReverseProxy
	for _, ta := range insts {
		u, err := url.Parse(ta.base)
		if err != nil {
			t.Fatal(err)
		}
		proxies = append(proxies, httputil.NewSingleHostReverseProxy(u))
	}
	var next atomic.Uint64
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[next.Add(1)%uint64(len(proxies))].ServeHTTP(w, r)
	}))
	t.Cleanup(lb.Close)
	return lb.URL
}

// placeConcurrently places n orders from clients goroutines, each a
// customer of its own, through the instances in turn, as fast as they
// are answered. It returns the orders' ids, in the order of i, and what
// went wrong.
func placeConcurrently(insts []*testApp, clients, n int, body func(i int) any) ([]string, []error) {
	ids := make([]string, n)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for c := range clients {
		tok := mint(insts[0].t, fmt.Sprintf("cust-load-%d", c), auth.RoleCustomer)
		wg.Go(func() {
			for i := c; i < n; i += clients {
				id, err := placeOne(insts[i%len(insts)], tok, fmt.Sprintf("k-%d", i), body(i))
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("order %d: %w", i, err))
				}
				ids[i] = id
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ids, errs
}

// placeOne is a place for a goroutine: it returns what went wrong
// instead of failing the test.
func placeOne(ta *testApp, tok, key string, body any) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequest("POST", ta.base+"/v1/orders", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var out struct {
		OrderID string `json:"order_id"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &out) != nil || out.OrderID == "" {
		return "", fmt.Errorf("place: %d %s", resp.StatusCode, raw)
	}
	return out.OrderID, nil
}

// backlogSample is one look at the checkout and its orders.
type backlogSample struct {
	// backlog sums every checkout consumer's undelivered and unacked
	// messages; timers is the timers lane's part of it.
	backlog, timers int
	detail          string
	// open counts the orders not yet paid, rejected or cancelled.
	open int
	// reconciles counts the reconciliation checks scheduled and not
	// fired yet.
	reconciles int
}

type backlogSampler struct {
	t      *testing.T
	rt     *testApp // whose runtime names the consumers (both share them)
	w      *orderWatch
	ids    []string
	timers jetstream.Stream
}

func (s *backlogSampler) sample() backlogSample {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out backlogSample
	lanes, err := s.rt.pay.runtime.Backlog(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	var sb strings.Builder
	for _, l := range lanes {
		n := int(l.Pending) + l.Unacked
		out.backlog += n
		if l.Stream == streams.TimersStream {
			out.timers += n
		}
		fmt.Fprintf(&sb, " %s=%d+%d", l.Durable, l.Pending, l.Unacked)
	}
	out.detail = strings.TrimSpace(sb.String())
	if err := s.w.catchUp(ctx); err != nil {
		s.t.Fatal(err)
	}
	for _, id := range s.ids {
		switch s.w.states[id].Status {
		case order.StatusPaid, order.StatusRejected, order.StatusCancelled:
		default:
			out.open++
		}
	}
	// A one-shot schedule is removed from TIMERS when it fires; a
	// reconciliation set again replaces its payment's schedule.
	info, err := s.timers.Info(ctx, jetstream.WithSubjectFilter("timer.sched.checkout.payment_reconcile.>"))
	if err != nil {
		s.t.Fatal(err)
	}
	out.reconciles = len(info.State.Subjects)
	return out
}

// describeOpen tells what the log, the provider and the dead letters say
// of the orders still open, for a failure.
func (s *backlogSampler) describeOpen(sim *pspsim.Sim) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sb strings.Builder
	history := func(typ, id string) string {
		recs, err := s.rt.store.Load(ctx, typ, id, 0)
		if err != nil {
			return err.Error()
		}
		var out []string
		for _, r := range recs {
			for _, e := range r.Commit.Events {
				out = append(out, fmt.Sprintf("%s@%d(%s %s by %s)", e.Type, r.Seq,
					r.Commit.Metadata.RecordedAt.Format("15:04:05.000"), r.Commit.Metadata.CausationID, r.Commit.Metadata.Actor))
			}
		}
		return strings.Join(out, " ")
	}
	for _, id := range s.ids {
		switch s.w.states[id].Status {
		case order.StatusPaid, order.StatusRejected, order.StatusCancelled:
			continue
		}
		pid := process.PaymentIDFor(id)
		fmt.Fprintf(&sb, "  order %s: %s\n    payment %s: %s\n    at the provider: %+v\n", id, history(eventlog.TypeOrder, id),
			pid, history(eventlog.TypePayment, pid), intentFor(sim, pid))
	}
	dls, err := s.rt.store.DeadLetters(ctx)
	fmt.Fprintf(&sb, "  dead letters: %d %v\n", len(dls), err)
	for _, dl := range dls {
		fmt.Fprintf(&sb, "    %s %s %s@%d: %s (%d attempts)\n", dl.Owner, dl.Handler, dl.Subject, dl.Seq, dl.Error, dl.Attempts)
	}
	return sb.String()
}

// orderWatch folds the order stream as it grows, straight from the log.
type orderWatch struct {
	store  *streams.Store
	reg    *events.Registry
	next   uint64
	states map[string]order.State
}

func newOrderWatch(store *streams.Store) (*orderWatch, error) {
	reg, err := events.Standard()
	if err != nil {
		return nil, err
	}
	return &orderWatch{store: store, reg: reg, next: 1, states: map[string]order.State{}}, nil
}

// catchUp folds the commits appended since the last call.
func (w *orderWatch) catchUp(ctx context.Context) error {
	d := order.Decider()
	return logtest.Replay(ctx, w.store, eventlog.TypeOrder, w.next, func(r eventlog.Record) error {
		evs, err := w.reg.DecodeAll(r.Commit)
		if err != nil {
			return err
		}
		id := r.Commit.AggregateID
		st, ok := w.states[id]
		if !ok {
			st = order.Initial(id)
		}
		w.states[id] = d.Fold(st, evs)
		w.next = r.Seq + 1
		return nil
	})
}

// loadSKU folds a SKU's commits straight from the log.
func loadSKU(t *testing.T, ta *testApp, sku string) inventory.State {
	t.Helper()
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ta.store.Load(context.Background(), eventlog.TypeInventory, sku, 0)
	if err != nil {
		t.Fatal(err)
	}
	st := inventory.Initial(sku)
	for _, r := range recs {
		evs, err := reg.DecodeAll(r.Commit)
		if err != nil {
			t.Fatal(err)
		}
		st = inventory.Decider().Fold(st, evs)
	}
	return st
}
