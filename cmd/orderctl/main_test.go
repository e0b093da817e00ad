package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

const testSecret = "test-secret-test-secret-test-secret!"

func orderctl(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

// seedDataDir writes one order with three commits into a local default's
// data dir the way orderd does (a new log, every commit signed with the
// data dir's key, whose public key is in the data dir's keyring), and
// leaves the store stopped. With live, the server keeps running as a
// live orderd would, holding the lock and advertising nats.url.
func seedDataDir(t *testing.T, live bool) (dir, orderID string) {
	t.Helper()
	dir = t.TempDir()
	unlock, err := datadir.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	ns, nc, stop := testkit.LocalNATS(t, dir, natsauth.Admin, live)
	ctx := context.Background()
	store, err := testkit.OpenLog(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := signedHandler(t, store, localSigner(t, dir))
	orderID = "ord_test1"
	price := events.Money{Amount: 1999, Currency: "CNY"}
	for i, cmd := range []order.Command{
		order.Place{OrderID: orderID, CustomerID: "cust-1", Customer: events.Customer{Name: "张伟", Email: "z@example.com"},
			Lines:           []events.OrderLine{{SKU: "TEA-250", Qty: 2, UnitPrice: price}},
			ShippingAddress: events.Address{Name: "张伟", Line1: "1 Rd", City: "上海", Country: "CN"}, IdempotencyKey: "k", RequestHash: "h"},
		order.MarkStockReserved{},
		order.Cancel{Reason: "changed my mind", By: "customer"},
	} {
		_, err := h.Handle(ctx, command.Request[order.Command]{AggregateID: orderID, Command: cmd,
			Metadata: events.Metadata{Actor: "customer:cust-1", CorrelationID: "corr-" + string(rune('a'+i))}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if live {
		if err := datadir.WriteFile(dir, datadir.NATSURL, []byte(ns.ClientURL()+"\n")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stop(); unlock() })
		return dir, orderID
	}
	stop()
	unlock()
	return dir, orderID
}

func TestHistoryOfAStoppedLocalDefault(t *testing.T) {
	dir, id := seedDataDir(t, false)
	env := map[string]string{"ORDO_DATA_DIR": dir}

	code, out, errOut := orderctl(t, env, "history", "order", id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"order.placed", "order.stock_reserved", "order.cancelled", "customer:cust-1", "hash chain: verified (3 commits", "张伟"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// Flags after the positional arguments, and --json.
	code, out, errOut = orderctl(t, nil, "history", "order", id, "--json", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := jsonLines(t, out)
	if len(lines) != 3 {
		t.Fatalf("%d JSON lines, want 3:\n%s", len(lines), out)
	}
	first := lines[0]
	evs := first["events"].([]any)
	ev := evs[0].(map[string]any)
	if ev["type"] != "order.placed" || first["chain_ok"] != true || first["version"] != float64(1) {
		t.Fatalf("first line %v", first)
	}
	if _, isObject := ev["data"].(map[string]any); !isObject {
		t.Fatalf("event data is not a JSON object: %v", ev["data"])
	}
	if lines[2]["version"] != float64(3) || lines[2]["prev_hash"] != lines[1]["hash"] {
		t.Fatalf("chain fields: %v", lines[2])
	}
}

func TestHistoryThroughALiveOrderd(t *testing.T) {
	dir, id := seedDataDir(t, true)
	code, out, errOut := orderctl(t, map[string]string{"ORDO_DATA_DIR": dir}, "--json", "history", "order", id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Fatalf("%d lines through the live server:\n%s", n, out)
	}
}

func TestBadArgumentsGiveOneLineAndExit2(t *testing.T) {
	dir, _ := seedDataDir(t, false)
	env := map[string]string{"ORDO_DATA_DIR": dir}
	for _, args := range [][]string{
		{"history", "basket", "x"},
		{"history", "order"},
		{"history", "order", "a.b"},
		{"history", "order", "x", "--bogus"},
		{"frobnicate"},
		{"token", "--role", "root", "--sub", "a"},
		{"token", "--role", "admin"},
	} {
		code, _, errOut := orderctl(t, env, args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errOut)
		}
		if strings.Count(strings.TrimSpace(errOut), "\n") != 0 || errOut == "" {
			t.Errorf("%v: want one line of error, got %q", args, errOut)
		}
	}
	code, _, errOut := orderctl(t, env, "history", "order", "ord_missing")
	if code != exitError || !strings.Contains(errOut, "no commits") {
		t.Fatalf("unknown id: exit %d %q", code, errOut)
	}
	code, _, errOut = orderctl(t, map[string]string{"ORDO_DATA_DIR": t.TempDir()}, "history", "order", "x")
	if code != exitError || !strings.Contains(errOut, "no Ordo store") {
		t.Fatalf("empty data dir: exit %d %q", code, errOut)
	}
}

func TestTokenPrintsOnlyAVerifiableToken(t *testing.T) {
	code, out, errOut := orderctl(t, map[string]string{"ORDO_AUTH_SECRET": testSecret},
		"token", "--role", "customer", "--sub", "cust-42", "--ttl", "1h")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tok := strings.TrimSuffix(out, "\n")
	if strings.ContainsAny(tok, " \n\t") {
		t.Fatalf("stdout is not just a token: %q", out)
	}
	s, _ := auth.NewSigner(testSecret)
	c, err := s.Verify(tok, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "cust-42" || c.Role != auth.RoleCustomer || c.ExpiresAt-c.IssuedAt != 3600 {
		t.Fatalf("claims %+v", c)
	}
	// Without ORDO_AUTH_SECRET it reads the data dir's generated secret.
	dir := t.TempDir()
	secret, err := datadir.Secret(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ = orderctl(t, map[string]string{"ORDO_DATA_DIR": dir}, "token", "--sub", "ops", "--role", "admin")
	s2, _ := auth.NewSigner(secret)
	if _, err := s2.Verify(strings.TrimSpace(out), time.Now()); code != 0 || err != nil {
		t.Fatalf("token from data dir secret: exit %d, %v", code, err)
	}
}

func TestHistoryThroughORDO_NATS_URL(t *testing.T) {
	dir, id := seedDataDir(t, true)
	url := datadir.ReadURL(dir)
	if url == "" {
		t.Fatal("seeded server wrote no URL")
	}
	// Its data dir is not used: the credentials are given as for any
	// deployment.
	env := map[string]string{"ORDO_NATS_URL": url, "ORDO_DATA_DIR": t.TempDir(), "ORDO_NATS_CREDS": natsauth.SeedFile(dir, natsauth.Auditor),
		"ORDO_SIGNING_KEYS": filepath.Join(dir, datadir.SigningKeys)}
	code, out, errOut := orderctl(t, env, "history", "--json", "order", id)
	if code != 0 || strings.Count(out, "\n") != 3 {
		t.Fatalf("exit %d, %d lines: %s %s", code, strings.Count(out, "\n"), out, errOut)
	}
	code, _, errOut = orderctl(t, map[string]string{"ORDO_NATS_URL": url}, "history", "order", id)
	if code != exitError || !strings.Contains(errOut, "refused orderctl's credentials") || !strings.Contains(errOut, "ORDO_NATS_CREDS") {
		t.Fatalf("without credentials: exit %d %q", code, errOut)
	}
	code, _, errOut = orderctl(t, map[string]string{"ORDO_NATS_URL": url, "ORDO_NATS_CREDS": filepath.Join(dir, "missing.nk")}, "history", "order", id)
	if code != exitError || !strings.Contains(errOut, "missing.nk") {
		t.Fatalf("a missing credentials file: exit %d %q", code, errOut)
	}
	code, _, errOut = orderctl(t, map[string]string{"ORDO_NATS_URL": "nats://127.0.0.1:1"}, "history", "order", id)
	if code != exitError || !strings.Contains(errOut, "connect to NATS") {
		t.Fatalf("unreachable NATS: exit %d %q", code, errOut)
	}
}
