package config

import (
	"strings"
	"testing"
	"time"
)

func TestPaymentSettings(t *testing.T) {
	d := Default()
	if d.PaymentTimeout != 15*time.Minute || d.PSPMode != "auto" || d.PSPURL != "" || !d.HasRole("sagas") || !d.HasRole("api") {
		t.Fatalf("defaults: %+v", d)
	}
	env := map[string]string{
		"ORDO_PAYMENT_TIMEOUT": "3s", "ORDO_PSP_MODE": "manual", "ORDO_PSP_FAULTS": "decline=0.5,loss=0.1",
		"ORDO_PSP_RECONCILE_AFTER": "1s", "ORDO_ROLES": "sagas",
	}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.PaymentTimeout != 3*time.Second || c.PSPMode != "manual" || c.PSPFaults != "decline=0.5,loss=0.1" || c.PSPReconcileAfter != time.Second {
		t.Fatalf("from env: %+v", c)
	}
	bad := Default()
	bad.PSPMode = "lenient"
	bad.PSPFaults = "decline=7"
	bad.PaymentTimeout = 0
	bad.PSPWebhookSecret = "short"
	err = bad.Validate()
	for _, want := range []string{"psp mode", "decline", "payment timeout", "ORDO_PSP_WEBHOOK_SECRET"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

func TestCheckoutSettings(t *testing.T) {
	d := Default()
	if d.CheckoutWorkers != 32 || d.CheckoutMaxBacklog != 300 {
		t.Fatalf("defaults: workers %d, max backlog %d", d.CheckoutWorkers, d.CheckoutMaxBacklog)
	}
	env := map[string]string{"ORDO_CHECKOUT_WORKERS": "8", "ORDO_CHECKOUT_MAX_BACKLOG": "0"}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.CheckoutWorkers != 8 || c.CheckoutMaxBacklog != 0 {
		t.Fatalf("from env: workers %d, max backlog %d", c.CheckoutWorkers, c.CheckoutMaxBacklog)
	}
	bad := Default()
	bad.CheckoutWorkers = 0
	bad.CheckoutMaxBacklog = -1
	err = bad.Validate()
	for _, want := range []string{"checkout workers", "checkout max backlog"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if _, err := FromEnv(func(k string) string {
		if k == "ORDO_CHECKOUT_MAX_BACKLOG" {
			return "lots"
		}
		return ""
	}); err == nil {
		t.Fatal("ORDO_CHECKOUT_MAX_BACKLOG=lots accepted")
	}
}
