package search_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/local/esserver"
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
	// A generous bound on each start: the machine may be loaded, and
	// only a start that never ends should fail the test.
	opts := esserver.Options{Dir: t.TempDir(), CacheDir: esserver.DefaultCacheDir(os.Getenv), Logger: testLogger(t), StartTimeout: 10 * time.Minute}
	// start starts the private server on port (0: any) and stops it when
	// the test ends. Each cleanup stops the server of its own start: a
	// later start that fails leaves no nil behind for them.
	start := func(port int) (*esserver.Server, error) {
		t.Helper()
		o := opts
		o.Port = port
		s, err := esserver.Start(e.ctx, o)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = s.Stop() })
		return s, nil
	}
	// again starts the server again on the port it had. The test does not
	// hold that port while the server is down: if something took it, the
	// server comes back on another and the store follows it there.
	again := func(was *esserver.Server) *esserver.Server {
		t.Helper()
		s, err := start(was.Port())
		if err == nil {
			return s
		}
		t.Logf("cannot start again on port %d (%v); taking another", was.Port(), err)
		if s, err = start(0); err != nil {
			t.Fatal(err)
		}
		c, err := search.NewClient(s.URL())
		if err != nil {
			t.Fatal(err)
		}
		e.st.SetClient(c)
		return s
	}
	srv, err := start(0)
	if err != nil {
		t.Fatal(err)
	}
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
	srv = again(srv)
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
	again(srv)
	if cps, err := e.st.Checkpoints(e.ctx); err == nil {
		t.Logf("checkpoints before the crash's load %v, after recovery %v", before, cps)
	}
	e.place(550, 50, 4, nil)
	e.waitConverged(e.st, 2*time.Minute)
	cancel()
	<-done
}
