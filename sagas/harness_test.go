package sagas_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/httpapi"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/process"
	"github.com/ordo-shop/ordo/sagas"
	"github.com/ordo-shop/ordo/streams"
)

const (
	tokenSecret   = "test-secret-test-secret-test-secret!"
	webhookSecret = "webhook-secret-webhook-secret-webhook!"
)

// env is a checkout with real parts: an in-process JetStream server, the
// command handlers, the HTTP API (with the webhook endpoint) on a loopback
// port, the PSP simulator as a real HTTP server, and a process manager
// runtime that can be stopped, killed and started again.
type env struct {
	t        testing.TB
	store    *streams.Store
	js       jetstream.JetStream // to look at the TIMERS stream
	reg      *events.Registry
	orders   *command.Handler[order.State, order.Command]
	stock    *command.Handler[inventory.State, inventory.Command]
	payments *command.Handler[payment.State, payment.Command]
	sync     *process.PaymentSync
	sim      *pspsim.Sim
	client   psp.Client
	base     string // the API
	admin    string
	signer   *auth.Signer
	opts     envOptions
	log      *slog.Logger

	// skew moves the API's clock (webhook signature tolerance) ahead of
	// the wall clock, in nanoseconds.
	skew atomic.Int64

	mu     sync.Mutex
	rt     *sagas.Runtime
	cancel context.CancelFunc
}

type envOptions struct {
	simMode        pspsim.Mode
	faults         psp.Faults
	seed           uint64
	paymentTimeout time.Duration
	reconcile      time.Duration
	runtime        sagas.Options
	extra          []process.Manager
	noRuntime      bool
	// separateAPI gives the HTTP API (and the webhook) command handlers of
	// their own, as when the api and sagas roles run on different
	// instances: neither sees the other's cached states.
	separateAPI bool
	// pspWrap, if set, wraps the PSP client the process managers use
	// (to inject faults between the PSP and Ordo).
	pspWrap func(psp.Client) psp.Client
}

