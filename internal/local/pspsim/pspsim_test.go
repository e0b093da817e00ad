package pspsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/internal/psp/psptest"
)

func start(t *testing.T, cfg pspsim.Config) (*pspsim.Sim, *psp.HTTPClient) {
	t.Helper()
	s, err := pspsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c, err := psp.NewHTTPClient(base, "sim", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// payPage clicks a button on the hosted pay page.
func payPage(button string) func(t *testing.T, in psp.Intent) {
	return func(t *testing.T, in psp.Intent) {
		t.Helper()
		page, err := http.Get(in.CheckoutURL)
		if err != nil {
			t.Fatal(err)
		}
		html, _ := io.ReadAll(page.Body)
		page.Body.Close()
		if !strings.Contains(string(html), "/"+button) {
			t.Fatalf("pay page has no %s button:\n%s", button, html)
		}
		resp, err := http.Post(in.CheckoutURL+"/"+button, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", button, resp.StatusCode)
		}
	}
}

func TestHTTPClientAgainstTheSimulator(t *testing.T) {
	_, c := start(t, pspsim.Config{Mode: pspsim.ModeManual})
	psptest.Run(t, c, psptest.Shopper{Approve: payPage("approve"), Decline: payPage("decline")})
}

// receiver is a webhook endpoint that verifies signatures and records the
// events.
type receiver struct {
	mu     sync.Mutex
	events []psp.Event
	status int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := psp.Verify([]byte("secret-secret-secret-secret-secret"), req.Header.Get(psp.SignatureHeader), body, time.Now(), psp.DefaultTolerance); err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev psp.Event
	_ = json.Unmarshal(body, &ev)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status != 0 {
		w.WriteHeader(r.status)
		r.status = 0 // fail once
		return
	}
	r.events = append(r.events, ev)
}

func (r *receiver) got() []psp.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]psp.Event(nil), r.events...)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAutoModeSendsSignedWebhooksAndRetries(t *testing.T) {
	rcv := &receiver{status: http.StatusServiceUnavailable}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	s, c := start(t, pspsim.Config{Secret: []byte("secret-secret-secret-secret-secret"), WebhookURL: hook.URL})
	in, err := c.CreateIntent(t.Context(), psp.CreateIntentRequest{Reference: "pay-1", Amount: events.Money{Amount: 100, Currency: "EUR"}}, "k")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(rcv.got()) == 1 })
	ev := rcv.got()[0]
	if ev.Type != "intent.captured" || ev.Intent.ID != in.ID || ev.Intent.Reference != "pay-1" || ev.Intent.Status != psp.StatusCaptured {
		t.Fatalf("webhook %+v", ev)
	}
	// The receiver has the event before the simulator counts the
	// delivery: wait for the count, then check it.
	waitFor(t, func() bool { return s.Stats().Delivered >= 1 })
	if st := s.Stats(); st.Retried != 1 || st.Delivered != 1 {
		t.Fatalf("stats %+v: want one retry after the 503, one delivery", st)
	}
}

func TestLossFaultDropsWebhooksButStatusTellsTheTruth(t *testing.T) {
	rcv := &receiver{}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	s, c := start(t, pspsim.Config{Secret: []byte("secret-secret-secret-secret-secret"), WebhookURL: hook.URL, Faults: psp.Faults{Loss: 1}})
	in, err := c.CreateIntent(t.Context(), psp.CreateIntentRequest{Reference: "pay-1", Amount: events.Money{Amount: 100, Currency: "EUR"}}, "k")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Stats().Lost == 1 })
	if got, err := c.Intent(t.Context(), in.ID); err != nil || got.Status != psp.StatusCaptured {
		t.Fatalf("status lookup: %+v %v", got, err)
	}
	if n := len(rcv.got()); n != 0 {
		t.Fatalf("%d webhooks delivered despite the loss fault", n)
	}
}

