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
