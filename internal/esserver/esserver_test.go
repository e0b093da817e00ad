package esserver_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/esserver"
)

// TestSharedIsStartedOnceAndReused asks for the shared server from
// several goroutines at once (as parallel test binaries do): all get the
// same healthy server, and SharedURL finds it. (Stopping and restarting
// a private server on the same directory and port is exercised by
// projections/search's TestConvergesAfterElasticsearchRestartsDuringLoad.)
func TestSharedIsStartedOnceAndReused(t *testing.T) {
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
