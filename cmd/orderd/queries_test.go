package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/testkit"
)

// TestMain stops the test binary's PostgreSQL (see testkit.Postgres).
func TestMain(m *testing.M) { os.Exit(testkit.RunMain(m)) }

// withProjector runs the projector in the test's orderd.
func withProjector(c *config.Config) { c.Roles = []string{"api", "projections"} }

// TestReadYourWrites1000InARow places orders and reads each one back
// with the position the command API returned, alternating with a
// cancellation read back the same way: no read may miss the write.
func TestReadYourWrites1000InARow(t *testing.T) {
	ta := mustStart(t, withProjector)
	ta.putSKU("TEA-250", 1999, 1_000_000)
	misses := 0
	for i := range 1000 {
		placed := ta.place(ta.alice, fmt.Sprint("ryw-", i), orderBody(line("TEA-250", 1)))
		if placed.status != 202 {
			t.Fatalf("place %d: %d %s", i, placed.status, placed.raw)
		}
		id, pos := placed.body["order_id"].(string), placed.body["position"].(string)
		want, wantVersion := "placed", float64(1)
		if i%2 == 1 {
			c := ta.do("POST", "/v1/orders/"+id+"/cancel", ta.alice, map[string]any{"reason": "test"})
			if c.status != 202 {
				t.Fatalf("cancel %d: %d %s", i, c.status, c.raw)
			}
			pos, want, wantVersion = c.body["position"].(string), "cancelled", 2
		}
		got := ta.do("GET", "/v1/orders/"+id+"?position="+url.QueryEscape(pos), ta.alice, nil)
		if got.status != 200 || got.body["status"] != want || got.body["version"] != wantVersion {
			misses++
			t.Errorf("read %d after writing %s: %d %s", i, pos, got.status, got.raw)
			if misses > 5 {
				t.FailNow()
			}
		}
	}
	t.Logf("1000 writes read back with their positions, %d misses", misses)
}

