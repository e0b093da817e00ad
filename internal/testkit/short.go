package testkit

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/internal/local/natsembed"
)

// SkipShort skips the test under `go test -short`, the fast lane, which
// starts no server: no PostgreSQL, no Elasticsearch, no Java, and no
// nats-server (in process or not) outside the log's own tests ([LogNATS]).
// what names what the test would start. Every helper here that starts a
// server calls it first, so a test that uses one needs no guard of its
// own; a test that starts a server some other way (orderd's start, a
// server package's own tests) calls it itself.
func SkipShort(tb testing.TB, what string) {
	tb.Helper()
	if testing.Short() {
		tb.Skipf("-short: the fast lane starts no server, and this test starts %s", what)
	}
}

// LogNATS is [NATS] for the log's own tests (streams), which test
// JetStream itself and so run in the fast lane too: it does not skip
// under -short.
func LogNATS(tb testing.TB, opts ...func(*natsembed.Options)) (*server.Server, *nats.Conn) {
	tb.Helper()
	return startNATS(tb, opts)
}
