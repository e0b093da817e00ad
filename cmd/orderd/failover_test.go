package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections/postgres"
	"github.com/ordo-shop/ordo/streams"
)

// The fault test: two orderd instances on a three-node cluster of real
// nats-server processes (R3 streams, fsync on every write), 16 clients
// placing orders and cancelling every other one (half of the cancels
// through the other instance), while the ORDERS stream leader, a follower
// and the JetStream meta leader are SIGKILLed and restarted, and the
// stream leader's node is restarted as planned (SIGTERM: nats-server
// steps its leaders down first).
//
// Every answer that leaves the outcome open (503, a client timeout, a
// broken connection) is retried with the same Idempotency-Key until a
// definite one comes. Then, from the log:
//   - lost: an acknowledged (202) order without its order.placed, or an
//     acknowledged cancel without an order.cancelled;
//   - duplicated: an order with more than one order.placed or
//     order.cancelled, or a commit id stored twice;
//   - 404 for existing: a cancel answered 404 (every cancel names an
//     order whose placing was acknowledged);
//   - wrongful rejection: an order.rejected whose order holds an
//     inventory.reserved (orders have one line, so a rejection never
//     follows a reservation of its own), or an
//     inventory.reservation_failed that found the stock it asked for.
//
// Orders the checkout has not finished with after a generous bound are
// logged (with the dead-letter count), not failed on: see settledFacts.
//
// A 409 or 422 for a business reason (a cancel racing its own order's
// checkout is legitimate) is no failure. Nothing is asserted on time or
// throughput; the windows are measured and logged.
func TestFailoverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster of nats-server processes under load")
	}
	nodes := testkit.ProcessCluster(t, 3)
	testkit.InitLog(t, nodes[0].ClientURL, streams.Config{Replicas: 3}) // orderctl init
	pg := testkit.Postgres(t)
	insts := [2]*testApp{}
	for i := range insts {
		insts[i] = mustStart(t, func(c *config.Config) {
			c.NATSURL = nodes[i].ClientURL
			c.Replicas = 3
			c.PostgresURL = pg
			c.Roles = []string{"api", "projections"}
			if i == 0 { // one instance runs the checkout with its PSP simulator
				c.Roles = append(c.Roles, "sagas")
			}
			c.PSPMode = "manual" // orders wait for their payment: no payment flow
			c.PaymentTimeout = time.Hour
		})
	}
	for i := range failoverSKUs {
		insts[0].putSKU(fmt.Sprintf("SKU-%d", i), 1000+int64(i), 1_000_000_000)
	}
	admin := clusterJS(t, nodes)
	run := newLoadRun(t, insts)
	run.start(16)
	var phases []phaseResult
	for _, p := range []struct {
		name string
		pick func() *testkit.NATSNode
		down func(*testkit.NATSNode)
	}{
		{"stream leader SIGKILL", func() *testkit.NATSNode { return streamLeaderNode(t, admin, nodes) }, (*testkit.NATSNode).Kill},
		{"follower SIGKILL", func() *testkit.NATSNode { return followerNode(t, admin, nodes) }, (*testkit.NATSNode).Kill},
		{"meta leader SIGKILL", func() *testkit.NATSNode { return metaLeaderNode(t, nodes) }, (*testkit.NATSNode).Kill},
		{"planned stream leader restart", func() *testkit.NATSNode { return streamLeaderNode(t, admin, nodes) }, (*testkit.NATSNode).Stop},
	} {
		phases = append(phases, run.phase(p.name, nodes, p.pick(), p.down))
	}
	run.stop()
	run.verify(phases, admin)
}

// failoverSKUs is how many SKUs the orders spread over; each has stock
// the run cannot exhaust, so no order is short.
const failoverSKUs = 8

// thinkTime is each client's pause between orders: the load stays within
// what the checkout on this instance keeps up with on a small machine, so
// the run ends with a settled log rather than a backlog.
const thinkTime = 50 * time.Millisecond

// opDeadline bounds one client operation with all its retries: a
// liveness bound, far above any failover window.
const opDeadline = 3 * time.Minute

