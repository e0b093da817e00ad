package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/memlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/httpapi"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/process"
)

// The HTTP handlers on the in-memory log: the API, its command handlers
// and the webhook's payment sync are the real ones; no server runs.

const (
	apiSecret     = "api-secret-api-secret-api-secret-api!"
	webhookSecret = "webhook-secret-webhook-secret-webhook!"
)

type api struct {
	t        testing.TB
	log      *memlog.Log
	srv      http.Handler
	signer   *auth.Signer
	orders   *command.Handler[order.State, order.Command]
	payments *command.Handler[payment.State, payment.Command]
}

// faultyLog is the in-memory log whose appends fail with err when it is
// set, as a log whose leader is being elected answers.
type faultyLog struct {
	*memlog.Log
	err error
}

func (f *faultyLog) Append(ctx context.Context, c *events.Commit, expected uint64) (eventlog.AppendResult, error) {
	if f.err != nil {
		return eventlog.AppendResult{}, f.err
	}
	return f.Log.Append(ctx, c, expected)
}

func newAPI(t *testing.T, store command.Store) *api {
	t.Helper()
	return newAPIWith(t, store, nil)
}

// newAPIWith is newAPI with Deps changed by with (if not nil).
func newAPIWith(t testing.TB, store command.Store, with func(*httpapi.Deps)) *api {
	t.Helper()
	log, err := memlog.New(memlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if store == nil {
		store = log
	} else if f, ok := store.(*faultyLog); ok {
		log = f.Log
	}
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	orders, err := command.NewHandler(order.Decider(), store, reg, command.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stock, err := command.NewHandler(inventory.Decider(), store, reg, command.Options{})
	if err != nil {
		t.Fatal(err)
	}
	payments, err := command.NewHandler(payment.Decider(), store, reg, command.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sync, err := process.NewPaymentSync(payments, log, "sim", nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := auth.NewSigner(apiSecret)
	if err != nil {
		t.Fatal(err)
	}
	deps := httpapi.Deps{
		Orders: orders, Inventory: stock, Catalog: log, Signer: signer,
		Payments: sync, PSPWebhookSecret: []byte(webhookSecret),
	}
	if with != nil {
		with(&deps)
	}
	srv, err := httpapi.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	return &api{t: t, log: log, srv: srv, signer: signer, orders: orders, payments: payments}
}

func (a *api) token(sub string, role auth.Role) string {
	a.t.Helper()
	tok, err := a.signer.Mint(sub, role, time.Now(), time.Hour)
	if err != nil {
		a.t.Fatal(err)
	}
	return tok
}

// do sends a request as sub with role (no token when sub is empty) and
// returns the status and the decoded JSON body.
func (a *api) do(method, path, sub string, role auth.Role, body any, header ...string) (int, map[string]any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if sub != "" {
		req.Header.Set("Authorization", "Bearer "+a.token(sub, role))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	a.srv.ServeHTTP(w, req)
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			a.t.Fatalf("%s %s: %d, body not JSON: %s", method, path, w.Code, w.Body)
		}
	}
	return w.Code, out
}

func code(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (a *api) putSKU(sku string, price, onHand int64) {
	a.t.Helper()
	status, body := a.do("PUT", "/v1/skus/"+sku, "ops", auth.RoleAdmin, map[string]any{
		"name": "Tea " + sku, "price": events.Money{Amount: price, Currency: "CNY"}, "on_hand": onHand,
	})
	if status != 200 {
		a.t.Fatalf("put SKU %s: %d %v", sku, status, body)
	}
}

var orderBody = map[string]any{
	"customer":         map[string]any{"name": "Li Lei", "email": "li@example.com"},
	"lines":            []map[string]any{{"sku": "TEA", "qty": 2, "unit_price": map[string]any{"amount": 1, "currency": "CNY"}}},
	"shipping_address": map[string]any{"name": "Li Lei", "line1": "1 Road", "city": "Hangzhou", "country": "CN"},
}

func TestCatalogRoutes(t *testing.T) {
	a := newAPI(t, nil)
	a.putSKU("TEA", 1999, 5)
	a.putSKU("CUP", 500, 0)
	status, body := a.do("GET", "/v1/skus/TEA", "ops", auth.RoleAdmin, nil)
	if status != 200 || body["available"] != 5.0 || body["name"] != "Tea TEA" {
		t.Fatalf("get SKU: %d %v", status, body)
	}
	status, body = a.do("GET", "/v1/skus", "ops", auth.RoleAdmin, nil)
	if skus, _ := body["skus"].([]any); status != 200 || len(skus) != 2 {
		t.Fatalf("list SKUs: %d %v", status, body)
	}
	if status, body = a.do("GET", "/v1/skus/NONE", "ops", auth.RoleAdmin, nil); status != 404 || code(body) != "sku_not_found" {
		t.Fatalf("unknown SKU: %d %v", status, body)
	}
	if status, body = a.do("PUT", "/v1/skus/TEA", "c-1", auth.RoleCustomer, map[string]any{"name": "x"}); status != 403 {
		t.Fatalf("a customer puts a SKU: %d %v", status, body)
	}
	if status, body = a.do("GET", "/v1/skus/bad.id", "ops", auth.RoleAdmin, nil); status != 400 {
		t.Fatalf("a SKU id with a dot: %d %v", status, body)
	}
}

func TestPlaceCancelAndOwnership(t *testing.T) {
	a := newAPI(t, nil)
	a.putSKU("TEA", 1999, 5)
	status, body := a.do("POST", "/v1/orders", "c-1", auth.RoleCustomer, orderBody, "Idempotency-Key", "k-1")
	if status != 202 || body["status"] != "placed" {
		t.Fatalf("place: %d %v", status, body)
	}
	// The catalog's price, never the client's.
	if total, _ := body["total"].(map[string]any); total["amount"] != 3998.0 {
		t.Fatalf("total %v, want 39.98 from the catalog", body["total"])
	}
	id, _ := body["order_id"].(string)
	// The same key again is the same order.
	if status, again := a.do("POST", "/v1/orders", "c-1", auth.RoleCustomer, orderBody, "Idempotency-Key", "k-1"); status != 202 || again["order_id"] != id {
		t.Fatalf("place again with the same key: %d %v, want order %s", status, again, id)
	}
	if status, body := a.do("POST", "/v1/orders", "c-1", auth.RoleCustomer, orderBody); status != 400 || code(body) != "idempotency_key_required" {
		t.Fatalf("place without a key: %d %v", status, body)
	}
	unknown := map[string]any{"customer": orderBody["customer"], "shipping_address": orderBody["shipping_address"],
		"lines": []map[string]any{{"sku": "NONE", "qty": 1}}}
	if status, body := a.do("POST", "/v1/orders", "c-1", auth.RoleCustomer, unknown, "Idempotency-Key", "k-2"); status != 422 || code(body) != "unknown_sku" {
		t.Fatalf("place an unknown SKU: %d %v", status, body)
	}
	// Another customer cannot see or cancel it.
	if status, body := a.do("POST", "/v1/orders/"+id+"/cancel", "c-2", auth.RoleCustomer, map[string]any{"reason": "mine"}); status != 404 || code(body) != "order_not_found" {
		t.Fatalf("another customer cancels: %d %v", status, body)
	}
	status, body = a.do("POST", "/v1/orders/"+id+"/cancel", "c-1", auth.RoleCustomer, map[string]any{"reason": "changed my mind"})
	if status != 202 || body["status"] != "cancelled" || body["version"] != 2.0 {
		t.Fatalf("cancel: %d %v", status, body)
	}
	recs, err := a.log.Load(context.Background(), eventlog.TypeOrder, id, 0)
	if err != nil || len(recs) != 2 || recs[1].Commit.Events[0].Type != "order.cancelled" {
		t.Fatalf("the log holds %d commits of the order (%v), want placed and cancelled", len(recs), err)
	}
	// Without a read model the queries say so.
	if status, body := a.do("GET", "/v1/orders/"+id, "c-1", auth.RoleCustomer, nil); status != 503 || code(body) != "queries_unavailable" {
		t.Fatalf("get without queries: %d %v", status, body)
	}
}

// An append the log could not make answers with what the client can do.
func TestLogFailuresSayWhatToDo(t *testing.T) {
	f := &faultyLog{}
	l, err := memlog.New(memlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.Log = l
	a := newAPI(t, f)
	a.putSKU("TEA", 1999, 5)
	for _, c := range []struct {
		err  error
		code string
	}{
		{eventlog.ErrLeaderUnavailable, "leader_unavailable"},
		{eventlog.ErrOutcomeUnknown, "outcome_unknown"},
		{eventlog.ErrStreamMissing, "log_unavailable"},
	} {
		f.err = c.err
		status, body := a.do("POST", "/v1/orders", "c-1", auth.RoleCustomer, orderBody, "Idempotency-Key", "k-"+c.code)
		if status != 503 || code(body) != c.code {
			t.Errorf("append failing with %v: %d %v, want 503 %s", c.err, status, body, c.code)
		}
	}
}

// webhook posts a signed provider event.
func (a *api) webhook(ev psp.Event) (int, map[string]any) {
	a.t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		a.t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/v1/psp/webhook", bytes.NewReader(b))
	req.Header.Set(psp.SignatureHeader, psp.Sign([]byte(webhookSecret), time.Now(), b))
	w := httptest.NewRecorder()
	a.srv.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		a.t.Fatalf("webhook: %d, body not JSON: %s", w.Code, w.Body)
	}
	return w.Code, out
}

func TestWebhookRecordsWhatTheProviderSays(t *testing.T) {
	a := newAPI(t, nil)
	pid := process.PaymentIDFor("o-1")
	amount := events.Money{Amount: 3998, Currency: "CNY"}
	if _, err := a.payments.Handle(context.Background(), command.Request[payment.Command]{
		AggregateID: pid, Command: payment.Request{OrderID: "o-1", Amount: amount, Provider: "sim", IntentID: "pi_1", CheckoutURL: "http://psp.invalid/pay/pi_1"},
	}); err != nil {
		t.Fatal(err)
	}
	captured := psp.Intent{ID: "pi_1", Reference: pid, Amount: amount, Status: psp.StatusCaptured, CaptureRef: "ch_1"}

	unknown := captured
	unknown.Reference = process.PaymentIDFor("o-none")
	if status, body := a.webhook(psp.Event{ID: "evt_0", Type: psp.EventType(psp.StatusCaptured), Intent: unknown}); status != 404 || code(body) != "payment_not_found" {
		t.Fatalf("unknown payment: %d %v", status, body)
	}

	wrong := captured
	wrong.Amount.Amount = 1
	if status, body := a.webhook(psp.Event{ID: "evt_1", Type: psp.EventType(psp.StatusCaptured), Intent: wrong}); status != 422 || code(body) != "intent_mismatch" {
		t.Fatalf("another amount: %d %v", status, body)
	}
	if refused := a.log.RefusedReports(); len(refused) != 1 || refused[0].AggregateID != pid || refused[0].Cause != "psp-event:evt_1" {
		t.Fatalf("refused reports: %+v", refused)
	}

	status, body := a.webhook(psp.Event{ID: "evt_2", Type: psp.EventType(psp.StatusCaptured), Intent: captured})
	if status != 200 || body["changed"] != true || body["payment_status"] != "captured" {
		t.Fatalf("capture: %d %v", status, body)
	}
	// The same report again changes nothing.
	status, body = a.webhook(psp.Event{ID: "evt_2", Type: psp.EventType(psp.StatusCaptured), Intent: captured})
	if status != 200 || body["changed"] != false {
		t.Fatalf("the capture again: %d %v", status, body)
	}

	// A forged signature is refused before anything is read.
	b, _ := json.Marshal(psp.Event{ID: "evt_3", Intent: captured})
	req := httptest.NewRequest("POST", "/v1/psp/webhook", bytes.NewReader(b))
	req.Header.Set(psp.SignatureHeader, psp.Sign([]byte("another-secret-another-secret-another!"), time.Now(), b))
	w := httptest.NewRecorder()
	a.srv.ServeHTTP(w, req)
	if w.Code != 401 || !strings.Contains(w.Body.String(), "invalid_signature") {
		t.Fatalf("forged signature: %d %s", w.Code, w.Body)
	}
}