// TestOrderQueriesShowTheWholeStory drives orders through the checkout,
// shipment and cancellation and reads them through every query.
func TestOrderQueriesShowTheWholeStory(t *testing.T) {
	ta := mustStart(t, withProjector)
	ta.putSKU("TEA-250", 1999, 1000)
	ids := make([]string, 5)
	for i := range ids {
		r := ta.place(ta.alice, fmt.Sprint("story-", i), orderBody(line("TEA-250", i+1)))
		ids[i] = r.body["order_id"].(string)
	}
	ta.driveToPaid(ids[0])
	ship := ta.do("POST", "/v1/orders/"+ids[0]+"/ship", ta.admin, map[string]any{"carrier": "SF", "tracking_number": "SF123"})
	if ship.status != 202 {
		t.Fatalf("ship: %d %s", ship.status, ship.raw)
	}
	ctx := context.Background()
	if _, err := ta.orders.Handle(ctx, command.Request[order.Command]{AggregateID: ids[1], Command: order.MarkStockReserved{}}); err != nil {
		t.Fatal(err)
	}
	pay, err := ta.orders.Handle(ctx, command.Request[order.Command]{AggregateID: ids[1], Command: order.RequestPayment{
		PaymentID: "pay_1", Amount: ta.total(ids[1]), CheckoutURL: "http://psp.local/pay/pay_1"}})
	if err != nil {
		t.Fatal(err)
	}
	pos := fmt.Sprintf("%s:%d", pay.Stream, pay.Seq)

	got := ta.do("GET", "/v1/orders/"+ids[1]+"?position="+pos, ta.alice, nil)
	payment, _ := got.body["payment"].(map[string]any)
	if got.status != 200 || got.body["status"] != "payment_pending" || payment["checkout_url"] != "http://psp.local/pay/pay_1" || payment["status"] != "pending" {
		t.Fatalf("order waiting for payment: %d %s", got.status, got.raw)
	}
	got = ta.do("GET", "/v1/orders/"+ids[0]+"?position="+ship.body["position"].(string), ta.agent, nil)
	shipment, _ := got.body["shipment"].(map[string]any)
	lines, _ := got.body["lines"].([]any)
	if got.status != 200 || got.body["status"] != "shipped" || shipment["tracking_number"] != "SF123" || len(lines) != 1 ||
		got.body["customer_id"] != "cust-alice" || got.body["created_at"] == got.body["updated_at"] {
		t.Fatalf("shipped order seen by an agent: %d %s", got.status, got.raw)
	}
	tl := ta.do("GET", "/v1/orders/"+ids[0]+"/timeline", ta.alice, nil)
	entries, _ := tl.body["entries"].([]any)
	var statuses []string
	for _, e := range entries {
		m := e.(map[string]any)
		statuses = append(statuses, m["status"].(string))
		if m["commit_id"] == "" || m["at"] == "" || m["event"] == "" {
			t.Errorf("timeline entry without commit, time or event: %v", m)
		}
	}
	if tl.status != 200 || strings.Join(statuses, ",") != "placed,stock_reserved,payment_pending,paid,shipped" {
		t.Fatalf("timeline: %d %s", tl.status, tl.raw)
	}
	// The customer sees staff as a role; staff see who it was.
	if e := entries[len(entries)-1].(map[string]any); e["actor"] != "customer service" || e["correlation_id"] != nil {
		t.Fatalf("ship's actor as the customer sees it: %v", e)
	}
	if e := entries[0].(map[string]any); e["actor"] != "customer:cust-alice" {
		t.Fatalf("the customer's own actor as she sees it: %v", e)
	}
	staff := ta.do("GET", "/v1/orders/"+ids[0]+"/timeline", ta.agent, nil)
	staffEntries, _ := staff.body["entries"].([]any)
	if len(staffEntries) != len(entries) {
		t.Fatalf("timeline as an agent: %d %s", staff.status, staff.raw)
	}
	if e := staffEntries[len(staffEntries)-1].(map[string]any); e["actor"] != "admin:ops" || e["correlation_id"] == nil {
		t.Fatalf("ship's actor as an agent sees it: %v", e)
	}

	// Alice's orders, two per page, newest first.
	var seen []string
	next := ""
	for page := 0; page < 10; page++ {
		path := "/v1/customers/cust-alice/orders?limit=2&position=" + pos
		if next != "" {
			path += "&cursor=" + next
		}
		r := ta.do("GET", path, ta.alice, nil)
		if r.status != 200 {
			t.Fatalf("page %d: %d %s", page, r.status, r.raw)
		}
		for _, o := range r.body["orders"].([]any) {
			seen = append(seen, o.(map[string]any)["order_id"].(string))
		}
		n, ok := r.body["next_cursor"].(string)
		if !ok {
			break
		}
		if url.QueryEscape(n) != n {
			t.Fatalf("cursor %q is not URL-safe", n)
		}
		next = n
	}
	var want []string
	for i := len(ids) - 1; i >= 0; i-- {
		want = append(want, ids[i])
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want newest first %v", seen, want)
	}
	r := ta.do("GET", "/v1/customers/cust-alice/orders?status=shipped", ta.agent, nil)
	if list := r.body["orders"].([]any); r.status != 200 || len(list) != 1 || list[0].(map[string]any)["order_id"] != ids[0] {
		t.Fatalf("shipped orders: %d %s", r.status, r.raw)
	}
	// The admin view: the live version's checkpoint, lag and state.
	// The projector has applied at least pos (read above with it).
	r = ta.do("GET", "/v1/projections", ta.admin, nil)
	projs, _ := r.body["projections"].([]any)
	if r.status != 200 || len(projs) != 1 {
		t.Fatalf("projections: %d %s", r.status, r.raw)
	}
	p := projs[0].(map[string]any)
	seq, _ := strconv.ParseFloat(strings.TrimPrefix(pos, "ORDERS:"), 64)
	cp, _ := p["checkpoint"].(float64)
	end, _ := p["stream_last_seq"].(float64)
	lag, hasLag := p["lag"].(float64)
	versions, _ := p["versions"].([]any)
	if p["name"] != "order_status" || p["version"] != float64(1) || cp < seq || !hasLag || lag != end-cp ||
		(p["state"] != "live" && p["state"] != "catching_up") || len(versions) != 1 {
		t.Fatalf("projections: %s", r.raw)
	}
}

func (ta *testApp) total(id string) (m struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}) {
	st, err := ta.orders.State(context.Background(), id, command.Cached)
	if err != nil {
		ta.t.Fatal(err)
	}
	m.Amount, m.Currency = st.State.Total.Amount, st.State.Total.Currency
	return m
}

