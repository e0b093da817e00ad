package httpapi_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/command"
)

// placePaid places an order of c-1 and moves it to paid with the
// commands the checkout sends.
func (a *api) placePaid(key string) string {
	a.t.Helper()
	status, body := a.do("POST", "/v1/orders", "c-1", auth.RoleCustomer, orderBody, "Idempotency-Key", key)
	if status != 202 {
		a.t.Fatalf("place: %d %v", status, body)
	}
	id := body["order_id"].(string)
	total := a.state(id).Total
	for _, cmd := range []order.Command{
		order.MarkStockReserved{},
		order.RequestPayment{PaymentID: "pay_" + id, Amount: total, CheckoutURL: "http://psp.invalid/pay/" + id},
		order.MarkPaid{PaymentID: "pay_" + id, Amount: total},
	} {
		a.command(id, cmd)
	}
	return id
}

func (a *api) command(id string, cmd order.Command) {
	a.t.Helper()
	if _, err := a.orders.Handle(context.Background(), command.Request[order.Command]{AggregateID: id, Command: cmd}); err != nil {
		a.t.Fatalf("%T: %v", cmd, err)
	}
}

func (a *api) state(id string) order.State {
	a.t.Helper()
	res, err := a.orders.State(context.Background(), id, command.Current)
	if err != nil {
		a.t.Fatal(err)
	}
	return res.State
}

// last returns the sequence of the order's last commit in the log.
func (a *api) last(id string) uint64 {
	a.t.Helper()
	r, ok, err := a.log.Last(context.Background(), eventlog.TypeOrder, id)
	if err != nil || !ok {
		a.t.Fatalf("last commit of %s: %v %v", id, ok, err)
	}
	return r.Seq
}

