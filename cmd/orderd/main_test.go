package main

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
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/httpapi"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/testkit"
)

const testSecret = "test-secret-test-secret-test-secret!"

// testApp is a real orderd, started through start() on free ports with its
// own embedded JetStream under a temporary data dir.
type testApp struct {
	*app
	t     testing.TB
	base  string
	admin string
	agent string
	alice string
	bob   string
}

func mustStart(t testing.TB, edit ...func(*config.Config)) *testApp {
	t.Helper()
	cfg := testConfig(t, edit...)
	a, err := start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return newTestApp(t, a)
}

// testConfig is the configuration of a test's orderd: free ports, its own
// data dir, a database of the test binary's PostgreSQL.
func testConfig(t testing.TB, edit ...func(*config.Config)) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATSListen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AuthSecret = testSecret
	cfg.NATSSync = "lazy"
	// These tests watch the log change command by command; the process
	// managers would change it too. Tests of the checkout add "sagas".
	cfg.Roles = []string{"api"}
	// They place many orders as one customer and leave them unpaid; the
	// limit on unpaid orders has its own test (TestUnpaidOrderLimit).
	cfg.MaxUnpaidOrders = 0
	// One PostgreSQL per test binary, a database per test (queries_test.go).
	cfg.PostgresURL = testkit.Postgres(t)
	for _, f := range edit {
		f(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newTestApp wraps a started orderd, closed when the test ends.
func newTestApp(t testing.TB, a *app) *testApp {
	t.Helper()
	t.Cleanup(func() { _ = a.close() })
	ta := &testApp{app: a, t: t, base: "http://" + a.addr}
	ta.admin = mint(t, "ops", auth.RoleAdmin)
	ta.agent = mint(t, "agent-7", auth.RoleAgent)
	ta.alice = mint(t, "cust-alice", auth.RoleCustomer)
	ta.bob = mint(t, "cust-bob", auth.RoleCustomer)
	return ta
}

func mint(t testing.TB, sub string, role auth.Role) string {
	t.Helper()
	s, err := auth.NewSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Mint(sub, role, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	body   map[string]any
	raw    []byte
	// retryAfter is the Retry-After header, where a test keeps it.
	retryAfter string
}

func (r response) code() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (ta *testApp) do(method, path, token string, body any, headers ...string) response {
	ta.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			ta.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ta.base+path, rd)
	if err != nil {
		ta.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, raw: raw, retryAfter: resp.Header.Get("Retry-After")}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

// metrics scrapes the instance's metrics listener, as Prometheus does:
// at the URL the local default wrote to <data dir>/metrics.url.
func (ta *testApp) metrics() response {
	ta.t.Helper()
	url := datadir.ReadTrimmed(ta.cfg.DataDir, datadir.MetricsURL)
	if url == "" || url != ta.metricsURL {
		ta.t.Fatalf("metrics.url holds %q; orderd serves metrics at %q", url, ta.metricsURL)
	}
	resp, err := http.Get(url)
	if err != nil {
		ta.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, raw: raw}
}

func (ta *testApp) putSKU(sku string, price int64, onHand int64) {
	ta.t.Helper()
	r := ta.do("PUT", "/v1/skus/"+sku, ta.admin, map[string]any{
		"name": "Item " + sku, "price": map[string]any{"amount": price, "currency": "CNY"}, "on_hand": onHand,
	})
	if r.status != 200 {
		ta.t.Fatalf("PUT sku %s: %d %s", sku, r.status, r.raw)
	}
}

func orderBody(lines ...any) map[string]any {
	return map[string]any{
		"customer":         map[string]any{"name": "张伟", "email": "zhang.wei@example.com", "phone": "+86 138 0013 8000"},
		"lines":            lines,
		"shipping_address": map[string]any{"name": "张伟", "line1": "1 Nanjing Rd", "city": "上海", "postal_code": "200000", "country": "CN"},
	}
}

func line(sku string, qty any) map[string]any { return map[string]any{"sku": sku, "qty": qty} }

// seqs is the last sequence of every stream: "the log".
func (ta *testApp) seqs() map[string]uint64 {
	ta.t.Helper()
	out := map[string]uint64{}
	for _, typ := range []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment} {
		s, err := ta.store.LastSeq(context.Background(), typ)
		if err != nil {
			ta.t.Fatal(err)
		}
		out[typ] = s
	}
	return out
}

func (ta *testApp) history(id string) []*events.Commit {
	ta.t.Helper()
	recs, err := ta.store.Load(context.Background(), eventlog.TypeOrder, id, 0)
	if err != nil {
		ta.t.Fatal(err)
	}
	out := make([]*events.Commit, len(recs))
	for i, r := range recs {
		out[i] = r.Commit
	}
	return out
}

func eventTypes(cs []*events.Commit) []string {
	var out []string
	for _, c := range cs {
		for _, e := range c.Events {
			out = append(out, e.Type)
		}
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func (ta *testApp) place(token, key string, body any) response {
	ta.t.Helper()
	return ta.do("POST", "/v1/orders", token, body, "Idempotency-Key", key)
}

func TestPlaceOrderIsIdempotentAndUsesCatalogPrices(t *testing.T) {
	ta := mustStart(t)
	ta.putSKU("TEA-250", 1999, 100)
	ta.putSKU("CUP-1", 500, 10)

	body := orderBody(
		map[string]any{"sku": "TEA-250", "qty": 2, "unit_price": map[string]any{"amount": 1, "currency": "CNY"}, "price": 1},
		line("CUP-1", 1),
	)
	first := ta.place(ta.alice, "key-1", body)
	if first.status != 202 {
		t.Fatalf("place: %d %s", first.status, first.raw)
	}
	id, _ := first.body["order_id"].(string)
	if id == "" || first.body["status"] != "placed" || first.body["position"] == "" {
		t.Fatalf("place answer: %s", first.raw)
	}
	total := first.body["total"].(map[string]any)
	if total["amount"] != float64(2*1999+500) || total["currency"] != "CNY" {
		t.Fatalf("total %v: client prices were used or the sum is wrong", total)
	}
	before := ta.seqs()

	again := ta.place(ta.alice, "key-1", body)
	if again.status != 202 || again.body["order_id"] != id || again.body["position"] != first.body["position"] {
		t.Fatalf("retry: %d %s, want the first answer %s", again.status, again.raw, first.raw)
	}
	if after := ta.seqs(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("retry wrote to the log: %v -> %v", before, after)
	}
	if got := ta.history(id); len(got) != 1 {
		t.Fatalf("order has %d commits after a retry, want 1", len(got))
	}

	other := ta.place(ta.alice, "key-1", orderBody(line("TEA-250", 3)))
	if other.status != 422 || other.code() != "idempotency_key_reused" {
		t.Fatalf("reused key with another body: %d %s", other.status, other.raw)
	}
	// Another customer's identical key is another order.
	bobs := ta.place(ta.bob, "key-1", body)
	if bobs.status != 202 || bobs.body["order_id"] == id {
		t.Fatalf("bob's order: %d %s", bobs.status, bobs.raw)
	}
}

func TestBadInputIsRefusedAndLeavesTheLogAlone(t *testing.T) {
	ta := mustStart(t)
	ta.putSKU("TEA-250", 1999, 100)
	placed := ta.place(ta.alice, "k", orderBody(line("TEA-250", 1)))
	if placed.status != 202 {
		t.Fatalf("place: %d %s", placed.status, placed.raw)
	}
	id := placed.body["order_id"].(string)
	before := ta.seqs()

	big := `{"customer":{"name":"` + strings.Repeat("x", 2<<20) + `"}}`
	cases := []struct {
		name, method, path, token, key string
		body                           any
		status                         int
		code                           string
	}{
		{"malformed json", "POST", "/v1/orders", ta.alice, "a", `{"customer":`, 400, "malformed_json"},
		{"not an object", "POST", "/v1/orders", ta.alice, "a", `[1,2]`, 400, "invalid_field"},
		{"trailing data", "POST", "/v1/orders", ta.alice, "a", `{} {}`, 400, "malformed_json"},
		{"empty body", "POST", "/v1/orders", ta.alice, "a", "", 400, "malformed_json"},
		{"missing lines", "POST", "/v1/orders", ta.alice, "a", orderBody(), 400, "missing_field"},
		{"missing customer", "POST", "/v1/orders", ta.alice, "a", map[string]any{"lines": []any{line("TEA-250", 1)}}, 400, "missing_field"},
		{"zero qty", "POST", "/v1/orders", ta.alice, "a", orderBody(line("TEA-250", 0)), 400, "invalid_quantity"},
		{"negative qty", "POST", "/v1/orders", ta.alice, "a", orderBody(line("TEA-250", -3)), 400, "invalid_quantity"},
		{"fractional qty", "POST", "/v1/orders", ta.alice, "a", orderBody(line("TEA-250", 1.5)), 400, "invalid_field"},
		{"qty as string", "POST", "/v1/orders", ta.alice, "a", orderBody(line("TEA-250", "2")), 400, "invalid_field"},
		{"unknown sku", "POST", "/v1/orders", ta.alice, "a", orderBody(line("NOPE", 1)), 422, "unknown_sku"},
		{"sku with subject chars", "POST", "/v1/orders", ta.alice, "a", orderBody(line("a.b.>", 1)), 400, "invalid_id"},
		{"2 MB body", "POST", "/v1/orders", ta.alice, "a", big, 413, "body_too_large"},
		{"no idempotency key", "POST", "/v1/orders", ta.alice, "", orderBody(line("TEA-250", 1)), 400, "idempotency_key_required"},
		{"no token", "POST", "/v1/orders", "", "a", orderBody(line("TEA-250", 1)), 401, "unauthorized"},
		{"bad token", "POST", "/v1/orders", "not.a.token", "a", orderBody(line("TEA-250", 1)), 401, "unauthorized"},
		{"forged token", "POST", "/v1/orders", ta.alice[:len(ta.alice)-4] + "AAAA", "a", orderBody(line("TEA-250", 1)), 401, "unauthorized"},
		{"wrong role places", "POST", "/v1/orders", ta.admin, "a", orderBody(line("TEA-250", 1)), 403, "forbidden"},
		{"customer sets stock", "PUT", "/v1/skus/TEA-250", ta.alice, "", map[string]any{"name": "x", "price": map[string]any{"amount": 1, "currency": "CNY"}, "on_hand": 1}, 403, "forbidden"},
		{"negative stock", "PUT", "/v1/skus/TEA-250", ta.admin, "", map[string]any{"name": "x", "price": map[string]any{"amount": 1, "currency": "CNY"}, "on_hand": -1}, 400, "invalid_quantity"},
		{"stock without price", "PUT", "/v1/skus/NEW-1", ta.admin, "", map[string]any{"name": "x", "on_hand": 1}, 400, "missing_field"},
		{"bad currency", "PUT", "/v1/skus/NEW-1", ta.admin, "", map[string]any{"name": "x", "price": map[string]any{"amount": 1, "currency": "yuan"}, "on_hand": 1}, 400, ""},
		{"another customer's order", "POST", "/v1/orders/" + id + "/cancel", ta.bob, "", map[string]any{"reason": "mine now"}, 404, "order_not_found"},
		{"unknown order", "POST", "/v1/orders/ord_nope/cancel", ta.alice, "", nil, 404, "order_not_found"},
		{"bad order id", "POST", "/v1/orders/a.b/cancel", ta.alice, "", nil, 400, "invalid_id"},
		{"ship unpaid", "POST", "/v1/orders/" + id + "/ship", ta.admin, "", map[string]any{"carrier": "SF", "tracking_number": "1"}, 422, "order_not_shippable"},
		{"ship without carrier", "POST", "/v1/orders/" + id + "/ship", ta.admin, "", map[string]any{}, 400, "missing_field"},
		{"customer ships", "POST", "/v1/orders/" + id + "/ship", ta.alice, "", map[string]any{"carrier": "SF", "tracking_number": "1"}, 403, "forbidden"},
		{"deliver unshipped", "POST", "/v1/orders/" + id + "/deliver", ta.admin, "", nil, 422, ""},
		{"wrong method", "DELETE", "/v1/orders", ta.alice, "", nil, 405, "method_not_allowed"},
		{"unknown path", "GET", "/v1/nothing", ta.alice, "", nil, 404, "not_found"},
		{"unknown sku get", "GET", "/v1/skus/NOPE", ta.agent, "", nil, 404, "sku_not_found"},
		{"text body", "POST", "/v1/orders", ta.alice, "a", "qty=1", 400, "malformed_json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.key != "" {
				hdr = []string{"Idempotency-Key", c.key}
			}
			r := ta.do(c.method, c.path, c.token, c.body, hdr...)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.raw)
			}
			if r.code() == "" {
				t.Fatalf("no JSON error code: %s", r.raw)
			}
			if c.code != "" && r.code() != c.code {
				t.Fatalf("code %q, want %q: %s", r.code(), c.code, r.raw)
			}
		})
	}
	if after := ta.seqs(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("refused requests changed the log: %v -> %v", before, after)
	}
}

