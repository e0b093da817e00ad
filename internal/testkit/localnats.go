package testkit

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/natsauth"
)

// LocalNATS runs the embedded NATS server of the local default's data dir
// dir in this process, as orderd does and as orderctl does on a stopped
// one: its store in dir, admitting only the data dir's three users (their
// keys made, as orderd's first start makes them, when the data dir has
// none yet), and listening on a free loopback port when listen. It
// returns the server with a connection as role, and stop, which closes
// both and may be called more than once; stop also runs when the test
// ends. The caller holds the data dir's lock, or knows nobody else opens
// it meanwhile. It skips the test under -short ([SkipShort]).
func LocalNATS(tb testing.TB, dir string, role natsauth.Role, listen bool) (ns *server.Server, nc *nats.Conn, stop func()) {
	tb.Helper()
	SkipShort(tb, "the local default's NATS server")
	keys, err := natsauth.LoadLocal(dir, true)
	if err != nil {
		tb.Fatalf("local NATS: %v", err)
	}
	opts := natsembed.Options{StoreDir: filepath.Join(dir, datadir.StoreDir), ServerName: "ordo-local", Users: keys.Users()}
	if listen {
		opts.Listen = "127.0.0.1:0"
	}
	ns, err = natsembed.Start(opts)
	if err != nil {
		tb.Fatalf("local NATS: start the server of %s: %v", dir, err)
	}
	nc, err = natsembed.Connect(ns, keys.Option(role))
	if err != nil {
		shutdown(ns)
		tb.Fatalf("local NATS: connect as %s: %v", role, err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			nc.Close()
			shutdown(ns)
		})
	}
	tb.Cleanup(stop)
	return ns, nc, stop
}
