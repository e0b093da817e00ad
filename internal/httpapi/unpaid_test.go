package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/httpapi"
)

// placeAs places orderBody as a customer with an idempotency key and
// returns the status, the error code or order id, and Retry-After.
func (a *api) placeAs(customer, key string) (status int, codeOrID, retryAfter string) {
	a.t.Helper()
	b, err := json.Marshal(orderBody)
	if err != nil {
		a.t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/v1/orders", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+a.token(customer, auth.RoleCustomer))
	req.Header.Set("Idempotency-Key", key)
	w := httptest.NewRecorder()
	a.srv.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		a.t.Fatalf("place: %d, body not JSON: %s", w.Code, w.Body)
	}
	if id, ok := out["order_id"].(string); ok {
		return w.Code, id, w.Header().Get("Retry-After")
	}
	return w.Code, code(out), w.Header().Get("Retry-After")
}

// TestUnpaidOrdersLimit: one customer may have MaxUnpaidOrders orders
// waiting for payment; the next is 429 too_many_unpaid_orders with
// Retry-After, while another customer places as usual, a retry of a
// counted order still answers with it, and cancelling or paying one frees
// a slot.
func TestUnpaidOrdersLimit(t *testing.T) {
	// A fixed clock, but today's: the tokens are checked against it too
	// (iat may not lie ahead of the server's clock).
	now := time.Now().UTC().Truncate(time.Second)
	a := newAPIWith(t, nil, func(d *httpapi.Deps) {
		d.MaxUnpaidOrders = 3
		d.PaymentTimeout = 15 * time.Minute
		d.Now = func() time.Time { return now }
	})
	a.putSKU("TEA", 1999, 1000)
	var ids []string
	for i := range 3 {
		status, id, _ := a.placeAs("hoarder", fmt.Sprintf("k-%d", i))
		if status != 202 {
			t.Fatalf("order %d: %d %s", i, status, id)
		}
		ids = append(ids, id)
	}
	status, c, retry := a.placeAs("hoarder", "k-3")
	if status != 429 || c != "too_many_unpaid_orders" {
		t.Fatalf("fourth unpaid order: %d %s, want 429 too_many_unpaid_orders", status, c)
	}
	if n, err := strconv.Atoi(retry); err != nil || n != 900 {
		t.Fatalf("Retry-After %q, want 900 (the oldest order's payment timeout)", retry)
	}
	// A retry of a counted order is the order, not a new one.
	if status, id, _ := a.placeAs("hoarder", "k-1"); status != 202 || id != ids[1] {
		t.Fatalf("retry of order 1: %d %s, want 202 %s", status, id, ids[1])
	}
	// Another customer is not affected.
	if status, id, _ := a.placeAs("other", "k-0"); status != 202 {
		t.Fatalf("another customer: %d %s", status, id)
	}

	// Cancelling one frees its slot, for one order.
	if status, body := a.do("POST", "/v1/orders/"+ids[0]+"/cancel", "hoarder", auth.RoleCustomer, map[string]any{"reason": "changed my mind"}); status != 202 {
		t.Fatalf("cancel: %d %v", status, body)
	}
	if status, id, _ := a.placeAs("hoarder", "k-3"); status != 202 {
		t.Fatalf("after a cancel: %d %s", status, id)
	}
	if status, c, _ := a.placeAs("hoarder", "k-4"); status != 429 || c != "too_many_unpaid_orders" {
		t.Fatalf("after the freed slot was taken: %d %s, want 429", status, c)
	}

	// Paying one frees its slot, whoever records the payment (here the
	// order's commands as the checkout sends them, not through this API).
	o, err := a.orders.State(t.Context(), ids[1], command.Current)
	if err != nil {
		t.Fatal(err)
	}
	pay := "pay_" + ids[1]
	for _, cmd := range []order.Command{
		order.MarkStockReserved{},
		order.RequestPayment{PaymentID: pay, Amount: o.State.Total, CheckoutURL: "http://psp.local/pay/" + pay},
		order.MarkPaid{PaymentID: pay, Amount: o.State.Total},
	} {
		if _, err := a.orders.Handle(t.Context(), command.Request[order.Command]{AggregateID: ids[1], Command: cmd}); err != nil {
			t.Fatal(err)
		}
	}
	if status, id, _ := a.placeAs("hoarder", "k-4"); status != 202 {
		t.Fatalf("after a payment: %d %s", status, id)
	}
	// Retry-After shrinks as the oldest unpaid order ages.
	now = now.Add(10 * time.Minute)
	if status, _, retry := a.placeAs("hoarder", "k-5"); status != 429 || retry != "300" {
		t.Fatalf("ten minutes later: %d, Retry-After %q, want 429 and 300", status, retry)
	}
}

// TestUnpaidOrdersLimitHoldsUnderConcurrency: many places of one customer
// at once on one instance admit exactly the limit.
func TestUnpaidOrdersLimitHoldsUnderConcurrency(t *testing.T) {
	a := newAPIWith(t, nil, func(d *httpapi.Deps) { d.MaxUnpaidOrders = 4 })
	a.putSKU("TEA", 1999, 1000)
	const n = 24
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, _ = a.placeAs("rush", fmt.Sprintf("k-%d", i))
		}()
	}
	wg.Wait()
	got := map[int]int{}
	for _, s := range statuses {
		got[s]++
	}
	if got[202] != 4 || got[429] != n-4 {
		t.Fatalf("statuses %v, want 4 × 202 and %d × 429", got, n-4)
	}
}

// TestNoUnpaidLimitWhenOff: MaxUnpaidOrders 0 places without a limit.
func TestNoUnpaidLimitWhenOff(t *testing.T) {
	a := newAPI(t, nil)
	a.putSKU("TEA", 1999, 1000)
	for i := range 8 {
		if status, id, _ := a.placeAs("many", fmt.Sprintf("k-%d", i)); status != 202 {
			t.Fatalf("order %d: %d %s", i, status, id)
		}
	}
}

// BenchmarkPlaceWithUnpaidLimit places and cancels orders for a customer
// who keeps 4 other orders unpaid (so each place re-reads those 4 from
// the log), with the limit on and off, on the in-memory log:
//
//	go test ./internal/httpapi -run '^$' -bench PlaceWithUnpaidLimit -benchtime 3000x
func BenchmarkPlaceWithUnpaidLimit(b *testing.B) {
	for _, limit := range []int{0, 5} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			a := newAPIWith(b, nil, func(d *httpapi.Deps) { d.MaxUnpaidOrders = limit })
			a.putSKU("TEA", 1999, 1<<40)
			for i := range 4 {
				if status, c, _ := a.placeAs("busy", fmt.Sprintf("open-%d", i)); status != 202 {
					b.Fatalf("%d %s", status, c)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				status, id, _ := a.placeAs("busy", fmt.Sprintf("b-%d", i))
				if status != 202 {
					b.Fatalf("%d %s", status, id)
				}
				b.StopTimer()
				if status, body := a.do("POST", "/v1/orders/"+id+"/cancel", "busy", auth.RoleCustomer, map[string]any{"reason": "bench"}); status != 202 {
					b.Fatalf("cancel: %d %v", status, body)
				}
				b.StartTimer()
			}
		})
	}
}