// loadRun is the clients' side of the run and what they were told.
type loadRun struct {
	t      *testing.T
	insts  [2]*testApp
	client *http.Client
	halt   chan struct{}
	wg     sync.WaitGroup

	mu         sync.Mutex
	placed     []string        // acknowledged orders
	cancelled  map[string]bool // acknowledged cancels
	ok         [2][]time.Time  // when each instance answered 202
	ops        []opSample      // every operation, retries included
	answers    map[string]int  // retried answers by code
	notFound   []string        // cancels answered 404
	unexpected []string        // answers no client should get
	unresolved []string        // operations that never got a definite answer
	resolved   int             // unknown outcomes later answered
}

type opSample struct {
	start time.Time
	took  time.Duration
}

func newLoadRun(t *testing.T, insts [2]*testApp) *loadRun {
	return &loadRun{
		t: t, insts: insts, halt: make(chan struct{}),
		client:    &http.Client{Timeout: 15 * time.Second},
		cancelled: map[string]bool{}, answers: map[string]int{},
	}
}

func (l *loadRun) start(clients int) {
	for w := range clients {
		l.wg.Go(func() { l.client1(w) })
	}
}

func (l *loadRun) stop() {
	close(l.halt)
	l.wg.Wait()
}

// client1 is one client: it places orders through its home instance and
// cancels every other one, every second cancel through the other
// instance.
func (l *loadRun) client1(w int) {
	tok := mint(l.t, fmt.Sprintf("cust-w%d", w), auth.RoleCustomer)
	home := w % 2
	for i := 0; ; i++ {
		select {
		case <-l.halt:
			return
		case <-time.After(thinkTime):
		}
		key := fmt.Sprintf("w%d-%d", w, i)
		body := orderBody(line(fmt.Sprintf("SKU-%d", (w+i)%failoverSKUs), 1))
		r, ok := l.untilDefinite(home, "/v1/orders", tok, key, body)
		if !ok {
			return
		}
		if r.status != http.StatusAccepted {
			l.note(&l.unexpected, "place %s: %d %s", key, r.status, r.raw)
			continue
		}
		id, _ := r.body["order_id"].(string)
		l.mu.Lock()
		l.placed = append(l.placed, id)
		l.mu.Unlock()
		if i%2 == 1 {
			continue
		}
		via := home
		if i%4 == 0 {
			via = 1 - home
		}
		if r, ok = l.untilDefinite(via, "/v1/orders/"+id+"/cancel", tok, "c-"+key, map[string]any{"reason": "changed my mind"}); !ok {
			return
		}
		l.cancelAnswer(id, r)
	}
}

func (l *loadRun) cancelAnswer(id string, r response) {
	switch r.status {
	case http.StatusAccepted, http.StatusOK: // 200: cancelled already, by an earlier try of this request
		l.mu.Lock()
		l.cancelled[id] = true
		l.mu.Unlock()
	case http.StatusNotFound:
		l.note(&l.notFound, "cancel %s: %s", id, r.raw)
	case http.StatusUnprocessableEntity, http.StatusConflict:
		// A business refusal: the order moved on (rejected, say).
	default:
		l.note(&l.unexpected, "cancel %s: %d %s", id, r.status, r.raw)
	}
}

// untilDefinite posts body with the Idempotency-Key key to instance i
// until an answer settles the outcome: anything but a 503, a 409
// concurrent_modification (which says retry), a 429 checkout_busy, a
// client timeout or a broken connection. It honours Retry-After.
func (l *loadRun) untilDefinite(i int, path, tok, key string, body any) (response, bool) {
	start := time.Now()
	open := false // an earlier answer left the outcome open
	for time.Since(start) < opDeadline {
		r, err := l.post(i, path, tok, key, body)
		code := r.code()
		switch {
		case err != nil:
			code, open = "client: "+errClass(err), true
		case r.status == http.StatusServiceUnavailable:
			open = open || code != "leader_unavailable"
		case r.status == http.StatusConflict && code == "concurrent_modification":
		case r.status == http.StatusTooManyRequests && code == "checkout_busy":
			// Admission control while the checkout catches up after a
			// failover: nothing was appended; a client comes back later.
		default:
			l.settled(i, start, r, open)
			return r, true
		}
		l.mu.Lock()
		l.answers[code]++
		l.mu.Unlock()
		time.Sleep(retryAfter(r))
	}
	l.note(&l.unresolved, "%s %s: no definite answer within %s", path, key, opDeadline)
	return response{}, false
}

