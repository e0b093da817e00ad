package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/events"
)

// Role is what a token's holder may do.
type Role string

// The roles the API knows (README: API).
const (
	// RoleCustomer places orders and sees and cancels only their own;
	// the token's subject is the customer id.
	RoleCustomer Role = "customer"
	// RoleAgent reads and searches any order and may cancel.
	RoleAgent Role = "agent"
	// RoleAdmin manages the catalog and operations.
	RoleAdmin Role = "admin"
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleCustomer, RoleAgent, RoleAdmin:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want customer, agent or admin)", s)
}

// MinSecretLen is the shortest signing secret accepted.
const MinSecretLen = 32

// Claims are what a token says about its holder.
type Claims struct {
	Subject   string `json:"sub"`
	Role      Role   `json:"role"`
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp"`
}

// Errors returned by [Verifier.Verify].
var (
	ErrMalformed = errors.New("malformed token")
	ErrSignature = errors.New("bad token signature")
	ErrExpired   = errors.New("token expired")
)

// Signer mints and verifies tokens with one secret. It is safe for
// concurrent use.
type Signer struct {
	secret []byte
}

// NewSigner returns a Signer for secret, which must be at least
// [MinSecretLen] bytes.
func NewSigner(secret string) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("auth secret is %d bytes; at least %d are required", len(secret), MinSecretLen)
	}
	return &Signer{secret: []byte(secret)}, nil
}

var jwsHeader = b64([]byte(`{"alg":"HS256","typ":"JWT"}`))

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Mint returns a token for subject with role, valid from now for ttl.
// The subject must be a valid id ([events.ValidID]): it becomes the
// customer id of the orders a customer places and is part of the actor
// stored with every commit.
func (s *Signer) Mint(subject string, role Role, now time.Time, ttl time.Duration) (string, error) {
	if !events.ValidID(subject) {
		return "", fmt.Errorf("token subject %q is not 1-128 characters of letters, digits, '-' and '_'", subject)
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", errors.New("token ttl must be positive")
	}
	body, err := json.Marshal(Claims{Subject: subject, Role: role, IssuedAt: now.Unix(), ExpiresAt: now.Add(ttl).Unix()})
	if err != nil {
		return "", err
	}
	signing := jwsHeader + "." + b64(body)
	return signing + "." + b64(s.sign(signing)), nil
}

func (s *Signer) sign(signing string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(signing))
	return m.Sum(nil)
}

// Verify checks a token's signature and expiry at now and returns its
// claims. A signed token whose subject is not a valid id (minted by
// something else with the secret) is refused as malformed.
func (s *Signer) Verify(token string, now time.Time) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 4096 {
		return Claims{}, ErrMalformed
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	if !hmac.Equal(sig, s.sign(parts[0]+"."+parts[1])) {
		return Claims{}, ErrSignature
	}
	if parts[0] != jwsHeader {
		return Claims{}, ErrMalformed
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var c Claims
	if err := json.Unmarshal(body, &c); err != nil || !events.ValidID(c.Subject) {
		return Claims{}, ErrMalformed
	}
	if _, err := ParseRole(string(c.Role)); err != nil {
		return Claims{}, ErrMalformed
	}
	if now.Unix() >= c.ExpiresAt {
		return Claims{}, ErrExpired
	}
	return c, nil
}
