package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/datadir"
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
		r, err := datadir.ReadKeyring(k.path)
		if err != nil {
			return nil, "", fmt.Errorf("--keys: %w", err)
		}
		return r, k.path, nil
	}
	if l.natsURL != "" {
		return &events.Keyring{}, "", nil
	}
	path := filepath.Join(l.dataDir, datadir.SigningKeys)
	r, err := datadir.ReadKeyring(path)
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