func TestConcurrentCancelsAppendOneCancellation(t *testing.T) {
	ta := mustStart(t)
	ta.putSKU("TEA-250", 1999, 100)
	placed := ta.place(ta.alice, "k", orderBody(line("TEA-250", 1)))
	id := placed.body["order_id"].(string)

	statuses := make([]int, 50)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() {
			tok := ta.alice
			if i%2 == 1 {
				tok = ta.agent
			}
			statuses[i] = ta.do("POST", "/v1/orders/"+id+"/cancel", tok, map[string]any{"reason": fmt.Sprint("try ", i)}).status
		})
	}
	wg.Wait()
	// One cancel appends (202); the others find it cancelled (200).
	appended := 0
	for i, s := range statuses {
		switch s {
		case 202:
			appended++
		case 200:
		default:
			t.Errorf("request %d: status %d", i, s)
		}
	}
	if appended != 1 {
		t.Errorf("%d cancels answered 202, want exactly 1", appended)
	}
	types := eventTypes(ta.history(id))
	if n := count(types, "order.cancelled"); n != 1 {
		t.Fatalf("%d order.cancelled events, want 1: %v", n, types)
	}
}

// driveToPaid moves an order to paid with the commands the checkout saga
// will send, so shipping can race cancelling.
func (ta *testApp) driveToPaid(id string) {
	ta.t.Helper()
	ctx := context.Background()
	st, err := ta.orders.State(ctx, id, command.Cached)
	if err != nil {
		ta.t.Fatal(err)
	}
	total := st.State.Total
	for _, cmd := range []order.Command{
		order.MarkStockReserved{},
		order.RequestPayment{PaymentID: "pay_" + id, Amount: total, CheckoutURL: "http://psp.local/pay/" + id},
		order.MarkPaid{PaymentID: "pay_" + id, Amount: total},
	} {
		if _, err := ta.orders.Handle(ctx, command.Request[order.Command]{AggregateID: id, Command: cmd}); err != nil {
			ta.t.Fatalf("%T: %v", cmd, err)
		}
	}
}

