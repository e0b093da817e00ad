// Package psptest is the acceptance suite every [psp.Client]
// implementation must pass, run against a real provider endpoint (the
// simulator in Ordo's own tests).
package psptest

import (
	"context"
	"errors"
	"testing"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/psp"
)

// Shopper pays or declines an intent the way the provider's shopper
// would (for the simulator: its hosted pay page).
type Shopper struct {
	Approve func(t *testing.T, in psp.Intent)
	Decline func(t *testing.T, in psp.Intent)
}

// Run runs the suite against client.
func Run(t *testing.T, client psp.Client, shopper Shopper) {
	ctx := context.Background()
	amount := events.Money{Amount: 4498, Currency: "CNY"}
	create := func(t *testing.T, ref string, key string) psp.Intent {
		t.Helper()
		in, err := client.CreateIntent(ctx, psp.CreateIntentRequest{Reference: ref, OrderID: "ord-" + ref, Amount: amount}, key)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	status := func(t *testing.T, id string) psp.Intent {
		t.Helper()
		in, err := client.Intent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}

	t.Run("create is idempotent", func(t *testing.T) {
		a := create(t, "pay-idem", "pay-idem:create")
		b := create(t, "pay-idem", "pay-idem:create")
		if a.ID == "" || a.ID != b.ID || a.Amount != amount || a.Reference != "pay-idem" || a.CheckoutURL == "" {
			t.Fatalf("two creates with one key: %+v and %+v", a, b)
		}
		if a.Status != psp.StatusRequiresPayment {
			t.Fatalf("new intent is %s", a.Status)
		}
		if _, err := client.CreateIntent(ctx, psp.CreateIntentRequest{Reference: "pay-idem", Amount: events.Money{Amount: 1, Currency: "CNY"}}, "pay-idem:create"); !errors.Is(err, psp.ErrInvalidRequest) {
			t.Fatalf("key reused with another amount: %v", err)
		}
	})
	t.Run("pay, refund", func(t *testing.T) {
		in := create(t, "pay-refund", "pay-refund:create")
		shopper.Approve(t, in)
		if got := status(t, in.ID); got.Status != psp.StatusCaptured || got.CaptureRef == "" {
			t.Fatalf("after paying: %+v", got)
		}
		if _, err := client.Refund(ctx, in.ID, psp.RefundRequest{Amount: events.Money{Amount: 1, Currency: "CNY"}}, "k"); err == nil {
			t.Fatal("partial refund accepted")
		}
		for range 2 {
			r, err := client.Refund(ctx, in.ID, psp.RefundRequest{Amount: amount}, "pay-refund:refund")
			if err != nil || r.Status != psp.StatusRefunded || r.Refunded != amount.Amount {
				t.Fatalf("refund: %+v %v", r, err)
			}
		}
		// A void after the capture does nothing and says so.
		if v, err := client.Void(ctx, in.ID, "pay-refund:void"); err != nil || v.Status != psp.StatusRefunded {
			t.Fatalf("void after refund: %+v %v", v, err)
		}
	})
	t.Run("void, then the shopper is too late", func(t *testing.T) {
		in := create(t, "pay-void", "pay-void:create")
		for range 2 {
			v, err := client.Void(ctx, in.ID, "pay-void:void")
			if err != nil || v.Status != psp.StatusVoided {
				t.Fatalf("void: %+v %v", v, err)
			}
		}
		if _, err := client.Refund(ctx, in.ID, psp.RefundRequest{Amount: amount}, "pay-void:refund"); !errors.Is(err, psp.ErrInvalidState) {
			t.Fatalf("refund of a voided intent: %v", err)
		}
	})
	t.Run("decline", func(t *testing.T) {
		in := create(t, "pay-decline", "pay-decline:create")
		shopper.Decline(t, in)
		if got := status(t, in.ID); got.Status != psp.StatusFailed || got.FailureReason == "" {
			t.Fatalf("after declining: %+v", got)
		}
	})
	t.Run("manual capture", func(t *testing.T) {
		in, err := client.CreateIntent(ctx, psp.CreateIntentRequest{Reference: "pay-manual", Amount: amount, CaptureMethod: "manual"}, "pay-manual:create")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Capture(ctx, in.ID, "pay-manual:capture"); !errors.Is(err, psp.ErrInvalidState) {
			t.Fatalf("capture before authorization: %v", err)
		}
		shopper.Approve(t, in)
		if got := status(t, in.ID); got.Status != psp.StatusAuthorized {
			t.Fatalf("after paying: %s, want authorized", got.Status)
		}
		c, err := client.Capture(ctx, in.ID, "pay-manual:capture")
		if err != nil || c.Status != psp.StatusCaptured {
			t.Fatalf("capture: %+v %v", c, err)
		}
	})
	t.Run("unknown intent", func(t *testing.T) {
		if _, err := client.Intent(ctx, "pi_unknown"); !errors.Is(err, psp.ErrNotFound) {
			t.Fatalf("status of an unknown intent: %v", err)
		}
	})
}
