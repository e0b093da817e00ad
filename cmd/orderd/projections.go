package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordo-shop/ordo/internal/metrics"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/postgres"
	"github.com/ordo-shop/ordo/projections/search"
)

// setupReadModel connects to PostgreSQL (ORDO_POSTGRES_URL, or a private
// server started under <data dir>/postgres whose URL goes to
// <data dir>/postgres.url), opens the order-status read model (running
// its migrations) and, with the projections role, starts the projector.
func (a *app) setupReadModel(ctx context.Context) error {
	url := a.cfg.PostgresURL
	if url == "" {
		a.starting.setWaiting("starting the private PostgreSQL")
		var err error
		if url, err = a.startPrivatePostgres(ctx); err != nil {
			return err
		}
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("ORDO_POSTGRES_URL: %w", err)
	}
	// A projector worker holds a connection per partition while it
	// commits; queries need their own.
	pcfg.MaxConns = int32(max(a.store.Partitions()+8, 16))
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	a.cleanup = append(a.cleanup, pool.Close)
	if err := a.waitFor(ctx, "PostgreSQL", postgresNotReady, pool.Ping); err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	a.readModel, err = postgres.Open(ctx, pool, postgres.Options{Partitions: a.store.Partitions(), Partition: a.store.Partition, Logger: a.log})
	if err != nil {
		return err
	}
	if !a.cfg.HasRole("projections") {
		return nil
	}
	runner, err := projections.New(a.store, a.readModel.Sink(), a.readModel.Leases(instanceName(), a.cfg.ProjectionLeaseTTL),
		projections.Options{Logger: a.log, LeaseInterval: a.cfg.ProjectionLeaseTTL / 5})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := runner.Run(rctx); err != nil {
			a.log.Error("projector stopped", slog.Any("err", err))
		}
	}()
	a.cleanup = append(a.cleanup, func() { cancel(); <-done })
	return nil
}

// instanceName names this process among the instances that share a
// projection.
func instanceName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// quarantineMetrics counts, at each scrape, the commits the read model
// and the search projector set aside.
func (a *app) quarantineMetrics(m *metrics.Metrics) error {
	count := func(list func(context.Context) ([]projections.QuarantineView, error)) func() (int, int, bool) {
		return func() (int, int, bool) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			q, err := list(ctx)
			if err != nil {
				return 0, 0, false
			}
			open, acked := projections.CountQuarantine(q)
			return open, acked, true
		}
	}
	if a.readModel != nil {
		err := m.Quarantine(postgres.Name, count(func(ctx context.Context) ([]projections.QuarantineView, error) {
			q, err := a.readModel.Quarantined(ctx)
			return postgres.Views(q), err
		}))
		if err != nil {
			return err
		}
	}
	if a.search != nil {
		return m.Quarantine(search.Name, count(a.search.Quarantined))
	}
	return nil
}