// TestRepeatedOutcomesAnswer200: a cancel, ship or deliver whose outcome
// is already there answers 200 with the order's current status, version
// and position, with or without an Idempotency-Key, and appends nothing;
// the request that made the outcome answered 202; a conflicting one is
// 422 (decision 025).
func TestRepeatedOutcomesAnswer200(t *testing.T) {
	a := newAPI(t, nil)
	a.putSKU("TEA", 1999, 50)
	ship := map[string]any{"carrier": "SF", "tracking_number": "SF1"}
	type step struct {
		name, path, sub string
		role            auth.Role
		body            map[string]any
		key             string
		status          int
		code            string // error code, for a refusal
		orderStatus     order.Status
	}
	run := func(t *testing.T, id string, steps []step) {
		t.Helper()
		var prev map[string]any
		for _, s := range steps {
			before := a.last(id)
			var header []string
			if s.key != "" {
				header = []string{"Idempotency-Key", s.key}
			}
			status, body := a.do("POST", "/v1/orders/"+id+s.path, s.sub, s.role, s.body, header...)
			after := a.last(id)
			if status != s.status || code(body) != s.code {
				t.Fatalf("%s: %d %v, want %d %s", s.name, status, body, s.status, s.code)
			}
			switch status {
			case 202:
				if after <= before {
					t.Fatalf("%s: 202 but the order's last commit stayed at %d", s.name, after)
				}
				prev = body
			default:
				if after != before {
					t.Fatalf("%s: %d appended (last commit %d -> %d)", s.name, status, before, after)
				}
			}
			if status == 200 {
				if body["status"] != string(s.orderStatus) || body["order_id"] != id || body["position"] != fmt.Sprintf("ORDERS:%d", after) {
					t.Fatalf("%s: 200 body %v, want status %s at ORDERS:%d", s.name, body, s.orderStatus, after)
				}
				if v := uint64(body["version"].(float64)); prev != nil && prev["status"] == body["status"] && v != uint64(prev["version"].(float64)) {
					t.Fatalf("%s: version %d, the 202 said %v", s.name, v, prev["version"])
				}
			}
			if status == 202 && body["status"] != string(s.orderStatus) {
				t.Fatalf("%s: 202 body %v, want status %s", s.name, body, s.orderStatus)
			}
		}
	}

	t.Run("cancel", func(t *testing.T) {
		id := a.placePaid("k-cancel")
		run(t, id, []step{
			{"cancel", "/cancel", "c-1", auth.RoleCustomer, map[string]any{"reason": "changed my mind"}, "c-1", 202, "", order.StatusCancelled},
			{"the same key again", "/cancel", "c-1", auth.RoleCustomer, map[string]any{"reason": "changed my mind"}, "c-1", 200, "", order.StatusCancelled},
			{"without a key", "/cancel", "c-1", auth.RoleCustomer, nil, "", 200, "", order.StatusCancelled},
			{"another key, another reason, an agent", "/cancel", "cs-1", auth.RoleAgent, map[string]any{"reason": "asked by phone"}, "c-2", 200, "", order.StatusCancelled},
			{"ship after cancel", "/ship", "ops", auth.RoleAdmin, ship, "", 422, "order_not_shippable", ""},
			{"deliver after cancel", "/deliver", "ops", auth.RoleAdmin, nil, "", 422, "invalid_transition", ""},
		})
		// The provider refunds it: a cancel is still already so.
		st := a.state(id)
		a.command(id, order.MarkRefunded{PaymentID: st.PaymentID, Amount: st.Total})
		run(t, id, []step{
			{"cancel after the refund", "/cancel", "c-1", auth.RoleCustomer, nil, "", 200, "", order.StatusRefunded},
			{"cancel after the refund, with a key", "/cancel", "c-1", auth.RoleCustomer, nil, "c-3", 200, "", order.StatusRefunded},
		})
	})

	t.Run("refunded without a cancel", func(t *testing.T) {
		id := a.placePaid("k-refund")
		st := a.state(id)
		a.command(id, order.MarkRefunded{PaymentID: st.PaymentID, Amount: st.Total})
		run(t, id, []step{
			{"cancel", "/cancel", "c-1", auth.RoleCustomer, nil, "", 200, "", order.StatusRefunded},
		})
	})

	t.Run("ship and deliver", func(t *testing.T) {
		id := a.placePaid("k-ship")
		run(t, id, []step{
			{"ship", "/ship", "ops", auth.RoleAdmin, ship, "s-1", 202, "", order.StatusShipped},
			{"ship, the same key", "/ship", "ops", auth.RoleAdmin, ship, "s-1", 200, "", order.StatusShipped},
			{"ship, same tracking, no key", "/ship", "ops", auth.RoleAdmin, ship, "", 200, "", order.StatusShipped},
			{"ship, other tracking", "/ship", "ops", auth.RoleAdmin, map[string]any{"carrier": "SF", "tracking_number": "SF2"}, "", 422, "order_already_shipped", ""},
			{"ship, other carrier", "/ship", "ops", auth.RoleAdmin, map[string]any{"carrier": "EMS", "tracking_number": "SF1"}, "s-2", 422, "order_already_shipped", ""},
			{"cancel a shipped order", "/cancel", "c-1", auth.RoleCustomer, nil, "", 422, "order_already_shipped", ""},
			{"deliver", "/deliver", "ops", auth.RoleAdmin, nil, "", 202, "", order.StatusDelivered},
			{"deliver again", "/deliver", "ops", auth.RoleAdmin, nil, "", 200, "", order.StatusDelivered},
			{"deliver again, with a key", "/deliver", "ops", auth.RoleAdmin, nil, "d-1", 200, "", order.StatusDelivered},
			{"ship a delivered order, same tracking", "/ship", "ops", auth.RoleAdmin, ship, "", 200, "", order.StatusDelivered},
			{"ship a delivered order, other tracking", "/ship", "ops", auth.RoleAdmin, map[string]any{"carrier": "SF", "tracking_number": "SF3"}, "", 422, "order_already_shipped", ""},
			{"cancel a delivered order", "/cancel", "c-1", auth.RoleCustomer, nil, "", 422, "order_already_shipped", ""},
		})
	})
}
