package sagas_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/psp"
)

func (e *env) webhook(body []byte, signature string) response {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.base+"/v1/psp/webhook", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if signature != "" {
		req.Header.Set(psp.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, raw: raw}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pendingPayment starts an env whose provider waits for the shopper,
// places an order of qty TEA and returns the env, the order id, its
// payment and the payment's intent as the provider has it.
func pendingPayment(t *testing.T, qty int64) (*env, string, payment.State, psp.Intent) {
	t.Helper()
	e := newEnv(t, envOptions{simMode: pspsim.ModeManual})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", qty})
	o := e.waitOrder(id, order.StatusPaymentPending)
	p, _ := e.payment(o.PaymentID)
	in, err := e.client.Intent(t.Context(), p.IntentID)
	if err != nil {
		t.Fatal(err)
	}
	return e, id, p, in
}

// TestForgedReplayedAndAlteredWebhooksChangeNothing sends hostile webhooks
// for a pending payment and for a paid one: each gets 401 or 422 (or, for
// a harmless duplicate, 200 without a change), and the log stays as it
// was.
func TestForgedReplayedAndAlteredWebhooksChangeNothing(t *testing.T) {
	e, id, p, in := pendingPayment(t, 2)
	// What a capture webhook for this payment looks like.
	captured := in
	captured.Status = psp.StatusCaptured
	captured.CaptureRef = "ch_forged"
	captured.Version++
	ev := psp.Event{ID: "evt_forged", Type: psp.EventType(psp.StatusCaptured), Created: time.Now().UTC(), Intent: captured}
	body := mustJSON(t, ev)
	secret := []byte(webhookSecret)
	now := time.Now()

	altered := func(f func(*psp.Intent)) []byte {
		c := ev
		f(&c.Intent)
		return mustJSON(t, c)
	}
	richer := altered(func(i *psp.Intent) { i.Amount.Amount = 1 })
	altered2 := func(ev psp.Event, f func(*psp.Event)) []byte {
		f(&ev)
		return mustJSON(t, ev)
	}
	cases := []struct {
		name      string
		body      []byte
		signature string
		status    int
		code      string
	}{
		{"no signature", body, "none", 401, "invalid_signature"},
		{"malformed signature", body, "v1=abc", 401, "invalid_signature"},
		{"forged: signed with another secret", body, psp.Sign([]byte("not-the-secret-not-the-secret-!!"), now, body), 401, "invalid_signature"},
		{"amount altered after signing", richer, psp.Sign(secret, now, body), 401, "invalid_signature"},
		{"replayed: signed 6 minutes ago", body, psp.Sign(secret, now.Add(-6*time.Minute), body), 401, "invalid_signature"},
		{"signed 6 minutes in the future", body, psp.Sign(secret, now.Add(6*time.Minute), body), 401, "invalid_signature"},
		{"signed, amount not the payment's", richer, psp.Sign(secret, now, richer), 422, "intent_mismatch"},
		{"signed, currency not the payment's", altered(func(i *psp.Intent) { i.Amount.Currency = "USD" }), "", 422, "intent_mismatch"},
		{"signed, intent not the payment's", altered(func(i *psp.Intent) { i.ID = "pi_other" }), "", 422, "intent_mismatch"},
		{"signed, unknown payment", altered(func(i *psp.Intent) { i.Reference = "pay_unknown" }), "", 404, "payment_not_found"},
		{"signed, not JSON", []byte("{not json"), "", 400, "malformed_json"},
		{"signed, empty body", []byte(""), "", 400, "malformed_json"},
		{"signed, a JSON array", []byte("[1,2]"), "", 400, "malformed_json"},
		{"signed, no event id", altered2(ev, func(v *psp.Event) { v.ID = "" }), "", 400, "invalid_field"},
		{"signed, no intent", []byte(`{"id":"evt_x","type":"payment_intent.captured"}`), "", 400, "missing_field"},
		{"signed, unknown status", altered(func(i *psp.Intent) { i.Status = "teleported" }), "", 400, "invalid_field"},
		{"signed, reference not an id", altered(func(i *psp.Intent) { i.Reference = "../../etc" }), "", 404, "payment_not_found"},
		{"signed, body too large", append(append([]byte(`{"id":"`), bytes.Repeat([]byte("x"), 2<<20)...), []byte(`"}`)...), "", 413, "body_too_large"},
	}
	before := e.seqs()
	for _, c := range cases {
		sig := c.signature
		switch sig {
		case "": // signed correctly
			sig = psp.Sign(secret, now, c.body)
		case "none":
			sig = ""
		}
		r := e.webhook(c.body, sig)
		errBody, _ := r.body["error"].(map[string]any)
		code, _ := errBody["code"].(string)
		if r.status != c.status || code != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.raw, c.status, c.code)
		}
	}
	if after := e.seqs(); after != before {
		t.Fatalf("hostile webhooks changed the log: %s -> %s", before, after)
	}
	if p2, commits := e.payment(p.ID); !reflect.DeepEqual(p2, p) || len(commits) != 1 {
		t.Fatalf("payment after hostile webhooks: %+v (%d commits), want it unchanged: %+v", p2, len(commits), p)
	}

	// The authentic but contradicting reports (amount, currency, intent)
	// are recorded as refused reports in the DLQ stream with what they
	// said and why they were refused; unauthenticated ones are not (they
	// are noise anyone can send), and a re-sent refusal is stored once.
	richerSig := psp.Sign(secret, now, richer)
	if r := e.webhook(richer, richerSig); r.status != 422 {
		t.Fatalf("re-sent amount-altered webhook: %d %s", r.status, r.raw)
	}
	refused, err := e.store.RefusedReports(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 3 {
		t.Fatalf("%d refused reports, want 3 (amount, currency, intent): %+v", len(refused), refused)
	}
	var reported psp.Intent
	if err := json.Unmarshal(refused[0].Report, &reported); err != nil {
		t.Fatal(err)
	}
	if r := refused[0]; r.Source != "psp" || r.Cause != "psp-event:evt_forged" || r.AggregateType != "payment" ||
		r.AggregateID != p.ID || r.Correlated != id || !strings.Contains(r.Reason, "intent does not match") ||
		reported.Amount.Amount != 1 || reported.ID != p.IntentID {
		t.Fatalf("refused report %+v (report %+v): want the amount-altered capture for %s", r, reported, p.ID)
	}
	if o, _ := e.order(id); o.Status != order.StatusPaymentPending {
		t.Fatalf("order is %s after hostile webhooks", o.Status)
	}

	// The shopper really pays: the genuine webhook pays the order.
	real, err := e.sim.Approve(p.IntentID)
	if err != nil {
		t.Fatal(err)
	}
	e.waitOrder(id, order.StatusPaid)
	waitFor(t, "the paid order to settle", func() bool {
		s := e.seqs()
		time.Sleep(300 * time.Millisecond)
		return s == e.seqs()
	})
	// Replaying the genuine report within the tolerance is a harmless
	// duplicate; replaying an old signature is refused.
	genuine := mustJSON(t, psp.Event{ID: "evt_genuine", Type: psp.EventType(real.Status), Created: real.Updated, Intent: real})
	before = e.seqs()
	for range 3 {
		r := e.webhook(genuine, psp.Sign(secret, time.Now(), genuine))
		if r.status != 200 || r.body["changed"] != false || r.body["payment_status"] != "captured" {
			t.Fatalf("duplicate webhook: %d %s, want 200 without a change", r.status, r.raw)
		}
	}
	if r := e.webhook(genuine, psp.Sign(secret, time.Now().Add(-10*time.Minute), genuine)); r.status != 401 {
		t.Fatalf("replayed old signature: %d %s", r.status, r.raw)
	}
	// An out-of-order report (the pending state after the capture) and a
	// failure report for a captured payment change nothing either.
	for _, st := range []psp.Status{psp.StatusRequiresPayment, psp.StatusFailed} {
		stale := real
		stale.Status = st
		b := mustJSON(t, psp.Event{ID: "evt_stale_" + string(st), Type: psp.EventType(st), Created: time.Now(), Intent: stale})
		if r := e.webhook(b, psp.Sign(secret, time.Now(), b)); r.status != 200 || r.body["changed"] != false {
			t.Fatalf("stale %s webhook: %d %s", st, r.status, r.raw)
		}
	}
	if after := e.seqs(); after != before {
		t.Fatalf("duplicate and stale webhooks changed the log: %s -> %s", before, after)
	}
}

// TestReplayedWebhookIsRefusedAfterTheTolerance records a genuine webhook
// the simulator sent (body and signature header as they went over the
// wire), then sends exactly those bytes again: within the tolerance it is
// a harmless duplicate; once the API's clock has moved past the 5-minute
// tolerance the replay gets 401 and changes nothing.
func TestReplayedWebhookIsRefusedAfterTheTolerance(t *testing.T) {
	e := newEnv(t, envOptions{simMode: pspsim.ModeManual})
	type delivery struct {
		body []byte
		sig  string
	}
	var (
		mu   sync.Mutex
		seen []delivery
	)
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, delivery{body, r.Header.Get(psp.SignatureHeader)})
		mu.Unlock()
		resp := e.webhook(body, r.Header.Get(psp.SignatureHeader))
		w.WriteHeader(resp.status)
		_, _ = w.Write(resp.raw)
	}))
	t.Cleanup(relay.Close)
	e.sim.SetWebhookURL(relay.URL)

	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 1})
	o := e.waitOrder(id, order.StatusPaymentPending)
	p, _ := e.payment(o.PaymentID)
	if _, err := e.sim.Approve(p.IntentID); err != nil {
		t.Fatal(err)
	}
	e.waitOrder(id, order.StatusPaid)
	waitFor(t, "the paid order to settle", func() bool {
		s := e.seqs()
		time.Sleep(300 * time.Millisecond)
		return s == e.seqs()
	})
	mu.Lock()
	if len(seen) == 0 {
		mu.Unlock()
		t.Fatal("the simulator sent no webhook")
	}
	genuine := seen[len(seen)-1]
	mu.Unlock()
	var ev psp.Event
	if err := json.Unmarshal(genuine.body, &ev); err != nil || ev.Intent.Status != psp.StatusCaptured {
		t.Fatalf("recorded webhook %s: %v", genuine.body, err)
	}

	before := e.seqs()
	if r := e.webhook(genuine.body, genuine.sig); r.status != 200 || r.body["changed"] != false {
		t.Fatalf("genuine webhook re-sent at once: %d %s, want 200 without a change", r.status, r.raw)
	}
	e.skew.Store(int64(psp.DefaultTolerance + time.Minute))
	r := e.webhook(genuine.body, genuine.sig)
	if r.status != 401 || r.body["error"].(map[string]any)["code"] != "invalid_signature" {
		t.Fatalf("genuine webhook replayed 6 minutes later: %d %s, want 401 invalid_signature", r.status, r.raw)
	}
	if after := e.seqs(); after != before {
		t.Fatalf("replayed webhooks changed the log: %s -> %s", before, after)
	}
}

