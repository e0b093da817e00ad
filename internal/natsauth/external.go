package natsauth

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// External is how orderd and orderctl authenticate to a NATS server of
// their deployment (ORDO_NATS_URL), the ways NATS users expect: a
// credentials file, a user and password, or a user and password in the
// URL itself (nats://user:password@host:4222, which nats.go reads on its
// own). The zero value connects without credentials.
type External struct {
	// CredsFile (ORDO_NATS_CREDS) is either a .creds file (a user JWT and
	// its seed, as nsc writes it) or a file holding a user's nkey seed
	// ("SU...", as nk -gen user or orderctl nats-user writes it); the
	// content tells which.
	CredsFile string
	// User and Password (ORDO_NATS_USER, ORDO_NATS_PASSWORD) are a
	// user/password pair of the server's authorization block.
	User, Password string
	// CAFile (ORDO_NATS_CA) is a PEM file of the certificate authority
	// that signed the servers' TLS certificates, for a private CA. A
	// tls:// URL with a public CA needs nothing.
	CAFile string
}

// Validate reports settings that contradict each other.
func (e External) Validate() error {
	var errs []error
	if e.CredsFile != "" && (e.User != "" || e.Password != "") {
		errs = append(errs, errors.New("ORDO_NATS_CREDS and ORDO_NATS_USER/ORDO_NATS_PASSWORD are both set: use one"))
	}
	if (e.User == "") != (e.Password == "") {
		errs = append(errs, errors.New("ORDO_NATS_USER and ORDO_NATS_PASSWORD go together"))
	}
	return errors.Join(errs...)
}

// Set reports whether any credential or TLS setting is given.
func (e External) Set() bool {
	return e.CredsFile != "" || e.User != "" || e.Password != "" || e.CAFile != ""
}

// Options returns the client options that present these credentials. A
// credentials file is read now, so a missing, unreadable or malformed
// one is an error here, not a refused connection later.
func (e External) Options() ([]nats.Option, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	var opts []nats.Option
	switch {
	case e.CredsFile != "":
		o, err := credsOption(e.CredsFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	case e.User != "":
		opts = append(opts, nats.UserInfo(e.User, e.Password))
	}
	if e.CAFile != "" {
		if _, err := os.Stat(e.CAFile); err != nil {
			return nil, fmt.Errorf("ORDO_NATS_CA: %w", err)
		}
		opts = append(opts, nats.RootCAs(e.CAFile))
	}
	return opts, nil
}

// credsOption tells a .creds file from an nkey seed file by its content.
func credsOption(path string) (nats.Option, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ORDO_NATS_CREDS: %w", err)
	}
	defer wipe(b)
	if bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
		if _, err := nkeys.ParseDecoratedJWT(b); err != nil {
			return nil, fmt.Errorf("ORDO_NATS_CREDS %s: a credentials file without a readable JWT: %w", path, err)
		}
		if _, err := nkeys.ParseDecoratedUserNKey(b); err != nil {
			return nil, fmt.Errorf("ORDO_NATS_CREDS %s: a credentials file without a user seed: %w", path, err)
		}
		return nats.UserCredentials(path), nil
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return nil, fmt.Errorf("ORDO_NATS_CREDS %s is neither a .creds file (user JWT and seed) nor an nkey seed file: %w", path, err)
	}
	if seed, err := kp.Seed(); err != nil || !bytes.HasPrefix(seed, []byte("SU")) {
		return nil, fmt.Errorf("ORDO_NATS_CREDS %s holds an operator or account seed, not a user's (SU...)", path)
	}
	o, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		return nil, fmt.Errorf("ORDO_NATS_CREDS %s: %w", path, err)
	}
	return o, nil
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 'x'
	}
}

// Refused reports whether err is NATS refusing a client's credentials
// (authorization violation, expired or revoked): an answer that waiting
// cannot change.
func Refused(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}
