package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/httpapi"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/streams"
)

// The log's identity (docs/decisions/017-log-identity.md): orderd opens
// a log and never creates one in the place of a lost one. The local
// default creates its log on its first start and remembers its id in
// the data dir (datadir.LogMarker); from then on it refuses to start
// when that log's streams are gone. With ORDO_NATS_URL nothing is created
// by orderd: `orderctl init` makes the log, and ORDO_LOG_ID, if set,
// names the one to serve.

// openStreams opens the event store's log, waiting while JetStream cannot
// answer yet. The local default on a data dir without a log marker first
// creates (or adopts) the log with provisionLog and writes the marker.
func (a *app) openStreams(ctx context.Context) error {
	expect, local := a.cfg.LogID, a.cfg.NATSURL == ""
	marker := ""
	if local {
		m, err := readLogMarker(a.cfg.DataDir)
		if err != nil {
			return err
		}
		switch {
		case m != "" && expect != "" && m != expect:
			return fmt.Errorf("ORDO_LOG_ID is %s but the data dir %s holds log %s (%s)", expect, a.cfg.DataDir, m, a.markerPath())
		case m != "":
			expect, marker = m, m
		default:
			li, err := a.provisionLog(ctx, expect)
			if err != nil {
				return a.explainLogError(err, "")
			}
			if err := datadir.WriteFile(a.cfg.DataDir, datadir.LogMarker, []byte(li.ID+"\n")); err != nil {
				return fmt.Errorf("record the log id in %s: %w", a.markerPath(), err)
			}
			attrs := []any{slog.String("log_id", li.ID), slog.String("marker", a.markerPath())}
			switch {
			case li.New:
				a.log.Info("created a new log", attrs...)
			case li.Adopted:
				a.log.Info("gave the existing log an id (it predates log ids)", append(attrs, slog.Any("added", li.Added))...)
			default:
				a.log.Info("recorded the log's id in the data dir", attrs...)
			}
			expect = li.ID
		}
	}
	a.logs = newLogWatch(a.log)
	what := "the log's JetStream streams " + strings.Join(streams.LogStreams(), ", ")
	err := a.waitFor(ctx, what, jetStreamNotReady, func(ctx context.Context) (err error) {
		a.store, err = streams.Open(ctx, a.nc, streams.Config{
			Partitions: a.cfg.Partitions, Replicas: a.cfg.Replicas, LogID: expect,
			Logger: a.log, OnStreamMissing: a.logs.streamMissing,
		})
		return a.denied(err)
	})
	if err != nil {
		return a.explainLogError(err, marker)
	}
	li := a.store.Log()
	if li.ID == "" {
		return fmt.Errorf("the log on NATS at %s predates log ids: run `orderctl init` once to give it one "+
			"(with orderd stopped: from then on unsigned commits are reported), then start orderd again", a.natsURL)
	}
	if !local && a.cfg.LogID == "" {
		a.log.Info("serving log "+li.ID+"; set ORDO_LOG_ID to it so that orderd refuses any other log", slog.String("log_id", li.ID))
	}
	a.logs.store = a.store
	a.goUntilStop(a.logs.run)
	return nil
}

// provisionLog creates the log on the embedded server or checks and
// completes the one it has (streams.Init), waiting while JetStream cannot
// answer yet. It is the only place orderd creates streams, only for the
// local default and only when the data dir has no log marker. It
// connects as the embedded server's admin for it: the service user
// orderd otherwise runs as may not create or change streams.
func (a *app) provisionLog(ctx context.Context, expect string) (li streams.LogInfo, err error) {
	if a.provision == nil {
		return li, errors.New("orderd creates a log only on the local default's embedded NATS")
	}
	admin, err := a.provision()
	if err != nil {
		return li, fmt.Errorf("connect to the embedded NATS as its admin: %w", err)
	}
	defer admin.Close()
	err = a.waitFor(ctx, "JetStream to create the log", jetStreamNotReady, func(ctx context.Context) (err error) {
		li, err = streams.Init(ctx, admin, streams.Config{Partitions: a.cfg.Partitions, Replicas: a.cfg.Replicas, LogID: expect, Logger: a.log})
		return err
	})
	return li, err
}

func (a *app) markerPath() string { return filepath.Join(a.cfg.DataDir, datadir.LogMarker) }

// readLogMarker returns the log id recorded in the data dir, or "".
func readLogMarker(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, datadir.LogMarker))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the log id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("%s is empty: it should hold the id of the log in %s; restore it from a backup, or remove it if the store holds the log you want",
			filepath.Join(dir, datadir.LogMarker), filepath.Join(dir, datadir.StoreDir))
	}
	return id, nil
}

