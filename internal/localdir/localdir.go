// Package localdir knows the layout of the local default's data directory,
// which orderd and orderctl share:
//
//	<data dir>/LOCK         flock held by the process that owns the store
//	<data dir>/jetstream/   the embedded nats-server's store
//	<data dir>/nats.url     client URL of the running embedded server
//	<data dir>/auth.secret  the generated token-signing secret
//	<data dir>/log.id       the id of the log the store holds, written when
//	                        orderd created (or adopted) it: with it, orderd
//	                        refuses to start on a store whose log is gone
//	<data dir>/postgres/    the private PostgreSQL (internal/pgserver)
//	<data dir>/postgres/password  its superuser's generated password
//	<data dir>/postgres.url its connection URL (with the password) while orderd runs
//	<data dir>/signing.key  the generated commit-signing key (Ed25519, PEM)
//	<data dir>/signing.keys the public keys commits were signed with (keyring)
//	<data dir>/nats-service.nk  nkey seed orderd connects to the embedded NATS with
//	<data dir>/nats-auditor.nk  nkey seed of orderctl's read commands
//	<data dir>/nats-admin.nk    nkey seed of stream provisioning and orderctl's writes
//
// [Secrets] lists every file that holds a credential or a key. Each is
// written with mode 0600 ([WriteFile]) in directories made 0700 (when
// orderd runs as root, the data directory and postgres/ also let others
// search them, execute bit only, so PostgreSQL's unprivileged user
// reaches its data; nobody else can list them or read the files).
package localdir

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// File names inside the data directory.
const (
	LockFile    = "LOCK"
	StoreDir    = "jetstream"
	NATSURL     = "nats.url"
	AuthSecret  = "auth.secret"
	LogMarker   = "log.id"
	PostgresDir = "postgres"
	PostgresURL = "postgres.url"
	// PostgresPassword is pgserver.PasswordFile inside PostgresDir.
	PostgresPassword = PostgresDir + "/password"
	SigningKey       = "signing.key"
	SigningKeys      = "signing.keys"

	// NATS users of the embedded server (internal/natsauth): one nkey
	// seed per user, generated on first start.
	NATSServiceSeed = "nats-service.nk"
	NATSAuditorSeed = "nats-auditor.nk"
	NATSAdminSeed   = "nats-admin.nk"
)

// Secrets are the files in the data directory (paths relative to it)
// that hold a credential or a key, all mode 0600: whoever can read one
// can act as Ordo, or as its database.
var Secrets = []string{
	AuthSecret,       // signs the API's bearer tokens
	PostgresURL,      // the private PostgreSQL's URL, password included
	PostgresPassword, // the private PostgreSQL superuser's password
	SigningKey,       // signs every commit orderd writes
	NATSServiceSeed,  // orderd's NATS user
	NATSAuditorSeed,  // orderctl's read-only NATS user
	NATSAdminSeed,    // NATS admin: creates and changes streams
}

// ErrLocked means another live process holds the data directory.
var ErrLocked = errors.New("the data directory is in use by another process")

// Lock takes the data directory's exclusive lock without waiting, creating
// the directory if needed. The lock dies with the process, so a SIGKILLed
// orderd never leaves a stale lock behind.
func Lock(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// WriteFile writes data to name inside dir atomically (temp file, fsync,
// rename) with mode 0600.
func WriteFile(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

// ReadURL returns the NATS URL a running orderd wrote, or "" if none.
func ReadURL(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, NATSURL))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Secret returns the token-signing secret stored in dir; with create it
// generates and stores a random one when there is none.
func Secret(dir string, create bool) (string, error) {
	path := filepath.Join(dir, AuthSecret)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) || !create {
		return "", fmt.Errorf("no auth secret: set ORDO_AUTH_SECRET or start orderd once to create %s: %w", path, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := WriteFile(dir, AuthSecret, []byte(s+"\n")); err != nil {
		return "", fmt.Errorf("store auth secret: %w", err)
	}
	return s, nil
}