func (l *loadRun) settled(i int, start time.Time, r response, open bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.status == http.StatusAccepted {
		l.ok[i] = append(l.ok[i], now)
	}
	l.ops = append(l.ops, opSample{start, now.Sub(start)})
	if open {
		l.resolved++
	}
}

func (l *loadRun) post(i int, path, tok, key string, body any) (response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return response{}, err
	}
	req, err := http.NewRequest("POST", l.insts[i].base+path, strings.NewReader(string(b)))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := l.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, raw: raw}
	_ = json.Unmarshal(raw, &out.body)
	if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
		out.retryAfter = resp.Header.Get("Retry-After")
	}
	return out, err
}

// retryAfter is how long to wait before asking again: the answer's
// Retry-After, or a short pause after a broken connection.
func retryAfter(r response) time.Duration {
	if s, err := strconv.Atoi(r.retryAfter); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 200 * time.Millisecond
}

func errClass(err error) string {
	if strings.Contains(err.Error(), "Timeout") || strings.Contains(err.Error(), "deadline") {
		return "timeout"
	}
	return "connection"
}

func (l *loadRun) note(list *[]string, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*list = append(*list, fmt.Sprintf(format, args...))
}

// phaseResult is one fault and what the clients saw of it.
type phaseResult struct {
	name, node string
	at, end    time.Time
	// gap is the longest time an instance answered no command with 202
	// from the fault on; p99 and slowest are the 99th percentile and the
	// maximum of the operations begun in the phase, retries included.
	gap, p99, slowest time.Duration
}

// phase lets the load run a few seconds, brings node down, waits until
// both instances acknowledge commands again, starts the node again and
// waits until the whole cluster is healthy.
func (l *loadRun) phase(name string, nodes []*testkit.NATSNode, node *testkit.NATSNode, down func(*testkit.NATSNode)) phaseResult {
	time.Sleep(3 * time.Second)
	p := phaseResult{name: name, node: node.Name, at: time.Now()}
	down(node)
	l.waitServed(p.at)
	node.Start()
	for _, n := range nodes {
		n.WaitHealthy()
	}
	time.Sleep(2 * time.Second)
	p.end = time.Now()
	p.gap, p.p99, p.slowest = l.measure(p.at, p.end)
	return p
}

// waitServed waits until both instances have acknowledged a command
// after since (bounded: a liveness check, not a measurement).
func (l *loadRun) waitServed(since time.Time) {
	for end := time.Now().Add(opDeadline); ; time.Sleep(50 * time.Millisecond) {
		l.mu.Lock()
		served := len(l.ok[0]) > 0 && len(l.ok[1]) > 0 && l.ok[0][len(l.ok[0])-1].After(since) && l.ok[1][len(l.ok[1])-1].After(since)
		l.mu.Unlock()
		if served {
			return
		}
		if time.Now().After(end) {
			l.t.Fatalf("no command acknowledged by both instances within %s of the fault", opDeadline)
		}
	}
}

// measure returns the longest span in [at, end] in which an instance
// acknowledged nothing (counted from its last acknowledgement before at)
// and the p99 and maximum of the operations begun in it.
func (l *loadRun) measure(at, end time.Time) (gap, p99, slowest time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, oks := range l.ok {
		prev := at
		for _, ts := range oks {
			if !ts.After(at) {
				prev = ts
				continue
			}
			if ts.After(end) {
				break
			}
			gap = max(gap, ts.Sub(prev))
			prev = ts
		}
	}
	var took []time.Duration
	for _, o := range l.ops {
		if !o.start.Before(at) && o.start.Before(end) {
			took = append(took, o.took)
		}
	}
	slices.Sort(took)
	if len(took) > 0 {
		p99, slowest = took[(len(took)*99)/100], took[len(took)-1]
	}
	return gap, p99, slowest
}

// clusterJS is the test's own connection to the cluster (which has no
// users), to ask who leads what.
func clusterJS(t *testing.T, nodes []*testkit.NATSNode) jetstream.JetStream {
	t.Helper()
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.ClientURL)
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func streamLeaderNode(t *testing.T, js jetstream.JetStream, nodes []*testkit.NATSNode) *testkit.NATSNode {
	t.Helper()
	return nodeNamed(t, nodes, streamLeader(t, js))
}