func testLogger() *slog.Logger {
	if os.Getenv("ORDO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("the checkout on JetStream: not under -short (package process tests its decisions on the in-memory log)")
	}
	if o.paymentTimeout == 0 {
		o.paymentTimeout = time.Minute
	}
	if o.reconcile == 0 {
		o.reconcile = 30 * time.Second
	}
	if o.runtime.AckWait == 0 {
		o.runtime.AckWait = 3 * time.Second
	}
	if o.runtime.RetryInitial == 0 {
		o.runtime.RetryInitial = 20 * time.Millisecond
	}
	if o.runtime.RetryMax == 0 {
		o.runtime.RetryMax = 500 * time.Millisecond
	}
	_, nc := testkit.NATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	log := testLogger()
	store, err := testkit.OpenLog(ctx, nc, streams.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, reg: reg, opts: o, log: log, js: js}
	if e.orders, err = command.NewHandler(order.Decider(), store, reg, command.Options{}); err != nil {
		t.Fatal(err)
	}
	if e.stock, err = command.NewHandler(inventory.Decider(), store, reg, command.Options{}); err != nil {
		t.Fatal(err)
	}
	if e.payments, err = command.NewHandler(payment.Decider(), store, reg, command.Options{}); err != nil {
		t.Fatal(err)
	}

	e.sim, err = pspsim.New(pspsim.Config{Mode: o.simMode, Secret: []byte(webhookSecret), Faults: o.faults, Seed: o.seed, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	simURL, err := e.sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.sim.Close() })
	if e.client, err = psp.NewHTTPClient(simURL, "sim", e.sim.APIKey(), nil); err != nil {
		t.Fatal(err)
	}
	// The webhook endpoint records refused reports in the DLQ stream
	// whether or not a runtime ever started.
	if err := store.OpenDLQ(ctx); err != nil {
		t.Fatal(err)
	}
	if e.sync, err = process.NewPaymentSync(e.payments, store, "sim", log); err != nil {
		t.Fatal(err)
	}

	if e.signer, err = auth.NewSigner(tokenSecret); err != nil {
		t.Fatal(err)
	}
	apiOrders, apiStock, apiSync := e.orders, e.stock, e.sync
	if o.separateAPI {
		if apiOrders, err = command.NewHandler(order.Decider(), store, reg, command.Options{}); err != nil {
			t.Fatal(err)
		}
		if apiStock, err = command.NewHandler(inventory.Decider(), store, reg, command.Options{}); err != nil {
			t.Fatal(err)
		}
		apiPayments, err := command.NewHandler(payment.Decider(), store, reg, command.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if apiSync, err = process.NewPaymentSync(apiPayments, store, "sim", log); err != nil {
			t.Fatal(err)
		}
	}
	api, err := httpapi.New(httpapi.Deps{
		Orders: apiOrders, Inventory: apiStock, Catalog: store, Signer: e.signer, Logger: log,
		Payments: apiSync, PSPWebhookSecret: []byte(webhookSecret),
		Now: func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	e.base = "http://" + ln.Addr().String()
	e.sim.SetWebhookURL(e.base + "/v1/psp/webhook")
	e.admin = e.token("ops", auth.RoleAdmin)
	if !o.noRuntime {
		e.startRuntime()
	}
	t.Cleanup(func() { e.stopRuntime() })
	return e
}

func (e *env) token(sub string, role auth.Role) string {
	e.t.Helper()
	tok, err := e.signer.Mint(sub, role, time.Now(), time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// startRuntime starts a process manager runtime with the checkout (and
// the extra process managers).
func (e *env) startRuntime() {
	e.t.Helper()
	client := e.client
	if e.opts.pspWrap != nil {
		client = e.opts.pspWrap(client)
	}
	checkout, err := process.NewCheckout(process.CheckoutConfig{
		Orders: e.orders, Inventory: e.stock, Payments: e.payments,
		PSP: client, Sync: e.sync, Timers: e.store,
		PaymentTimeout: e.opts.paymentTimeout, ReconcileAfter: e.opts.reconcile, Logger: e.log,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	opts := e.opts.runtime
	opts.Logger = e.log
	pms := append([]process.Manager{checkout}, e.opts.extra...)
	rt, err := sagas.NewRuntime(e.store, e.reg, opts, pms...)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := rt.Start(ctx); err != nil {
		cancel()
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.rt, e.cancel = rt, cancel
	e.mu.Unlock()
}

// killRuntime stops the runtime abruptly: its context is cancelled under
// the running handlers, which abandon their work mid-way; nothing they
// had not acknowledged is acknowledged.
func (e *env) killRuntime() {
	e.mu.Lock()
	rt, cancel := e.rt, e.cancel
	e.rt, e.cancel = nil, nil
	e.mu.Unlock()
	if rt == nil {
		return
	}
	cancel()
	_ = rt.Close()
}

func (e *env) stopRuntime() {
	e.mu.Lock()
	rt, cancel := e.rt, e.cancel
	e.rt, e.cancel = nil, nil
	e.mu.Unlock()
	if rt == nil {
		return
	}
	_ = rt.Close()
	cancel()
}

type response struct {
	status int
	body   map[string]any
	raw    []byte
}

func (e *env) do(method, path, token string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, raw: raw}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func (e *env) putSKU(sku string, price, onHand int64) {
	e.t.Helper()
	r := e.do("PUT", "/v1/skus/"+sku, e.admin, map[string]any{
		"name": "Item " + sku, "price": map[string]any{"amount": price, "currency": "CNY"}, "on_hand": onHand,
	})
	if r.status != 200 {
		e.t.Fatalf("PUT sku %s: %d %s", sku, r.status, r.raw)
	}
}

type line struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// place places an order through the API and returns its id.
func (e *env) place(customer, key string, lines ...line) string {
	e.t.Helper()
	body := map[string]any{
		"customer":         map[string]any{"name": "Li Wei", "email": "li@example.com"},
		"lines":            lines,
		"shipping_address": map[string]any{"name": "Li Wei", "line1": "1 Tea Street", "city": "Hangzhou", "country": "CN"},
	}
	r := e.do("POST", "/v1/orders", e.token(customer, auth.RoleCustomer), body, "Idempotency-Key", key)
	if r.status != 202 {
		e.t.Fatalf("place: %d %s", r.status, r.raw)
	}
	return r.body["order_id"].(string)
}

// load folds an aggregate's commits read straight from the log (not
// through a handler's cache).
func load[S, C any](e *env, d interface {
	Fold(S, []events.Payload) S
}, initial S, aggType, id string) (S, []*events.Commit) {
	e.t.Helper()
	recs, err := e.store.Load(context.Background(), aggType, id, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	s := initial
	var commits []*events.Commit
	for _, r := range recs {
		evs, err := e.reg.DecodeAll(r.Commit)
		if err != nil {
			e.t.Fatal(err)
		}
		s = d.Fold(s, evs)
		commits = append(commits, r.Commit)
	}
	return s, commits
}

func (e *env) order(id string) (order.State, []*events.Commit) {
	return load[order.State, order.Command](e, order.Decider(), order.Initial(id), eventlog.TypeOrder, id)
}

func (e *env) sku(id string) (inventory.State, []*events.Commit) {
	return load[inventory.State, inventory.Command](e, inventory.Decider(), inventory.Initial(id), eventlog.TypeInventory, id)
}

func (e *env) payment(id string) (payment.State, []*events.Commit) {
	return load[payment.State, payment.Command](e, payment.Decider(), payment.Initial(id), eventlog.TypePayment, id)
}

// waitOrder waits until the order reaches one of the statuses. The
// deadline only bounds a hung test; it is not what the test checks.
func (e *env) waitOrder(id string, want ...order.Status) order.State {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, _ := e.order(id)
		for _, w := range want {
			if s.Status == w {
				return s
			}
		}
		if time.Now().After(deadline) {
			_, commits := e.order(id)
			_, pcommits := e.payment(process.PaymentIDFor(id))
			e.t.Fatalf("order %s is %q, want one of %v; events %v; payment events %v; PSP %+v; consumers:\n%s",
				id, s.Status, want, eventTypes(commits), eventTypes(pcommits), e.sim.Stats(), e.consumers())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond until it holds. The bound only ends a hung test.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, what, time.Minute, testkit.Holds(cond))
}

func eventTypes(cs []*events.Commit) []string {
	var out []string
	for _, c := range cs {
		for _, ev := range c.Events {
			out = append(out, ev.Type)
		}
	}
	return out
}

// seqs is the last sequence of every aggregate stream: the log's extent.
func (e *env) seqs() string {
	e.t.Helper()
	var out []uint64
	for _, typ := range []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment} {
		s, err := e.store.LastSeq(context.Background(), typ)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, s)
	}
	return fmt.Sprint(out)
}

// timerMessage reports whether the TIMERS stream holds a message on
// subject (a pending schedule: timer.sched.<owner>.<kind>.<key>; a fired
// timer: timer.fire.<owner>.<kind>.<key>).
func (e *env) timerMessage(subject string) bool {
	e.t.Helper()
	st, err := e.js.Stream(context.Background(), streams.TimersStream)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = st.GetLastMsgForSubject(context.Background(), subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return true
}

// consumers describes the process managers' durable consumers, for the
// message of a test that timed out.
func (e *env) consumers() string {
	ctx := context.Background()
	var sb strings.Builder
	for _, stream := range []string{"ORDERS", "INVENTORY", "PAYMENTS", streams.TimersStream, streams.DLQStream} {
		st, err := e.js.Stream(ctx, stream)
		if err != nil {
			fmt.Fprintf(&sb, "  %s: %v\n", stream, err)
			continue
		}
		si := st.CachedInfo()
		fmt.Fprintf(&sb, "  stream %s: %d msgs, last seq %d\n", stream, si.State.Msgs, si.State.LastSeq)
		names := st.ListConsumers(ctx)
		for ci := range names.Info() {
			fmt.Fprintf(&sb, "    %s: delivered %d (stream %d), ack floor %d, pending %d, ack pending %d, redelivered %d, waiting pulls %d\n",
				ci.Name, ci.Delivered.Consumer, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
		}
	}
	return sb.String()
}
