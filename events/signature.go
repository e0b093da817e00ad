package events

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Commit signatures. The hash chain shows that a history was not changed
// after the fact, but anyone who can append to the log can append a
// correctly chained commit. A signature shows who wrote a commit: orderd
// signs each commit's hash with a private key that lives with orderd, not
// in NATS, and auditors check it with the public key alone.
//
// A signed commit carries KeyID (covered by its hash, so it cannot be
// swapped) and Sig: the Ed25519 signature, base64url without padding,
// over sigDomain followed by the commit's hex hash. The hash covers the
// previous commit's hash and the canonical content, so the signature
// covers them too.

// sigDomain separates Ordo's commit signatures from anything else the same
// key could be made to sign.
const sigDomain = "ordo.commit.sig.v1\n"

// sigEncoding encodes Sig.
var sigEncoding = base64.RawURLEncoding

// keyIDPrefix starts every key id: the algorithm, so a later scheme gets
// ids of its own.
const keyIDPrefix = "ed25519:"

// CommitSigner signs commits. KeyID names its key as a [Keyring] does;
// Sign signs a message with it. Implementations must be safe for
// concurrent use.
type CommitSigner interface {
	KeyID() string
	Sign(message []byte) ([]byte, error)
}

// SealSigned seals the commit like [Commit.Seal] and, with a signer, signs
// it: KeyID is set before the hash is computed, Sig after. With a nil
// signer it is Seal.
func (c *Commit) SealSigned(prevHash string, s CommitSigner) error {
	c.KeyID, c.Sig = "", ""
	if s == nil {
		return c.Seal(prevHash)
	}
	c.KeyID = s.KeyID()
	if err := c.Seal(prevHash); err != nil {
		return err
	}
	sig, err := s.Sign(signedMessage(c.Hash))
	if err != nil {
		return fmt.Errorf("sign commit %s: %w", c.CommitID, err)
	}
	c.Sig = sigEncoding.EncodeToString(sig)
	return nil
}

func signedMessage(hash string) []byte {
	return append([]byte(sigDomain), hash...)
}

// Signed reports whether the commit carries any part of a signature.
func (c *Commit) Signed() bool { return c.KeyID != "" || c.Sig != "" }

// Errors returned by [Commit.VerifySignature].
var (
	// ErrUnsigned means the commit carries no signature.
	ErrUnsigned = errors.New("commit is not signed")
	// ErrUnknownKey means the commit names a key the keyring does not
	// hold: signed by a key nobody handed to the auditor, or by none.
	ErrUnknownKey = errors.New("commit is signed by a key not in the keyring")
	// ErrBadSignature means the signature does not verify with the key
	// it names: the commit was forged or altered after signing.
	ErrBadSignature = errors.New("commit signature does not verify")
)

// VerifySignature checks the commit's signature against hash, which must
// be the hash of its content as [Commit.ComputeHash] computes it (not the
// stored Hash, which a forger could have copied from a signed commit),
// with the public keys of keys.
func (c *Commit) VerifySignature(hash string, keys *Keyring) error {
	switch {
	case !c.Signed():
		return ErrUnsigned
	case c.KeyID == "":
		return fmt.Errorf("%w: a signature without a key id", ErrBadSignature)
	}
	pub, ok := keys.Lookup(c.KeyID)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownKey, c.KeyID)
	}
	if c.Sig == "" {
		return fmt.Errorf("%w: key id %s but no signature", ErrBadSignature, c.KeyID)
	}
	sig, err := sigEncoding.DecodeString(c.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: the signature is not %d bytes of base64url", ErrBadSignature, ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub.Key, signedMessage(hash), sig) {
		return fmt.Errorf("%w: key %s", ErrBadSignature, c.KeyID)
	}
	return nil
}

// KeyID returns the key id of an Ed25519 public key: "ed25519:" and the
// first 8 bytes of the key's SHA-256 in hex. A new key has a new id.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return keyIDPrefix + hex.EncodeToString(sum[:8])
}

// Ed25519Signer signs commits with an Ed25519 private key.
type Ed25519Signer struct {
	id   string
	priv ed25519.PrivateKey
}

var _ CommitSigner = (*Ed25519Signer)(nil)

// NewEd25519Signer returns a signer for priv.
func NewEd25519Signer(priv ed25519.PrivateKey) (*Ed25519Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("signing key: %d bytes, want an Ed25519 private key of %d", len(priv), ed25519.PrivateKeySize)
	}
	return &Ed25519Signer{id: KeyID(priv.Public().(ed25519.PublicKey)), priv: priv}, nil
}

