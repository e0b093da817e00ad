package psp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the HTTP header that carries a webhook's signature:
//
//	Ordo-Signature: t=1735689600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
//
// t is the Unix time of signing; v1 is the hex HMAC-SHA256, keyed with the
// shared webhook secret, of "<t>.<body>". Several v1 values may be given
// (during a secret rotation); one must match.
const SignatureHeader = "Ordo-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock before the webhook is refused as stale or replayed.
const DefaultTolerance = 5 * time.Minute

// ErrSignature means a webhook's signature is missing, malformed, wrong or
// outside the tolerance window.
var ErrSignature = errors.New("invalid webhook signature")

// Sign returns the SignatureHeader value for body signed at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a SignatureHeader value against body: the timestamp must
// be within tolerance of now, and one v1 signature must equal the HMAC of
// "<t>.<body>" (compared in constant time). Errors wrap [ErrSignature].
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: no secret configured", ErrSignature)
	}
	if header == "" {
		return fmt.Errorf("%w: the %s header is missing", ErrSignature, SignatureHeader)
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed element %q", ErrSignature, part)
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no valid timestamp", ErrSignature)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp is %s away from now, outside the %s tolerance", ErrSignature, d.Round(time.Second), tolerance)
	}
	want := []byte(mac(secret, ts, body))
	ok := false
	for _, s := range sigs {
		// Check every candidate so the time taken does not depend on
		// which one matches.
		if hmac.Equal([]byte(s), want) {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("%w: no signature matches", ErrSignature)
	}
	return nil
}
