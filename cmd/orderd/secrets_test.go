//go:build linux

package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/datadir"
)

// lockedBuffer is a log destination safe for the goroutines of orderd.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLocalSecretsAreOwnerOnly starts a fresh local default (no
// ORDO_AUTH_SECRET, no ORDO_POSTGRES_URL, a data dir orderd makes itself)
// and checks every file datadir.Secrets names: it exists, belongs to
// the user orderd runs as, has mode 0600, and no directory on its way
// from the data dir lets anyone else list or change it (when orderd runs
// as root, others may search the data dir and postgres/ so that
// PostgreSQL's unprivileged user reaches its data; nothing more). No
// secret appears in orderd's log.
func TestLocalSecretsAreOwnerOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts orderd and PostgreSQL")
	}
	var log lockedBuffer
	cfg := testConfig(t, func(c *config.Config) {
		c.DataDir = filepath.Join(t.TempDir(), "ordo-data")
		c.AuthSecret = ""
		c.PostgresURL = ""
	}, withProjector)
	a, err := start(context.Background(), cfg, slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.close() })

	dir := cfg.DataDir
	// Others may hold the execute bit of a directory only when root runs
	// orderd (pgserver grants it to PostgreSQL's user).
	otherBits := os.FileMode(0o077)
	if os.Geteuid() == 0 {
		otherBits = 0o076
	}
	var secrets []string
	for _, name := range datadir.Secrets {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("secret file %s: %v", name, err)
			continue
		}
		if m := fi.Mode(); m != 0o600 {
			t.Errorf("%s: mode %v, want -rw-------", name, m)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Geteuid() {
			t.Errorf("%s: owner uid %d, want %d", name, uid, os.Geteuid())
		}
		for d := filepath.Dir(path); ; d = filepath.Dir(d) {
			di, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			if m := di.Mode().Perm(); m&0o700 != 0o700 || m&otherBits != 0 {
				t.Errorf("directory %s of %s: mode %o", d, name, m)
			}
			if d == dir {
				break
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, strings.TrimSpace(string(b)))
	}
	if os.Geteuid() != 0 {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("data dir: %v %v, want mode 700", fi.Mode(), err)
		}
	}

	// postgres.url is the password file's password in a URL.
	pw, err := os.ReadFile(filepath.Join(dir, datadir.PostgresPassword))
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(pw))
	pgURL, err := os.ReadFile(filepath.Join(dir, datadir.PostgresURL))
	if err != nil || !strings.Contains(string(pgURL), ":"+password+"@") {
		t.Fatalf("postgres.url does not carry the password: %v", err)
	}
	secrets = append(secrets, password)

	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	if !strings.Contains(out, "postgres ready") {
		t.Fatalf("the log was not captured:\n%s", out)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the log holds a secret %.6s...", s)
		}
	}
}
