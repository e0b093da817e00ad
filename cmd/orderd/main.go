// Command orderd is Ordo's server: the command API over the JetStream event
// store. Started bare it is the local default: it embeds nats-server with
// JetStream under ORDO_DATA_DIR, admitting only the NATS users whose keys
// it generates there, and generates a token secret there.
//
// Configuration comes from ORDO_* variables and flags; see README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/httpapi"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/metrics"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/outage"
	"github.com/ordo-shop/ordo/projections/postgres"
	"github.com/ordo-shop/ordo/projections/search"
	"github.com/ordo-shop/ordo/streams"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "orderd:", err)
		os.Exit(1)
	}
}

// run starts orderd and serves until ctx ends, then shuts down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return err
	}
	a, err := start(ctx, cfg, newLogger(stderr, cfg.LogLevel))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "orderd: serving http://%s (NATS %s, data dir %s)\n", a.addr, a.natsURL, cfg.DataDir)
	if a.metricsURL != "" {
		fmt.Fprintf(stdout, "orderd: metrics at %s\n", a.metricsURL)
	}
	<-ctx.Done()
	return a.close()
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// app is a running orderd.
type app struct {
	cfg     config.Config
	log     *slog.Logger
	addr    string
	natsURL string
	// metricsURL is where GET /metrics is served, on its own listener;
	// empty with ORDO_METRICS_ADDR=off.
	metricsURL string
	ready      atomic.Bool
	http       *http.Server
	nc         *nats.Conn
	ns         *server.Server
	// provision, set with the embedded server, connects as its admin:
	// openStreams creates a new log's streams through it, as the
	// service user orderd runs as may not (identity.go).
	provision func() (*nats.Conn, error)
	// natsDenied holds the last request NATS refused orderd for lack of
	// permission (startup.go).
	natsDenied atomic.Pointer[error]
	store      *streams.Store
	orders     *command.Handler[order.State, order.Command]
	stock      *command.Handler[inventory.State, inventory.Command]
	// commitSigner signs every commit this instance appends (signing.go).
	commitSigner events.CommitSigner
	cleanup      []func()
	// starting serves HTTP while orderd waits for its dependencies, then
	// the API (startup.go).
	starting startState
	// storage watches the embedded server's storage; nil with an
	// external NATS (storage.go).
	storage *storageGuard
	// logs watches that the log stays whole (identity.go).
	logs *logWatch
	pay  *payments // payment provider, webhooks and process managers (sagas.go)
	// readModel is the order-status read model in PostgreSQL (projections.go).
	readModel *postgres.Store
	// search is the customer-service search, nil without Elasticsearch
	// (search.go).
	search *search.Slot
}

// start brings orderd up; on error everything started so far is stopped.
func start(ctx context.Context, cfg config.Config, log *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log}
	if err := a.init(ctx); err != nil {
		a.stop()
		return nil, err
	}
	return a, nil
}

