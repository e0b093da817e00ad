package events

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func newSigner(tb testing.TB) *Ed25519Signer {
	tb.Helper()
	priv, err := GenerateSigningKey()
	if err != nil {
		tb.Fatal(err)
	}
	s, err := NewEd25519Signer(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func keyringOf(tb testing.TB, signers ...*Ed25519Signer) *Keyring {
	tb.Helper()
	r := &Keyring{}
	for _, s := range signers {
		if _, err := r.Add(s.Public()); err != nil {
			tb.Fatal(err)
		}
	}
	return r
}

// TestUnsignedCommitsKeepTheirBytesAndHash: the hash and stored bytes of
// a commit without a signature are what they were before commits could
// be signed, so the history written before stays intact.
func TestUnsignedCommitsKeepTheirBytesAndHash(t *testing.T) {
	const (
		hash   = "ad3527235bf5871dfdb549425b78aefe8546d00d93ac54fb3b2b5cc15523de77"
		stored = `{"commit_id":"cmd-1","aggregate_type":"order","aggregate_id":"o-1","version":1,"events":[{"type":"order.placed","schema_version":1,"data":{"a":1}}],"metadata":{"correlation_id":"corr-1","causation_id":"cause-1","actor":"customer:c-1","recorded_at":"2026-03-14T15:09:26.535897932Z"},"prev_hash":"","hash":"` + hash + `"}`
	)
	c := newCommit(1, `{"a":1}`)
	if err := c.SealSigned("", nil); err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash != hash || string(b) != stored {
		t.Fatalf("an unsigned commit changed:\n%s\nwant\n%s", b, stored)
	}
	back, err := Unmarshal([]byte(stored))
	if err != nil || back.Signed() || back.VerifyHash() != nil {
		t.Fatalf("stored unsigned commit: %+v %v", back, err)
	}
}

func TestSignedCommitVerifies(t *testing.T) {
	s := newSigner(t)
	keys := keyringOf(t, s)
	c := newCommit(1, `{"a":1}`)
	if err := c.SealSigned("", s); err != nil {
		t.Fatal(err)
	}
	if c.KeyID != s.KeyID() || !strings.HasPrefix(c.KeyID, "ed25519:") || len(c.KeyID) != len("ed25519:")+16 {
		t.Fatalf("key id %q, signer %q", c.KeyID, s.KeyID())
	}
	if err := c.VerifyHash(); err != nil {
		t.Fatal(err)
	}
	if err := c.VerifySignature(mustHash(t, c), keys); err != nil {
		t.Fatal(err)
	}
	// The stored form keeps both fields; decoded again it still verifies.
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.KeyID != c.KeyID || back.Sig != c.Sig || back.VerifySignature(mustHash(t, back), keys) != nil {
		t.Fatalf("round trip: %s", b)
	}
	// The next commit links to the signed one's hash and verifies too.
	next := newCommit(2, `{"a":2}`)
	if err := next.SealSigned(c.Hash, s); err != nil {
		t.Fatal(err)
	}
	if breaks := VerifyChain([]*Commit{c, next}); len(breaks) > 0 {
		t.Fatal(breaks)
	}
	if err := next.VerifySignature(mustHash(t, next), keys); err != nil {
		t.Fatal(err)
	}
	// Resealing with no signer leaves no signature behind.
	if err := next.SealSigned(c.Hash, nil); err != nil || next.Signed() {
		t.Fatalf("resealed unsigned: %+v %v", next, err)
	}
}

func TestHashCoversTheKeyIDButNotTheSignature(t *testing.T) {
	s := newSigner(t)
	c := newCommit(1, `{"a":1}`)
	if err := c.SealSigned("", s); err != nil {
		t.Fatal(err)
	}
	h := mustHash(t, c)
	c.Sig = "something else"
	if mustHash(t, c) != h {
		t.Error("the hash depends on the signature")
	}
	c.KeyID = newSigner(t).KeyID()
	if mustHash(t, c) == h {
		t.Error("the hash does not cover the key id")
	}
}

func TestForgedAndAlteredCommitsAreRefused(t *testing.T) {
	s, other := newSigner(t), newSigner(t)
	keys := keyringOf(t, s)
	signed := func() *Commit {
		c := newCommit(2, `{"a":2}`)
		if err := c.SealSigned(strings.Repeat("a", 64), s); err != nil {
			t.Fatal(err)
		}
		return c
	}
	donor := newCommit(3, `{"a":3}`)
	if err := donor.SealSigned(strings.Repeat("b", 64), s); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(c *Commit)
		want   error
	}{
		{"unsigned", func(c *Commit) { mustSeal(t, c, c.PrevHash); c.KeyID, c.Sig = "", "" }, ErrUnsigned},
		{"altered after signing", func(c *Commit) { c.Metadata.Actor = "mallory" }, ErrBadSignature},
		{"altered and resealed", func(c *Commit) {
			c.Events[0].Data = json.RawMessage(`{"a":99}`)
			mustSeal(t, c, c.PrevHash)
		}, ErrBadSignature},
		{"another commit's signature", func(c *Commit) { c.Sig = donor.Sig }, ErrBadSignature},
		{"signed by a key not in the keyring", func(c *Commit) {
			if err := c.SealSigned(c.PrevHash, other); err != nil {
				t.Fatal(err)
			}
		}, ErrUnknownKey},
		{"signed by another key under the known id", func(c *Commit) {
			if err := c.SealSigned(c.PrevHash, other); err != nil {
				t.Fatal(err)
			}
			c.KeyID = s.KeyID()
			mustSeal(t, c, c.PrevHash)
			sig, _ := other.Sign(signedMessage(c.Hash))
			c.Sig = sigEncoding.EncodeToString(sig)
		}, ErrBadSignature},
		{"key id without a signature", func(c *Commit) { c.Sig = "" }, ErrBadSignature},
		{"signature without a key id", func(c *Commit) { c.KeyID = ""; mustSeal(t, c, c.PrevHash) }, ErrBadSignature},
		{"signature not base64", func(c *Commit) { c.Sig = "!!" }, ErrBadSignature},
		{"signature too short", func(c *Commit) { c.Sig = c.Sig[:40] }, ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := signed()
			tc.change(c)
			if err := c.VerifySignature(mustHash(t, c), keys); !errors.Is(err, tc.want) {
				t.Fatalf("VerifySignature = %v, want %v", err, tc.want)
			}
		})
	}
	if err := signed().VerifySignature(mustHash(t, signed()), nil); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("no keyring: %v", err)
	}
}

