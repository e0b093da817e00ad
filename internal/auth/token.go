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

// Claims are what a token says about its holder. NotBefore is optional
// (Ordo mints none, but honours one); IssuedAt is required.
type Claims struct {
	Subject   string `json:"sub"`
	Role      Role   `json:"role"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf,omitempty"`
	ExpiresAt int64  `json:"exp"`
}

// Errors returned by [Signer.Verify].
var (
	ErrMalformed = errors.New("malformed token")
	ErrSignature = errors.New("bad token signature")
	ErrExpired   = errors.New("token expired")
	// ErrNotYetValid: the token's nbf or iat is later than now (beyond
	// [ClockSkew]).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrLifetime: exp - iat is more than its role's maximum lifetime.
	ErrLifetime = errors.New("token lifetime too long")
)

// ClockSkew is how far a token's iat and nbf may lie ahead of the
// verifier's clock: the clocks of the machine that minted it and of the
// one that checks it may differ by that much. Expiry has no allowance.
const ClockSkew = 60 * time.Second

// MaxLifetimes are the longest lifetimes (exp - iat) a token of each role
// may have. A role with none set (zero) uses its default.
type MaxLifetimes struct {
	Customer, Agent, Admin time.Duration
}

// Default maximum lifetimes: a customer's session lasts a day; a staff
// token, which can read or change any order, one working shift (agent)
// or one working day (admin), so a leaked staff token is useful for
// less time.
const (
	DefaultMaxCustomer = 24 * time.Hour
	DefaultMaxAgent    = 12 * time.Hour
	DefaultMaxAdmin    = 8 * time.Hour
	// LongestMaxLifetime bounds what a configured maximum may be.
	LongestMaxLifetime = 30 * 24 * time.Hour
)

// DefaultMaxLifetimes returns the default maximum of every role.
func DefaultMaxLifetimes() MaxLifetimes {
	return MaxLifetimes{Customer: DefaultMaxCustomer, Agent: DefaultMaxAgent, Admin: DefaultMaxAdmin}
}

// For returns the maximum lifetime of role (its default if unset).
func (m MaxLifetimes) For(role Role) time.Duration {
	d, def := m.Customer, DefaultMaxCustomer
	switch role {
	case RoleAgent:
		d, def = m.Agent, DefaultMaxAgent
	case RoleAdmin:
		d, def = m.Admin, DefaultMaxAdmin
	}
	if d <= 0 {
		return def
	}
	return d
}

// Validate checks that every set maximum is at least a minute and at
// most [LongestMaxLifetime].
func (m MaxLifetimes) Validate() error {
	var errs []error
	for _, r := range []struct {
		role Role
		d    time.Duration
	}{{RoleCustomer, m.Customer}, {RoleAgent, m.Agent}, {RoleAdmin, m.Admin}} {
		if r.d != 0 && (r.d < time.Minute || r.d > LongestMaxLifetime) {
			errs = append(errs, fmt.Errorf("maximum token lifetime of %s %s: want 1m to %s", r.role, r.d, LongestMaxLifetime))
		}
	}
	return errors.Join(errs...)
}

// Signer mints and verifies tokens with one secret. It is safe for
// concurrent use.
type Signer struct {
	secret []byte
	max    MaxLifetimes
}

// NewSigner returns a Signer for secret, which must be at least
// [MinSecretLen] bytes, with the default maximum lifetimes.
func NewSigner(secret string) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("auth secret is %d bytes; at least %d are required", len(secret), MinSecretLen)
	}
	return &Signer{secret: []byte(secret), max: DefaultMaxLifetimes()}, nil
}

// WithMaxLifetimes returns a Signer with the same secret that mints and
// accepts tokens up to the maximum lifetimes m.
func (s *Signer) WithMaxLifetimes(m MaxLifetimes) (*Signer, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &Signer{secret: s.secret, max: m}, nil
}

// MaxLifetime returns the longest lifetime a token of role may have.
func (s *Signer) MaxLifetime(role Role) time.Duration { return s.max.For(role) }

var jwsHeader = b64([]byte(`{"alg":"HS256","typ":"JWT"}`))

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Mint returns a token for subject with role, valid from now for ttl,
// which must not exceed the role's maximum lifetime. The subject must be a valid id ([events.ValidID]): it becomes the
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
	if ttl = ttl.Truncate(time.Second); ttl > s.max.For(role) {
		return "", fmt.Errorf("token ttl %s is more than the %s maximum of %s: %w", ttl, role, s.max.For(role), ErrLifetime)
	}
	if ttl == 0 {
		return "", errors.New("token ttl must be at least a second")
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

// Verify checks a token's signature and its times at now and returns its
// claims: it must not have expired (exp), must already be valid (nbf and
// iat no later than now + [ClockSkew]), and its lifetime (exp - iat) must
// be within its role's maximum. A signed token whose subject is not a
// valid id (minted by something else with the secret), or that has no
// iat, is refused as malformed.
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
	if c.IssuedAt <= 0 {
		return Claims{}, ErrMalformed
	}
	t, skew := now.Unix(), int64(ClockSkew/time.Second)
	if t >= c.ExpiresAt {
		return Claims{}, ErrExpired
	}
	if c.NotBefore > t+skew || c.IssuedAt > t+skew {
		return Claims{}, ErrNotYetValid
	}
	if c.ExpiresAt-c.IssuedAt > int64(s.max.For(c.Role)/time.Second) {
		return Claims{}, ErrLifetime
	}
	return c, nil
}