// streamLeader asks the cluster who leads ORDERS, again until it knows
// (after a node's restart the JetStream API may not answer for a while).
func streamLeader(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	var err error
	for end := time.Now().Add(opDeadline); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var st jetstream.Stream
		st, err = js.Stream(ctx, "ORDERS")
		cancel()
		if err == nil && st.CachedInfo().Cluster != nil && st.CachedInfo().Cluster.Leader != "" {
			return st.CachedInfo().Cluster.Leader
		}
	}
	t.Fatalf("nobody says who leads ORDERS within %s (last: %v)", opDeadline, err)
	return ""
}

// followerNode picks a node that leads neither ORDERS nor the meta group,
// if there is one.
func followerNode(t *testing.T, js jetstream.JetStream, nodes []*testkit.NATSNode) *testkit.NATSNode {
	t.Helper()
	leader, meta := streamLeader(t, js), nodes[0].MetaLeader()
	var pick *testkit.NATSNode
	for _, n := range nodes {
		switch {
		case n.Name == leader:
		case n.Name != meta:
			return n
		default:
			pick = n
		}
	}
	return pick
}

func metaLeaderNode(t *testing.T, nodes []*testkit.NATSNode) *testkit.NATSNode {
	t.Helper()
	return nodeNamed(t, nodes, nodes[0].MetaLeader())
}

func nodeNamed(t *testing.T, nodes []*testkit.NATSNode, name string) *testkit.NATSNode {
	t.Helper()
	for _, n := range nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no node named %q", name)
	return nil
}

// logFacts is what the log says about the run's orders.
type logFacts struct {
	placed, cancelled, rejected map[string]int
	commitIDs                   map[string]int
	settled                     map[string]bool   // the checkout is done with it
	lastEvent                   map[string]string // each order's last event type
	reserved                    map[string]bool
	shortWithStock              int
}

func readOrders(ctx context.Context, store *streams.Store) (*logFacts, error) {
	f := &logFacts{placed: map[string]int{}, cancelled: map[string]int{}, rejected: map[string]int{},
		commitIDs: map[string]int{}, settled: map[string]bool{}, reserved: map[string]bool{}, lastEvent: map[string]string{}}
	err := logtest.Replay(ctx, store, eventlog.TypeOrder, 1, func(r eventlog.Record) error {
		c := r.Commit
		f.commitIDs[c.CommitID]++
		for _, e := range c.Events {
			f.lastEvent[c.AggregateID] = e.Type
			switch e.Type {
			case "order.placed":
				f.placed[c.AggregateID]++
			case "order.cancelled":
				f.cancelled[c.AggregateID]++
				f.settled[c.AggregateID] = true
			case "order.rejected":
				f.rejected[c.AggregateID]++
				f.settled[c.AggregateID] = true
			case "order.payment_requested":
				f.settled[c.AggregateID] = true
			}
		}
		return nil
	})
	return f, err
}

func (f *logFacts) readInventory(ctx context.Context, store *streams.Store) error {
	return logtest.Replay(ctx, store, eventlog.TypeInventory, 1, func(r eventlog.Record) error {
		for _, e := range r.Commit.Events {
			switch e.Type {
			case "inventory.reserved":
				var ev events.InventoryReserved
				if err := json.Unmarshal(e.Data, &ev); err != nil {
					return err
				}
				f.reserved[ev.OrderID] = true
			case "inventory.reservation_failed":
				var ev events.InventoryReservationFailed
				if err := json.Unmarshal(e.Data, &ev); err != nil {
					return err
				}
				if ev.Available >= ev.Requested {
					f.shortWithStock++
				}
			}
		}
		return nil
	})
}

// settledFacts waits (bounded) until the checkout has finished with every
// acknowledged order, and returns what the log says and, by their last
// event, the orders it had not finished with when the bound ran out.
// verify fails on any: since decision 024 the checkout keeps up (its
// lanes, keyed workers and admission bound), and the bound is only a
// liveness bound.
func (l *loadRun) settledFacts(ctx context.Context) (*logFacts, map[string]int) {
	store := l.insts[0].store
	for end := time.Now().Add(opDeadline); ; time.Sleep(time.Second) {
		f, err := readOrders(ctx, store)
		if err != nil {
			l.t.Fatalf("replay ORDERS: %v", err)
		}
		pending := map[string]int{} // by last event
		for _, id := range l.placed {
			if !f.settled[id] {
				pending[f.lastEvent[id]]++
			}
		}
		if len(pending) == 0 || time.Now().After(end) {
			if err := f.readInventory(ctx, store); err != nil {
				l.t.Fatalf("replay INVENTORY: %v", err)
			}
			return f, pending
		}
	}
}

