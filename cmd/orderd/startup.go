package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/httpapi"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/streams"
)

// Waiting at start: orderd is started like a service, often together with
// the servers it needs (a NATS cluster forming, PostgreSQL starting), so
// it waits for them with backoff until ORDO_START_TIMEOUT instead of
// failing at the first refused connection. It waits only for a server
// that cannot answer yet; an answer that waiting cannot change (a
// destroyed stream, a refused password) fails the start at once.
const (
	// attemptTimeout bounds one attempt, so a server that takes a request
	// and never answers is asked again instead of using the whole budget.
	attemptTimeout = 5 * time.Second
	firstBackoff   = 250 * time.Millisecond
	maxBackoff     = 5 * time.Second
)

// startState is what orderd serves while it starts, and what it waits for.
type startState struct {
	// handler is the HTTP handler: httpapi.Starting until the API is built.
	handler atomic.Pointer[http.Handler]
	// waiting says what orderd waits for, for /readyz.
	waiting atomic.Pointer[string]
}

func (s *startState) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.handler.Load()).ServeHTTP(w, r)
}

func (s *startState) serve(h http.Handler) { s.handler.Store(&h) }

func (s *startState) setWaiting(what string) { s.waiting.Store(&what) }

func (s *startState) waitingFor() string {
	if w := s.waiting.Load(); w != nil {
		return *w
	}
	return "starting up"
}

// listenEarly opens the HTTP listener before orderd waits for anything,
// serving /healthz and a /readyz that names what it waits for; the API
// replaces that handler once it is built (see [app.serveAPI]).
func (a *app) listenEarly() error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.HTTPAddr, err)
	}
	a.addr = ln.Addr().String()
	a.starting.serve(httpapi.Starting(a.starting.waitingFor))
	a.http = &http.Server{
		// Boundary answers, in JSON, what net/http lets a handler see of
		// the requests it refuses (internal/httpapi/boundary.go).
		Handler:                      httpapi.Boundary(&a.starting),
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            5 * time.Second,
		ReadTimeout:                  a.cfg.RequestTimeout + 5*time.Second,
		WriteTimeout:                 a.cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:                  2 * time.Minute,
		MaxHeaderBytes:               httpapi.ServerMaxHeaderBytes,
		ErrorLog:                     slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	srv := a.http
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", slog.Any("err", err))
		}
	}()
	a.cleanup = append(a.cleanup, func() { _ = srv.Close() })
	return nil
}

// waitFor runs step until it succeeds, fails with an error for which
// waitable reports false, or ctx ends (the start timeout). Each attempt
// gets at most attemptTimeout; between attempts it backs off from
// firstBackoff to maxBackoff and logs what it waits for and why.
func (a *app) waitFor(ctx context.Context, what string, waitable func(error) bool, step func(context.Context) error) error {
	a.starting.setWaiting("waiting for " + what)
	start := time.Now()
	backoff := firstBackoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := step(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				a.log.Info("start: "+what+" answers", slog.Duration("waited", time.Since(start).Round(time.Millisecond)))
			}
			return nil
		}
		if !waitable(err) {
			return err
		}
		a.starting.setWaiting(fmt.Sprintf("waiting for %s: %v", what, err))
		a.log.Warn("start: waiting for "+what, slog.Int("attempt", attempt), slog.Duration("retry_in", backoff), slog.Any("err", err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for %s after %s (ORDO_START_TIMEOUT): %w",
				what, time.Since(start).Round(time.Second), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// connectNATS connects to the external NATS with the configured
// credentials, waiting until one of its servers accepts the connection.
// A server that refuses the credentials has answered: orderd fails at
// once instead of waiting for its start timeout.
func (a *app) connectNATS(ctx context.Context) error {
	ext := a.cfg.NATSExternal()
	creds, err := ext.Options()
	if err != nil {
		return fmt.Errorf("NATS credentials: %w", err)
	}
	var lastErr atomic.Pointer[error]
	opts := append([]nats.Option{nats.Name("orderd"), nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true), nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { lastErr.Store(&err) }),
		a.natsErrorHandler()}, creds...)
	nc, err := nats.Connect(a.cfg.NATSURL, opts...)
	if err != nil {
		if natsauth.Refused(err) {
			return refusedCredentials(err, ext)
		}
		return fmt.Errorf("connect to NATS at %s: %w", a.cfg.NATSURL, err)
	}
	a.nc, a.natsURL = nc, a.cfg.NATSURL
	a.cleanup = append(a.cleanup, nc.Close)
	err = a.waitFor(ctx, "NATS at "+a.cfg.NATSURL, func(err error) bool { return !natsauth.Refused(err) }, func(context.Context) error {
		if nc.IsConnected() {
			return nil
		}
		if err := lastErr.Load(); err != nil {
			return *err
		}
		if err := nc.LastError(); natsauth.Refused(err) {
			return err
		}
		return errors.New("not connected yet")
	})
	if natsauth.Refused(err) {
		return refusedCredentials(err, ext)
	}
	if err == nil && !nc.AuthRequired() {
		a.log.Warn("NATS accepted orderd without credentials: anyone who reaches it can rewrite or delete the log; configure its users (deploy/nats) and set ORDO_NATS_CREDS",
			slog.String("nats", a.cfg.NATSURL))
	}
	return err
}