// TestWebhookWithUnstorableTextIsRefused sends signed webhooks whose
// texts Ordo could not store (a NUL in the capture reference, a C1
// control in the failure reason, an event id that is not ASCII, a body
// that is not UTF-8): each is refused with a 400 the provider sees, the
// log is unchanged, and the genuine report still pays the order.
func TestWebhookWithUnstorableTextIsRefused(t *testing.T) {
	e, id, p, in := pendingPayment(t, 1)
	report := func(st psp.Status, f func(*psp.Event)) []byte {
		i := in
		i.Status = st
		ev := psp.Event{ID: "evt_1", Type: psp.EventType(st), Created: time.Now().UTC(), Intent: i}
		f(&ev)
		return mustJSON(t, ev)
	}
	secret := []byte(webhookSecret)
	cases := []struct {
		name, code, field string
		body              []byte
	}{
		{"NUL in capture_ref", "invalid_field", "intent.capture_ref", report(psp.StatusCaptured, func(ev *psp.Event) { ev.Intent.CaptureRef = "ch_\x00" })},
		{"C1 in failure_reason", "invalid_field", "intent.failure_reason", report(psp.StatusFailed, func(ev *psp.Event) { ev.Intent.FailureReason = "declined\u009b" })},
		{"event id not ASCII", "invalid_field", "id", report(psp.StatusCaptured, func(ev *psp.Event) { ev.ID = "evt_é" })},
		{"body not UTF-8", "invalid_utf8", "", []byte(strings.Replace(string(report(psp.StatusCaptured, func(*psp.Event) {})), "evt_1", "evt_\xff", 1))},
	}
	before := e.seqs()
	for _, c := range cases {
		r := e.webhook(c.body, psp.Sign(secret, time.Now(), c.body))
		errBody, _ := r.body["error"].(map[string]any)
		if r.status != 400 || errBody["code"] != c.code || (c.field != "" && errBody["field"] != c.field) {
			t.Errorf("%s: %d %s, want 400 %s %s", c.name, r.status, r.raw, c.code, c.field)
		}
	}
	if after := e.seqs(); after != before {
		t.Fatalf("refused webhooks changed the log: %s -> %s", before, after)
	}
	if _, err := e.sim.Approve(p.IntentID); err != nil {
		t.Fatal(err)
	}
	e.waitOrder(id, order.StatusPaid)
}
