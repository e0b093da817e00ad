package pspsim_test

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/internal/psp/psptest"
	"github.com/ordo-shop/ordo/internal/testkit"
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
	c, err := psp.NewHTTPClient(base, "sim", s.APIKey(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// payPage clicks a button on the hosted pay page, opened through the
// intent's checkout link.
func payPage(button string) func(t *testing.T, in psp.Intent) {
	return func(t *testing.T, in psp.Intent) {
		t.Helper()
		page, err := http.Get(in.CheckoutURL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(page.Body)
		page.Body.Close()
		if page.StatusCode != http.StatusOK {
			t.Fatalf("pay page: %d %s", page.StatusCode, body)
		}
		action := formAction(string(body), button)
		if action == "" {
			t.Fatalf("pay page has no %s button:\n%s", button, body)
		}
		u, err := url.Parse(in.CheckoutURL)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := u.Parse(action)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(ref.String(), "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", button, resp.StatusCode)
		}
	}
}

// formAction returns the action of the pay page's form whose path ends
// in /button, unescaped.
func formAction(page, button string) string {
	for _, m := range regexp.MustCompile(`action="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		a := html.UnescapeString(m[1])
		if p, _, _ := strings.Cut(a, "?"); strings.HasSuffix(p, "/"+button) {
			return a
		}
	}
	return ""
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
	testkit.Eventually(t, "the simulator", 30*time.Second, testkit.Holds(cond))
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
		req.Header.Set("Authorization", "Bearer "+s.APIKey())
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

// errorCode does a request and returns its status and JSON error code.
func errorCode(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: %d, body is not a JSON error: %v", req.Method, req.URL, resp.StatusCode, err)
	}
	return resp.StatusCode, body.Error.Code
}

// TestAPIRequiresTheKey: every call of the merchant API without the key,
// or with another, is 401 and changes nothing; the key the simulator was
// given works.
func TestAPIRequiresTheKey(t *testing.T) {
	s, c := start(t, pspsim.Config{Mode: pspsim.ModeManual, APIKey: "sk_test_0123456789abcdef0123456789abcdef"})
	if s.APIKey() != "sk_test_0123456789abcdef0123456789abcdef" {
		t.Fatalf("APIKey() = %q", s.APIKey())
	}
	in, err := c.CreateIntent(t.Context(), psp.CreateIntentRequest{Reference: "pay_1", OrderID: "ord_1", Amount: events.Money{Amount: 500, Currency: "CNY"}}, "pay_1:create")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(in.ID); err != nil {
		t.Fatal(err)
	}
	refund := `{"amount":{"amount":500,"currency":"CNY"}}`
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer sk_test_wrong", "Basic c2s6", "bearer sk_test_0123456789abcdef0123456789abcdef",
		"Bearer sk_test_0123456789abcdef0123456789abcdef0"} {
		for _, call := range []struct{ method, path, body string }{
			{"POST", "/v1/intents", `{"reference":"pay_2","amount":{"amount":1,"currency":"CNY"}}`},
			{"GET", "/v1/intents/" + in.ID, ""},
			{"POST", "/v1/intents/" + in.ID + "/refund", refund},
			{"POST", "/v1/intents/" + in.ID + "/void", "{}"},
			{"POST", "/v1/intents/" + in.ID + "/capture", "{}"},
		} {
			req, err := http.NewRequest(call.method, s.BaseURL()+call.path, strings.NewReader(call.body))
			if err != nil {
				t.Fatal(err)
			}
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			if status, code := errorCode(t, req); status != http.StatusUnauthorized || code != "unauthorized" {
				t.Errorf("%s %s with %q: %d %s, want 401 unauthorized", call.method, call.path, auth, status, code)
			}
		}
	}
	if n := len(s.Intents()); n != 1 {
		t.Fatalf("%d intents, want 1", n)
	}
	if got, err := c.Intent(t.Context(), in.ID); err != nil || got.Status != psp.StatusCaptured {
		t.Fatalf("intent after refused calls: %+v %v, want captured", got, err)
	}
	other, err := psp.NewHTTPClient(s.BaseURL(), "sim", "sk_test_wrong", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Intent(t.Context(), in.ID); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("client with a wrong key: %v, want a 401", err)
	}
}

// TestPayPageNeedsTheSignedLink: the pay page and its buttons answer only
// through the intent's signed, unexpired checkout link; without it, with
// another intent's signature, a changed expiry or after the expiry, 403
// with a JSON error code and the intent stays unpaid.
func TestPayPageNeedsTheSignedLink(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, c := start(t, pspsim.Config{Mode: pspsim.ModeManual, LinkTTL: 30 * time.Minute, Now: clock})
	create := func(ref string) psp.Intent {
		in, err := c.CreateIntent(t.Context(), psp.CreateIntentRequest{Reference: ref, OrderID: "ord_" + ref, Amount: events.Money{Amount: 500, Currency: "CNY"}}, ref+":create")
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	in, other := create("pay_1"), create("pay_2")
	link, err := url.Parse(in.CheckoutURL)
	if err != nil {
		t.Fatal(err)
	}
	q := link.Query()
	if want := strconv.FormatInt(now.Add(30*time.Minute).Unix(), 10); q.Get("exp") != want || len(q.Get("sig")) != 64 {
		t.Fatalf("checkout link %s: want exp=%s and a signature", in.CheckoutURL, want)
	}
	otherQ := mustQuery(t, other.CheckoutURL)
	later := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	bad := map[string]struct {
		query, code string
	}{
		"no signature":           {"", "link_required"},
		"no expiry":              {"sig=" + q.Get("sig"), "link_required"},
		"another intent's":       {otherQ.Encode(), "link_invalid"},
		"expiry pushed back":     {"exp=" + later + "&sig=" + q.Get("sig"), "link_invalid"},
		"signature changed":      {"exp=" + q.Get("exp") + "&sig=" + strings.Repeat("0", 64), "link_invalid"},
		"signature in uppercase": {"exp=" + q.Get("exp") + "&sig=" + strings.ToUpper(q.Get("sig")), "link_invalid"},
	}
	for name, b := range bad {
		for _, path := range []string{"/pay/" + in.ID, "/pay/" + in.ID + "/approve", "/pay/" + in.ID + "/decline"} {
			method := http.MethodPost
			if !strings.Contains(path, "/approve") && !strings.Contains(path, "/decline") {
				method = http.MethodGet
			}
			req, err := http.NewRequest(method, s.BaseURL()+path+"?"+b.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if status, code := errorCode(t, req); status != http.StatusForbidden || code != b.code {
				t.Errorf("%s %s (%s): %d %s, want 403 %s", method, path, name, status, code, b.code)
			}
		}
	}
	// A link for an intent that does not exist: 403 too, not 404, so
	// links cannot probe for intents.
	req, _ := http.NewRequest(http.MethodGet, s.BaseURL()+"/pay/pi_nope?"+q.Encode(), nil)
	if status, code := errorCode(t, req); status != http.StatusForbidden || code != "link_invalid" {
		t.Errorf("unknown intent with another's link: %d %s", status, code)
	}
	if got, _ := c.Intent(t.Context(), in.ID); got.Status != psp.StatusRequiresPayment {
		t.Fatalf("intent is %s after refused clicks", got.Status)
	}

	// Expired: the same link a minute after its expiry.
	mu.Lock()
	now = now.Add(31 * time.Minute)
	mu.Unlock()
	for _, path := range []string{"/pay/" + in.ID, "/pay/" + in.ID + "/approve"} {
		method := http.MethodGet
		if strings.HasSuffix(path, "/approve") {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, s.BaseURL()+path+"?"+q.Encode(), nil)
		if status, code := errorCode(t, req); status != http.StatusForbidden || code != "link_expired" {
			t.Errorf("%s %s after the expiry: %d %s, want 403 link_expired", method, path, status, code)
		}
	}
	if got, _ := c.Intent(t.Context(), in.ID); got.Status != psp.StatusRequiresPayment {
		t.Fatalf("intent is %s after an expired click", got.Status)
	}
	// A fresh intent's link works, through the page's own buttons.
	payPage("approve")(t, create("pay_3"))
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestFaultCountersCount: each injected fault is counted where a load
// test reads it (Stats, exposed as ordo_psp_sim_* by Counts).
func TestFaultCountersCount(t *testing.T) {
	rcv := &receiver{}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	create := func(t *testing.T, c *psp.HTTPClient, n int) {
		t.Helper()
		for i := range n {
			ref := "pay_" + strconv.Itoa(i)
			if _, err := c.CreateIntent(t.Context(), psp.CreateIntentRequest{Reference: ref, Amount: events.Money{Amount: 100, Currency: "EUR"}}, ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	const n = 3
	for _, tc := range []struct {
		faults psp.Faults
		done   func(pspsim.Stats) bool
	}{
		{psp.Faults{Duplicate: 1}, func(s pspsim.Stats) bool { return s.Duplicated == n && s.Delivered == 2*n }},
		{psp.Faults{Reorder: 1}, func(s pspsim.Stats) bool { return s.Reordered == n && s.Delivered == n }},
		{psp.Faults{Loss: 1}, func(s pspsim.Stats) bool { return s.Lost == n && s.Events == n && s.Delivered == 0 }},
		{psp.Faults{Decline: 1}, func(s pspsim.Stats) bool { return s.DeclineFaults == n && s.Declined == n && s.Delivered == n }},
		{psp.Faults{Abandon: 1}, func(s pspsim.Stats) bool { return s.Unpaid == n && s.Events == 0 }},
	} {
		t.Run(tc.faults.String(), func(t *testing.T) {
			s, c := start(t, pspsim.Config{Secret: []byte("secret-secret-secret-secret-secret"), WebhookURL: hook.URL, Faults: tc.faults})
			create(t, c, n)
			waitFor(t, func() bool { return tc.done(s.Stats()) })
			counts := s.Stats().Counts()
			if counts.Intents != n || counts.Duplicated != s.Stats().Duplicated || counts.Unpaid != s.Stats().Unpaid {
				t.Fatalf("counts %+v from stats %+v", counts, s.Stats())
			}
		})
	}
	t.Run("refused and failed", func(t *testing.T) {
		refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) }))
		defer refusing.Close()
		s, c := start(t, pspsim.Config{WebhookURL: refusing.URL})
		create(t, c, 1)
		waitFor(t, func() bool { return s.Stats().Refused == 1 })
		failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
		defer failing.Close()
		s2, c2 := start(t, pspsim.Config{WebhookURL: failing.URL, WebhookAttempts: 3, WebhookBackoff: time.Millisecond})
		create(t, c2, 1)
		waitFor(t, func() bool { return s2.Stats().Abandoned == 1 })
		if got := s2.Stats().Counts(); got.Failed != 3 || got.Abandoned != 1 || got.Delivered != 0 {
			t.Fatalf("after three failed attempts: %+v", got)
		}
	})
}
