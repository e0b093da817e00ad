package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/esserver"
	"github.com/ordo-shop/ordo/internal/httpapi"
	"github.com/ordo-shop/ordo/internal/localdir"
	"github.com/ordo-shop/ordo/internal/pgserver"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/search"
)

// elasticsearchURLFile and elasticsearchPrefixFile are where orderd
// writes the URL of the Elasticsearch it uses and its index prefix, for
// orderctl.
const (
	elasticsearchURLFile    = "elasticsearch.url"
	elasticsearchPrefixFile = "elasticsearch.prefix"
)

// localSearchCheck is how often orderd looks whether the local
// Elasticsearch it uses still answers, and where it publishes its URL.
const localSearchCheck = 5 * time.Second

// localSearchDir, when set, is the directory of the shared local
// Elasticsearch orderd uses instead of the machine's (tests keep theirs
// apart; see esserver.Options.Dir).
var localSearchDir string

// searchIndex serves httpapi.Search from a store that may arrive late
// (while the local Elasticsearch starts): until then search answers 503.
type searchIndex struct {
	st atomic.Pointer[search.Store]
	// refused, once set, is why the index must not be served (it was
	// built from another log).
	refused atomic.Pointer[error]
}

func (s *searchIndex) store() (*search.Store, error) {
	if err := s.refused.Load(); err != nil {
		return nil, *err
	}
	st := s.st.Load()
	if st == nil {
		return nil, fmt.Errorf("%w: the local Elasticsearch is starting", search.ErrUnavailable)
	}
	return st, nil
}

func (s *searchIndex) Search(ctx context.Context, q search.Query) (search.Result, error) {
	st, err := s.store()
	if err != nil {
		return search.Result{}, err
	}
	return st.Search(ctx, q)
}

func (s *searchIndex) WaitFor(ctx context.Context, seq uint64) (bool, error) {
	st, err := s.store()
	if err != nil {
		return false, err
	}
	return st.WaitFor(ctx, seq)
}

func (s *searchIndex) Status(ctx context.Context, streamLast uint64) (search.Status, error) {
	st, err := s.store()
	if err != nil {
		return search.Status{}, err
	}
	return st.Status(ctx, streamLast)
}

func (s *searchIndex) Quarantined(ctx context.Context) ([]projections.QuarantineView, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	return st.Quarantined(ctx)
}

var _ httpapi.SearchStatus = (*searchIndex)(nil)

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
		if st, err = a.openSearch(a.cfg.ElasticsearchURL, a.cfg.ElasticsearchPrefix); err != nil {
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
		defer os.Remove(filepath.Join(a.cfg.DataDir, elasticsearchPrefixFile))
		local := esserver.Options{CacheDir: esserver.DefaultCacheDir(os.Getenv), Dir: localSearchDir, Logger: a.log}
		for st == nil {
			u, err := esserver.Shared(bg, local)
			if err == nil {
				if st, err = a.openSearch(u, a.localSearchPrefix()); err != nil {
					a.log.Error("search disabled", slog.Any("err", err))
					return
				}
				a.search.st.Store(st)
				// The local server is ours to keep up: started again on
				// its port when it dies, and followed when it comes back
				// on another.
				kept := make(chan struct{})
				go func() {
					defer close(kept)
					esserver.KeepShared(bg, local, u, localSearchCheck, func(now string) { a.followSearch(st, now) })
				}()
				defer func() { <-kept }()
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
	if err := localdir.WriteFile(a.cfg.DataDir, elasticsearchURLFile, []byte(url+"\n")); err != nil {
		a.log.Warn("search: write elasticsearch.url", slog.Any("err", err))
	}
	if err := localdir.WriteFile(a.cfg.DataDir, elasticsearchPrefixFile, []byte(prefix+"\n")); err != nil {
		a.log.Warn("search: write elasticsearch.prefix", slog.Any("err", err))
	}
	a.log.Info("search configured", slog.String("elasticsearch", pgserver.Redacted(url)), slog.String("alias", st.Alias()))
	return st, nil
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
	if err := localdir.WriteFile(a.cfg.DataDir, elasticsearchURLFile, []byte(url+"\n")); err != nil {
		a.log.Warn("search: write elasticsearch.url", slog.Any("err", err))
	}
	a.log.Info("search: switched to the local Elasticsearch's new address", slog.String("elasticsearch", url), slog.String("alias", st.Alias()))
}

// localSearchPrefix is the index prefix of the local default in the
// shared local Elasticsearch, which other data dirs (and earlier lives of
// this one) use too: the configured prefix followed by a tag of the
// ORDERS stream's identity (its name and creation time), so a new log
// never finds the index of another and skips its sequences as applied.
func (a *app) localSearchPrefix() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tag, err := a.store.Identity(ctx, eventlog.TypeOrder)
	if err != nil {
		// The log answered at start; if it does not now, the index name
		// must still not collide: fall back to the data dir's path.
		a.log.Warn("search: cannot read the log's identity; naming the index after the data dir", slog.Any("err", err))
		abs, _ := filepath.Abs(a.cfg.DataDir)
		tag = shortHash(abs)
	}
	return a.cfg.ElasticsearchPrefix + tag + "-"
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// checkIndexIsOurs refuses an index built from another log
// ([search.Store.CheckLog]): search answers 503 until an operator
// deletes the index or points ORDO_ELASTICSEARCH_PREFIX elsewhere.
func (a *app) checkIndexIsOurs(ctx context.Context, st *search.Store) error {
	last, err := a.store.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil {
		return err
	}
	if err := st.CheckLog(ctx, last); err != nil {
		if errors.Is(err, search.ErrOtherLog) {
			return fmt.Errorf("%w; use another ORDO_ELASTICSEARCH_PREFIX or delete the index", err)
		}
		return err
	}
	return nil
}

// runSearch runs the search projector, with the search role, until ctx
// ends. It first makes sure the index belongs to this log, retrying while
// Elasticsearch is unreachable.
func (a *app) runSearch(ctx context.Context, st *search.Store) error {
	for {
		err := a.checkIndexIsOurs(ctx, st)
		if err == nil {
			break
		}
		if errors.Is(err, search.ErrOtherLog) {
			refused := fmt.Errorf("%w: %v", search.ErrUnavailable, err)
			a.search.refused.Store(&refused)
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		a.log.Warn("search: cannot check the index yet; retrying", slog.Any("err", err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
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