func (a *app) init(ctx context.Context) (err error) {
	cfg, log := a.cfg, a.log
	if err := checkBuild(cfg); err != nil {
		return err
	}
	if err := a.listenEarly(); err != nil {
		return err
	}
	// Waiting for the dependencies is bounded by the start timeout; what
	// runs afterwards does not inherit that deadline.
	startCtx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	secret := cfg.AuthSecret
	if cfg.NATSURL == "" {
		a.starting.setWaiting("starting the embedded NATS server")
		if err := a.embedNATS(); err != nil {
			return err
		}
	} else if err := a.connectNATS(startCtx); err != nil {
		return err
	}
	if secret == "" {
		if secret, err = datadir.Secret(cfg.DataDir, true); err != nil {
			return err
		}
	}
	signer, err := auth.NewSigner(secret)
	if err != nil {
		return err
	}
	if signer, err = signer.WithMaxLifetimes(cfg.TokenMaxLifetimes); err != nil {
		return err
	}
	if err := a.openStreams(startCtx); err != nil {
		return fmt.Errorf("open event store: %w", err)
	}
	registry, err := events.Standard()
	if err != nil {
		return err
	}
	m, err := metrics.New()
	if err != nil {
		return err
	}
	if a.commitSigner, err = a.loadCommitSigner(); err != nil {
		return err
	}
	if a.orders, err = command.NewHandler(order.Decider(), a.store, registry, command.Options{Observer: m, Signer: a.commitSigner}); err != nil {
		return err
	}
	if a.stock, err = command.NewHandler(inventory.Decider(), a.store, registry, command.Options{Observer: m, Signer: a.commitSigner}); err != nil {
		return err
	}
	if err := a.setupPayments(registry); err != nil {
		return err
	}
	if err := a.setupReadModel(startCtx); err != nil {
		return err
	}
	if err := a.setupSearch(); err != nil {
		return err
	}
	if err := a.quarantineMetrics(m); err != nil {
		return err
	}
	if err := a.simMetrics(m); err != nil {
		return err
	}
	if err := a.serveMetrics(m.Handler()); err != nil {
		return err
	}
	var searchAPI httpapi.Search
	if a.search != nil {
		searchAPI = a.search
	}
	deps := httpapi.Deps{
		Orders: a.orders, Inventory: a.stock, Catalog: a.store, Signer: signer, Logger: log,
		MaxBodyBytes: cfg.MaxBodyBytes, RequestTimeout: cfg.RequestTimeout,
		Ready:       a.ready.Load,
		Unavailable: a.unavailable,
		Outage:      outage.Is,
		Payments:    a.pay.sync, PSPWebhookSecret: a.pay.secret,
		Queries: a.readModel, Log: a.store, ReadYourWritesWait: cfg.ReadYourWritesWait,
		Search:          searchAPI,
		Observer:        m,
		MaxUnpaidOrders: cfg.MaxUnpaidOrders, PaymentTimeout: cfg.PaymentTimeout,
		Admission: httpapi.Admission{
			Max: cfg.CheckoutMaxBacklog, Backlog: a.checkoutBacklog,
			Refused: func() { m.AdmissionRefused("checkout_busy") },
		},
	}
	if a.storage != nil {
		deps.Storage = a.storage.context
	}
	api, err := httpapi.New(deps)
	if err != nil {
		return err
	}
	if err := a.startSagas(registry, m); err != nil {
		return err
	}
	a.starting.serve(api)
	a.ready.Store(true)
	log.Info("orderd ready", slog.String("http", a.addr), slog.String("metrics", a.metricsURL), slog.String("nats", a.natsURL), slog.Int("partitions", a.store.Partitions()))
	return nil
}

