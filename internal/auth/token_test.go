package auth

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const secret = "0123456789abcdef0123456789abcdef"

func TestMintVerify(t *testing.T) {
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tok, err := s.Mint("cust-1", RoleCustomer, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Verify(tok, now.Add(59*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "cust-1" || c.Role != RoleCustomer {
		t.Fatalf("claims = %+v", c)
	}
	if _, err := s.Verify(tok, now.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired token: err = %v", err)
	}
	other, _ := NewSigner(strings.Repeat("x", 32))
	if _, err := other.Verify(tok, now); !errors.Is(err, ErrSignature) {
		t.Fatalf("foreign secret: err = %v", err)
	}
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + b64([]byte(`{"sub":"cust-1","role":"admin","iat":0,"exp":99999999999}`)) + "." + parts[2]
	if _, err := s.Verify(forged, now); !errors.Is(err, ErrSignature) {
		t.Fatalf("forged claims: err = %v", err)
	}
	for _, bad := range []string{"", "a.b", "a.b.c.d", "!!.!!.!!", tok + "x"} {
		if _, err := s.Verify(bad, now); err == nil {
			t.Fatalf("Verify(%q) accepted", bad)
		}
	}
}

func TestSignerRules(t *testing.T) {
	if _, err := NewSigner("short"); err == nil {
		t.Fatal("short secret accepted")
	}
	s, _ := NewSigner(secret)
	now := time.Now()
	if _, err := s.Mint("", RoleAdmin, now, time.Hour); err == nil {
		t.Fatal("empty subject accepted")
	}
	if _, err := s.Mint("a", Role("root"), now, time.Hour); err == nil {
		t.Fatal("unknown role accepted")
	}
	if _, err := s.Mint("a", RoleAdmin, now, 0); err == nil {
		t.Fatal("zero ttl accepted")
	}
}

// TestSubjectIsAnID: a subject becomes a customer id and part of the
// actor stored with commits, so only a valid id is minted or accepted,
// also in a token signed with the right secret by something else.
func TestSubjectIsAnID(t *testing.T) {
	s, _ := NewSigner(secret)
	now := time.Now()
	for _, sub := range []string{"cust\x00", "a.b", "a b", "张伟", "\xff", strings.Repeat("x", 129)} {
		if _, err := s.Mint(sub, RoleCustomer, now, time.Hour); err == nil {
			t.Errorf("Mint(%q) accepted", sub)
		}
		body, _ := json.Marshal(Claims{Subject: sub, Role: RoleCustomer, ExpiresAt: now.Add(time.Hour).Unix()})
		signing := jwsHeader + "." + b64(body)
		if _, err := s.Verify(signing+"."+b64(s.sign(signing)), now); !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify of a signed token for %q: %v", sub, err)
		}
	}
}

// signed returns a token for claims c signed with s, as something else
// holding the secret could make it.
func signed(t *testing.T, s *Signer, c Claims) string {
	t.Helper()
	body, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	signing := jwsHeader + "." + b64(body)
	return signing + "." + b64(s.sign(signing))
}

// TestTokenTimes: nbf and iat may not lie ahead of now by more than the
// clock skew, and exp - iat may not exceed the role's maximum lifetime.
func TestTokenTimes(t *testing.T) {
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	n := now.Unix()
	skew := int64(ClockSkew / time.Second)
	day := int64(24 * 3600)
	for _, tc := range []struct {
		name string
		c    Claims
		want error
	}{
		{"fresh", Claims{IssuedAt: n, ExpiresAt: n + 3600}, nil},
		{"iat within the skew", Claims{IssuedAt: n + skew, ExpiresAt: n + skew + 3600}, nil},
		{"nbf within the skew", Claims{IssuedAt: n, NotBefore: n + skew, ExpiresAt: n + 3600}, nil},
		{"nbf passed", Claims{IssuedAt: n - 60, NotBefore: n - 30, ExpiresAt: n + 3600}, nil},
		{"iat in the future", Claims{IssuedAt: n + skew + 1, ExpiresAt: n + 3600}, ErrNotYetValid},
		{"nbf in the future", Claims{IssuedAt: n, NotBefore: n + skew + 1, ExpiresAt: n + 3600}, ErrNotYetValid},
		{"exactly the maximum", Claims{IssuedAt: n - 10, ExpiresAt: n - 10 + day}, nil},
		{"a second over the maximum", Claims{IssuedAt: n, ExpiresAt: n + day + 1}, ErrLifetime},
		{"exp in year 9999", Claims{IssuedAt: n, ExpiresAt: 253402300799}, ErrLifetime},
		{"old iat, far exp", Claims{IssuedAt: n - 365*day, ExpiresAt: n + 3600}, ErrLifetime},
		{"no iat", Claims{ExpiresAt: n + 3600}, ErrMalformed},
		{"expired", Claims{IssuedAt: n - 7200, ExpiresAt: n}, ErrExpired},
	} {
		tc.c.Subject, tc.c.Role = "cust-1", RoleCustomer
		_, err := s.Verify(signed(t, s, tc.c), now)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestMaxLifetimes: each role has its own maximum, which Mint keeps to
// and Verify enforces; a configured maximum replaces the default.
func TestMaxLifetimes(t *testing.T) {
	s, _ := NewSigner(secret)
	now := time.Now()
	for role, max := range map[Role]time.Duration{RoleCustomer: DefaultMaxCustomer, RoleAgent: DefaultMaxAgent, RoleAdmin: DefaultMaxAdmin} {
		if got := s.MaxLifetime(role); got != max {
			t.Errorf("%s: maximum %s, want %s", role, got, max)
		}
		tok, err := s.Mint("a", role, now, max)
		if err != nil {
			t.Fatalf("%s: mint at the maximum: %v", role, err)
		}
		if _, err := s.Verify(tok, now); err != nil {
			t.Fatalf("%s: a token at the maximum: %v", role, err)
		}
		if _, err := s.Mint("a", role, now, max+time.Second); !errors.Is(err, ErrLifetime) {
			t.Errorf("%s: mint beyond the maximum: %v", role, err)
		}
		long := signed(t, s, Claims{Subject: "a", Role: role, IssuedAt: now.Unix(), ExpiresAt: now.Add(max + time.Second).Unix()})
		if _, err := s.Verify(long, now); !errors.Is(err, ErrLifetime) {
			t.Errorf("%s: a token beyond the maximum: %v", role, err)
		}
	}
	short, err := s.WithMaxLifetimes(MaxLifetimes{Admin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := s.Mint("ops", RoleAdmin, now, 2*time.Hour)
	if _, err := short.Verify(tok, now); !errors.Is(err, ErrLifetime) {
		t.Fatalf("a 2h admin token with a 1h maximum: %v", err)
	}
	if short.MaxLifetime(RoleCustomer) != DefaultMaxCustomer {
		t.Fatal("an unset maximum is not the default")
	}
	for _, bad := range []MaxLifetimes{{Customer: time.Second}, {Agent: LongestMaxLifetime + time.Hour}, {Admin: -time.Hour}} {
		if _, err := s.WithMaxLifetimes(bad); err == nil {
			t.Errorf("maximum lifetimes %+v accepted", bad)
		}
	}
}
