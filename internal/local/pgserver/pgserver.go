package pgserver

import (
	"log/slog"
	"net/url"
	"time"

	"github.com/ordo-shop/ordo/internal/local/datadir"
)

// Superuser is the role initdb creates and every URL of a Server names.
const Superuser = "ordo"

// PasswordFile holds, inside the base directory, the password of the
// [Superuser] (mode 0600, one line). It is generated with the data
// directory; delete it while no server runs to have [Start] set a new one.
const PasswordFile = "password"

// ErrLocked means another live process runs a server in the base
// directory.
var ErrLocked = datadir.ErrLocked

// Options configure [Start].
type Options struct {
	// Dir is the base directory: it holds the data directory, the socket
	// directory, the server's log and the lock. Required.
	Dir string
	// BinDir holds initdb and postgres. Default: the newest
	// /usr/lib/postgresql/<version>/bin, else the directory of the
	// postgres found on PATH.
	BinDir string
	// User runs initdb and postgres when the calling process is root.
	// Default: "postgres" if that user exists, else "nobody". Ignored
	// when not root: the server then runs as the calling user.
	User string
	// Settings are extra server settings (postgres -c name=value), such as
	// {"fsync": "off"} for throwaway test servers.
	Settings map[string]string
	// NoSync makes initdb skip its fsyncs (tests).
	NoSync bool
	// StartTimeout bounds how long Start waits for the server to accept
	// connections (default 60s).
	StartTimeout time.Duration
	// Logger receives progress and warnings (default: discard).
	Logger *slog.Logger
}

// Redacted returns a connection URL fit for a log line or an error
// message: its password, if any, replaced by "xxxxx".
func Redacted(connURL string) string {
	u, err := url.Parse(connURL)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Redacted()
}