// deadLetters is how many messages the process managers gave up on.
func deadLetters(t *testing.T, js jetstream.JetStream) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, streams.DLQStream)
	if err != nil {
		t.Logf("dead letters: %v", err)
		return 0
	}
	return st.CachedInfo().State.Msgs
}

// verify checks the log against what the clients were told, reconciles
// the read model and logs the figures as one line.
func (l *loadRun) verify(phases []phaseResult, js jetstream.JetStream) {
	t := l.t
	ctx, cancel := context.WithTimeout(context.Background(), 2*opDeadline)
	defer cancel()
	f, stalled := l.settledFacts(ctx)
	lost, dup, wrongful := 0, 0, f.shortWithStock
	for _, id := range l.placed {
		lost += b2i(f.placed[id] == 0) + b2i(l.cancelled[id] && f.cancelled[id] == 0)
		dup += b2i(f.placed[id] > 1) + b2i(f.cancelled[id] > 1)
		wrongful += b2i(f.rejected[id] > 0 && f.reserved[id])
	}
	for _, n := range f.commitIDs {
		dup += b2i(n > 1)
	}
	drifts := l.reconciled(ctx)
	var windows []string
	longest := time.Duration(0)
	for _, p := range phases {
		windows = append(windows, fmt.Sprintf("%s (%s) %.1fs, command p99 %.1fs max %.1fs", p.name, p.node, p.gap.Seconds(), p.p99.Seconds(), p.slowest.Seconds()))
		longest = max(longest, p.gap)
	}
	t.Logf("acknowledged %d orders and %d cancels, lost %d, duplicated %d, 404 for existing %d, wrongful rejections %d (rejected %d), unknown outcomes resolved %d, unresolved %d, read model drifts %d, longest unavailability %.1fs; checkout not finished %v, dead letters %d; retried answers %v; windows: %s",
		len(l.placed), len(l.cancelled), lost, dup, len(l.notFound), wrongful, len(f.rejected), l.resolved, len(l.unresolved), drifts, longest.Seconds(), stalled, deadLetters(t, js), l.answers, strings.Join(windows, ", "))
	for _, list := range [][]string{l.notFound, l.unexpected, l.unresolved} {
		for i, s := range list {
			if i == 10 {
				t.Errorf("... and %d more", len(list)-10)
				break
			}
			t.Error(s)
		}
	}
	if len(stalled) > 0 {
		t.Errorf("the checkout had not finished with every acknowledged order within %s: by last event %v", opDeadline, stalled)
	}
	if lost+dup+wrongful+drifts > 0 {
		t.Errorf("lost %d, duplicated %d, wrongful rejections %d, read model drifts %d: want 0", lost, dup, wrongful, drifts)
	}
	if len(l.placed) == 0 || len(l.cancelled) == 0 {
		t.Errorf("the run acknowledged %d orders and %d cancels: no load", len(l.placed), len(l.cancelled))
	}
}

// reconciled waits (bounded) until the read model has applied the whole
// ORDERS log, then returns how many rows drift from it.
func (l *loadRun) reconciled(ctx context.Context) int {
	a := l.insts[0]
	for end := time.Now().Add(opDeadline); ; time.Sleep(time.Second) {
		res, err := a.readModel.Reconcile(ctx, a.store, postgres.ReconcileOptions{})
		if err != nil {
			l.t.Fatalf("reconcile: %v", err)
		}
		last, err := a.store.LastSeq(ctx, eventlog.TypeOrder)
		if err != nil {
			l.t.Fatal(err)
		}
		if uint64(res.Commits) == last || len(res.Drifts) > 0 {
			for i, d := range res.Drifts {
				if i < 10 {
					l.t.Errorf("read model drift: %+v", d)
				}
			}
			return len(res.Drifts)
		}
		if time.Now().After(end) {
			l.t.Fatalf("the read model applied %d of %d commits within %s", res.Commits, last, opDeadline)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
