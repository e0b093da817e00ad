package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/process"
	"github.com/ordo-shop/ordo/sagas"
	"github.com/ordo-shop/ordo/streams"
)

// brokenPM fails on every commit until it is fixed.
type brokenPM struct {
	broken  atomic.Bool
	handled atomic.Int32
}

func (b *brokenPM) Name() string      { return "audit" }
func (b *brokenPM) Sources() []string { return []string{eventlog.TypeOrder} }
func (b *brokenPM) Handle(context.Context, process.Message) error {
	if b.broken.Load() {
		return errors.New("audit sink unavailable")
	}
	b.handled.Add(1)
	return nil
}

// waitUntil polls cond until it holds. The bound only ends a hung test.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, what, 30*time.Second, testkit.Holds(cond))
}

// TestDLQListAndRetry runs a process manager that always fails inside a
// live local default, lists its dead letter with orderctl, fixes it and
// re-drives the dead letter with `orderctl dlq retry`.
func TestDLQListAndRetry(t *testing.T) {
	dir := t.TempDir()
	unlock, err := datadir.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	ns, nc, stop := testkit.LocalNATS(t, dir, natsauth.Admin, true)
	t.Cleanup(func() { stop(); unlock() })
	if err := datadir.WriteFile(dir, datadir.NATSURL, []byte(ns.ClientURL()+"\n")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := testkit.OpenLog(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ORDO_DATA_DIR": dir}
	if code, out, errOut := orderctl(t, env, "dlq", "list"); code != 0 || !strings.Contains(out, "no dead letters") {
		t.Fatalf("dlq list before any process manager ran: exit %d %q %q", code, out, errOut)
	}

	pm := &brokenPM{}
	pm.broken.Store(true)
	rt, err := sagas.NewRuntime(store, reg, sagas.Options{MaxRetries: 2, RetryInitial: 10 * time.Millisecond}, pm)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	h, err := command.NewHandler(order.Decider(), store, reg, command.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, command.Request[order.Command]{AggregateID: "ord_dlq", Command: order.Place{
		OrderID: "ord_dlq", CustomerID: "c", Customer: events.Customer{Name: "A", Email: "a@example.com"},
		Lines:           []events.OrderLine{{SKU: "TEA", Qty: 1, UnitPrice: events.Money{Amount: 1, Currency: "CNY"}}},
		ShippingAddress: events.Address{Line1: "1 Rd", City: "X", Country: "CN"}, RequestHash: "h",
	}}); err != nil {
		t.Fatal(err)
	}

	waitUntil(t, "the dead letter", func() bool {
		dls, err := store.DeadLetters(ctx)
		return err == nil && len(dls) == 1
	})
	code, out, errOut := orderctl(t, env, "dlq", "list")
	if code != 0 {
		t.Fatalf("dlq list: exit %d %s", code, errOut)
	}
	for _, want := range []string{"ID", "audit", "audit.orders", "ORDERS:1", "order.", "3", "audit sink unavailable"} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq list lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = orderctl(t, env, "dlq", "list", "--json")
	if code != 0 || !strings.Contains(out, `"data":{"commit_id"`) || !strings.Contains(out, `"attempts":3`) {
		t.Fatalf("dlq list --json: exit %d %s", code, out)
	}
	dls, _ := store.DeadLetters(ctx)
	id := dls[0].ID

	// Bad arguments and unknown ids: a one-line error on stderr, nothing
	// on stdout, a non-zero exit (2 for a usage mistake, 1 for an id
	// that names no dead letter), and the DLQ unchanged.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dlq"}, 2, "want a subcommand"},
		{[]string{"dlq", "frob"}, 2, "unknown dlq subcommand"},
		{[]string{"dlq", "list", "extra"}, 2, "takes no arguments"},
		{[]string{"dlq", "refused", "extra"}, 2, "takes no arguments"},
		{[]string{"dlq", "retry"}, 2, "want dlq retry <id>"},
		{[]string{"dlq", "retry", "1", "2"}, 2, "want dlq retry <id>"},
		{[]string{"dlq", "retry", "x"}, 2, "not a positive integer"},
		{[]string{"dlq", "retry", "0"}, 2, "not a positive integer"},
		{[]string{"dlq", "retry", "1.5"}, 2, "not a positive integer"},
		{[]string{"dlq", "retry", "18446744073709551616"}, 2, "not a positive integer"},
		{[]string{"dlq", "retry", "--", "-1"}, 2, "not a positive integer"},
		{[]string{"dlq", "retry", "999"}, 1, "no dead letter 999"},
		{[]string{"dlq", "retry", strconv.FormatUint(id, 10), "--bogus"}, 2, "bogus"},
	} {
		code, out, errOut := orderctl(t, env, c.args...)
		if code != c.code || out != "" || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("orderctl %v: exit %d, stdout %q, stderr %q; want exit %d and one line with %q", c.args, code, out, errOut, c.code, c.want)
		}
	}
	if dls, err := store.DeadLetters(ctx); err != nil || len(dls) != 1 || dls[0].ID != id {
		t.Fatalf("bad retries changed the DLQ: %+v %v", dls, err)
	}

	// A refused PSP report is listed by `dlq refused`, not by `dlq list`,
	// and cannot be retried.
	if code, out, _ := orderctl(t, env, "dlq", "refused"); code != 0 || !strings.Contains(out, "no refused reports") {
		t.Fatalf("dlq refused before any refusal: exit %d %q", code, out)
	}
	rid, err := store.AddRefusedReport(ctx, eventlog.RefusedReport{
		Source: "psp", Cause: "psp-event:evt_1", AggregateType: "payment", AggregateID: "pay_1",
		Report: []byte(`{"id":"pi_1","amount":{"amount":1,"currency":"CNY"}}`), Reason: "intent does not match the payment", RefusedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = orderctl(t, env, "dlq", "refused")
	if code != 0 || !strings.Contains(out, "psp-event:evt_1") || !strings.Contains(out, "payment pay_1") || !strings.Contains(out, "intent does not match") {
		t.Fatalf("dlq refused: exit %d %q %q", code, out, errOut)
	}
	if code, out, _ := orderctl(t, env, "dlq", "refused", "--json"); code != 0 || !strings.Contains(out, `"report":{"id":"pi_1"`) {
		t.Fatalf("dlq refused --json: exit %d %q", code, out)
	}
	if _, out, _ := orderctl(t, env, "dlq", "list"); strings.Contains(out, "evt_1") {
		t.Fatalf("dlq list shows a refused report:\n%s", out)
	}
	if code, _, errOut := orderctl(t, env, "dlq", "retry", strconv.FormatUint(rid, 10)); code != 1 || !strings.Contains(errOut, "no dead letter") {
		t.Fatalf("retry of a refused report: exit %d %q", code, errOut)
	}

	pm.broken.Store(false) // fixed
	code, out, errOut = orderctl(t, env, "dlq", "retry", strconv.FormatUint(id, 10))
	if code != 0 || !strings.Contains(out, "sent back to audit") {
		t.Fatalf("dlq retry: exit %d %q %q", code, out, errOut)
	}
	waitUntil(t, "the re-driven message to be handled", func() bool { return pm.handled.Load() == 1 })
	waitUntil(t, "the dead letter to be removed", func() bool {
		_, out, _ := orderctl(t, env, "dlq", "list")
		return strings.Contains(out, "no dead letters")
	})
}