// KeyID implements [CommitSigner].
func (s *Ed25519Signer) KeyID() string { return s.id }

// Sign implements [CommitSigner].
func (s *Ed25519Signer) Sign(message []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, message), nil
}

// Public returns the signer's public key, as a keyring holds it.
func (s *Ed25519Signer) Public() PublicKey {
	return PublicKey{ID: s.id, Key: s.priv.Public().(ed25519.PublicKey)}
}

// GenerateSigningKey returns a new Ed25519 private key from crypto/rand.
func GenerateSigningKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return priv, nil
}

// pemPrivateKey is the PEM block type of a PKCS #8 private key.
const pemPrivateKey = "PRIVATE KEY"

// MarshalSigningKey encodes a private key as a PEM "PRIVATE KEY" block
// (PKCS #8), the form `openssl genpkey -algorithm ed25519` writes.
func MarshalSigningKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParseSigningKey decodes a private key that [MarshalSigningKey] (or
// openssl) wrote: a PEM "PRIVATE KEY" block holding an Ed25519 key.
func ParseSigningKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemPrivateKey {
		return nil, errors.New("signing key: not a PEM \"PRIVATE KEY\" block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key: a %T, want Ed25519", key)
	}
	return priv, nil
}

// PublicKey is one key of a [Keyring]: its id, the Ed25519 public key and
// a free-text comment (who made it, when, for which instance).
type PublicKey struct {
	ID      string
	Key     ed25519.PublicKey
	Comment string
}

// String is the key's keyring line: "<id> ed25519 <base64 key> [comment]".
func (k PublicKey) String() string {
	s := k.ID + " ed25519 " + base64.StdEncoding.EncodeToString(k.Key)
	if k.Comment != "" {
		s += " " + k.Comment
	}
	return s
}

// Keyring is the public keys commits may be signed with, by key id. Its
// zero value and nil are empty keyrings.
//
// Its file form is text, one key a line: the key id, "ed25519", the
// public key in standard base64, then an optional comment; blank lines
// and lines starting with # are ignored. Old keys stay in it after a
// rotation, so the commits they signed still verify.
type Keyring struct {
	keys []PublicKey
	byID map[string]int
}

// Lookup returns the key with id.
func (r *Keyring) Lookup(id string) (PublicKey, bool) {
	if r == nil {
		return PublicKey{}, false
	}
	i, ok := r.byID[id]
	if !ok {
		return PublicKey{}, false
	}
	return r.keys[i], true
}

// Keys returns the keys in the order they were added.
func (r *Keyring) Keys() []PublicKey {
	if r == nil {
		return nil
	}
	return append([]PublicKey(nil), r.keys...)
}

// Len is the number of keys.
func (r *Keyring) Len() int {
	if r == nil {
		return 0
	}
	return len(r.keys)
}

// Add adds k and reports whether it was new. A key whose id does not
// match the key is refused.
func (r *Keyring) Add(k PublicKey) (bool, error) {
	if len(k.Key) != ed25519.PublicKeySize {
		return false, fmt.Errorf("keyring: key %s is %d bytes, want %d", k.ID, len(k.Key), ed25519.PublicKeySize)
	}
	if want := KeyID(k.Key); k.ID != want {
		return false, fmt.Errorf("keyring: key id %q does not match its key (whose id is %s)", k.ID, want)
	}
	if _, ok := r.byID[k.ID]; ok {
		return false, nil
	}
	if r.byID == nil {
		r.byID = map[string]int{}
	}
	r.byID[k.ID] = len(r.keys)
	r.keys = append(r.keys, k)
	return true, nil
}

// ParseKeyring reads a keyring file's contents. Every line that is not
// blank or a comment must be a key; the error names the first that is
// not.
func ParseKeyring(data []byte) (*Keyring, error) {
	r := &Keyring{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := parseKeyLine(line)
		if err != nil {
			return nil, fmt.Errorf("keyring line %d: %w", n, err)
		}
		if _, err := r.Add(k); err != nil {
			return nil, fmt.Errorf("keyring line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return r, nil
}

func parseKeyLine(line string) (PublicKey, error) {
	f := strings.Fields(line)
	if len(f) < 3 || f[1] != "ed25519" {
		return PublicKey{}, errors.New(`want "<key id> ed25519 <base64 public key> [comment]"`)
	}
	key, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil || len(key) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("key %s: not %d bytes of base64", f[0], ed25519.PublicKeySize)
	}
	return PublicKey{ID: f[0], Key: ed25519.PublicKey(key), Comment: strings.Join(f[3:], " ")}, nil
}
