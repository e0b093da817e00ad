package testkit

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-shop/ordo/internal/local/pgserver"
)

// PostgresURLEnv names an optional PostgreSQL server for tests, given as
// a superuser URL. When it is unset, each test binary starts its own
// private server from the installed binaries (see [Postgres]).
const PostgresURLEnv = "ORDO_TEST_POSTGRES_URL"

// testSettings make a throwaway server fast: nothing it holds has to
// survive a crash.
var testSettings = map[string]string{
	"fsync":              "off",
	"synchronous_commit": "off",
	"full_page_writes":   "off",
	"shared_buffers":     "64MB",
	"max_connections":    "200",
}

var shared struct {
	once  sync.Once
	srv   *pgserver.Server
	admin string
	err   error
	n     atomic.Int64
}

// Postgres returns the URL of a new, empty database on the test binary's
// PostgreSQL server, dropped (with its connections) when the test ends.
//
// The server is started on first use, one per test binary, in a fresh
// directory under the system temp dir, and stopped by [RunMain] (use it
// in TestMain). Should the binary die without RunMain, the server still
// stops with it (parent-death signal) and the next test binary removes
// the directory it left. Databases are isolated, so tests may run in
// parallel and several test binaries may run at once (go test -p N).
// It skips the test under -short ([SkipShort]).
func Postgres(tb testing.TB) string {
	tb.Helper()
	SkipShort(tb, "PostgreSQL")
	admin := adminURL(tb)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), shared.n.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to test postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func adminURL(tb testing.TB) string {
	tb.Helper()
	shared.once.Do(func() {
		if u := os.Getenv(PostgresURLEnv); u != "" {
			shared.admin = u
			return
		}
		removeStaleDirs()
		dir, err := os.MkdirTemp("", "ordo-pgtest-")
		if err != nil {
			shared.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.srv, shared.err = pgserver.Start(ctx, pgserver.Options{Dir: dir, NoSync: true, Settings: testSettings})
		if shared.err != nil {
			_ = os.RemoveAll(dir)
			return
		}
		shared.admin = shared.srv.URL()
	})
	if shared.err != nil {
		tb.Fatalf("start test postgres: %v", shared.err)
	}
	return shared.admin
}

// removeStaleDirs deletes the directories of test servers whose test
// binaries died without stopping them.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "ordo-pgtest-*"))
	for _, d := range dirs {
		_ = pgserver.Remove(d, nil) // a live binary's directory is locked
	}
}

// RunMain runs the tests of a package that uses [Postgres] and then stops
// the shared server and removes its directory. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testkit.RunMain(m)) }
func RunMain(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		_ = shared.srv.Stop()
		_ = pgserver.Remove(shared.srv.Dir(), nil)
	}
	return code
}