// refusedCredentials says that NATS refused orderd's credentials, and
// which ones it presented.
func refusedCredentials(err error, ext natsauth.External) error {
	var which string
	switch {
	case ext.CredsFile != "":
		which = "ORDO_NATS_CREDS " + ext.CredsFile
	case ext.User != "":
		which = "ORDO_NATS_USER " + ext.User
	default:
		which = "none (set ORDO_NATS_CREDS, or ORDO_NATS_USER and ORDO_NATS_PASSWORD)"
	}
	return fmt.Errorf("NATS refused orderd's credentials (%s): %w", which, err)
}

// natsErrorHandler logs what NATS reports on a connection outside of a
// request, and keeps the last permissions violation: a request NATS
// refuses is never answered, so without it orderd would only see the
// request time out.
func (a *app) natsErrorHandler() nats.Option {
	return nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			a.natsDenied.Store(&err)
			a.log.Error("NATS refused a request of orderd", slog.String("conn", nc.Opts.Name), slog.Any("err", err))
			return
		}
		attrs := []any{slog.String("conn", nc.Opts.Name), slog.Any("err", err)}
		if sub != nil {
			attrs = append(attrs, slog.String("subject", sub.Subject))
		}
		a.log.Warn("NATS connection error", attrs...)
	})
}

// errNATSDenied is a start step that failed because NATS refused one of
// its requests for lack of permission: the user orderd connects as may
// not do it, and waiting will not change that.
var errNATSDenied = errors.New("NATS refused orderd's request")

// denied returns err, or when NATS refused a request since the step
// began, an error saying so.
func (a *app) denied(err error) error {
	if err == nil {
		return nil
	}
	if v := a.natsDenied.Swap(nil); v != nil {
		return fmt.Errorf("%w: %v (the NATS user orderd connects as lacks this permission; see docs/operations.md, NATS credentials): %w", errNATSDenied, *v, err)
	}
	return err
}

// jetStreamNotReady reports whether err means NATS or JetStream cannot
// answer yet (disconnected, no meta leader, not enabled yet, a request
// unanswered, too few peers known to place replicas) rather than an
// answer that waiting cannot change: no log, a missing or incompatible
// stream, another log's streams.
func jetStreamNotReady(err error) bool {
	for _, e := range []error{eventlog.ErrNoLog, eventlog.ErrStreamMissing, eventlog.ErrLogMismatch, streams.ErrStreamConfig, errNATSDenied} {
		if errors.Is(err, e) {
			return false
		}
	}
	for _, e := range []error{context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders,
		nats.ErrConnectionReconnecting, nats.ErrDisconnected, nats.ErrNoServers,
		jetstream.ErrNoStreamResponse, jetstream.ErrJetStreamNotEnabled} {
		if errors.Is(err, e) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 503: the server's "temporarily unavailable", "insufficient
		// resources" (peers not known yet), "not enabled (for account)".
		return apiErr.Code == http.StatusServiceUnavailable || apiErr.ErrorCode == codeStreamOffline
	}
	return false
}

// codeStreamOffline is JSStreamOfflineErr: the stream's servers are not
// up (yet).
const codeStreamOffline jetstream.ErrorCode = 10118

// postgresNotReady reports whether err means PostgreSQL cannot answer
// yet: no connection (refused, no socket, timeout) or a server starting,
// shutting down or in recovery. A refused password or a failed migration
// is an answer, not a wait.
func postgresNotReady(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 57: operator intervention (57P03 cannot connect now,
		// 57P01 admin shutdown); 53300: too many connections.
		return pgErr.Code[:2] == "57" || pgErr.Code == "53300"
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded)
}
