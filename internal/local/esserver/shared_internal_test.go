//go:build linux

package esserver

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestKeepSharedFollowsThePublishedURL: when the URL a shared server
// publishes is no longer the one KeepShared watches and answers there
// (it was started again on another port), KeepShared follows it and
// says so, once, without starting anything. The "moved" server here is
// the machine's shared one, so no server is started for the test.
func TestKeepSharedFollowsThePublishedURL(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the shared Elasticsearch")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cache := DefaultCacheDir(os.Getenv)
	now, err := Shared(ctx, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{CacheDir: cache, Dir: filepath.Join(t.TempDir(), "moved")}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(state{URL: now, Version: Version})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.Dir, stateFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	moved := make(chan string, 10)
	kctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		KeepShared(kctx, opts, "http://127.0.0.1:1", 20*time.Millisecond, func(u string) { moved <- u })
	}()
	select {
	case got := <-moved:
		if got != now {
			t.Fatalf("followed %s, want %s", got, now)
		}
	case <-time.After(2 * time.Minute): // liveness only
		t.Fatal("KeepShared did not follow the published URL")
	}
	// Some more rounds on the new address: nothing more to follow.
	time.Sleep(200 * time.Millisecond)
	stop()
	<-done
	if len(moved) != 0 {
		t.Errorf("followed again: %s", <-moved)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, "es.pid")); err == nil {
		t.Error("KeepShared started a server")
	}
}
