package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/testkit"
)

// appendPlaced stores an order.placed commit straight in the log, past
// the API's and the deciders' checks: history written before they
// existed.
func (ta *testApp) appendPlaced(id string, customer events.Customer) {
	ta.t.Helper()
	reg, err := events.Standard()
	if err != nil {
		ta.t.Fatal(err)
	}
	ev, err := reg.Encode(events.OrderPlaced{
		OrderID: id, CustomerID: "cust-alice", Customer: customer,
		Lines: []events.OrderLine{{SKU: "TEA-250", Qty: 1, UnitPrice: events.Money{Amount: 1999, Currency: "CNY"}, Amount: events.Money{Amount: 1999, Currency: "CNY"}}},
		Total: events.Money{Amount: 1999, Currency: "CNY"}, ShippingAddress: events.Address{Name: customer.Name, Line1: "1 Road", City: "Town", Country: "CN"},
	})
	if err != nil {
		ta.t.Fatal(err)
	}
	c := &events.Commit{CommitID: "old-" + id, AggregateType: eventlog.TypeOrder, AggregateID: id, Version: 1,
		Events: []events.Event{ev}, Metadata: events.Metadata{RecordedAt: time.Now().UTC(), Actor: "customer:cust-alice"}}
	if err := c.Seal(""); err != nil {
		ta.t.Fatal(err)
	}
	if _, err := ta.store.Append(context.Background(), c, 0); err != nil {
		ta.t.Fatal(err)
	}
}

// publishGarbage stores bytes that are no commit under order id's
// subject, as a client with NATS credentials that may publish there
// could, and returns the stream sequence.
func (ta *testApp) publishGarbage(id string) uint64 {
	ta.t.Helper()
	js, err := jetstream.New(ta.nc)
	if err != nil {
		ta.t.Fatal(err)
	}
	subj, err := ta.store.Subject(eventlog.TypeOrder, id)
	if err != nil {
		ta.t.Fatal(err)
	}
	ack, err := js.Publish(context.Background(), subj, []byte("\x00\x01 \xff\xfe garbage {"))
	if err != nil {
		ta.t.Fatal(err)
	}
	return ack.Sequence
}

