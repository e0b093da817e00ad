package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/ordo-shop/ordo/eventlog"
)

// TestRepeatedOutcomesOnTheServer: on a real orderd (JetStream), a
// repeated cancel, ship or deliver answers 200 with the order's current
// state and leaves the log as it was; the first answered 202; a
// conflicting one is 422 (decision 025).
func TestRepeatedOutcomesOnTheServer(t *testing.T) {
	ta := mustStart(t)
	ta.putSKU("TEA-250", 1999, 100)
	expect := func(what string, r response, status int, orderStatus string) {
		t.Helper()
		if r.status != status || (orderStatus != "" && r.body["status"] != orderStatus) {
			t.Fatalf("%s: %d %s, want %d %s", what, r.status, r.raw, status, orderStatus)
		}
	}
	same := func(what string, f func() response, orderStatus string) {
		t.Helper()
		before := ta.seqs()
		r := f()
		expect(what, r, 200, orderStatus)
		if after := ta.seqs(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("%s changed the log: %v -> %v", what, before, after)
		}
		id, _ := r.body["order_id"].(string)
		last, ok, err := ta.store.Last(context.Background(), eventlog.TypeOrder, id)
		if err != nil || !ok {
			t.Fatalf("%s: the order's last commit: %v %v", what, ok, err)
		}
		if want := fmt.Sprintf("%s:%d", last.Stream, last.Seq); r.body["position"] != want || r.body["version"] != float64(last.Commit.LastVersion()) {
			t.Fatalf("%s: position %v version %v, want the order's last commit %s v%d", what, r.body["position"], r.body["version"], want, last.Commit.LastVersion())
		}
	}

	cancelled := ta.place(ta.alice, "k1", orderBody(line("TEA-250", 1))).body["order_id"].(string)
	ta.driveToPaid(cancelled)
	first := ta.do("POST", "/v1/orders/"+cancelled+"/cancel", ta.alice, map[string]any{"reason": "changed my mind"}, "Idempotency-Key", "c1")
	expect("cancel", first, 202, "cancelled")
	for _, key := range []string{"c1", "c2", ""} {
		var h []string
		if key != "" {
			h = []string{"Idempotency-Key", key}
		}
		same("cancel again (key "+key+")", func() response { return ta.do("POST", "/v1/orders/"+cancelled+"/cancel", ta.alice, nil, h...) }, "cancelled")
	}
	again := ta.do("POST", "/v1/orders/"+cancelled+"/cancel", ta.alice, nil)
	if again.body["version"] != first.body["version"] || again.body["position"] != first.body["position"] {
		t.Fatalf("repeated cancel: %s, the first said %s", again.raw, first.raw)
	}
	before := ta.seqs()
	expect("ship after cancel", ta.do("POST", "/v1/orders/"+cancelled+"/ship", ta.admin, map[string]any{"carrier": "SF", "tracking_number": "T-1"}), 422, "")
	if after := ta.seqs(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a refused ship changed the log: %v -> %v", before, after)
	}

	shipped := ta.place(ta.alice, "k2", orderBody(line("TEA-250", 1))).body["order_id"].(string)
	ta.driveToPaid(shipped)
	ship := map[string]any{"carrier": "SF", "tracking_number": "T-2"}
	expect("ship", ta.do("POST", "/v1/orders/"+shipped+"/ship", ta.admin, ship), 202, "shipped")
	same("ship again", func() response { return ta.do("POST", "/v1/orders/"+shipped+"/ship", ta.admin, ship) }, "shipped")
	expect("ship with another number", ta.do("POST", "/v1/orders/"+shipped+"/ship", ta.admin, map[string]any{"carrier": "SF", "tracking_number": "T-3"}), 422, "")
	expect("deliver", ta.do("POST", "/v1/orders/"+shipped+"/deliver", ta.admin, nil, "Idempotency-Key", "d1"), 202, "delivered")
	same("deliver again, the same key", func() response {
		return ta.do("POST", "/v1/orders/"+shipped+"/deliver", ta.admin, nil, "Idempotency-Key", "d1")
	}, "delivered")
	same("deliver again", func() response { return ta.do("POST", "/v1/orders/"+shipped+"/deliver", ta.admin, nil) }, "delivered")
}
