package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/config"
)

// withSagas runs the process managers and the in-process PSP simulator,
// as the local default does.
func withSagas(mode string) func(*config.Config) {
	return func(c *config.Config) {
		c.Roles = []string{"api", "sagas"}
		c.PSPMode = mode
		c.PaymentTimeout = 30 * time.Second
	}
}

// waitEvent waits until the order's history holds an event of type typ
// and returns the history. The deadline only bounds a hung test.
func (ta *testApp) waitEvent(id, typ string) []*events.Commit {
	ta.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h := ta.history(id)
		if slices.Contains(eventTypes(h), typ) {
			return h
		}
		if time.Now().After(deadline) {
			ta.t.Fatalf("order %s never got %s; events %v", id, typ, eventTypes(h))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func paymentRequested(t *testing.T, h []*events.Commit) events.OrderPaymentRequested {
	t.Helper()
	for _, c := range h {
		for _, e := range c.Events {
			if e.Type == "order.payment_requested" {
				var p events.OrderPaymentRequested
				if err := json.Unmarshal(e.Data, &p); err != nil {
					t.Fatal(err)
				}
				return p
			}
		}
	}
	t.Fatal("no order.payment_requested")
	return events.OrderPaymentRequested{}
}

func TestPlacedOrderReachesPaidByItself(t *testing.T) {
	ta := mustStart(t, withSagas("auto"))
	ta.putSKU("TEA-250", 1999, 100)
	ta.putSKU("CUP-1", 500, 10)
	r := ta.place(ta.alice, "k-paid", orderBody(line("TEA-250", 2), line("CUP-1", 1)))
	if r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	id := r.body["order_id"].(string)

	h := ta.waitEvent(id, "order.paid")
	want := []string{"order.placed", "order.stock_reserved", "order.payment_requested", "order.paid"}
	if got := eventTypes(h); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	pr := paymentRequested(t, h)
	if pr.Amount != (events.Money{Amount: 2*1999 + 500, Currency: "CNY"}) || !strings.HasPrefix(pr.CheckoutURL, "http://127.0.0.1:") {
		t.Fatalf("payment requested %+v: want the server-computed total and the simulator's pay page", pr)
	}
	// The order's checkout URL is the simulator's hosted pay page.
	resp, err := http.Get(pr.CheckoutURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "captured") {
		t.Fatalf("pay page: %d %s", resp.StatusCode, page)
	}
	pay, err := ta.store.Load(context.Background(), "payment", pr.PaymentID, 0)
	if err != nil || len(pay) != 2 || pay[1].Commit.Events[0].Type != "payment.captured" {
		t.Fatalf("payment history %v %v: want requested and captured", pay, err)
	}
}

func TestPayPageApprovalPaysTheOrder(t *testing.T) {
	ta := mustStart(t, withSagas("manual"))
	ta.putSKU("TEA-250", 1999, 100)
	r := ta.place(ta.alice, "k-manual", orderBody(line("TEA-250", 1)))
	if r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	id := r.body["order_id"].(string)
	pr := paymentRequested(t, ta.waitEvent(id, "order.payment_requested"))

	resp, err := http.Get(pr.CheckoutURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "requires_payment") || !strings.Contains(string(page), "/approve") {
		t.Fatalf("pay page before paying: %s", page)
	}
	if slices.Contains(eventTypes(ta.history(id)), "order.paid") {
		t.Fatal("manual mode paid without a click")
	}
	// The shopper clicks "Approve".
	resp, err = http.Post(pr.CheckoutURL+"/approve", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 { // after the redirect back to the page
		t.Fatalf("approve: %d", resp.StatusCode)
	}
	ta.waitEvent(id, "order.paid")
}
