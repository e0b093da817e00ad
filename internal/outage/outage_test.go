package outage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The clients' own errors for a server that is not there are outages.
func TestRealClientsMeetingNoServer(t *testing.T) {
	addr := closedPort(t)
	_, err := nats.Connect("nats://"+addr, nats.Timeout(time.Second))
	if err == nil || !Is(fmt.Errorf("connect: %w", err)) {
		t.Errorf("NATS without a server: %v, want an outage", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = pgx.Connect(ctx, "postgres://ordo@"+addr+"/ordo?connect_timeout=2")
	if err == nil || !Is(fmt.Errorf("order status: %w", err)) {
		t.Errorf("PostgreSQL without a server: %v, want an outage", err)
	}
}

func TestOutagesAndFaults(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("load: %w", nats.ErrConnectionClosed), true},
		{fmt.Errorf("direct get: %w", nats.ErrTimeout), true},
		{nats.ErrNoServers, true},
		{jetstream.ErrNoStreamResponse, true},
		{fmt.Errorf("x: %w", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream cluster not available"}), true},
		{&pgconn.PgError{Code: "08006", Message: "connection failure"}, true},
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{&pgconn.PgError{Code: "53100", Message: "could not extend file: No space left on device"}, true},
		{fmt.Errorf("query: %w", pgconn.ErrConnClosed), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
		// Faults: a retry does not mend them.
		{errors.New("index out of range"), false},
		{&pgconn.PgError{Code: "42601", Message: "syntax error"}, false},
		{&pgconn.PgError{Code: "23505", Message: "duplicate key"}, false},
		{&jetstream.APIError{Code: 400, ErrorCode: 10003, Description: "bad request"}, false},
		{nats.ErrBadSubject, false},
		{nats.ErrPermissionViolation, false},
		{context.DeadlineExceeded, false},
		{nil, false},
	} {
		if got := Is(c.err); got != c.want {
			t.Errorf("Is(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