// TestBadQueryInputIsRefused sends every kind of bad query: each gets a
// 4xx JSON error with a code, never a 5xx.
func TestBadQueryInputIsRefused(t *testing.T) {
	ta := mustStart(t, withProjector)
	ta.putSKU("TEA-250", 1999, 100)
	placed := ta.place(ta.alice, "k", orderBody(line("TEA-250", 1)))
	id, pos := placed.body["order_id"].(string), placed.body["position"].(string)
	if r := ta.do("GET", "/v1/orders/"+id+"?position="+pos, ta.alice, nil); r.status != 200 {
		t.Fatalf("own order: %d %s", r.status, r.raw)
	}
	orders := "/v1/customers/cust-alice/orders"
	cases := []struct {
		name, path, token string
		status            int
		code              string
	}{
		{"another customer's order", "/v1/orders/" + id, ta.bob, 404, "order_not_found"},
		{"another customer's timeline", "/v1/orders/" + id + "/timeline", ta.bob, 404, "order_not_found"},
		{"another customer's list", orders, ta.bob, 403, "forbidden"},
		{"unknown order", "/v1/orders/ord_nope", ta.alice, 404, "order_not_found"},
		{"unknown order timeline", "/v1/orders/ord_nope/timeline", ta.agent, 404, "order_not_found"},
		{"bad order id", "/v1/orders/a.b", ta.alice, 400, "invalid_id"},
		{"bad order id chars", "/v1/orders/%2A%3E", ta.alice, 400, "invalid_id"},
		{"long order id", "/v1/orders/" + strings.Repeat("x", 200), ta.alice, 400, "invalid_id"},
		{"bad customer id", "/v1/customers/a.b/orders", ta.agent, 400, "invalid_id"},
		{"garbage cursor", orders + "?cursor=%21%21%21", ta.alice, 400, "invalid_cursor"},
		{"base64 garbage cursor", orders + "?cursor=bm9wZQ", ta.alice, 400, "invalid_cursor"},
		{"huge cursor", orders + "?cursor=" + strings.Repeat("A", 5000), ta.alice, 400, "invalid_cursor"},
		{"cursor with NUL", orders + "?cursor=%00", ta.alice, 400, "invalid_cursor"},
		{"cursor not UTF-8", orders + "?cursor=%FF", ta.alice, 400, "invalid_cursor"},
		{"forged cursor with NUL", orders + "?cursor=" + forgeCursor("1.1764072000123456.ord\x00x"), ta.alice, 400, "invalid_cursor"},
		{"forged cursor not UTF-8", orders + "?cursor=" + forgeCursor("1.1764072000123456.ord\xffx"), ta.alice, 400, "invalid_cursor"},
		{"forged cursor in another spelling", orders + "?cursor=" + forgeCursor("1.+1764072000123456.ord_x"), ta.alice, 400, "invalid_cursor"},
		{"forged cursor far in the future", orders + "?cursor=" + forgeCursor("1.9223372036854775807.ord_x"), ta.alice, 200, ""},
		{"status with NUL", orders + "?status=paid%00", ta.alice, 400, "invalid_status"},
		{"status not UTF-8", orders + "?status=%FF", ta.alice, 400, "invalid_status"},
		{"limit with NUL", orders + "?limit=1%00", ta.alice, 400, "invalid_limit"},
		{"limit not UTF-8", orders + "?limit=%FF", ta.alice, 400, "invalid_limit"},
		{"customer id with NUL", "/v1/customers/cust-alice%00/orders", ta.agent, 400, "invalid_id"},
		{"customer id not UTF-8", "/v1/customers/%FF/orders", ta.agent, 400, "invalid_id"},
		{"order id with NUL", "/v1/orders/" + id + "%00", ta.alice, 400, "invalid_id"},
		{"order id not UTF-8", "/v1/orders/%FF/timeline", ta.alice, 400, "invalid_id"},
		{"position with NUL", "/v1/orders/" + id + "?position=ORDERS:1%00", ta.alice, 400, "invalid_position"},
		{"position not UTF-8", orders + "?position=%FF", ta.alice, 400, "invalid_position"},
		{"limit zero", orders + "?limit=0", ta.alice, 400, "invalid_limit"},
		{"negative limit", orders + "?limit=-5", ta.alice, 400, "invalid_limit"},
		{"absurd limit", orders + "?limit=1000000", ta.alice, 400, "invalid_limit"},
		{"overflowing limit", orders + "?limit=99999999999999999999999", ta.alice, 400, "invalid_limit"},
		{"limit not a number", orders + "?limit=ten", ta.alice, 400, "invalid_limit"},
		{"fractional limit", orders + "?limit=1.5", ta.alice, 400, "invalid_limit"},
		{"unknown status", orders + "?status=lost", ta.alice, 400, "invalid_status"},
		{"position without stream", "/v1/orders/" + id + "?position=12", ta.alice, 400, "invalid_position"},
		{"position of another stream", "/v1/orders/" + id + "?position=INVENTORY:1", ta.alice, 400, "invalid_position"},
		{"negative position", "/v1/orders/" + id + "?position=ORDERS:-1", ta.alice, 400, "invalid_position"},
		{"zero position", "/v1/orders/" + id + "?position=ORDERS:0", ta.alice, 400, "invalid_position"},
		{"overflowing position", "/v1/orders/" + id + "?position=ORDERS:99999999999999999999999", ta.alice, 400, "invalid_position"},
		{"position from the future", "/v1/orders/" + id + "?position=ORDERS:999999", ta.alice, 400, "invalid_position"},
		{"bad position on a list", orders + "?position=nope", ta.alice, 400, "invalid_position"},
		{"no token", "/v1/orders/" + id, "", 401, "unauthorized"},
		{"customer asks for projections", "/v1/projections", ta.alice, 403, "forbidden"},
		{"agent asks for projections", "/v1/projections", ta.agent, 403, "forbidden"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, h := ta.get(c.path, c.token)
			if r.status != c.status || r.code() != c.code || h.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %q (%s), want %d %q: %s", r.status, r.code(), h.Get("Content-Type"), c.status, c.code, r.raw)
			}
		})
	}
}

