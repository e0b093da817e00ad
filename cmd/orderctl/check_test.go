package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// appendRaw appends a commit with the given events to an aggregate of
// the stopped local default in dir, bypassing the deciders (and the
// signing key), so that a test can write a log orderd would never write.
func appendRaw(t *testing.T, dir, aggType, id, commitID, causation, actor string, evs ...events.Payload) {
	t.Helper()
	ctx := context.Background()
	unlock, err := datadir.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, nc, stop := testkit.LocalNATS(t, dir, natsauth.Admin, false)
	defer stop()
	store, err := streams.Open(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	last, ok, err := store.Last(ctx, aggType, id)
	if err != nil {
		t.Fatal(err)
	}
	c := &events.Commit{CommitID: commitID, AggregateType: aggType, AggregateID: id, Version: 1,
		Metadata: events.Metadata{CausationID: causation, CorrelationID: id, Actor: actor, RecordedAt: time.Now().UTC()}}
	var prevHash string
	var expected uint64
	if ok {
		c.Version = last.Commit.LastVersion() + 1
		prevHash, expected = last.Commit.Hash, last.Seq
	}
	for _, p := range evs {
		ev, err := reg.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		c.Events = append(c.Events, ev)
	}
	if err := c.Seal(prevHash); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, c, expected); err != nil {
		t.Fatalf("append %s %s: %v", aggType, id, err)
	}
}

// checkReport is the part of `check --json` the tests read.
type checkReport struct {
	Settled     bool           `json:"settled"`
	Checked     []string       `json:"checked"`
	Orders      map[string]int `json:"orders"`
	ByInvariant map[string]int `json:"by_invariant"`
	Violations  []struct {
		Invariant, Message string
	} `json:"violations"`
	InProgress []struct {
		Invariant, Type, ID, Status string
	} `json:"in_progress"`
	PSPSource string `json:"psp_source"`
}

// TestCheckOnALocalDefault runs a real orderd (local default, the
// simulator in manual mode) and checks its log with orderctl check: an
// order waiting for its payment is in progress, no violation, unless the
// shop is taken to be settled; once the order is cancelled the settled
// check passes, the simulator's state file compared too. A sale of stock
// for the cancelled order, appended raw to the stopped log, fails the
// check with exit 3, naming the invariant.
func TestCheckOnALocalDefault(t *testing.T) {
	dir := t.TempDir()
	p := startOrderd(t, dir, "ORDO_PSP_MODE=manual")
	env := map[string]string{"ORDO_DATA_DIR": dir}
	if code, body := p.call("PUT", "/v1/skus/TEA-250", auth.RoleAdmin, "ops",
		map[string]any{"name": "Oolong", "price": map[string]any{"amount": 1999, "currency": "CNY"}, "on_hand": 10}); code != 200 {
		t.Fatalf("put sku: %d %v", code, body)
	}
	code, body := p.call("POST", "/v1/orders", auth.RoleCustomer, "cust-1", map[string]any{
		"customer":         map[string]any{"name": "张伟", "email": "zhang.wei@example.com"},
		"lines":            []any{map[string]any{"sku": "TEA-250", "qty": 2}},
		"shipping_address": map[string]any{"name": "张伟", "line1": "1 Rd", "city": "上海", "country": "CN"},
	}, "Idempotency-Key", "k-1")
	if code != 202 {
		t.Fatalf("place: %d %v", code, body)
	}
	id := body["order_id"].(string)
	status := func(want string) func() bool {
		return func() bool {
			code, body := p.call("GET", "/v1/orders/"+id, auth.RoleAgent, "cs", nil)
			return code == 200 && body["status"] == want
		}
	}
	p.waitFor("payment_pending", status("payment_pending"))

	// A running shop: the order and its payment are in progress.
	code, out, errOut := orderctl(t, env, "check")
	if code != exitOK || !strings.Contains(out, "in progress: order "+id+" payment_pending") ||
		!strings.Contains(out, "(total 0)") || !strings.Contains(out, "PSP: the local simulator's state file") {
		t.Fatalf("check of a running shop: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("check of a running shop:\n%s", out)
	code, out, errOut = orderctl(t, env, "check", "--settled")
	if code != exitCheck || !strings.Contains(out, "order.intermediate: order "+id+" is payment_pending") ||
		!strings.Contains(out, "payment.pending: payment ") || !strings.Contains(errOut, "violation(s) of the invariants") {
		t.Fatalf("check --settled of a running shop: exit %d\n%s%s", code, out, errOut)
	}

	// Cancelled: the stock released and the intent voided by the
	// checkout, after a while.
	if code, body := p.call("POST", "/v1/orders/"+id+"/cancel", auth.RoleCustomer, "cust-1", map[string]any{"reason": "changed my mind"}); code != 202 {
		t.Fatalf("cancel: %d %v", code, body)
	}
	p.waitFor("cancelled", status("cancelled"))
	p.waitFor("a settled check", func() bool {
		code, _, _ := orderctl(t, env, "check", "--settled")
		return code == exitOK
	})
	code, out, errOut = orderctl(t, env, "check", "--settled", "--json")
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); code != exitOK || err != nil {
		t.Fatalf("check --settled --json: exit %d %v\n%s%s", code, err, out, errOut)
	}
	if !rep.Settled || len(rep.Violations) != 0 || len(rep.InProgress) != 0 || rep.Orders["cancelled"] != 1 || rep.PSPSource == "" ||
		!strings.Contains(strings.Join(rep.Checked, " "), "psp.money") || !strings.Contains(strings.Join(rep.Checked, " "), "dlq") {
		t.Fatalf("check --settled --json: %s", out)
	}
	p.stop()

	// The stopped log, with a sale for the cancelled order appended.
	appendRaw(t, dir, eventlog.TypeInventory, "TEA-250", "raw-sale", "raw-cause", "sagas:checkout",
		events.InventoryCommitted{SKU: "TEA-250", OrderID: id, Qty: 2})
	code, out, errOut = orderctl(t, env, "check")
	if code != exitCheck || !strings.Contains(out, "stock.sold_unshipped: TEA-250: 2 sold for order "+id+", which is cancelled") ||
		!strings.Contains(out, "command.causation: inventory TEA-250") {
		t.Fatalf("check of a log with a sale for a cancelled order: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("check of a log with a sale for a cancelled order:\n%s%s", out, errOut)
	code, out, _ = orderctl(t, env, "check", "--json", "--no-psp")
	rep = checkReport{}
	if err := json.Unmarshal([]byte(out), &rep); code != exitCheck || err != nil || rep.ByInvariant["stock.sold_unshipped"] != 1 ||
		rep.ByInvariant["stock.oversold"] == 0 || rep.PSPSource != "" || strings.Contains(strings.Join(rep.Checked, " "), "psp.money") {
		t.Fatalf("check --json --no-psp: exit %d %v\n%s", code, err, out)
	}
	if code, _, errOut := orderctl(t, env, "check", "extra"); code != exitUsage || !strings.Contains(errOut, "takes no arguments") {
		t.Fatalf("check extra: exit %d %q", code, errOut)
	}
}