func TestSigningKeyFileRoundTrip(t *testing.T) {
	priv, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := MarshalSigningKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(pemBytes), "-----BEGIN PRIVATE KEY-----\n") {
		t.Fatalf("not PEM PKCS #8:\n%s", pemBytes)
	}
	back, err := ParseSigningKey(pemBytes)
	if err != nil || !back.Equal(priv) {
		t.Fatalf("parse: %v", err)
	}
	// What openssl genpkey -algorithm ed25519 writes for the RFC 8032
	// test key 1 (seed 9d61b19d...).
	const openssl = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n"
	k, err := ParseSigningKey([]byte(openssl))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := NewEd25519Signer(k); s.Public().String() != KeyID(k.Public().(ed25519.PublicKey))+" ed25519 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" {
		t.Fatalf("RFC 8032 key 1: %s", s.Public())
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"empty":       nil,
		"not PEM":     []byte("ed25519 abc"),
		"public key":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"not PKCS #8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}),
		"ECDSA":       pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
	} {
		if _, err := ParseSigningKey(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewEd25519Signer(priv[:10]); err == nil {
		t.Error("a short private key was accepted")
	}
}

func TestKeyring(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	ka, kb := a.Public(), b.Public()
	kb.Comment = "orderd-2, rotated 2026-05-01"
	text := "# Ordo commit signing keys\n\n" + ka.String() + "\n  " + kb.String() + "\n" + ka.String() + "\n"
	r, err := ParseKeyring([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 {
		t.Fatalf("%d keys, want 2 (the duplicate counted once)", r.Len())
	}
	got, ok := r.Lookup(b.KeyID())
	if !ok || !got.Key.Equal(kb.Key) || got.Comment != kb.Comment {
		t.Fatalf("lookup %s: %+v %v", b.KeyID(), got, ok)
	}
	if keys := r.Keys(); keys[0].ID != a.KeyID() || keys[1].ID != b.KeyID() {
		t.Fatalf("order %v", keys)
	}
	if _, ok := r.Lookup("ed25519:0000000000000000"); ok {
		t.Fatal("found an unknown id")
	}
	swapped := ka
	swapped.ID = b.KeyID()
	for name, text := range map[string]string{
		"too few fields":           a.KeyID() + " ed25519\n",
		"other algorithm":          a.KeyID() + " rsa AAAA\n",
		"not base64":               a.KeyID() + " ed25519 ***\n",
		"wrong length":             a.KeyID() + " ed25519 AAAA\n",
		"id that is not its key's": swapped.String() + "\n",
	} {
		if _, err := ParseKeyring([]byte(text)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if empty, err := ParseKeyring(nil); err != nil || empty.Len() != 0 {
		t.Fatalf("empty keyring: %v", err)
	}
}

// BenchmarkSign is what signing adds to each commit the handler seals:
// one Ed25519 signature over the domain and the hash.
//
//	go test ./events -run '^$' -bench 'Sign|SealCommit' -count 3
func BenchmarkSign(b *testing.B) {
	s := newSigner(b)
	msg := signedMessage(strings.Repeat("ab", 32))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifySignature is what checking a signature adds to each
// commit orderctl verify reads.
func BenchmarkVerifySignature(b *testing.B) {
	s := newSigner(b)
	keys := keyringOf(b, s)
	c := newCommit(1, `{"a":1}`)
	if err := c.SealSigned("", s); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.VerifySignature(c.Hash, keys); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealCommit seals a checkout-sized commit with and without a
// signer: what the command handler spends per commit before the append.
func BenchmarkSealCommit(b *testing.B) {
	const data = `{"customer_id":"cus-1","lines":[{"sku":"TEA-250","qty":2,"unit_price":{"amount":1999,"currency":"CNY"}},{"sku":"CUP-01","qty":1,"unit_price":{"amount":4999,"currency":"CNY"}}],"total":{"amount":8997,"currency":"CNY"}}`
	for _, signed := range []bool{false, true} {
		var s CommitSigner
		name := "unsigned"
		if signed {
			s, name = newSigner(b), "signed"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := newCommit(1, data)
				if err := c.SealSigned("", s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