// TestPoisonMessageIsQuarantined is the read model's side of "no input
// can stop Ordo": history with a NUL in it is stored (as U+FFFD); garbage
// published straight to ORDERS, under an existing order's subject and
// under a new one, is set aside within seconds while every other order
// stays queryable (?position= too); the orders concerned say they are
// degraded; /readyz stays 200 and names the quarantine until an operator
// acknowledges it, and orderctl lists, retries and acknowledges it.
func TestPoisonMessageIsQuarantined(t *testing.T) {
	bin := buildOrderctl(t)
	ta := mustStart(t, withProjector)
	env := []string{"ORDO_DATA_DIR=" + ta.cfg.DataDir, "ORDO_POSTGRES_URL=" + ta.cfg.PostgresURL}
	ta.putSKU("TEA-250", 1999, 100)
	a := ta.place(ta.alice, "a", orderBody(line("TEA-250", 1)))
	b := ta.place(ta.alice, "b", orderBody(line("TEA-250", 1)))
	if a.status != 202 || b.status != 202 {
		t.Fatalf("place: %d %s / %d %s", a.status, a.raw, b.status, b.raw)
	}
	idA, idB := a.body["order_id"].(string), b.body["order_id"].(string)
	ta.appendPlaced("ord_withnul", events.Customer{Name: "Zh\x00ang", Email: "z\x00@example.com"})
	garbageA := ta.publishGarbage(idA)
	garbageNew := ta.publishGarbage("ord_onlygarbage")
	c := ta.place(ta.alice, "c", orderBody(line("TEA-250", 2)))
	if c.status != 202 {
		t.Fatalf("place after the garbage: %d %s", c.status, c.raw)
	}
	idC := c.body["order_id"].(string)

	// Orders after the garbage, in its partition or not, are read back.
	for _, read := range []string{"/v1/orders/" + idC + "?position=" + c.body["position"].(string), "/v1/orders/" + idB,
		"/v1/customers/cust-alice/orders?position=" + c.body["position"].(string)} {
		if r := ta.do("GET", read, ta.alice, nil); r.status != 200 {
			t.Fatalf("GET %s: %d %s", read, r.status, r.raw)
		}
	}
	open := func() []any {
		r := ta.do("GET", "/v1/projections", ta.admin, nil)
		if r.status != 200 {
			t.Fatalf("GET /v1/projections: %d %s", r.status, r.raw)
		}
		p := r.body["projections"].([]any)[0].(map[string]any)
		return p["quarantine"].([]any)
	}
	testkit.Eventually(t, "two commits to be quarantined", time.Minute, func() (bool, error) {
		q := open()
		return len(q) >= 2, fmt.Errorf("quarantined: %v", q)
	})
	got := map[uint64]string{}
	for _, q := range open() {
		q := q.(map[string]any)
		got[uint64(q["seq"].(float64))] = q["aggregate_id"].(string)
		if q["state"] != "open" || q["attempts"].(float64) < 1 || q["error"] == "" {
			t.Errorf("quarantined: %v", q)
		}
	}
	if len(got) != 2 || got[garbageA] != idA || got[garbageNew] != "ord_onlygarbage" {
		t.Fatalf("quarantined %v, want seq %d of %s and seq %d of ord_onlygarbage", got, garbageA, idA, garbageNew)
	}

	// The stored NUL is shown as U+FFFD; the orders concerned say so.
	if r := ta.do("GET", "/v1/orders/ord_withnul", ta.admin, nil); r.status != 200 || r.body["customer"].(map[string]any)["name"] != "Zh\uFFFDang" {
		t.Errorf("order with a NUL in its history: %d %s", r.status, r.raw)
	}
	if r := ta.do("GET", "/v1/orders/"+idA, ta.alice, nil); r.status != 200 || r.body["degraded"] == nil || r.body["status"] != "placed" {
		t.Errorf("order with garbage under its subject: %d %s", r.status, r.raw)
	}
	if r := ta.do("GET", "/v1/orders/"+idB, ta.alice, nil); r.body["degraded"] != nil {
		t.Errorf("a healthy order says degraded: %s", r.raw)
	}
	if r := ta.do("GET", "/v1/orders/ord_onlygarbage", ta.admin, nil); r.status != 503 || r.code() != "order_degraded" {
		t.Errorf("an order the read model has only garbage of: %d %s", r.status, r.raw)
	}

	ready := ta.do("GET", "/readyz", "", nil)
	if ready.status != 200 || ready.body["status"] != "degraded" || !strings.Contains(string(ready.raw), `"projection:order_status"`) ||
		!strings.Contains(string(ready.raw), `"seq":`+strconv.FormatUint(garbageA, 10)) {
		t.Fatalf("readyz with a quarantine: %d %s", ready.status, ready.raw)
	}
	if m := ta.metrics(); !strings.Contains(string(m.raw), `ordo_projection_quarantined_commits{projection="order_status",state="open"} 2`) {
		t.Errorf("metrics do not count the quarantine:\n%s", m.raw)
	}
	code, out, errOut := runOrderctl(t, bin, env, "projections", "status")
	if code != 0 || !strings.Contains(out, "2 open") || !strings.Contains(out, idA) {
		t.Fatalf("orderctl projections status: exit %d\n%s\n%s", code, out, errOut)
	}
	// Garbage stays garbage: retry names both as still failing.
	code, out, errOut = runOrderctl(t, bin, env, "projections", "retry", "order_status")
	if code != 3 || strings.Count(out, "still fails") != 2 {
		t.Fatalf("orderctl projections retry: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, seq := range []uint64{garbageA, garbageNew} {
		code, out, errOut = runOrderctl(t, bin, env, "projections", "ack", "order_status", strconv.FormatUint(seq, 10), "--note", "published by hand, not a commit")
		if code != 0 || !strings.Contains(out, "acknowledged") {
			t.Fatalf("orderctl projections ack %d: exit %d\n%s\n%s", seq, code, out, errOut)
		}
	}
	if code, _, errOut = runOrderctl(t, bin, env, "projections", "ack", "order_status", strconv.FormatUint(garbageA, 10)); code != 0 {
		t.Errorf("acknowledging twice: exit %d %s", code, errOut)
	}
	if code, _, _ = runOrderctl(t, bin, env, "projections", "ack", "order_status", "999999"); code != 1 {
		t.Errorf("acknowledging a commit that is not quarantined: exit %d", code)
	}
	if code, _, _ = runOrderctl(t, bin, env, "projections", "ack", "order_status", "x1"); code != 2 {
		t.Errorf("ack with a bad sequence: exit %d", code)
	}
	if r := ta.do("GET", "/readyz", "", nil); r.status != 200 || r.body["status"] != "ready" {
		t.Errorf("readyz once acknowledged: %d %s", r.status, r.raw)
	}
	if r := ta.do("GET", "/v1/orders/"+idA, ta.alice, nil); r.status != 200 || r.body["degraded"] == nil {
		t.Errorf("an acknowledged order must stay degraded: %d %s", r.status, r.raw)
	}
	// The read model goes on applying new commits.
	cancel := ta.do("POST", "/v1/orders/"+idB+"/cancel", ta.alice, map[string]any{"reason": "test"})
	if cancel.status != 202 {
		t.Fatalf("cancel: %d %s", cancel.status, cancel.raw)
	}
	r := ta.do("GET", "/v1/orders/"+idB+"?position="+cancel.body["position"].(string), ta.alice, nil)
	if r.status != 200 || r.body["status"] != "cancelled" {
		t.Errorf("a commit after the quarantine: %d %s", r.status, r.raw)
	}
	code, out, errOut = runOrderctl(t, bin, env, "reconcile", "--no-search")
	if code != 0 || !strings.Contains(out, "no drift") || !strings.Contains(out, "2 quarantined commit(s) skipped") {
		t.Errorf("orderctl reconcile with a quarantine: exit %d\n%s\n%s", code, out, errOut)
	}
	var st struct {
		Quarantine []json.RawMessage `json:"quarantine"`
		Open       int               `json:"open_quarantines"`
	}
	code, out, _ = runOrderctl(t, bin, env, "projections", "status", "--json")
	if code != 0 || json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &st) != nil || len(st.Quarantine) != 2 || st.Open != 0 {
		t.Errorf("status --json after acknowledging: exit %d %s", code, out)
	}
}
