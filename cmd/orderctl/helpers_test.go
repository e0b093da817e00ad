package main

import (
	"bufio"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/localdir"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/natsembed"
)

// startDataDir runs the NATS server of a local default's data dir
// in-process, as orderd does (with the data dir's users, listening on a
// free loopback port when listen), and returns it with a client
// connection as the admin; stop closes both.
func startDataDir(t testing.TB, dir string, listen bool) (ns *server.Server, nc *nats.Conn, stop func()) {
	t.Helper()
	keys, err := natsauth.LoadLocal(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	opts := natsembed.Options{StoreDir: filepath.Join(dir, localdir.StoreDir), ServerName: "ordo-local", Users: keys.Users()}
	if listen {
		opts.Listen = "127.0.0.1:0"
	}
	ns, err = natsembed.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	nc, err = natsembed.Connect(ns, keys.Option(natsauth.Admin))
	if err != nil {
		ns.Shutdown()
		t.Fatal(err)
	}
	return ns, nc, func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() }
}

// newHandler returns a command handler for d's aggregates in the log
// store holds, with the standard event registry.
func newHandler[S, C any](t testing.TB, d aggregates.Decider[S, C], store command.Store) *command.Handler[S, C] {
	t.Helper()
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	h, err := command.NewHandler(d, store, reg, command.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// jsonLines decodes out as JSON Lines of objects.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}
