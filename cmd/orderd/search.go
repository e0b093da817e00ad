package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/pause"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/search"
)

// localSearchCheck is how often orderd looks whether the local
// Elasticsearch it uses still answers, and where it publishes its URL.
const localSearchCheck = 5 * time.Second

// localSearchRetry is how long orderd waits before it tries again to
// start the local Elasticsearch; ownershipRetry, to check the index.
const (
	localSearchRetry = 30 * time.Second
	ownershipRetry   = 2 * time.Second
)

// localSearchDir, when set, is the directory of the shared local
// Elasticsearch orderd uses instead of the machine's (tests keep theirs
// apart; see esserver.Options.Dir).
var localSearchDir string

// setupSearch wires the customer-service search: with
// ORDO_ELASTICSEARCH_URL that server, with ORDO_ELASTICSEARCH=local the
// shared local server (started in the background if it does not run:
// search answers 503 until it is up), else none (the route answers 503).
// It never fails because Elasticsearch is down: search answers 503 and
// the projector, with the search role, retries and resumes from its
// checkpoints.
func (a *app) setupSearch() error {
	if a.cfg.ElasticsearchURL == "" && a.cfg.Elasticsearch != "local" {
		a.log.Info("search disabled: set ORDO_ELASTICSEARCH_URL, or ORDO_ELASTICSEARCH=local for the local Elasticsearch")
		return nil
	}
	a.search = &search.Slot{}
	var st *search.Store
	if a.cfg.ElasticsearchURL != "" {
		var err error
		if st, err = a.openSearch(a.cfg.ElasticsearchURL, a.cfg.ElasticsearchPrefix); err != nil {
			return err
		}
		a.search.Set(st) // no I/O yet: fine while Elasticsearch is down
	}
	bg, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.cleanup = append(a.cleanup, func() { cancel(); <-done })
	go func() {
		defer close(done)
		defer os.Remove(filepath.Join(a.cfg.DataDir, datadir.ElasticsearchURL))
		defer os.Remove(filepath.Join(a.cfg.DataDir, datadir.ElasticsearchPrefix))
		local := a.localSearch()
		for st == nil {
			u, err := local.start(bg)
			if err == nil {
				if st, err = a.openSearch(u, a.localSearchPrefix()); err != nil {
					a.log.Error("search disabled", slog.Any("err", err))
					return
				}
				a.search.Set(st)
				// The local server is ours to keep up: started again on
				// its port when it dies, and followed when it comes back
				// on another.
				kept := make(chan struct{})
				go func() {
					defer close(kept)
					local.keep(bg, u, func(now string) { a.followSearch(st, now) })
				}()
				defer func() { <-kept }()
				break
			}
			if bg.Err() != nil {
				return
			}
			a.log.Error("search: cannot start the local Elasticsearch; retrying", slog.Duration("in", localSearchRetry), slog.Any("err", err))
			if pause.For(bg, localSearchRetry) != nil {
				return
			}
		}
		if err := a.runSearch(bg, st); err != nil {
			a.log.Error("search projector stopped", slog.Any("err", err))
		}
	}()
	return nil
}

// openSearch returns the index at url and records the URL for orderctl
// in <data dir>/elasticsearch.url (the caller removes it at shutdown).
func (a *app) openSearch(url, prefix string) (*search.Store, error) {
	client, err := search.NewClient(url)
	if err != nil {
		return nil, err
	}
	idctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logID, err := a.store.Identity(idctx, eventlog.TypeOrder)
	if err != nil {
		return nil, err
	}
	st, err := search.New(client, search.Options{
		Prefix: prefix, Partitions: a.store.Partitions(), Loader: a.store, Logger: a.log, Log: logID,
	})
	if err != nil {
		return nil, err
	}
	a.recordSearch(datadir.ElasticsearchURL, url)
	a.recordSearch(datadir.ElasticsearchPrefix, prefix)
	a.log.Info("search configured", slog.String("elasticsearch", redacted(url)), slog.String("alias", st.Alias()))
	return st, nil
}

// recordSearch writes one of the files that tell orderctl which
// Elasticsearch this orderd uses.
func (a *app) recordSearch(name, value string) {
	if err := datadir.WriteFile(a.cfg.DataDir, name, []byte(value+"\n")); err != nil {
		a.log.Warn("search: cannot record "+name, slog.Any("err", err))
	}
}

// followSearch points st at the local Elasticsearch's new address url
// (it was started again on another port) and records it for orderctl;
// the projector and search go on without a restart.
func (a *app) followSearch(st *search.Store, url string) {
	client, err := search.NewClient(url)
	if err != nil {
		a.log.Error("search: cannot follow the local Elasticsearch", slog.String("url", url), slog.Any("err", err))
		return
	}
	st.SetClient(client)
	a.recordSearch(datadir.ElasticsearchURL, url)
	a.log.Info("search: switched to the local Elasticsearch's new address", slog.String("elasticsearch", url), slog.String("alias", st.Alias()))
}

// localSearchPrefix is the index prefix of the local default in the
// shared local Elasticsearch ([search.LocalPrefix]), tagged with the
// ORDERS stream's identity.
func (a *app) localSearchPrefix() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logID, err := a.store.Identity(ctx, eventlog.TypeOrder)
	if err != nil {
		// The log answered at start; if it does not now, the index name
		// must still not collide.
		a.log.Warn("search: cannot read the log's identity; naming the index after the data dir", slog.Any("err", err))
	}
	return search.LocalPrefix(a.cfg.ElasticsearchPrefix, logID, a.cfg.DataDir)
}

// runSearch runs the search projector, with the search role, until ctx
// ends. It first makes sure the index belongs to this log
// ([search.Store.WaitOwned]); one of another log is refused: search
// answers 503 until an operator deletes the index or points
// ORDO_ELASTICSEARCH_PREFIX elsewhere.
func (a *app) runSearch(ctx context.Context, st *search.Store) error {
	err := st.WaitOwned(ctx, a.store, ownershipRetry, func(err error) {
		a.log.Warn("search: cannot check the index yet; retrying", slog.Any("err", err))
	})
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		err = fmt.Errorf("%w; use another ORDO_ELASTICSEARCH_PREFIX or delete the index", err)
		a.search.Refuse(err)
		return err
	}
	if !a.cfg.HasRole("search") {
		return nil
	}
	// Instances with the search role share its partitions through the
	// same lease tables as the read model, under the search's own name.
	var leases projections.Leases
	if a.readModel != nil {
		leases = a.readModel.LeasesFor(search.Name, instanceName(), a.cfg.ProjectionLeaseTTL)
	}
	runner, err := projections.New(a.store, st.Sink(), leases, projections.Options{Logger: a.log, LeaseInterval: a.cfg.ProjectionLeaseTTL / 5})
	if err != nil {
		return err
	}
	return runner.Run(ctx)
}

// redacted is a server URL fit for a log line: its password, if any,
// replaced by "xxxxx".
func redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Redacted()
}
