//go:build !production

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/local/esserver"
	"github.com/ordo-shop/ordo/internal/local/pgserver"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/metrics"
	"github.com/ordo-shop/ordo/internal/psp"
)

// The default build is the local default: it starts whichever local
// server the configuration leaves to it.

// checkBuild accepts every configuration.
func checkBuild(config.Config) error { return nil }

// localSim is the in-process payment simulator.
type localSim = pspsim.Sim

// startPrivatePostgres starts the private PostgreSQL under
// <data dir>/postgres, keeps it up while orderd runs, records its URL in
// <data dir>/postgres.url and returns that URL.
func (a *app) startPrivatePostgres(ctx context.Context) (string, error) {
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(a.cfg.DataDir, datadir.PostgresDir), Logger: a.log})
	if err != nil {
		return "", fmt.Errorf("start the private PostgreSQL: %w", err)
	}
	a.cleanup = append(a.cleanup, func() {
		if err := srv.Stop(); err != nil {
			a.log.Warn("stop PostgreSQL", slog.Any("err", err))
		}
	})
	// The private PostgreSQL is orderd's own: it restarts it whenever it
	// dies (crash, OOM kill) until orderd stops, as nobody else would.
	// Queries answer 503 and /readyz names PostgreSQL meanwhile; the pool
	// reconnects and the projector resumes from its checkpoints.
	a.goUntilStop(srv.Supervise)
	url := srv.URL()
	if err := datadir.WriteFile(a.cfg.DataDir, datadir.PostgresURL, []byte(url+"\n")); err != nil {
		return "", fmt.Errorf("write postgres.url: %w", err)
	}
	a.cleanup = append(a.cleanup, func() { _ = os.Remove(filepath.Join(a.cfg.DataDir, datadir.PostgresURL)) })
	return url, nil
}

// localSearch is the shared local Elasticsearch orderd uses with
// ORDO_ELASTICSEARCH=local.
type localSearch struct{ opts esserver.Options }

func (a *app) localSearch() *localSearch {
	return &localSearch{esserver.Options{CacheDir: esserver.DefaultCacheDir(os.Getenv), Dir: localSearchDir, Logger: a.log}}
}

// start starts the shared server, or finds it running, and returns its
// URL.
func (l *localSearch) start(ctx context.Context) (string, error) { return esserver.Shared(ctx, l.opts) }

// keep keeps the shared server at addr up until ctx ends, telling moved
// its new URL when it comes back on another port.
func (l *localSearch) keep(ctx context.Context, addr string, moved func(url string)) {
	esserver.KeepShared(ctx, l.opts, addr, localSearchCheck, moved)
}

// newSimulator makes the in-process payment simulator and returns it with
// the key of its API. It keeps its intents, its API key and the secret of
// its pay links under the data dir, so a restarted local default can still
// void, refund and look up the payments it left pending, and their
// checkout links still open.
func (a *app) newSimulator(secret []byte, faults psp.Faults) (*localSim, string, error) {
	key := a.cfg.PSPAPIKey
	if key == "" {
		var err error
		if key, err = datadir.StoredSecret(a.cfg.DataDir, datadir.PSPSimAPIKey, true); err != nil {
			return nil, "", err
		}
	}
	link, err := datadir.StoredSecret(a.cfg.DataDir, datadir.PSPSimLinkSecret, true)
	if err != nil {
		return nil, "", err
	}
	s, err := pspsim.New(pspsim.Config{Mode: pspsim.Mode(a.cfg.PSPMode), Secret: secret, Faults: faults,
		APIKey: key, LinkSecret: []byte(link), LinkTTL: a.cfg.PaymentTimeout + linkSlack,
		Logger: a.log.With("component", "psp-sim"), StateFile: filepath.Join(a.cfg.DataDir, datadir.PSPSimState)})
	return s, key, err
}

// simMetrics adds the in-process simulator's counters (ordo_psp_sim_*)
// to orderd's metrics, when it runs one.
func (a *app) simMetrics(m *metrics.Metrics) error {
	if a.pay == nil || a.pay.sim == nil {
		return nil
	}
	sim := a.pay.sim
	return m.PSPSim(func() metrics.PSPSimCounts { return sim.Stats().Counts() })
}
