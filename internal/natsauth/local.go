package natsauth

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/ordo-shop/ordo/internal/local/datadir"
)

// seedFiles names each role's nkey seed in the data directory.
var seedFiles = map[Role]string{
	Service: datadir.NATSServiceSeed,
	Auditor: datadir.NATSAuditorSeed,
	Admin:   datadir.NATSAdminSeed,
}

// Keys are the nkeys of Ordo's three users: each user's seed signs the
// server's challenge when it connects; the server knows only the public
// keys. The local default keeps them in its data directory ([LoadLocal]).
type Keys struct {
	dir  string
	keys map[Role]nkeys.KeyPair
}

// SeedFile returns the path of a role's seed in the data directory dir.
func SeedFile(dir string, r Role) string { return filepath.Join(dir, seedFiles[r]) }

// LoadLocal reads the users' seeds from the data directory dir. With
// create, a missing seed is generated and written (mode 0600); only the
// process that holds the data directory's lock may create. A seed file
// that others than its owner may read is refused: chmod 600 it, or
// remove it to have a new one made (see docs/operations.md).
func LoadLocal(dir string, create bool) (*Keys, error) {
	k := &Keys{dir: dir, keys: map[Role]nkeys.KeyPair{}}
	for _, r := range Roles {
		kp, err := loadSeed(dir, r, create)
		if err != nil {
			return nil, err
		}
		k.keys[r] = kp
	}
	return k, nil
}

func loadSeed(dir string, r Role, create bool) (nkeys.KeyPair, error) {
	path := SeedFile(dir, r)
	b, err := datadir.ReadPrivate(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("make the NATS %s key: %w", r, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if err := datadir.WriteFile(dir, seedFiles[r], append(seed, '\n')); err != nil {
			return nil, fmt.Errorf("store the NATS %s key: %w", r, err)
		}
		return kp, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no NATS credentials for the %s user in %s (%s): start orderd once on this data dir to create them: %w", r, dir, seedFiles[r], err)
	}
	if err != nil {
		return nil, err
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not an nkey user seed: %w", path, err)
	}
	return kp, nil
}

// PublicKey returns a role's public nkey ("U...").
func (k *Keys) PublicKey(r Role) string {
	kp, ok := k.keys[r]
	if !ok {
		return ""
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return ""
	}
	return pub
}

// Users returns the three users as nats-server's options take them
// ([server.Options.Nkeys]), each with its role's permissions.
func (k *Keys) Users() []*server.NkeyUser {
	users := make([]*server.NkeyUser, 0, len(Roles))
	for _, r := range Roles {
		users = append(users, &server.NkeyUser{Nkey: k.PublicKey(r), Permissions: r.Permissions().Server()})
	}
	return users
}

// Option returns the client option that connects as role r: it signs
// the server's challenge with the role's seed.
func (k *Keys) Option(r Role) nats.Option {
	kp := k.keys[r]
	if kp == nil {
		return func(o *nats.Options) error { return fmt.Errorf("natsauth: no key for role %q", r) }
	}
	return nats.Nkey(k.PublicKey(r), kp.Sign)
}

// Dir returns the directory the seeds were loaded from ("" for keys that
// were not).
func (k *Keys) Dir() string { return k.dir }

// NewKeys returns three fresh keys held in memory only, for tests and
// for a server configuration made on the spot.
func NewKeys() (*Keys, error) {
	k := &Keys{keys: map[Role]nkeys.KeyPair{}}
	for _, r := range Roles {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, err
		}
		k.keys[r] = kp
	}
	return k, nil
}

// WriteSeed writes a role's seed into dir under its data-directory name
// (mode 0600) and returns the path, for handing a key to a client that
// reads it from a file.
func (k *Keys) WriteSeed(dir string, r Role) (string, error) {
	kp := k.keys[r]
	if kp == nil {
		return "", fmt.Errorf("natsauth: no key for role %q", r)
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	if err := datadir.WriteFile(dir, seedFiles[r], append(seed, '\n')); err != nil {
		return "", err
	}
	return SeedFile(dir, r), nil
}

// WriteNewSeed makes a new user nkey, writes its seed to path (mode 0600,
// whole or not at all: datadir.Write; an existing file is not
// overwritten) and returns its public key: the server's configuration
// names the public key, the client keeps the seed (ORDO_NATS_CREDS).
func WriteNewSeed(path string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", err
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	err = datadir.Write(path, datadir.FileOptions{Exclusive: true}, func(w io.Writer) error {
		_, err := w.Write(append(seed, '\n'))
		return err
	})
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("%s: %w", path, fs.ErrExist)
	}
	if err != nil {
		return "", err
	}
	return pub, nil
}
