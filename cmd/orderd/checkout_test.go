package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
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
	var h []*events.Commit
	testkit.Eventually(ta.t, "order "+id+" to get "+typ, 30*time.Second, func() (bool, error) {
		h = ta.history(id)
		return slices.Contains(eventTypes(h), typ), fmt.Errorf("events %v", eventTypes(h))
	})
	return h
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
	// Someone who knows the intent's id but not the signed link cannot
	// pay (nor decline) it.
	bare, _, _ := strings.Cut(pr.CheckoutURL, "?")
	for _, u := range []string{bare + "/approve", bare + "/decline", bare + "/approve?exp=9999999999&sig=00"} {
		resp, err := http.Post(u, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"code":"link_`) {
			t.Fatalf("POST %s without the signed link: %d %s, want 403", u, resp.StatusCode, body)
		}
	}
	// The shopper clicks "Approve".
	resp, err = http.Post(payAction(pr.CheckoutURL, "approve"), "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 { // after the redirect back to the page
		t.Fatalf("approve: %d", resp.StatusCode)
	}
	ta.waitEvent(id, "order.paid")
}

// TestPaymentTimeoutSurvivesOrderdRestart stops the whole orderd (API,
// process managers and its embedded NATS server) after the payment
// timeout was stored and before it is due, and starts a new orderd on the
// same data dir after it is due: the new instance cancels the order,
// releases its stock and voids the intent at the PSP. Once with the PSP
// simulator running on its own (ORDO_PSP_URL), as a real provider would,
// and once with the local default's in-process simulator, which keeps its
// intents under the data dir.
func TestPaymentTimeoutSurvivesOrderdRestart(t *testing.T) {
	t.Run("external PSP", func(t *testing.T) { timeoutAcrossRestart(t, true) })
	t.Run("in-process simulator", func(t *testing.T) { timeoutAcrossRestart(t, false) })
}

func timeoutAcrossRestart(t *testing.T, external bool) {
	const secret = "psp-secret-psp-secret-psp-secret-psp!"
	var ext *pspsim.Sim
	var simURL string
	if external {
		var err error
		if ext, err = pspsim.New(pspsim.Config{Mode: pspsim.ModeManual, Secret: []byte(secret)}); err != nil {
			t.Fatal(err)
		}
		if simURL, err = ext.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ext.Close() })
	}
	dir := t.TempDir()
	cfg := func(c *config.Config) {
		c.DataDir = dir
		c.Roles = []string{"api", "sagas"}
		c.PSPURL = simURL
		if external {
			c.PSPAPIKey = ext.APIKey()
		}
		c.PSPMode = "manual"
		c.PSPWebhookSecret = secret
		c.PaymentTimeout = 3 * time.Second
	}
	provider := func(ta *testApp) *pspsim.Sim {
		if external {
			ext.SetWebhookURL(ta.base + "/v1/psp/webhook")
			return ext
		}
		return ta.pay.sim
	}
	ta := mustStart(t, cfg)
	provider(ta)
	ta.putSKU("TEA-250", 1999, 10)
	r := ta.place(ta.alice, "k-timeout", orderBody(line("TEA-250", 2)))
	if r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	id := r.body["order_id"].(string)
	h := ta.waitEvent(id, "order.payment_requested")
	pr := paymentRequested(t, h)
	due := h[len(h)-1].Metadata.RecordedAt.Add(3 * time.Second)

	js, err := jetstream.New(ta.nc)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the payment timeout to be scheduled", func() bool {
		st, err := js.Stream(context.Background(), streams.TimersStream)
		if err != nil {
			return false
		}
		_, err = st.GetLastMsgForSubject(context.Background(), "timer.sched.checkout.payment_timeout."+id)
		return err == nil
	})
	if err := ta.close(); err != nil {
		t.Fatal(err)
	}
	if time.Now().After(due) {
		t.Skip("the machine was too slow: orderd stopped after the timeout was due, the test would prove nothing")
	}
	// Nothing runs until after the timeout is due.
	time.Sleep(time.Until(due) + 500*time.Millisecond)

	ta2 := mustStart(t, cfg)
	s := provider(ta2)
	if in := intentFor(s, pr.PaymentID); in.ID == "" {
		t.Fatalf("the PSP does not know the payment's intent after the restart")
	}
	h = ta2.waitEvent(id, "order.cancelled")
	last := h[len(h)-1]
	if !strings.HasPrefix(last.Metadata.CausationID, "timer:payment_timeout:") {
		t.Fatalf("order.cancelled caused by %q, want the payment timeout timer", last.Metadata.CausationID)
	}
	waitUntil(t, "stock released and payment voided", func() bool {
		sku := ta2.do("GET", "/v1/skus/TEA-250", ta2.admin, nil)
		pay, err := ta2.store.Load(context.Background(), "payment", pr.PaymentID, 0)
		return sku.status == 200 && sku.body["reserved"] == float64(0) && err == nil &&
			slices.Contains(eventTypes(commitsOf(pay)), "payment.voided")
	})
	if in := intentFor(s, pr.PaymentID); in.Status != psp.StatusVoided {
		t.Fatalf("intent at the PSP: %+v, want voided", in)
	}
	if dls, err := ta2.store.DeadLetters(context.Background()); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters after the restart: %+v %v", dls, err)
	}
}