func TestConcurrentCancelAndShipLeaveAValidHistory(t *testing.T) {
	ta := mustStart(t)
	ta.putSKU("TEA-250", 1999, 1000)
	for round := range 4 {
		placed := ta.place(ta.alice, fmt.Sprint("k", round), orderBody(line("TEA-250", 1)))
		id := placed.body["order_id"].(string)
		ta.driveToPaid(id)

		statuses := make([]int, 50)
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Go(func() {
				if i%2 == 0 {
					statuses[i] = ta.do("POST", "/v1/orders/"+id+"/cancel", ta.alice, nil).status
				} else {
					statuses[i] = ta.do("POST", "/v1/orders/"+id+"/ship", ta.admin, map[string]any{"carrier": "SF", "tracking_number": "T-1"}).status
				}
			})
		}
		wg.Wait()
		for i, s := range statuses {
			if s != 202 && s != 200 && s != 422 {
				t.Errorf("round %d request %d: status %d", round, i, s)
			}
		}
		commits := ta.history(id)
		if breaks := events.VerifyChain(commits); len(breaks) > 0 {
			t.Fatalf("chain: %v", breaks)
		}
		// The history must be a walk the decider itself accepts: replay
		// each event and check the state machine reached a terminal
		// status through exactly one of cancel or ship.
		types := eventTypes(commits)
		c, s := count(types, "order.cancelled"), count(types, "order.shipped")
		if c+s != 1 {
			t.Fatalf("round %d: %d cancelled and %d shipped: %v", round, c, s, types)
		}
		want := []string{"order.placed", "order.stock_reserved", "order.payment_requested", "order.paid"}
		if fmt.Sprint(types[:4]) != fmt.Sprint(want) || len(types) != 5 {
			t.Fatalf("round %d: history %v", round, types)
		}
	}
}

