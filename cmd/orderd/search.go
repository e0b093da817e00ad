package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ordo-shop/ordo/internal/esserver"
	"github.com/ordo-shop/ordo/internal/localdir"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/search"
)

// elasticsearchURLFile is where orderd writes the URL of the
// Elasticsearch it uses, for orderctl.
const elasticsearchURLFile = "elasticsearch.url"

// searchIndex serves httpapi.Search from a store that may arrive late
// (while the local Elasticsearch starts): until then search answers 503.
type searchIndex struct {
	st atomic.Pointer[search.Store]
}

func (s *searchIndex) Search(ctx context.Context, q search.Query) (search.Result, error) {
	st := s.st.Load()
	if st == nil {
		return search.Result{}, fmt.Errorf("%w: the local Elasticsearch is starting", search.ErrUnavailable)
	}
	return st.Search(ctx, q)
}

func (s *searchIndex) WaitFor(ctx context.Context, seq uint64) (bool, error) {
	st := s.st.Load()
	if st == nil {
		return false, fmt.Errorf("%w: the local Elasticsearch is starting", search.ErrUnavailable)
	}
	return st.WaitFor(ctx, seq)
}

// setupSearch wires the customer-service search: with
// ORDO_ELASTICSEARCH_URL that server, with ORDO_ELASTICSEARCH=local the
// shared local server (started in the background if it does not run),
// else none (the route answers 503). It never fails because
// Elasticsearch is down: search answers 503 and the projector, with the
// search role, retries and resumes from its checkpoints.
func (a *app) setupSearch(ctx context.Context) {
	if a.cfg.ElasticsearchURL == "" && a.cfg.Elasticsearch != "local" {
		a.log.Info("search disabled: set ORDO_ELASTICSEARCH_URL, or ORDO_ELASTICSEARCH=local for the local Elasticsearch")
		return
	}
	a.search = &searchIndex{}
	bg, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.cleanup = append(a.cleanup, func() { cancel(); <-done })
	go func() {
		defer close(done)
		url := a.cfg.ElasticsearchURL
		for url == "" {
			u, err := esserver.Shared(bg, esserver.Options{CacheDir: esserver.DefaultCacheDir(os.Getenv), Logger: a.log})
			if err == nil {
				url = u
				break
			}
			if bg.Err() != nil {
				return
			}
			a.log.Error("search: cannot start the local Elasticsearch; retrying in 30s", slog.Any("err", err))
			select {
			case <-bg.Done():
				return
			case <-time.After(30 * time.Second):
			}
		}
		if err := a.runSearch(bg, url); err != nil {
			a.log.Error("search disabled", slog.Any("err", err))
		}
	}()
}

// runSearch opens the index at url and, with the search role, runs its
// projector until ctx ends.
func (a *app) runSearch(ctx context.Context, url string) error {
	client, err := search.NewClient(url)
	if err != nil {
		return err
	}
	st, err := search.New(client, search.Options{
		Prefix: a.cfg.ElasticsearchPrefix, Partitions: a.store.Partitions(), Loader: a.store, Logger: a.log,
	})
	if err != nil {
		return err
	}
	if err := localdir.WriteFile(a.cfg.DataDir, elasticsearchURLFile, []byte(url+"\n")); err != nil {
		a.log.Warn("search: write elasticsearch.url", slog.Any("err", err))
	}
	defer os.Remove(filepath.Join(a.cfg.DataDir, elasticsearchURLFile))
	a.search.st.Store(st)
	a.log.Info("search ready", slog.String("elasticsearch", url), slog.String("alias", st.Alias()))
	if !a.cfg.HasRole("search") {
		<-ctx.Done()
		return nil
	}
	runner, err := projections.New(a.store, st.Sink(), nil, projections.Options{Logger: a.log})
	if err != nil {
		return err
	}
	return runner.Run(ctx)
}