// embedNATS starts the embedded JetStream server under the data dir. It
// admits only Ordo's three users, whose keys it makes in the data dir on
// first start (natsauth.LoadLocal): orderd connects as the service,
// orderctl as the auditor or the admin, and a new log's streams are
// provisioned over a short-lived admin connection (openStreams).
func (a *app) embedNATS() error {
	unlock, err := datadir.Lock(a.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("%w (is another orderd running on %s?)", err, a.cfg.DataDir)
	}
	a.cleanup = append(a.cleanup, unlock)
	keys, err := natsauth.LoadLocal(a.cfg.DataDir, true)
	if err != nil {
		return fmt.Errorf("NATS credentials: %w", err)
	}
	storeDir := filepath.Join(a.cfg.DataDir, datadir.StoreDir)
	a.storage = newStorageGuard(a.log, storeDir)
	a.ns, err = natsembed.Start(natsembed.Options{
		StoreDir:     storeDir,
		Listen:       a.cfg.NATSListen,
		SyncAlways:   a.cfg.NATSSync == "always",
		ServerName:   "ordo-local",
		Logger:       a.log,
		OnWriteError: a.storage.onWriteError,
		Users:        keys.Users(),
	})
	if err != nil {
		return fmt.Errorf("start embedded NATS: %w", err)
	}
	a.cleanup = append(a.cleanup, func() {
		a.ns.Shutdown()
		a.ns.WaitForShutdown()
	})
	if host, _, _ := net.SplitHostPort(a.cfg.NATSListen); !isLoopback(host) {
		a.log.Warn("the embedded NATS listens beyond loopback without TLS: clients must authenticate, but the log crosses the network in clear; use an external NATS with TLS (deploy/nats) for that",
			slog.String("listen", a.cfg.NATSListen))
	}
	a.storage.ns = a.ns
	a.goUntilStop(a.storage.run)
	a.natsURL = a.ns.ClientURL()
	if err := datadir.WriteFile(a.cfg.DataDir, datadir.NATSURL, []byte(a.natsURL+"\n")); err != nil {
		return fmt.Errorf("write nats.url: %w", err)
	}
	a.cleanup = append(a.cleanup, func() { _ = os.Remove(filepath.Join(a.cfg.DataDir, datadir.NATSURL)) })
	a.nc, err = natsembed.Connect(a.ns, nats.Name("orderd"), keys.Option(natsauth.Service), a.natsErrorHandler())
	if err != nil {
		return fmt.Errorf("connect to embedded NATS: %w", err)
	}
	a.cleanup = append(a.cleanup, a.nc.Close)
	a.provision = func() (*nats.Conn, error) {
		return natsembed.Connect(a.ns, nats.Name("orderd-provision"), keys.Option(natsauth.Admin), a.natsErrorHandler())
	}
	return nil
}

// serveMetrics serves the metrics on their own listener
// (ORDO_METRICS_ADDR), apart from the API; the local default writes
// their URL to <data dir>/metrics.url, as it does nats.url.
func (a *app) serveMetrics(h http.Handler) error {
	if a.cfg.MetricsAddr == config.MetricsOff {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", a.cfg.MetricsAddr, err)
	}
	srv := httpapi.MetricsServer(h)
	srv.ErrorLog = slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server stopped", slog.Any("err", err))
		}
	}()
	a.cleanup = append(a.cleanup, func() { _ = srv.Close() })
	a.metricsURL = "http://" + ln.Addr().String() + "/metrics"
	if a.cfg.NATSURL == "" {
		if err := datadir.WriteFile(a.cfg.DataDir, datadir.MetricsURL, []byte(a.metricsURL+"\n")); err != nil {
			return fmt.Errorf("write metrics.url: %w", err)
		}
		a.cleanup = append(a.cleanup, func() { _ = os.Remove(filepath.Join(a.cfg.DataDir, datadir.MetricsURL)) })
	}
	if host, _, _ := net.SplitHostPort(a.cfg.MetricsAddr); !isLoopback(host) {
		a.log.Info("metrics are served beyond loopback, without authentication: keep the port to the monitoring network", slog.String("listen", a.cfg.MetricsAddr))
	}
	return nil
}

// isLoopback reports whether host names only the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// close drains HTTP requests, then stops NATS and releases the data dir.
func (a *app) close() error {
	a.ready.Store(false)
	var err error
	if a.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		defer cancel()
		if err = a.http.Shutdown(ctx); err != nil {
			err = fmt.Errorf("graceful shutdown: %w", err)
			_ = a.http.Close()
		}
	}
	a.stop()
	a.log.Info("orderd stopped")
	return err
}

// goUntilStop runs f in a goroutine until orderd stops: its context ends
// then and stop waits for f to return.
func (a *app) goUntilStop(f func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ctx)
	}()
	a.cleanup = append(a.cleanup, func() { cancel(); <-done })
}

func (a *app) stop() {
	for i := len(a.cleanup) - 1; i >= 0; i-- {
		a.cleanup[i]()
	}
	a.cleanup = nil
}
