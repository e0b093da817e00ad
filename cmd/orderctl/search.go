package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/search"
	"github.com/ordo-shop/ordo/streams"
)

// isSearchRebuild reports whether args ask for `projections rebuild
// search`.
func isSearchRebuild(args []string) bool {
	i := slices.Index(args, "rebuild")
	return i >= 0 && i+1 < len(args) && args[i+1] == search.Name
}

// elasticsearchTarget finds Elasticsearch and the index prefix:
// --elasticsearch-url (ORDO_ELASTICSEARCH_URL) with
// --elasticsearch-prefix (ORDO_ELASTICSEARCH_PREFIX; empty: the
// default), else the elasticsearch.url and elasticsearch.prefix a live
// orderd wrote into its data dir (a prefix flag still wins).
func elasticsearchTarget(flagURL, flagPrefix, dataDir string) (url, prefix string, err error) {
	if flagURL != "" {
		return flagURL, flagPrefix, nil
	}
	b, err := os.ReadFile(filepath.Join(dataDir, datadir.ElasticsearchURL))
	if errors.Is(err, os.ErrNotExist) {
		return "", "", fmt.Errorf("no Elasticsearch: set ORDO_ELASTICSEARCH_URL (--elasticsearch-url), or start orderd with search, which writes %s", filepath.Join(dataDir, datadir.ElasticsearchURL))
	}
	if err != nil {
		return "", "", err
	}
	url, prefix = strings.TrimSpace(string(b)), flagPrefix
	if prefix == "" {
		prefix = datadir.ReadTrimmed(dataDir, datadir.ElasticsearchPrefix)
	}
	return url, prefix, nil
}

// cmdRebuildSearch is `orderctl projections rebuild search`: a new index
// behind the alias, caught up with the log, then one atomic alias swap.
func cmdRebuildSearch(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("projections rebuild search", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	esFlag := fs.String("elasticsearch-url", e.getenv("ORDO_ELASTICSEARCH_URL"), "Elasticsearch URL of the search")
	prefix := fs.String("elasticsearch-prefix", e.getenv("ORDO_ELASTICSEARCH_PREFIX"), "index name prefix (default ordo-)")
	asJSON := fs.Bool("json", false, "print JSON")
	batch := fs.Int("batch", 500, "commits per bulk request when rebuilding")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *batch < 1 || *batch > 10000 {
		return usagef("--batch %d: want 1..10000", *batch)
	}
	url, esPrefix, err := elasticsearchTarget(*esFlag, *prefix, lf.dataDir)
	if err != nil {
		return err
	}
	store, closeStore, err := lf.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	client, err := search.NewClient(url)
	if err != nil {
		return err
	}
	logID, err := store.Identity(ctx, eventlog.TypeOrder)
	if err != nil {
		return err
	}
	st, err := search.New(client, search.Options{Prefix: esPrefix, Partitions: store.Partitions(), Loader: store, Log: logID})
	if err != nil {
		return err
	}
	before, _ := st.Status(ctx, 0)
	start := time.Now()
	index, err := st.Rebuild(ctx, store, search.RebuildOptions{BatchSize: *batch})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]any{
			"projection": search.Name, "from": before.Index, "to": index, "alias": st.Alias(), "took_ms": time.Since(start).Milliseconds(),
		})
	}
	fmt.Fprintf(e.stdout, "%s: alias %s now points at %s (was %s); took %s\n", search.Name, st.Alias(), index, before.Index, time.Since(start).Round(time.Millisecond))
	return nil
}

// openSearch returns the search store at url, reading the log through
// store.
func openSearch(url, prefix string, store *streams.Store) (*search.Store, error) {
	client, err := search.NewClient(url)
	if err != nil {
		return nil, err
	}
	return search.New(client, search.Options{Prefix: prefix, Partitions: store.Partitions(), Loader: store})
}

// searchStatus describes the search projection at url; with
// Elasticsearch unreachable its state is "unavailable".
func searchStatus(ctx context.Context, url, prefix string, store *streams.Store, last uint64) projections.View {
	st, err := openSearch(url, prefix, store)
	if err != nil {
		return search.UnavailableView(last, err)
	}
	s, err := st.Status(ctx, last)
	if err != nil {
		return search.UnavailableView(last, err)
	}
	return s.View(last)
}
