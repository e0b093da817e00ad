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
	a.search = &searchIndex{}
	var st *search.Store
	if a.cfg.ElasticsearchURL != "" {
		var err error
		if st, err = a.openSearch(a.cfg.ElasticsearchURL); err != nil {
			return err
		}
		a.search.st.Store(st) // no I/O yet: fine while Elasticsearch is down
	}
	urlFile := filepath.Join(a.cfg.DataDir, elasticsearchURLFile)
	bg, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.cleanup = append(a.cleanup, func() { cancel(); <-done })
	go func() {
		defer close(done)
		defer os.Remove(urlFile)
		for st == nil {
			u, err := esserver.Shared(bg, esserver.Options{CacheDir: esserver.DefaultCacheDir(os.Getenv), Logger: a.log})
			if err == nil {
				if st, err = a.openSearch(u); err != nil {
					a.log.Error("search disabled", slog.Any("err", err))
					return
				}
				a.search.st.Store(st)
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
		if err := a.runSearch(bg, st); err != nil {
			a.log.Error("search projector stopped", slog.Any("err", err))
		}
	}()
	return nil
}

// openSearch returns the index at url and records the URL for orderctl
// in <data dir>/elasticsearch.url (the caller removes it at shutdown).
func (a *app) openSearch(url string) (*search.Store, error) {
	client, err := search.NewClient(url)
	if err != nil {
		return nil, err
	}
	st, err := search.New(client, search.Options{
		Prefix: a.cfg.ElasticsearchPrefix, Partitions: a.store.Partitions(), Loader: a.store, Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	if err := localdir.WriteFile(a.cfg.DataDir, elasticsearchURLFile, []byte(url+"\n")); err != nil {
		a.log.Warn("search: write elasticsearch.url", slog.Any("err", err))
	}
	a.log.Info("search configured", slog.String("elasticsearch", url), slog.String("alias", st.Alias()))
	return st, nil
}

// runSearch runs the search projector, with the search role, until ctx
// ends.
func (a *app) runSearch(ctx context.Context, st *search.Store) error {
	if !a.cfg.HasRole("search") {
		return nil
	}
	runner, err := projections.New(a.store, st.Sink(), nil, projections.Options{Logger: a.log})
	if err != nil {
		return err
	}
	return runner.Run(ctx)
}
