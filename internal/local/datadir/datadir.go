// Package datadir knows the layout of the local default's data directory,
// which orderd and orderctl share:
//
//	<data dir>/LOCK         flock held by the process that owns the store
//	<data dir>/jetstream/   the embedded nats-server's store
//	<data dir>/nats.url     client URL of the running embedded server
//	<data dir>/metrics.url  URL of orderd's GET /metrics, while it runs
//	<data dir>/auth.secret  the generated token-signing secret
//	<data dir>/log.id       the id of the log the store holds, written when
//	                        orderd created (or adopted) it: with it, orderd
//	                        refuses to start on a store whose log is gone
//	<data dir>/postgres/    the private PostgreSQL (internal/local/pgserver)
//	<data dir>/postgres/password  its superuser's generated password
//	<data dir>/postgres.url its connection URL (with the password) while orderd runs
//	<data dir>/signing.key  the generated commit-signing key (Ed25519, PEM)
//	<data dir>/signing.keys the public keys commits were signed with (keyring)
//	<data dir>/psp-webhook.secret  the generated payment-webhook secret
//	<data dir>/psp-sim.json the payment simulator's intents
//	<data dir>/psp-sim.addr the address the payment simulator last served on
//	<data dir>/psp-sim-api.key     the generated key of the payment simulator's API
//	<data dir>/psp-sim-link.secret the generated secret signing its pay links
//	<data dir>/elasticsearch.url    the Elasticsearch URL orderd uses, while it runs
//	<data dir>/elasticsearch.prefix its index prefix, while orderd runs
//	<data dir>/nats-service.nk  nkey seed orderd connects to the embedded NATS with
//	<data dir>/nats-auditor.nk  nkey seed of orderctl's read commands
//	<data dir>/nats-admin.nk    nkey seed of stream provisioning and orderctl's writes
//
// [Secrets] lists every file that holds a credential or a key. Each is
// written with mode 0600 ([WriteFile]) in directories made 0700 (when
// orderd runs as root, the data directory and postgres/ also let others
// search them, execute bit only, so PostgreSQL's unprivileged user
// reaches its data; nobody else can list them or read the files).
//
// It also holds the file utilities the local servers share: atomic
// writes ([Write]), generated secrets ([NewSecret], [StoredSecret]), the
// one check that a key file is private to its owner ([CheckPrivate],
// [ReadPrivate]; orderd's signing key and the NATS seeds),
// exclusive locks ([Flock], [FlockWait]) and the unprivileged user a
// server started by root runs as ([Unprivileged]).
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	PSPWebhookSecret = "psp-webhook.secret"
	PSPSimState      = "psp-sim.json"
	PSPSimAddr       = "psp-sim.addr"
	PSPSimAPIKey     = "psp-sim-api.key"
	PSPSimLinkSecret = "psp-sim-link.secret"
	// ElasticsearchURL and ElasticsearchPrefix are the Elasticsearch
	// orderd uses and its index prefix, written for orderctl while
	// orderd runs.
	ElasticsearchURL    = "elasticsearch.url"
	ElasticsearchPrefix = "elasticsearch.prefix"

	// MetricsURL is the URL of the local default's GET /metrics (on its
	// own listener, ORDO_METRICS_ADDR), written while orderd runs.
	MetricsURL = "metrics.url"

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
	PSPWebhookSecret, // signs the payment provider's webhooks
	PSPSimAPIKey,     // calls the payment simulator's API (refunds, voids)
	PSPSimLinkSecret, // signs the simulator's pay links
	NATSServiceSeed,  // orderd's NATS user
	NATSAuditorSeed,  // orderctl's read-only NATS user
	NATSAdminSeed,    // NATS admin: creates and changes streams
}

// ErrLocked means another live process holds the data directory.
var ErrLocked = errors.New("the data directory is in use by another process")

// Lock takes the data directory's exclusive lock ([Flock] on its LOCK
// file) without waiting, creating the directory if needed.
func Lock(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	unlock, err = Flock(filepath.Join(dir, LockFile))
	if errors.Is(err, ErrHeld) {
		return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
	}
	return unlock, err
}

// ReadURL returns the NATS URL a running orderd wrote, or "" if none.
func ReadURL(dir string) string { return ReadTrimmed(dir, NATSURL) }

// Secret returns the token-signing secret stored in dir; with create it
// generates and stores a random one when there is none.
func Secret(dir string, create bool) (string, error) {
	s, err := StoredSecret(dir, AuthSecret, create)
	if err != nil && !create {
		return "", fmt.Errorf("no auth secret: set ORDO_AUTH_SECRET or start orderd once to create %s: %w", filepath.Join(dir, AuthSecret), err)
	}
	if err != nil {
		return "", fmt.Errorf("auth secret: %w", err)
	}
	return s, nil
}

// ReadTrimmed returns the content of dir/name without surrounding white
// space, or "" if it cannot be read.
func ReadTrimmed(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
