package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/localdir"
	"github.com/ordo-shop/ordo/streams"
)

// keyFlags is the --keys flag of the commands that check signatures.
type keyFlags struct {
	path string
}

func (k *keyFlags) register(fs *flag.FlagSet, e env) {
	fs.StringVar(&k.path, "keys", e.getenv("ORDO_SIGNING_KEYS"), "keyring of the public keys commits are signed with")
}

// load reads the keyring: the file --keys or ORDO_SIGNING_KEYS names,
// else, for the local default, the data dir's signing.keys. It returns
// where it came from ("" when there is none: every signed commit is then
// signed by a key not in the keyring).
func (k *keyFlags) load(l *logFlags) (*events.Keyring, string, error) {
	if k.path != "" {
		r, err := localdir.ReadKeyring(k.path)
		if err != nil {
			return nil, "", fmt.Errorf("--keys: %w", err)
		}
		return r, k.path, nil
	}
	if l.natsURL != "" {
		return &events.Keyring{}, "", nil
	}
	path := filepath.Join(l.dataDir, localdir.SigningKeys)
	r, err := localdir.ReadKeyring(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &events.Keyring{}, "", nil
	case err != nil:
		return nil, "", err
	}
	return r, path, nil
}

// keyringName says in a summary which keyring signatures were checked
// against.
func keyringName(source string, keys *events.Keyring) string {
	if source == "" {
		return "no keyring (--keys, ORDO_SIGNING_KEYS)"
	}
	return fmt.Sprintf("%d key(s) from %s", keys.Len(), source)
}

// Signature statuses of one commit, as verify counts them and history
// shows them.
const (
	sigVerified   = "verified"      // signed by a key of the keyring, and it verifies
	sigUnsigned   = "unsigned"      // unsigned, from before signing began
	sigMissing    = "missing"       // unsigned, after signing began: not written by orderd
	sigUnknownKey = "unknown_key"   // signed by a key the keyring does not hold
	sigBad        = "bad"           // the signature does not verify: forged or altered
	sigUnchecked  = "not_checkable" // the commit's hash cannot be computed
)

// signingRule decides, commit by commit in stream order, whether a
// commit must be signed. Signing has begun for a stream at the sequence
// its metadata records (ordo.signed_from), or at its first commit that
// carries a signature, whichever comes first: from there on an unsigned
// commit was not written by orderd. Both come from the log itself, and
// appending cannot move either back, so a forger with NATS credentials
// but no signing key cannot make an appended commit pass as old
// unsigned history.
type signingRule struct {
	signedFrom uint64 // from the stream's metadata; 0: none
	firstSig   uint64 // sequence of the first commit seen with a signature; 0: none yet
}

// begunAt returns the sequence at which signing began, 0 if it has not.
func (r *signingRule) begunAt() uint64 {
	switch {
	case r.signedFrom == 0:
		return r.firstSig
	case r.firstSig == 0:
		return r.signedFrom
	}
	return min(r.signedFrom, r.firstSig)
}

// judge returns the status of c, stored at seq, whose signature check
// gave sigErr (nil when it verifies; hashErr when its hash could not be
// computed), and moves the rule past it. Commits must come in stream
// order.
func (r *signingRule) judge(c *events.Commit, seq uint64, sigErr, hashErr error) string {
	if c.Signed() && r.firstSig == 0 {
		r.firstSig = seq
	}
	begun := r.begunAt()
	switch {
	case !c.Signed() && (begun == 0 || seq < begun):
		return sigUnsigned
	case !c.Signed():
		return sigMissing
	case hashErr != nil:
		return sigUnchecked
	case sigErr == nil:
		return sigVerified
	case errors.Is(sigErr, events.ErrUnknownKey):
		return sigUnknownKey
	}
	return sigBad
}

// sigProblem names what is wrong with a commit of the given status for a
// finding, and what was expected and found; ok for the statuses that are
// no finding.
func (r *signingRule) sigProblem(status string, c *events.Commit, sigErr error) (problem, expected, found string, ok bool) {
	switch status {
	case sigMissing:
		return "unsigned commit in signed history (not written by orderd)", fmt.Sprintf("a signature (signing began at seq %d)", r.begunAt()), "none", true
	case sigUnknownKey:
		return "signed by a key not in the keyring", "a key of the keyring", c.KeyID, true
	case sigBad:
		return "signature does not verify (forged or altered)", "a valid signature by " + dash(c.KeyID), sigErr.Error(), true
	}
	return "", "", "", false
}

// errFoundSigned stops firstSigned's scan.
var errFoundSigned = errors.New("found a signed commit")

// streamSigningRule returns the signing rule of aggType's stream for a
// reader of one aggregate (verify --id, history), so that it judges the
// aggregate's commits as a whole-stream verify does: the stream's
// ordo.signed_from, and its first commit that carries a signature, found
// by reading the stream from its start up to that commit (to its end
// when none does; the metadata, when it says 1, spares that read).
func streamSigningRule(ctx context.Context, store *streams.Store, aggType string) (r signingRule, problem string, err error) {
	if r.signedFrom, problem, err = loadSignedFrom(ctx, store, aggType); err != nil || r.signedFrom == 1 {
		return r, problem, err
	}
	sigKey, keyKey := []byte(`"sig"`), []byte(`"key_id"`)
	err = store.ReplayRaw(ctx, aggType, 1, func(m eventlog.StoredMsg) error {
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
// begun at 1); other errors fail the command.
func loadSignedFrom(ctx context.Context, store *streams.Store, aggType string) (seq uint64, problem string, err error) {
	seq, err = store.SignedFrom(ctx, aggType)
	if errors.Is(err, streams.ErrBadSignedFrom) {
		return seq, err.Error(), nil
	}
	return seq, "", err
}
