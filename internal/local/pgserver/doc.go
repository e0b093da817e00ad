// Package pgserver runs a private PostgreSQL server from the binaries
// installed on the machine: the local default of orderd (under
// <data dir>/postgres) and the test harness (see internal/testkit).
//
// [Start] initialises a data directory with initdb on first use and runs
// the postgres binary directly, not through pg_ctl (which detaches), with a
// parent-death signal, so the server never outlives the process that
// started it. It listens only on a Unix socket in a private directory
// (no TCP port to collide on), mode 0700.
//
// Every connection authenticates with SCRAM-SHA-256 as the superuser
// [Superuser], whose password is generated with the data directory and
// kept in <base>/[PasswordFile] (mode 0600); [Server.URL] carries it, so
// log a URL only through [Redacted]. A data directory of an earlier
// version, which trusted local connections, is upgraded at Start: its
// superuser gets a generated password (set by a single-user postgres
// before the server starts) and pg_hba.conf's "trust" becomes
// scram-sha-256. Deleting the password file while no server runs makes
// the next Start set a new one: that is how the password is rotated.
//
// PostgreSQL refuses to run as root. When the calling process is root,
// initdb and postgres run as an unprivileged user ([Options.User], by
// default the "postgres" system user when it exists, else "nobody"), and
// Start makes the directories on the way to the data directory
// searchable (execute permission only) for that user.
//
// The base directory is locked with flock while a Server runs. A
// postmaster found running in it at Start, while nobody holds the lock, is
// left over from a process that died without stopping it: Start shuts it
// down and takes over.
//
// A Server is safe for concurrent use.
package pgserver
