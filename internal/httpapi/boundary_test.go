package httpapi_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