// explainLogError adds to an error of opening the log what it means and
// what to do; marker is the log id the local default's data dir recorded.
func (a *app) explainLogError(err error, marker string) error {
	lost := errors.Is(err, eventlog.ErrStreamMissing) || errors.Is(err, eventlog.ErrNoLog) || errors.Is(err, eventlog.ErrLogMismatch)
	switch {
	case !lost:
		return err
	case marker != "":
		store := filepath.Join(a.cfg.DataDir, datadir.StoreDir)
		return fmt.Errorf("the log %s that this data dir holds (%s) was destroyed: %w\n"+
			"orderd will not start on it, so the loss is not hidden by an empty log. To recover:\n"+
			"  - restore the data dir %s from a backup, or\n"+
			"  - to start a new, empty log deliberately: stop here, move %s and %s aside, and start orderd again "+
			"(the read model in PostgreSQL still describes the old log: rebuild it with `orderctl projections rebuild order_status`)",
			marker, a.markerPath(), err, a.cfg.DataDir, a.markerPath(), store)
	case a.cfg.NATSURL != "" && errors.Is(err, eventlog.ErrNoLog) && a.cfg.LogID == "":
		return fmt.Errorf("%w\norderd never creates a log on an external NATS: run `orderctl init` (with ORDO_NATS_URL=%s) once for a new deployment, "+
			"then start orderd with ORDO_LOG_ID set to the id it prints. If this deployment had a log, it was destroyed: restore the streams from a backup", err, a.cfg.NATSURL)
	case a.cfg.NATSURL != "":
		return fmt.Errorf("%w\nthe log orderd is to serve is not whole on NATS at %s: it was destroyed, or this is the wrong server. "+
			"Restore the streams from a backup (`nats stream restore`), or point ORDO_NATS_URL at the right server; orderd creates nothing in their place", err, a.cfg.NATSURL)
	default:
		return fmt.Errorf("%w\nthe data dir %s has no log id (%s) and its store is not a whole log: restore the data dir from a backup, "+
			"or move it aside to start a new, empty one", err, a.cfg.DataDir, a.markerPath())
	}
}

// How often the running orderd checks that its log is whole, for
// /readyz: one stream info request per stream. A call that finds a stream
// gone asks for a check at once.
const logCheckEvery = 5 * time.Second

// logWatch checks the log the store was opened on while orderd runs, and
// says on /readyz when it is not whole.
type logWatch struct {
	log   *slog.Logger
	store *streams.Store // set before run
	poke  chan struct{}

	mu      sync.Mutex
	problem *httpapi.Problem
}

func newLogWatch(log *slog.Logger) *logWatch {
	return &logWatch{log: log, poke: make(chan struct{}, 1)}
}

// streamMissing is the store's OnStreamMissing: check now.
func (w *logWatch) streamMissing(string) {
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// current returns what is wrong with the log, or nil.
func (w *logWatch) current() *httpapi.Problem {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.problem
}

func (w *logWatch) run(ctx context.Context) {
	tick := time.NewTicker(logCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-w.poke:
		}
		cctx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := w.store.CheckLog(cctx)
		cancel()
		w.update(err)
	}
}

// update records a check's outcome. An error that says nothing about the
// log (NATS unreachable, a timeout) leaves the last verdict as it was:
// /readyz names the connection on its own.
func (w *logWatch) update(err error) {
	var p *httpapi.Problem
	switch {
	case err == nil:
	case errors.Is(err, eventlog.ErrStreamMissing), errors.Is(err, eventlog.ErrNoLog):
		p = &httpapi.Problem{Code: "stream_missing", Component: "log", Message: err.Error()}
	case errors.Is(err, eventlog.ErrLogMismatch):
		p = &httpapi.Problem{Code: "log_mismatch", Component: "log", Message: err.Error()}
	case errors.Is(err, streams.ErrStreamConfig):
		p = &httpapi.Problem{Code: "stream_changed", Component: "log", Message: err.Error()}
	default:
		w.log.Debug("log check: no answer", slog.Any("err", err))
		return
	}
	w.mu.Lock()
	was := w.problem
	w.problem = p
	w.mu.Unlock()
	switch {
	case p != nil && (was == nil || was.Message != p.Message):
		w.log.Error("the log is not whole: commands and queries cannot be served; restore the log from a backup", slog.Any("err", err))
	case p == nil && was != nil:
		w.log.Info("the log is whole again")
	}
}

// unavailable is httpapi's Deps.Unavailable: what keeps this instance
// from serving commands and queries now.
func (a *app) unavailable() []httpapi.Problem {
	var out []httpapi.Problem
	if !a.nc.IsConnected() {
		out = append(out, httpapi.Problem{Code: "nats_disconnected", Component: "nats",
			Message: "the connection to NATS (" + a.natsURL + ") is down: orderd reconnects by itself"})
	}
	if p := a.logs.current(); p != nil {
		out = append(out, *p)
	}
	return out
}
