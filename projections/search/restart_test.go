package search_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/esserver"
	"github.com/ordo-shop/ordo/projections/search"
)

// TestConvergesAfterElasticsearchRestartsDuringLoad stops a private
// Elasticsearch while orders are placed and the projector runs, keeps
// placing, starts it again and checks that the index converges to the
// log from its checkpoints, and that search reports the outage as
// unavailability, not as a bad query. Then it kills the node during a
// load, as a crash would, and checks the same after recovery.
func TestConvergesAfterElasticsearchRestartsDuringLoad(t *testing.T) {
	e := newEnv(t, 4)
	opts := esserver.Options{Dir: t.TempDir(), CacheDir: esserver.DefaultCacheDir(os.Getenv), Logger: testLogger(t)}
	srv, err := esserver.Start(e.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	e.st = e.open(srv.URL())

	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.runner(e.st.Sink()).Run(ctx)
	}()
	e.place(0, 150, 4, nil)
	// Stop it in the middle: once part of the log is indexed.
	for {
		cps, err := e.st.Checkpoints(e.ctx)
		if err == nil && slicesMax(cps) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.place(150, 50, 4, nil)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	e.place(200, 100, 4, nil) // the log goes on without Elasticsearch
	if _, err := e.st.Search(e.ctx, search.Query{Text: "x"}); !search.IsUnavailable(err) {
		t.Errorf("search while down: %v, want unavailable", err)
	}
	opts.Port = portOf(t, srv.URL())
	srv, err = esserver.Start(e.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	e.place(300, 100, 4, nil)
	e.waitConverged(e.st, 2*time.Minute)

	// A crash: the node is killed while it indexes. With the index's
	// translog synced in the background (decision 008), the writes of
	// its last moments may be gone after recovery, checkpoints with
	// them; the projector goes on from what survived.
	before, err := e.st.Checkpoints(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	placed := make(chan struct{})
	go func() { defer close(placed); e.place(400, 150, 4, nil) }()
	for {
		cps, err := e.st.Checkpoints(e.ctx)
		if err == nil && slicesMax(cps) > slicesMax(before) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	<-placed
	srv, err = esserver.Start(e.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	if cps, err := e.st.Checkpoints(e.ctx); err == nil {
		t.Logf("checkpoints before the crash's load %v, after recovery %v", before, cps)
	}
	e.place(550, 50, 4, nil)
	e.waitConverged(e.st, 2*time.Minute)
	cancel()
	<-done
}

func portOf(t *testing.T, url string) int {
	t.Helper()
	var port int
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == ':' {
			for _, c := range url[i+1:] {
				port = port*10 + int(c-'0')
			}
			return port
		}
	}
	t.Fatalf("no port in %s", url)
	return 0
}
