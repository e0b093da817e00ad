package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// SignatureStatus is what the signature check says of one commit.
type SignatureStatus string

// Signature statuses of one commit, as Verify counts them and history
// shows them.
const (
	SigVerified   SignatureStatus = "verified"      // signed by a key of the keyring, and it verifies
	SigUnsigned   SignatureStatus = "unsigned"      // unsigned, from before signing began
	SigMissing    SignatureStatus = "missing"       // unsigned, after signing began: not written by orderd
	SigUnknownKey SignatureStatus = "unknown_key"   // signed by a key the keyring does not hold
	SigBad        SignatureStatus = "bad"           // the signature does not verify: forged or altered
	SigUnchecked  SignatureStatus = "not_checkable" // the commit's hash cannot be computed
)

// SigningRule decides, commit by commit in stream order, whether a
// commit must be signed. Signing has begun for a stream at the sequence
// its metadata records (ordo.signed_from), or at its first commit that
// carries a signature, whichever comes first: from there on an unsigned
// commit was not written by orderd. Both come from the log itself, and
// appending cannot move either back, so a forger with NATS credentials
// but no signing key cannot make an appended commit pass as old
// unsigned history.
type SigningRule struct {
	signedFrom uint64 // from the stream's metadata; 0: none
	firstSig   uint64 // sequence of the first commit seen with a signature; 0: none yet
}

// BegunAt returns the sequence at which signing began, 0 if it has not
// (as far as the commits judged so far show).
func (r *SigningRule) BegunAt() uint64 {
	switch {
	case r.signedFrom == 0:
		return r.firstSig
	case r.firstSig == 0:
		return r.signedFrom
	}
	return min(r.signedFrom, r.firstSig)
}

// Judge returns the status of c, stored at seq, whose signature check
// gave sigErr (nil when it verifies; hashErr when its hash could not be
// computed), and moves the rule past it. Commits must come in stream
// order.
func (r *SigningRule) Judge(c *events.Commit, seq uint64, sigErr, hashErr error) SignatureStatus {
	if c.Signed() && r.firstSig == 0 {
		r.firstSig = seq
	}
	begun := r.BegunAt()
	switch {
	case !c.Signed() && (begun == 0 || seq < begun):
		return SigUnsigned
	case !c.Signed():
		return SigMissing
	case hashErr != nil:
		return SigUnchecked
	case sigErr == nil:
		return SigVerified
	case errors.Is(sigErr, events.ErrUnknownKey):
		return SigUnknownKey
	}
	return SigBad
}

// Problem names what is wrong with a commit of the given status for a
// finding, and what was expected and found; ok is false for the
// statuses that are no finding.
func (r *SigningRule) Problem(status SignatureStatus, c *events.Commit, sigErr error) (problem, expected, found string, ok bool) {
	switch status {
	case SigMissing:
		return "unsigned commit in signed history (not written by orderd)", fmt.Sprintf("a signature (signing began at seq %d)", r.BegunAt()), "none", true
	case SigUnknownKey:
		return "signed by a key not in the keyring", "a key of the keyring", c.KeyID, true
	case SigBad:
		keyID := c.KeyID
		if keyID == "" {
			keyID = "-"
		}
		return "signature does not verify (forged or altered)", "a valid signature by " + keyID, sigErr.Error(), true
	}
	return "", "", "", false
}

// errFoundSigned stops StreamSigningRule's scan.
var errFoundSigned = errors.New("found a signed commit")

// StreamSigningRule returns the signing rule of aggType's stream for a
// reader of one aggregate (Verify of one id, CheckAggregate), so that it
// judges the aggregate's commits as a whole-stream check does: the
// stream's ordo.signed_from, and its first commit that carries a
// signature, found by reading the stream from its start up to that
// commit (to its end when none does; the metadata, when it says 1,
// spares that read). Metadata that is no sequence is returned as a
// problem to report (and signing taken to have begun at 1).
func StreamSigningRule(ctx context.Context, log Log, aggType string) (r SigningRule, problem string, err error) {
	if r.signedFrom, problem, err = loadSignedFrom(ctx, log, aggType); err != nil || r.signedFrom == 1 {
		return r, problem, err
	}
	sigKey, keyKey := []byte(`"sig"`), []byte(`"key_id"`)
	err = log.ReplayRaw(ctx, aggType, 1, func(m eventlog.StoredMsg) error {
		if r.signedFrom != 0 && m.Seq >= r.signedFrom {
			return errFoundSigned
		}
		if !bytes.Contains(m.Data, sigKey) && !bytes.Contains(m.Data, keyKey) {
			return nil
		}
		if c, err := events.Unmarshal(m.Data); err == nil && c.Signed() {
			r.firstSig = m.Seq
			return errFoundSigned
		}
		return nil
	})
	if errors.Is(err, errFoundSigned) {
		err = nil
	}
	return r, problem, err
}

// loadSignedFrom reads aggType's ordo.signed_from. Metadata that is not a
// sequence is returned as a problem to report (and signing taken to have
// begun at 1); other errors fail the check.
func loadSignedFrom(ctx context.Context, log Log, aggType string) (seq uint64, problem string, err error) {
	seq, err = log.SignedFrom(ctx, aggType)
	if errors.Is(err, eventlog.ErrBadSignedFrom) {
		return seq, err.Error(), nil
	}
	return seq, "", err
}
