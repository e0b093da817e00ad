package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/auth"
)

// TestTokenDefaultsStayWithinTheMaxima: without --ttl, orderctl token
// mints each role's maximum lifetime, which orderd accepts; a --ttl
// beyond it is refused (exit 2) instead of minting a token orderd would
// refuse; the maxima come from the same variables orderd reads.
func TestTokenDefaultsStayWithinTheMaxima(t *testing.T) {
	s, err := auth.NewSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ORDO_AUTH_SECRET": testSecret}
	for _, role := range []auth.Role{auth.RoleCustomer, auth.RoleAgent, auth.RoleAdmin} {
		code, out, errOut := orderctl(t, env, "token", "--role", string(role), "--sub", "someone")
		if code != 0 {
			t.Fatalf("%s: exit %d %s", role, code, errOut)
		}
		c, err := s.Verify(strings.TrimSpace(out), time.Now())
		if err != nil {
			t.Fatalf("%s: the default token is refused: %v", role, err)
		}
		if got := time.Duration(c.ExpiresAt-c.IssuedAt) * time.Second; got != s.MaxLifetime(role) {
			t.Errorf("%s: default lifetime %s, want the maximum %s", role, got, s.MaxLifetime(role))
		}
		over := (s.MaxLifetime(role) + time.Hour).String()
		if code, _, errOut := orderctl(t, env, "token", "--role", string(role), "--sub", "someone", "--ttl", over); code != exitUsage || !strings.Contains(errOut, "maximum") {
			t.Errorf("%s --ttl %s: exit %d %q", role, over, code, errOut)
		}
	}
	env["ORDO_TOKEN_MAX_LIFETIME_ADMIN"] = "30m"
	code, out, errOut := orderctl(t, env, "token", "--role", "admin", "--sub", "ops")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	short, err := s.WithMaxLifetimes(auth.MaxLifetimes{Admin: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := short.Verify(strings.TrimSpace(out), time.Now()); err != nil || c.ExpiresAt-c.IssuedAt != 1800 {
		t.Fatalf("with a 30m admin maximum: %+v %v", c, err)
	}
	env["ORDO_TOKEN_MAX_LIFETIME_ADMIN"] = "forever"
	if code, _, errOut := orderctl(t, env, "token", "--role", "admin", "--sub", "ops"); code != exitUsage || !strings.Contains(errOut, "ORDO_TOKEN_MAX_LIFETIME_ADMIN") {
		t.Fatalf("a bad maximum: exit %d %q", code, errOut)
	}
}
