// Package outage tells the errors that say a server Ordo depends on
// cannot be reached, or answered that it cannot serve now (NATS and
// JetStream, PostgreSQL, or the network between), from all others. The
// first kind is an outage: the request may succeed when it is retried.
// Any other error that nothing recognises is a fault in Ordo, which a
// retry does not mend.
//
// It knows the client libraries' errors so that the packages that
// classify errors for a client (internal/httpapi) need not import them:
// orderd hands them [Is].
package outage

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Is reports whether err says a server could not be reached or cannot
// serve now. A context's deadline or cancellation is not recognised as
// such (the caller knows what its own deadline means), except where pgx
// reports it as a timeout of its connection.
func Is(err error) bool {
	return err != nil && (natsDown(err) || postgresDown(err) || networkDown(err))
}

// natsErrors are nats.go's errors for a connection that is not there (or
// not yet, or no longer) or a request nobody answered.
var natsErrors = []error{
	nats.ErrConnectionClosed, nats.ErrConnectionDraining, nats.ErrConnectionReconnecting,
	nats.ErrDisconnected, nats.ErrNoServers, nats.ErrTimeout, nats.ErrNoResponders,
	nats.ErrStaleConnection, nats.ErrReconnectBufExceeded, nats.ErrMaxConnectionsExceeded,
	nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAuthorization,
	jetstream.ErrNoStreamResponse, jetstream.ErrConnectionClosed, jetstream.ErrServerShutdown,
	jetstream.ErrNoHeartbeat, jetstream.ErrJetStreamNotEnabled, jetstream.ErrJetStreamNotEnabledForAccount,
}

func natsDown(err error) bool {
	for _, e := range natsErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	// The JetStream API answers 503 when it cannot serve now (no
	// quorum, resources exhausted).
	var api *jetstream.APIError
	return errors.As(err, &api) && api.Code == 503
}

// postgresDown recognises pgx's errors for a connection that could not
// be made or broke, and the server's own answers that it cannot serve
// now: SQLSTATE classes 08 (connection exception), 53 (insufficient
// resources: disk full, out of memory, too many connections), 57P01-
// 57P05 (shut down by an administrator, a crash or a restart, not
// accepting connections yet, idle session timeout) and 58 (system
// error: I/O). Every other server answer (a syntax error, a violated
// constraint) is a fault in Ordo's SQL or schema.
func postgresDown(err error) bool {
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) || errors.Is(err, pgconn.ErrConnClosed) || pgconn.Timeout(err) {
		return true
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || len(pg.Code) != 5 {
		return false
	}
	switch pg.Code[:2] {
	case "08", "53", "58":
		return true
	case "57":
		return pg.Code >= "57P01" && pg.Code <= "57P05"
	}
	return false
}

// networkDown recognises a connection refused, reset or cut short, and
// a network timeout, whichever client met it.
func networkDown(err error) bool {
	var ne net.Error // context.DeadlineExceeded is one too: not this
	if errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}