// forgeCursor encodes text as the API encodes its list cursors.
func forgeCursor(text string) string { return base64.RawURLEncoding.EncodeToString([]byte(text)) }

// get is ta.do for a GET that also returns the response headers.
func (ta *testApp) get(path, token string) (response, http.Header) {
	ta.t.Helper()
	req, err := http.NewRequest("GET", ta.base+path, nil)
	if err != nil {
		ta.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		ta.t.Fatal(err)
	}
	r := response{status: resp.StatusCode, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r, resp.Header
}

// TestStalePositionIsRefusedNotServed runs the API with no projector
// and checks that a position the read model has not reached is refused
// with 503, a JSON error and Retry-After, not answered from stale data.
func TestStalePositionIsRefusedNotServed(t *testing.T) {
	ta := mustStart(t, func(c *config.Config) { c.ReadYourWritesWait = 200 * time.Millisecond }) // no projector
	ta.putSKU("TEA-250", 1999, 100)
	placed := ta.place(ta.alice, "k", orderBody(line("TEA-250", 1)))
	id, pos := placed.body["order_id"].(string), placed.body["position"].(string)
	for _, path := range []string{"/v1/orders/" + id, "/v1/orders/" + id + "/timeline", "/v1/customers/cust-alice/orders"} {
		r, h := ta.get(path+"?position="+url.QueryEscape(pos), ta.alice)
		if r.status != 503 || r.code() != "projection_behind" || h.Get("Retry-After") == "" || h.Get("Content-Type") != "application/json" {
			t.Fatalf("stale read of %s: %d %v %s", path, r.status, h, r.raw)
		}
	}
	if r := ta.do("GET", "/v1/orders/"+id, ta.alice, nil); r.status != 404 {
		t.Fatalf("without a position the read model answers what it has: %d %s", r.status, r.raw)
	}
}

// TestLocalDefaultRunsItsOwnPostgres starts orderd without
// ORDO_POSTGRES_URL: it runs PostgreSQL under the data dir and writes
// postgres.url, and removes it when it stops.
func TestLocalDefaultRunsItsOwnPostgres(t *testing.T) {
	ta := mustStart(t, withProjector, func(c *config.Config) { c.PostgresURL = "" })
	urlFile := filepath.Join(ta.cfg.DataDir, datadir.PostgresURL)
	b, err := os.ReadFile(urlFile)
	if err != nil || !strings.HasPrefix(string(b), "postgres://") {
		t.Fatalf("postgres.url: %q %v", b, err)
	}
	ta.putSKU("TEA-250", 1999, 100)
	placed := ta.place(ta.alice, "k", orderBody(line("TEA-250", 1)))
	r := ta.do("GET", "/v1/orders/"+placed.body["order_id"].(string)+"?position="+placed.body["position"].(string), ta.alice, nil)
	if r.status != 200 {
		t.Fatalf("query on the private PostgreSQL: %d %s", r.status, r.raw)
	}
	if err := ta.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(urlFile); !os.IsNotExist(err) {
		t.Fatalf("postgres.url left behind: %v", err)
	}
	pid, _ := os.ReadFile(filepath.Join(ta.cfg.DataDir, datadir.PostgresDir, "data", "postmaster.pid"))
	if len(pid) > 0 {
		t.Fatalf("postmaster.pid left behind: the server did not shut down cleanly: %s", pid)
	}
}
