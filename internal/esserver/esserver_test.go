package esserver_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/esserver"
)

// TestStartStopRestart starts a private server, checks it stays up,
// stops it and starts it again on the same directory and port.
func TestStartStopRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	opts := esserver.Options{Dir: t.TempDir(), CacheDir: esserver.DefaultCacheDir(os.Getenv)}
	s, err := esserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for i := range 6 {
		if err := esserver.Healthy(ctx, s.URL()); err != nil {
			t.Fatalf("check %d after start: %v", i, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if esserver.Healthy(ctx, s.URL()) == nil {
		t.Fatal("healthy after Stop")
	}
	opts.Port = s.Port()
	s2, err := esserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Stop()
	if s2.URL() != s.URL() {
		t.Errorf("restarted at %s, was %s", s2.URL(), s.URL())
	}
}
