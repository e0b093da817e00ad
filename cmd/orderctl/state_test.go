package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/testkit"
)

// orderdProc is an orderd process started by a test on a data dir.
type orderdProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer
}

// startOrderd runs orderd as the local default on dir with the given
// extra environment, and waits until it is ready.
func startOrderd(t *testing.T, dir string, env ...string) *orderdProc {
	t.Helper()
	o := testkit.StartOrderd(t, dir, testSecret, env...)
	return &orderdProc{t: t, cmd: o.Cmd, base: o.Base, logs: o.Logs}
}

// stop ends orderd as an operator would (SIGTERM) and waits for it.
func (p *orderdProc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("orderd exit: %v\n%s", err, p.logs)
	}
}

func (p *orderdProc) waitFor(what string, cond func() bool) {
	p.t.Helper()
	defer func() {
		if p.t.Failed() {
			p.t.Logf("orderd's log:\n%s", p.logs)
		}
	}()
	testkit.Eventually(p.t, "orderd: "+what, 90*time.Second, testkit.Holds(cond))
}

// call sends a request with a token of the role and returns the status
// and the decoded JSON body.
func (p *orderdProc) call(method, path string, role auth.Role, sub string, body any, header ...string) (int, map[string]any) {
	p.t.Helper()
	signer, err := auth.NewSigner(testSecret)
	if err != nil {
		p.t.Fatal(err)
	}
	tok, err := signer.Mint(sub, role, time.Now(), time.Hour)
	if err != nil {
		p.t.Fatal(err)
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// observation is what the query API answered for an order at a time.
type observation struct {
	at     time.Time
	id     string
	status string // "" when the API did not know the order (404)
}

// TestStateAtEqualsWhatTheAPIShowedThen runs a real orderd (local
// default, manual pay page), records what GET /v1/orders/{id} answered
// at moments when the order stood still, stops orderd, and asks orderctl
// for the state at each moment from the stopped data dir.
func TestStateAtEqualsWhatTheAPIShowedThen(t *testing.T) {
	dir := t.TempDir()
	p := startOrderd(t, dir, "ORDO_PSP_MODE=manual")
	if code, body := p.call("PUT", "/v1/skus/TEA-250", auth.RoleAdmin, "ops",
		map[string]any{"name": "Oolong", "price": map[string]any{"amount": 1999, "currency": "CNY"}, "on_hand": 10}); code != 200 {
		t.Fatalf("put sku: %d %v", code, body)
	}
	var seen []observation
	// observe waits until the API shows the order in status want, then
	// records the time and what it showed. Nothing moves the order on
	// until the test's next request, so the log's state at that time is
	// the one shown.
	observe := func(id, want string) {
		t.Helper()
		var got string
		p.waitFor(id+" "+want, func() bool {
			code, body := p.call("GET", "/v1/orders/"+id, auth.RoleAgent, "cs", nil)
			got, _ = body["status"].(string)
			return code == 200 && got == want
		})
		seen = append(seen, observation{at: time.Now(), id: id, status: got})
	}
	place := func(key string) string {
		t.Helper()
		code, body := p.call("POST", "/v1/orders", auth.RoleCustomer, "cust-1", map[string]any{
			"customer":         map[string]any{"name": "张伟", "email": "zhang.wei@example.com"},
			"lines":            []any{map[string]any{"sku": "TEA-250", "qty": 1}},
			"shipping_address": map[string]any{"name": "张伟", "line1": "1 Rd", "city": "上海", "country": "CN"},
		}, "Idempotency-Key", key)
		if code != 202 {
			t.Fatalf("place: %d %v", code, body)
		}
		return body["order_id"].(string)
	}

	before := time.Now()
	shipped := place("k-1")
	observe(shipped, "payment_pending")
	_, view := p.call("GET", "/v1/orders/"+shipped, auth.RoleAgent, "cs", nil)
	checkout, _ := view["payment"].(map[string]any)["checkout_url"].(string)
	// The pay page's button: the link's path and /approve, with the
	// link's signed query.
	path, query, _ := strings.Cut(checkout, "?")
	resp, err := http.Post(path+"/approve?"+query, "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	observe(shipped, "paid")
	if code, body := p.call("POST", "/v1/orders/"+shipped+"/ship", auth.RoleAdmin, "ops", map[string]any{"carrier": "SF", "tracking_number": "SF1"}); code != 202 {
		t.Fatalf("ship: %d %v", code, body)
	}
	observe(shipped, "shipped")
	cancelled := place("k-2")
	observe(cancelled, "payment_pending")
	if code, body := p.call("POST", "/v1/orders/"+shipped+"/deliver", auth.RoleAdmin, "ops", map[string]any{}); code != 202 {
		t.Fatalf("deliver: %d %v", code, body)
	}
	observe(shipped, "delivered")
	if code, body := p.call("POST", "/v1/orders/"+cancelled+"/cancel", auth.RoleCustomer, "cust-1", map[string]any{"reason": "changed my mind"}); code != 202 {
		t.Fatalf("cancel: %d %v", code, body)
	}
	observe(cancelled, "cancelled")
	p.stop()

	env := map[string]string{"ORDO_DATA_DIR": dir}
	for _, o := range append(seen, observation{at: before, id: shipped}) {
		code, out, errOut := orderctl(t, env, "state", "order", o.id, "--at", o.at.Format(time.RFC3339Nano), "--json")
		if code != exitOK {
			t.Fatalf("state %s --at %s: exit %d %s", o.id, o.at.Format(time.RFC3339Nano), code, errOut)
		}
		var v struct {
			Version uint64 `json:"version"`
			State   *struct {
				Status string `json:"status"`
			} `json:"state"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		got := ""
		if v.State != nil {
			got = v.State.Status
		}
		if got != o.status || (o.status == "") != (v.Version == 0) {
			t.Errorf("%s at %s: orderctl state says %q (version %d), the API showed %q", o.id, o.at.Format(time.RFC3339Nano), got, v.Version, o.status)
		}
	}

	// The readable form, and --version cutting a history short.
	code, out, errOut := orderctl(t, env, "state", "order", shipped, "--version", "2")
	if code != exitOK || !strings.Contains(out, "at version 2 of 6") || !strings.Contains(out, `"status": "stock_reserved"`) {
		t.Fatalf("--version 2: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = orderctl(t, env, "state", "order", shipped, "--at", before.Format(time.RFC3339Nano))
	if code != exitOK || !strings.Contains(out, "did not exist yet") {
		t.Fatalf("before it was placed: exit %d\n%s", code, out)
	}
	code, out, _ = orderctl(t, env, "state", "order", shipped)
	if code != exitOK || !strings.Contains(out, `"status": "delivered"`) || !strings.Contains(out, "at version 6 of 6") {
		t.Fatalf("today: exit %d\n%s", code, out)
	}
}

func TestStateBadArguments(t *testing.T) {
	dir, id := seedDataDir(t, false)
	env := map[string]string{"ORDO_DATA_DIR": dir}
	for _, args := range [][]string{
		{"state", "basket", id},
		{"state", "order"},
		{"state", "order", "a/b"},
		{"state", "order", id, "--at", "yesterday"},
		{"state", "order", id, "--at", "2026-11-26 10:00"},
		{"state", "order", id, "--version", "0"},
		{"state", "order", id, "--version", "-1"},
		{"state", "order", id, "--version", "two"},
		{"state", "order", id, "--at", "2026-11-26T10:00:00Z", "--version", "1"},
		{"state", "order", id, "--bogus"},
	} {
		code, _, errOut := orderctl(t, env, args...)
		if code != exitUsage || errOut == "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	code, _, errOut := orderctl(t, env, "state", "order", id, "--version", "4")
	if code != exitError || !strings.Contains(errOut, "has 3 event(s); --version 4 is past its end") {
		t.Fatalf("past the end: exit %d %q", code, errOut)
	}
	code, _, errOut = orderctl(t, env, "state", "payment", "pay_nobody")
	if code != exitError || !strings.Contains(errOut, "no commits for payment pay_nobody") {
		t.Fatalf("unknown id: exit %d %q", code, errOut)
	}
	code, out, _ := orderctl(t, env, "state", "order", id, "--version", "2", "--json")
	var v stateView
	if err := json.Unmarshal([]byte(out), &v); code != exitOK || err != nil || v.Version != 2 || v.LastVersion != 3 || v.Seq != 2 {
		t.Fatalf("--version 2 --json: exit %d %+v %v", code, v, err)
	}
}