// TestSimulatorAPIRefusesBadInput: every malformed or impossible request
// to the simulator's API gets a 4xx with a JSON error code, and changes
// no intent.
func TestSimulatorAPIRefusesBadInput(t *testing.T) {
	s, c := start(t, pspsim.Config{Mode: pspsim.ModeManual, Secret: []byte("secret-secret-secret-secret-secret!")})
	in, err := c.CreateIntent(t.Context(), psp.CreateIntentRequest{Reference: "pay_1", OrderID: "ord_1",
		Amount: events.Money{Amount: 500, Currency: "CNY"}}, "pay_1:create")
	if err != nil {
		t.Fatal(err)
	}
	base := s.BaseURL()
	cases := []struct {
		method, path, key, body string
		status                  int
		code                    string
	}{
		{"POST", "/v1/intents", "", "{not json", 400, "invalid_request"},
		{"POST", "/v1/intents", "", `{"amount":{"amount":1,"currency":"CNY"}}`, 400, "invalid_request"},
		{"POST", "/v1/intents", "", `{"reference":"pay_2","amount":{"amount":1,"currency":"XX"}}`, 400, "invalid_request"},
		{"POST", "/v1/intents", "", `{"reference":"pay_2","amount":{"amount":-1,"currency":"CNY"}}`, 400, "invalid_request"},
		{"POST", "/v1/intents", "", `{"reference":"pay_2","amount":{"amount":1,"currency":"CNY"},"capture_method":"later"}`, 400, "invalid_request"},
		{"POST", "/v1/intents", "pay_1:create", `{"reference":"pay_1","amount":{"amount":999,"currency":"CNY"}}`, 400, "invalid_request"},
		{"GET", "/v1/intents/pi_nope", "", "", 404, "not_found"},
		{"POST", "/v1/intents/pi_nope/void", "", "{}", 404, "not_found"},
		{"POST", "/v1/intents/" + in.ID + "/capture", "", "{}", 409, "invalid_state"},
		{"POST", "/v1/intents/" + in.ID + "/refund", "", `{"amount":{"amount":500,"currency":"CNY"}}`, 409, "invalid_state"},
		{"POST", "/v1/intents/" + in.ID + "/refund", "", `{"amount":{"amount":1,"currency":"CNY"}}`, 400, "invalid_request"},
		{"POST", "/v1/intents/" + in.ID + "/refund", "", "[]", 400, "invalid_request"},
		{"GET", "/v1/nothing-here", "", "", 404, "not_found"},
	}
	for _, tc := range cases {
		req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.key != "" {
			req.Header.Set("Idempotency-Key", tc.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || err != nil || body.Error.Code != tc.code {
			t.Errorf("%s %s %s: %d %q (%v), want %d %s", tc.method, tc.path, tc.body, resp.StatusCode, body.Error.Code, err, tc.status, tc.code)
		}
	}
	if got, err := c.Intent(t.Context(), in.ID); err != nil || got != in {
		t.Fatalf("intent after bad requests: %+v %v, want unchanged %+v", got, err, in)
	}
	if n := len(s.Intents()); n != 1 {
		t.Fatalf("%d intents after bad requests, want 1", n)
	}
}

// TestStateFileKeepsIntentsAcrossRestarts: a simulator started again on
// the same state file knows the intents, their idempotency keys and their
// states, and can still void them.
func TestStateFileKeepsIntentsAcrossRestarts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "psp-sim.json")
	cfg := pspsim.Config{Mode: pspsim.ModeManual, Secret: []byte("secret-secret-secret-secret-secret!"), StateFile: file}
	s1, c1 := start(t, cfg)
	req := psp.CreateIntentRequest{Reference: "pay_1", OrderID: "ord_1", Amount: events.Money{Amount: 500, Currency: "CNY"}}
	pending, err := c1.CreateIntent(t.Context(), req, "pay_1:create")
	if err != nil {
		t.Fatal(err)
	}
	req2 := psp.CreateIntentRequest{Reference: "pay_2", OrderID: "ord_2", Amount: events.Money{Amount: 700, Currency: "CNY"}}
	paid, err := c1.CreateIntent(t.Context(), req2, "pay_2:create")
	if err != nil {
		t.Fatal(err)
	}
	if paid, err = s1.Approve(paid.ID); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2, c2 := start(t, cfg)
	if got, err := c2.Intent(t.Context(), paid.ID); err != nil || got != paid {
		t.Fatalf("captured intent after restart: %+v %v, want %+v", got, err, paid)
	}
	if again, err := c2.CreateIntent(t.Context(), req, "pay_1:create"); err != nil || again.ID != pending.ID {
		t.Fatalf("create with the same key after restart: %+v %v, want intent %s", again, err, pending.ID)
	}
	if v, err := c2.Void(t.Context(), pending.ID, "pay_1:void"); err != nil || v.Status != psp.StatusVoided {
		t.Fatalf("void after restart: %+v %v", v, err)
	}
	if n := len(s2.Intents()); n != 2 {
		t.Fatalf("%d intents after restart, want 2", n)
	}
}
