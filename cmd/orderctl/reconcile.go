package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/postgres"
	"github.com/ordo-shop/ordo/projections/search"
	"github.com/ordo-shop/ordo/streams"
)

// cmdReconcile is `orderctl reconcile`: it replays the log into what the
// read models should hold, up to their checkpoints, and reports every
// drift of the order-status read model and, when Elasticsearch is
// known, of the search index.
func cmdReconcile(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	pgFlag := fs.String("postgres-url", e.getenv("ORDO_POSTGRES_URL"), "PostgreSQL URL of the read models")
	esFlag := fs.String("elasticsearch-url", e.getenv("ORDO_ELASTICSEARCH_URL"), "Elasticsearch URL of the search")
	esPrefix := fs.String("elasticsearch-prefix", e.getenv("ORDO_ELASTICSEARCH_PREFIX"), "index name prefix (default ordo-)")
	noSearch := fs.Bool("no-search", false, "do not check the search index")
	asJSON := fs.Bool("json", false, "print JSON Lines: one drift per line, then a summary")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	store, closeStore, err := lf.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	// The search index first: Elasticsearch known but down is an error,
	// told before the read model's longer part.
	var results []projections.Reconciliation
	if !*noSearch {
		res, ok, err := reconcileSearch(ctx, e, *esFlag, *esPrefix, lf.dataDir, store)
		if err != nil {
			return err
		}
		if ok {
			results = append(results, res)
		}
	}
	res, err := reconcileReadModel(ctx, e, *pgFlag, &lf, store)
	if err != nil {
		return err
	}
	results = append([]projections.Reconciliation{res}, results...)
	drifts := 0
	for _, r := range results {
		drifts += len(r.Drifts)
	}
	if *asJSON {
		if err := printReconcileJSON(e.stdout, results, drifts); err != nil {
			return err
		}
	} else {
		printReconcile(e.stdout, results)
	}
	if drifts > 0 {
		return fmt.Errorf("%d drift(s) between the read models and the log: %w", drifts, errCheckFailed)
	}
	return nil
}

// reconcileReadModel reconciles the order-status read model in the
// PostgreSQL openPostgres finds.
func reconcileReadModel(ctx context.Context, e env, pgFlag string, lf *logFlags, store *streams.Store) (projections.Reconciliation, error) {
	url, stopPG, err := openPostgres(ctx, e, pgFlag, lf)
	if err != nil {
		return projections.Reconciliation{}, err
	}
	defer stopPG()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return projections.Reconciliation{}, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer pool.Close()
	rm, err := postgres.Open(ctx, pool, postgres.Options{Partitions: store.Partitions(), Partition: store.Partition})
	if err != nil {
		return projections.Reconciliation{}, err
	}
	progress, done := progressOf(e, "reconcile "+postgres.Name)
	defer done()
	return rm.Reconcile(ctx, store, postgres.ReconcileOptions{Progress: progress})
}

// reconcileSearch reconciles the search index, if Elasticsearch is known
// (ok reports whether it is): --elasticsearch-url
// (ORDO_ELASTICSEARCH_URL), else the elasticsearch.url of a live orderd
// in the data dir.
func reconcileSearch(ctx context.Context, e env, flagURL, flagPrefix, dataDir string, store *streams.Store) (res projections.Reconciliation, ok bool, err error) {
	if flagURL == "" {
		if _, err := os.Stat(filepath.Join(dataDir, datadir.ElasticsearchURL)); os.IsNotExist(err) {
			return res, false, nil
		}
	}
	url, prefix, err := elasticsearchTarget(flagURL, flagPrefix, dataDir)
	if err != nil {
		return res, false, err
	}
	client, err := search.NewClient(url)
	if err != nil {
		return res, false, err
	}
	index, err := search.New(client, search.Options{Prefix: prefix, Partitions: store.Partitions()})
	if err != nil {
		return res, false, err
	}
	progress, done := progressOf(e, "reconcile "+search.Name)
	res, err = index.Reconcile(ctx, store, search.ReconcileOptions{Progress: progress})
	done()
	if err != nil {
		return res, false, fmt.Errorf("elasticsearch at %s (--no-search skips it): %w", url, err)
	}
	return res, true, nil
}

// progressOf returns a Progress callback for a reconciliation that
// draws a bar labelled label (on a terminal only), and the func that
// ends the bar.
func progressOf(e env, label string) (update func(done, total uint64), finish func()) {
	var bar *progress
	started := false
	var last uint64
	update = func(done, total uint64) {
		if !started {
			bar, started = newProgress(e, label, total), true
		}
		bar.add(done - last)
		last = done
	}
	return update, func() { bar.finish() }
}

// driftLine is one line of `reconcile --json` for a drift.
type driftLine struct {
	Type string `json:"type"` // "drift"
	projections.Drift
}

// reconcileSummary is the last line of `reconcile --json`.
type reconcileSummary struct {
	Type        string            `json:"type"` // "summary"
	Drifts      int               `json:"drifts"`
	Projections []reconcileTotals `json:"projections"`
}

// reconcileTotals is one read model's line in the summary.
type reconcileTotals struct {
	projections.Reconciliation
	Drifts int `json:"drifts"`
}

func printReconcileJSON(w io.Writer, results []projections.Reconciliation, drifts int) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	sum := reconcileSummary{Type: "summary", Drifts: drifts, Projections: []reconcileTotals{}}
	for _, r := range results {
		for _, d := range r.Drifts {
			if err := enc.Encode(driftLine{Type: "drift", Drift: d}); err != nil {
				return err
			}
		}
		sum.Projections = append(sum.Projections, reconcileTotals{Reconciliation: r, Drifts: len(r.Drifts)})
	}
	return enc.Encode(sum)
}

// printReconcile prints, per read model, a summary line and then one
// line per drift: the order, where (table[key].field), the kind, what
// the log says and what the store holds ("-": nothing).
func printReconcile(w io.Writer, results []projections.Reconciliation) {
	for _, r := range results {
		verdict := "no drift"
		if n := len(r.Drifts); n > 0 {
			verdict = fmt.Sprintf("%d drift(s)", n)
		}
		rows := "rows"
		if r.Projection == search.Name {
			rows = "documents"
		}
		quarantined := ""
		if r.Quarantined > 0 {
			quarantined = fmt.Sprintf("; %d quarantined commit(s) skipped, as the projector skipped them: see orderctl projections status", r.Quarantined)
		}
		fmt.Fprintf(w, "%s %s: %s (%d orders, %d commits up to the checkpoints, %d %s compared%s)\n",
			r.Projection, r.Target, verdict, r.Orders, r.Commits, r.Rows, rows, quarantined)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, d := range r.Drifts {
			order, log, store := d.OrderID, strconv.Quote(d.Log), strconv.Quote(d.Store)
			if order == "" {
				order = "-"
			}
			switch d.Kind {
			case projections.DriftMissing:
				store = "-"
			case projections.DriftExtra, projections.DriftUnknownVersion:
				log = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\tlog %s\tstore %s\n", order, d.Where(), d.Kind, log, store)
		}
		tw.Flush()
	}
}