func commitsOf(recs []eventlog.Record) []*events.Commit {
	out := make([]*events.Commit, len(recs))
	for i, r := range recs {
		out[i] = r.Commit
	}
	return out
}

// intentFor returns the simulator's intent for a payment.
func intentFor(s *pspsim.Sim, paymentID string) psp.Intent {
	for _, in := range s.Intents() {
		if in.Reference == paymentID {
			return in
		}
	}
	return psp.Intent{}
}

// waitUntil polls cond until it holds. The deadline only bounds a hung
// test.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, what, 30*time.Second, testkit.Holds(cond))
}

// TestOrderViewCarriesCheckoutURL runs the API, the process managers and
// the projector with the simulator in manual mode: the shopper reads the
// order through GET /v1/orders/{id}, finds the hosted pay page in
// payment.checkout_url, pays there, and the same view shows the order
// paid.
func TestOrderViewCarriesCheckoutURL(t *testing.T) {
	ta := mustStart(t, func(c *config.Config) {
		c.Roles = []string{"api", "sagas", "projections"}
		c.PSPMode = "manual"
		c.PaymentTimeout = time.Minute
	})
	ta.putSKU("TEA-250", 1999, 100)
	r := ta.place(ta.alice, "k-view", orderBody(line("TEA-250", 3)))
	if r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	id := r.body["order_id"].(string)
	view := func() map[string]any {
		got := ta.do("GET", "/v1/orders/"+id, ta.alice, nil)
		if got.status != 200 && got.status != 404 { // 404 until the projector has it
			t.Fatalf("GET order: %d %s", got.status, got.raw)
		}
		return got.body
	}
	var payment map[string]any
	waitUntil(t, "the view to show the payment", func() bool {
		v := view()
		payment, _ = v["payment"].(map[string]any)
		return v["status"] == "payment_pending" && payment["checkout_url"] != nil
	})
	url, _ := payment["checkout_url"].(string)
	pr := paymentRequested(t, ta.history(id))
	if url != pr.CheckoutURL || payment["status"] != "pending" || payment["payment_id"] != pr.PaymentID {
		t.Fatalf("view payment %v, want pending %s at %s", payment, pr.PaymentID, pr.CheckoutURL)
	}
	if v := ta.do("GET", "/v1/orders/"+id, ta.bob, nil); v.status != 404 {
		t.Fatalf("another customer reads the order: %d %s", v.status, v.raw)
	}
	resp, err := http.Post(payAction(url, "approve"), "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitUntil(t, "the view to show the order paid", func() bool {
		v := view()
		p, _ := v["payment"].(map[string]any)
		return v["status"] == "paid" && p["status"] == "captured"
	})
}

// The local default's simulator comes back at the address it had, so the
// pay page an order's checkout_url names survives an orderd restart.
func TestPayPageKeepsItsAddressAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := func(c *config.Config) {
		c.DataDir = dir
		c.Roles = []string{"api", "sagas"}
		c.PSPMode = "manual"
	}
	ta := mustStart(t, cfg)
	before := ta.pay.sim.BaseURL()
	in, err := ta.pay.client.CreateIntent(t.Context(), psp.CreateIntentRequest{Reference: "pay_x", OrderID: "ord_x",
		Amount: events.Money{Amount: 100, Currency: "CNY"}}, "pay_x:create")
	if err != nil {
		t.Fatal(err)
	}
	link := in.CheckoutURL
	if err := ta.close(); err != nil {
		t.Fatal(err)
	}
	ta2 := mustStart(t, cfg)
	if after := ta2.pay.sim.BaseURL(); after != before {
		t.Fatalf("simulator at %s after the restart, was at %s", after, before)
	}
	resp, err := http.Get(before + "/healthz")
	if err != nil {
		t.Fatalf("the old address does not answer after the restart: %v", err)
	}
	resp.Body.Close()
	// A pay link signed before the restart still opens its page: the
	// link secret lives in the data dir too.
	resp, err = http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pay link signed before the restart: %d", resp.StatusCode)
	}
}

// payAction returns the URL of a button of the pay page a checkout link
// opens: the link's path and action, with the link's signed query.
func payAction(checkoutURL, action string) string {
	path, query, _ := strings.Cut(checkoutURL, "?")
	return path + "/" + action + "?" + query
}
