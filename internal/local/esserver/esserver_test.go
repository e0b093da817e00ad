//go:build linux

package esserver_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/local/esserver"
	"github.com/ordo-shop/ordo/internal/testkit"
)

// TestSharedIsStartedOnceAndReused asks for the shared server from
// several goroutines at once (as parallel test binaries do): all get the
// same healthy server, and SharedURL finds it. (Stopping and restarting
// a private server on the same directory and port is exercised by
// projections/search's TestConvergesAfterElasticsearchRestartsDuringLoad.)
func TestSharedIsStartedOnceAndReused(t *testing.T) {
	testkit.SkipShort(t, "Elasticsearch")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cache := esserver.DefaultCacheDir(os.Getenv)
	urls := make(chan string, 3)
	for range 3 {
		go func() {
			u, err := esserver.Shared(ctx, esserver.Options{CacheDir: cache})
			if err != nil {
				t.Error(err)
			}
			urls <- u
		}()
	}
	first := <-urls
	for range 2 {
		if u := <-urls; u != first {
			t.Errorf("two shared servers: %s and %s", first, u)
		}
	}
	if err := esserver.Healthy(ctx, first); err != nil {
		t.Fatal(err)
	}
	if u, ok := esserver.SharedURL(ctx, cache); !ok || u != first {
		t.Errorf("SharedURL: %q %v, want %s", u, ok, first)
	}
}

func TestFindJavaHome(t *testing.T) {
	home, err := esserver.FindJavaHome()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(home + "/bin/java"); err != nil {
		t.Fatal(err)
	}
}

func TestFreePort(t *testing.T) {
	p, err := esserver.FreePort()
	if err != nil || p <= 0 {
		t.Fatalf("FreePort: %d %v", p, err)
	}
}

// TestKeepSharedRestartsAKilledServerOnItsPort starts a shared server
// of its own (in a directory of the test's, not the one other tests
// use), SIGKILLs its node, and lets KeepShared bring it back: on the
// same URL, so whoever holds it goes on.
func TestKeepSharedRestartsAKilledServerOnItsPort(t *testing.T) {
	testkit.SkipShort(t, "an Elasticsearch of its own")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	opts := esserver.Options{CacheDir: esserver.DefaultCacheDir(os.Getenv), Dir: filepath.Join(t.TempDir(), "shared")}
	t.Cleanup(func() {
		if err := esserver.StopShared(context.Background(), opts); err != nil {
			t.Error(err)
		}
	})
	url, err := esserver.Shared(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(opts.Dir, "es.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for esserver.Healthy(ctx, url) == nil { // until the kill shows
		time.Sleep(50 * time.Millisecond)
	}
	kctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); esserver.KeepShared(kctx, opts, url, 200*time.Millisecond, nil) }()
	defer func() { stop(); <-done }()
	start := time.Now()
	for end := time.Now().Add(5 * time.Minute); esserver.Healthy(ctx, url) != nil; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s did not come back", url)
		}
	}
	t.Logf("back on %s %s after the kill was seen", url, time.Since(start).Round(100*time.Millisecond))
	if got, err := esserver.Shared(ctx, opts); err != nil || got != url {
		t.Errorf("Shared after the restart: %q, %v; want %s", got, err, url)
	}
}