func TestHealthAndOpenAPIAreServed(t *testing.T) {
	ta := mustStart(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := ta.do("GET", p, "", nil); r.status != 200 {
			t.Fatalf("%s: %d %s", p, r.status, r.raw)
		}
	}
	r := ta.do("GET", "/v1/openapi.json", "", nil)
	if r.status != 200 || r.body["openapi"] == nil {
		t.Fatalf("openapi: %d", r.status)
	}
	ta.ready.Store(false)
	if r := ta.do("GET", "/readyz", "", nil); r.status != 503 {
		t.Fatalf("readyz while not ready: %d", r.status)
	}
}

func TestMetricsCountRequestsAndCommands(t *testing.T) {
	ta := mustStart(t)
	ta.putSKU("TEA-250", 1999, 10)
	if r := ta.place(ta.alice, "m-1", orderBody(line("TEA-250", 1))); r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	ta.place(ta.alice, "m-1", orderBody(line("TEA-250", 1))) // a retry: duplicate
	ta.place(ta.alice, "m-2", orderBody(line("TEA-250", 0))) // refused at the edge: 400
	ta.place(ta.alice, "m-1", orderBody(line("TEA-250", 2))) // refused by the order: 422
	ta.do("GET", "/v1/nowhere", "", nil)                     // unmatched: 404
	r := ta.metrics()
	if r.status != 200 {
		t.Fatalf("metrics: %d", r.status)
	}
	text := string(r.raw)
	for _, want := range []string{
		`ordo_commands_total{aggregate="order",outcome="appended"} 1`,
		`ordo_commands_total{aggregate="order",outcome="duplicate"} 1`,
		`ordo_commands_total{aggregate="order",outcome="refused"} 1`,
		`ordo_commands_total{aggregate="inventory",outcome="appended"} 1`,
		`ordo_http_requests_total{code="202",method="POST",route="/v1/orders"} 2`,
		`ordo_http_requests_total{code="400",method="POST",route="/v1/orders"} 1`,
		`ordo_http_requests_total{code="422",method="POST",route="/v1/orders"} 1`,
		`ordo_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestMetricsHaveTheirOwnListener: GET /metrics is served only on the
// metrics listener (ORDO_METRICS_ADDR), whose URL the local default
// writes to <data dir>/metrics.url while it runs; the API's port answers
// a JSON 404 for it; ORDO_METRICS_ADDR=off serves none.
func TestMetricsHaveTheirOwnListener(t *testing.T) {
	ta := mustStart(t)
	if r := ta.do("GET", "/metrics", "", nil); r.status != 404 || r.code() != "not_found" || !strings.Contains(string(r.raw), "ORDO_METRICS_ADDR") {
		t.Fatalf("/metrics on the API's port: %d %s", r.status, r.raw)
	}
	if r := ta.do("GET", "/metrics", ta.admin, nil); r.status != 404 {
		t.Fatalf("/metrics on the API's port with an admin token: %d %s", r.status, r.raw)
	}
	if m := ta.metrics(); m.status != 200 || !strings.Contains(string(m.raw), "go_goroutines") {
		t.Fatalf("metrics listener: %d", m.status)
	}
	base := strings.TrimSuffix(ta.metricsURL, "/metrics")
	for _, c := range []struct {
		method, path string
		status       int
	}{{"GET", "/", 404}, {"GET", "/v1/orders", 404}, {"POST", "/metrics", 405}} {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || err != nil || body["error"] == nil {
			t.Errorf("%s %s on the metrics listener: %d %v %v", c.method, c.path, resp.StatusCode, body, err)
		}
	}
	dir := ta.cfg.DataDir
	if err := ta.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.MetricsURL)); !os.IsNotExist(err) {
		t.Fatalf("metrics.url after stop: %v", err)
	}

	off := mustStart(t, func(c *config.Config) { c.MetricsAddr = config.MetricsOff })
	if off.metricsURL != "" {
		t.Fatalf("metrics off, served at %s", off.metricsURL)
	}
	if _, err := os.Stat(filepath.Join(off.cfg.DataDir, datadir.MetricsURL)); !os.IsNotExist(err) {
		t.Fatalf("metrics off, metrics.url: %v", err)
	}
}

// TestOversizedHeadersAreJSON: orderd's server lets Ordo's header limit
// answer in JSON (431 headers_too_large), and a request for "*" too.
func TestOversizedHeadersAreJSON(t *testing.T) {
	ta := mustStart(t)
	r := ta.do("GET", "/v1/skus", ta.admin, nil, "X-Pad", strings.Repeat("a", httpapi.MaxHeaderBytes+1))
	if r.status != 431 || r.code() != "headers_too_large" {
		t.Fatalf("headers over the limit: %d %s", r.status, r.raw)
	}
	req, err := http.NewRequest("OPTIONS", ta.base, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = "*"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); resp.StatusCode != 400 || err != nil || body["error"] == nil {
		t.Fatalf("OPTIONS *: %d %v %v", resp.StatusCode, body, err)
	}
}

// A start that fails half-way (here: the HTTP port is taken) returns an
// error, stops what it started and releases the data dir for the next try.
func TestFailedStartCleansUp(t *testing.T) {
	testkit.SkipShort(t, "orderd with its own NATS and PostgreSQL")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.HTTPAddr, cfg.NATSListen, cfg.DataDir, cfg.AuthSecret = busy.Addr().String(), "127.0.0.1:0", dir, testSecret
	if _, err := start(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("start on a busy port: %v", err)
	}
	cfg.HTTPAddr = "127.0.0.1:0"
	a, err := start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("second start on the same data dir: %v", err)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
}

// TestProcessBacklogOnTheMetricsListener: an instance running the process
// managers reports each of their consumers' backlog; once an order is
// handled the checkout's lanes hold nothing. An instance without the
// sagas role reports none.
func TestProcessBacklogOnTheMetricsListener(t *testing.T) {
	ta := mustStart(t, func(c *config.Config) { c.Roles = []string{"api", "sagas"} })
	ta.putSKU("TEA-250", 1999, 10)
	if r := ta.place(ta.alice, "k-backlog", orderBody(line("TEA-250", 1))); r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	lane := regexp.MustCompile(`(?m)^ordo_process_backlog_messages\{consumer="checkout-orders",state="(pending|unacked)",stream="ORDERS"\} (\d+)$`)
	testkit.Eventually(t, "the checkout's backlog on the metrics listener", 30*time.Second, func() (bool, error) {
		text := string(ta.metrics().raw)
		if !strings.Contains(text, "ordo_process_backlog_up 1\n") {
			return false, errors.New("no ordo_process_backlog_up 1")
		}
		found := lane.FindAllStringSubmatch(text, -1)
		if len(found) != 2 {
			return false, fmt.Errorf("%d series of checkout-orders, want pending and unacked", len(found))
		}
		for _, f := range found {
			if f[2] != "0" {
				return false, fmt.Errorf("checkout-orders %s %s", f[1], f[2])
			}
		}
		return true, nil
	})

	api := mustStart(t, func(c *config.Config) { c.Roles = []string{"api"} })
	if text := string(api.metrics().raw); strings.Contains(text, "ordo_process_backlog") {
		t.Fatalf("an instance without the sagas role reports a backlog:\n%s", text)
	}
}
