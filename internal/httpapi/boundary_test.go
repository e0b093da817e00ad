package httpapi_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/auth"
)

// craft signs claims with the API's secret, as a client holding the
// secret (or a bug in a minter) could.
func craft(t *testing.T, claims map[string]any) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := b64([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + b64(body)
	m := hmac.New(sha256.New, []byte(apiSecret))
	m.Write([]byte(signing))
	return signing + "." + b64(m.Sum(nil))
}

// TestTokenTimesAreChecked: a token not yet valid (nbf or iat ahead of
// the clock beyond the skew) or living longer than its role may is
// refused with 401 and a JSON error of its own code.
func TestTokenTimesAreChecked(t *testing.T) {
	a := newAPI(t, nil)
	now := time.Now().Unix()
	skew := int64(auth.ClockSkew / time.Second)
	for _, c := range []struct {
		name   string
		claims map[string]any
		status int
		code   string
	}{
		{"valid", map[string]any{"iat": now, "exp": now + 3600}, 200, ""},
		{"nbf in the future", map[string]any{"iat": now, "nbf": now + skew + 30, "exp": now + 3600}, 401, "token_not_yet_valid"},
		{"iat in the future", map[string]any{"iat": now + skew + 30, "exp": now + 3600}, 401, "token_not_yet_valid"},
		{"exp in year 9999", map[string]any{"iat": now, "exp": int64(253402300799)}, 401, "token_lifetime_too_long"},
		{"a day and a minute", map[string]any{"iat": now, "exp": now + 24*3600 + 60}, 401, "token_lifetime_too_long"},
		{"expired", map[string]any{"iat": now - 7200, "exp": now - 1}, 401, "token_expired"},
		{"no iat", map[string]any{"exp": now + 3600}, 401, "unauthorized"},
	} {
		c.claims["sub"], c.claims["role"] = "ops", "agent"
		if c.name == "a day and a minute" {
			c.claims["role"] = "customer"
		}
		req := httptest.NewRequest("GET", "/v1/skus", nil)
		req.Header.Set("Authorization", "Bearer "+craft(t, c.claims))
		w := httptest.NewRecorder()
		a.srv.ServeHTTP(w, req)
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d, not JSON: %s", c.name, w.Code, w.Body)
		}
		if w.Code != c.status || code(body) != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, w.Code, body, c.status, c.code)
		}
		if w.Code == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: no WWW-Authenticate", c.name)
		}
	}
}

// TestRequestIDAndTraceparentFormats: what the client sends as
// X-Request-Id and Traceparent is stored with the commit only in its
// valid format; anything else is replaced, and the answer names the
// value used.
func TestRequestIDAndTraceparentFormats(t *testing.T) {
	a := newAPI(t, nil)
	a.putSKU("TEA", 1999, 100)
	const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for i, c := range []struct {
		rid, tp         string
		keepRID, keepTP bool
		storedTP        string
	}{
		{rid: "client-42", tp: trace, keepRID: true, keepTP: true},
		{rid: "0190b6a4-1c2e-7a3b-9f00-5e1d2c3b4a59", keepRID: true},
		{rid: "a:b.c_d-e", tp: "01" + trace[2:] + "-more", keepRID: true, storedTP: "01" + trace[2:]},
		{rid: strings.Repeat("r", 64), keepRID: true, tp: "cc" + trace[2:], keepTP: true},
		{rid: strings.Repeat("r", 65), tp: strings.Replace(trace, "4bf9", "4BF9", 1)},
		{rid: "two words", tp: "00-" + strings.Repeat("0", 32) + trace[35:]},
		{rid: "<b>", tp: trace[:36] + strings.Repeat("0", 16) + "-01"},
		{rid: "id\u00e9", tp: "ff" + trace[2:]},
		{rid: "", tp: trace + "0"},
		{rid: "x/y", tp: "01" + trace[2:] + "x"},
		{rid: "%41", tp: trace[:54]},
		{rid: "a\tb", tp: "00-" + trace[3:34] + "g" + trace[35:]},
	} {
		req := httptest.NewRequest("POST", "/v1/orders", strings.NewReader(mustJSON(t, orderBody)))
		req.Header.Set("Authorization", "Bearer "+a.token("c-1", auth.RoleCustomer))
		req.Header.Set("Idempotency-Key", fmt.Sprint("rid-", i))
		if c.rid != "" {
			req.Header.Set("X-Request-Id", c.rid)
		}
		if c.tp != "" {
			req.Header.Set("Traceparent", c.tp)
		}
		w := httptest.NewRecorder()
		a.srv.ServeHTTP(w, req)
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 202 {
			t.Fatalf("%d: %d %s", i, w.Code, w.Body)
		}
		recs, err := a.log.Load(context.Background(), eventlog.TypeOrder, body["order_id"].(string), 0)
		if err != nil || len(recs) != 1 {
			t.Fatalf("%d: %d commits, %v", i, len(recs), err)
		}
		md := recs[0].Commit.Metadata
		if got := w.Header().Get("X-Request-Id"); got != md.CorrelationID {
			t.Errorf("%d: answered X-Request-Id %q, stored %q", i, got, md.CorrelationID)
		}
		if c.keepRID != (md.CorrelationID == c.rid) || (!c.keepRID && !strings.HasPrefix(md.CorrelationID, "req_")) {
			t.Errorf("X-Request-Id %q stored as %q", c.rid, md.CorrelationID)
		}
		want := c.tp
		if c.storedTP != "" {
			want = c.storedTP
		}
		switch {
		case c.tp == "":
			if md.Traceparent != "" || w.Header().Get("Traceparent") != "" {
				t.Errorf("%d: no traceparent sent, %q stored", i, md.Traceparent)
			}
		case c.keepTP || c.storedTP != "":
			if md.Traceparent != want {
				t.Errorf("Traceparent %q stored as %q, want %q", c.tp, md.Traceparent, want)
			}
		default:
			if md.Traceparent == c.tp || len(md.Traceparent) != 55 || !strings.HasPrefix(md.Traceparent, "00-") {
				t.Errorf("invalid Traceparent %q stored as %q, want a new trace", c.tp, md.Traceparent)
			}
		}
		if c.tp != "" && w.Header().Get("Traceparent") != md.Traceparent {
			t.Errorf("%d: answered Traceparent %q, stored %q", i, w.Header().Get("Traceparent"), md.Traceparent)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
