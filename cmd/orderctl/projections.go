package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/local/pgserver"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/postgres"
	"github.com/ordo-shop/ordo/projections/search"
	"github.com/ordo-shop/ordo/streams"
)

// openPostgres finds PostgreSQL as the README says: --postgres-url
// (ORDO_POSTGRES_URL); else, for a stopped local default (openStore took
// the data dir's lock: no orderd runs on it), its private PostgreSQL,
// started here from <data dir>/postgres and stopped by the returned func;
// else the postgres.url the live local orderd wrote. What the private
// server has to say to an operator (a data directory upgraded to password
// authentication, a new password set) goes to stderr.
func openPostgres(ctx context.Context, e env, flagURL string, lf *logFlags) (url string, stop func(), err error) {
	if flagURL != "" {
		return flagURL, func() {}, nil
	}
	if lf.local {
		dir := filepath.Join(lf.dataDir, datadir.PostgresDir)
		if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
			return "", nil, fmt.Errorf("no read model in %s: start orderd once (its local default creates it), or set ORDO_POSTGRES_URL", lf.dataDir)
		}
		log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		srv, err := pgserver.Start(ctx, pgserver.Options{Dir: dir, Logger: log})
		if err != nil {
			return "", nil, fmt.Errorf("start the local default's PostgreSQL in %s: %w", dir, err)
		}
		return srv.URL(), func() { _ = srv.Stop() }, nil
	}
	b, err := os.ReadFile(filepath.Join(lf.dataDir, datadir.PostgresURL))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, fmt.Errorf("no PostgreSQL: set ORDO_POSTGRES_URL (--postgres-url); the orderd running on %s wrote no %s", lf.dataDir, datadir.PostgresURL)
	}
	if err != nil {
		return "", nil, err
	}
	return strings.TrimSpace(string(b)), func() {}, nil
}

func cmdProjections(ctx context.Context, e env, args []string) error {
	if isSearchRebuild(args) {
		return cmdRebuildSearch(ctx, e, args)
	}
	fs := flag.NewFlagSet("projections", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	pgFlag := fs.String("postgres-url", e.getenv("ORDO_POSTGRES_URL"), "PostgreSQL URL of the read models")
	asJSON := fs.Bool("json", false, "print JSON")
	batch := fs.Int("batch", 500, "commits per transaction when rebuilding")
	esFlag := fs.String("elasticsearch-url", e.getenv("ORDO_ELASTICSEARCH_URL"), "Elasticsearch URL of the search (status lists it when set or found)")
	esPrefix := fs.String("elasticsearch-prefix", e.getenv("ORDO_ELASTICSEARCH_PREFIX"), "index name prefix (default ordo-)")
	note := fs.String("note", "", "with ack: why the commit can never apply")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var ackSeq uint64
	switch {
	case len(pos) == 1 && pos[0] == "status":
	case len(pos) == 2 && pos[0] == "status" && pos[1] == postgres.Name:
	case len(pos) == 2 && pos[0] == "rebuild":
		if pos[1] != postgres.Name {
			return usagef("unknown projection %q (known: %s)", pos[1], postgres.Name)
		}
	case (len(pos) == 1 || len(pos) == 2) && pos[0] == "retry":
		if len(pos) == 2 && pos[1] != postgres.Name && pos[1] != search.Name {
			return usagef("unknown projection %q (known: %s, %s)", pos[1], postgres.Name, search.Name)
		}
	case len(pos) == 3 && pos[0] == "ack":
		if pos[1] != postgres.Name && pos[1] != search.Name {
			return usagef("unknown projection %q (known: %s, %s)", pos[1], postgres.Name, search.Name)
		}
		if ackSeq, err = strconv.ParseUint(pos[2], 10, 64); err != nil || ackSeq == 0 {
			return usagef("ack: %q is not a stream sequence (a positive integer from projections status)", pos[2])
		}
	default:
		return usagef("want 'projections status', 'projections rebuild %s', 'projections retry [projection]' or 'projections ack <projection> <seq>'", postgres.Name)
	}
	if len(*note) > 500 || !utf8.ValidString(*note) {
		return usagef("--note: at most 500 bytes of UTF-8")
	}
	if *batch < 1 || *batch > 10000 {
		return usagef("--batch %d: want 1..10000", *batch)
	}
	store, closeStore, err := lf.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	url, stopPG, err := openPostgres(ctx, e, *pgFlag, &lf)
	if err != nil {
		return err
	}
	defer stopPG()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer pool.Close()
	rm, err := postgres.Open(ctx, pool, postgres.Options{Partitions: store.Partitions(), Partition: store.Partition})
	if err != nil {
		return err
	}
	switch pos[0] {
	case "retry":
		return retryQuarantined(ctx, e, rm, store, pos[1:], *esFlag, *esPrefix, lf.dataDir, *asJSON)
	case "ack":
		return acknowledge(ctx, e, rm, store, pos[1], ackSeq, *note, *esFlag, *esPrefix, lf.dataDir)
	}
	if pos[0] == "rebuild" {
		progress := func(msg string, kv ...any) {
			if !*asJSON {
				fmt.Fprintln(e.stderr, append([]any{"rebuild:", msg}, kv...)...)
			}
		}
		res, err := rm.Rebuild(ctx, store, postgres.RebuildOptions{BatchSize: *batch, Progress: progress})
		if err != nil {
			return err
		}
		if *asJSON {
			if err := json.NewEncoder(e.stdout).Encode(map[string]any{
				"projection": postgres.Name, "from": res.From, "to": res.To, "checkpoint": res.Checkpoint,
				"took_ms": res.Took.Milliseconds(), "held_ms": res.Held.Milliseconds(),
			}); err != nil {
				return err
			}
			return nil
		}
		fmt.Fprintf(e.stdout, "%s: version %d is live (was %d), checkpoint %d; took %s, the projector was held %s\n",
			postgres.Name, res.To, res.From, res.Checkpoint, res.Took.Round(time.Millisecond), res.Held.Round(time.Millisecond))
		return nil
	}
	last, err := store.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil {
		return err
	}
	st, err := rm.Status(ctx, last)
	if err != nil {
		return err
	}
	ps := st.View()
	// The search projection is listed when Elasticsearch is configured
	// or a running orderd recorded the one it uses.
	var sps *projections.View
	if esURL, prefix, err := elasticsearchTarget(*esFlag, *esPrefix, lf.dataDir); err == nil {
		sp := searchStatus(ctx, esURL, prefix, store, last)
		sps = &sp
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(ps); err != nil {
			return err
		}
		if sps != nil {
			return enc.Encode(sps)
		}
		return nil
	}
	printProjection(e.stdout, ps)
	if sps != nil {
		fmt.Fprintln(e.stdout)
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROJECTION\tSTATE\tLIVE VERSION\tCHECKPOINT\tSTREAM END\tLAG")
		projectionRow(tw, *sps)
		tw.Flush()
		if sps.Lag == nil {
			fmt.Fprintf(e.stdout, "%s: lag unknown: %s\n", sps.Name, sps.Reason)
		}
		printQuarantine(e.stdout, *sps)
	}
	return nil
}

// printQuarantine lists a projection's quarantined commits, if any.
func printQuarantine(w io.Writer, ps projections.View) {
	if len(ps.Quarantine) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s: %d commit(s) set aside, %d open (orderctl projections retry %s after a fix; orderctl projections ack %s <seq> if one can never apply)\n",
		ps.Name, len(ps.Quarantine), ps.OpenQuarantines, ps.Name, ps.Name)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VERSION\tSEQ\tORDER\tSTATE\tATTEMPTS\tSINCE\tERROR")
	for _, q := range ps.Quarantine {
		order := q.AggregateID
		if order == "" {
			order = "(unknown)"
		}
		fmt.Fprintf(tw, "  v%d\t%d\t%s\t%s\t%d\t%s\t%s\n", q.Version, q.Seq, order, q.State, q.Attempts, q.QuarantinedAt.Format(time.RFC3339), oneLine(q.Error, 160))
	}
	tw.Flush()
}

// oneLine is s on one line, cut to at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// retryQuarantined is `orderctl projections retry [projection]`: every
// quarantined commit of the read model (and of the search index when
// Elasticsearch is known, or named) applied again; exit 3 if any still
// fails.
func retryQuarantined(ctx context.Context, e env, rm *postgres.Store, store *streams.Store, which []string, esFlag, esPrefix, dataDir string, asJSON bool) error {
	type outcome struct {
		Projection string `json:"projection"`
		projections.RetryResult
	}
	var all []outcome
	add := func(name string, res []projections.RetryResult) {
		for _, r := range res {
			all = append(all, outcome{name, r})
		}
	}
	if len(which) == 0 || which[0] == postgres.Name {
		res, err := rm.Retry(ctx, store)
		if err != nil {
			return err
		}
		add(postgres.Name, res)
	}
	if len(which) == 0 || which[0] == search.Name {
		url, prefix, err := elasticsearchTarget(esFlag, esPrefix, dataDir)
		switch {
		case err != nil && len(which) == 0: // search not in use
		case err != nil:
			return err
		default:
			st, err := openSearch(url, prefix, store)
			if err != nil {
				return err
			}
			res, err := st.Retry(ctx)
			if err != nil {
				return err
			}
			add(search.Name, res)
		}
	}
	failed := 0
	enc := json.NewEncoder(e.stdout)
	for _, o := range all {
		if !o.Resolved {
			failed++
		}
		switch {
		case asJSON:
			if err := enc.Encode(o); err != nil {
				return err
			}
		case o.Resolved:
			fmt.Fprintf(e.stdout, "%s: seq %d (order %s) applied again: resolved\n", o.Projection, o.Seq, o.AggregateID)
		default:
			fmt.Fprintf(e.stdout, "%s: seq %d (order %s) still fails: %s\n", o.Projection, o.Seq, o.AggregateID, oneLine(o.Err, 300))
		}
	}
	if !asJSON && len(all) == 0 {
		fmt.Fprintln(e.stdout, "nothing is quarantined")
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d quarantined commit(s) still do not apply", errCheckFailed, failed)
	}
	return nil
}

// acknowledge is `orderctl projections ack <projection> <seq>`.
func acknowledge(ctx context.Context, e env, rm *postgres.Store, store *streams.Store, name string, seq uint64, note, esFlag, esPrefix, dataDir string) error {
	var err error
	if name == postgres.Name {
		err = rm.Acknowledge(ctx, seq, note)
	} else {
		url, prefix, terr := elasticsearchTarget(esFlag, esPrefix, dataDir)
		if terr != nil {
			return terr
		}
		st, oerr := openSearch(url, prefix, store)
		if oerr != nil {
			return oerr
		}
		err = st.Acknowledge(ctx, seq, note)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: seq %d acknowledged: it stays recorded and its order stays marked degraded, but no longer counts as open\n", name, seq)
	return nil
}

// projectionRow writes a projection's line of the status table; with
// its checkpoints unread (state unavailable) version and checkpoint are
// "-" and the lag "unknown".
func projectionRow(tw io.Writer, ps projections.View) {
	version, checkpoint := fmt.Sprintf("v%d", ps.Version), strconv.FormatUint(ps.Checkpoint, 10)
	if ps.Lag == nil {
		version, checkpoint = "-", "-"
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", ps.Name, ps.State, version, checkpoint, ps.StreamLastSeq, ps.LagText())
}

func printProjection(w io.Writer, ps projections.View) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tSTATE\tLIVE VERSION\tCHECKPOINT\tSTREAM END\tLAG")
	projectionRow(tw, ps)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tCHECKPOINT\tLAG\tLAST APPLIED")
	for _, v := range ps.Versions {
		fmt.Fprintf(tw, "v%d\t%s\t%d\t%d\t%s\n", v.Version, v.State, v.Checkpoint, v.Lag, v.UpdatedAt.Format(time.RFC3339))
	}
	tw.Flush()
	owners := map[string][]int{}
	var names []string
	for _, l := range ps.Leases {
		if owners[l.Owner] == nil {
			names = append(names, l.Owner)
		}
		owners[l.Owner] = append(owners[l.Owner], l.Partition)
	}
	fmt.Fprintf(w, "\n%d partition lease(s) held by %d instance(s)\n", len(ps.Leases), len(names))
	for _, n := range names {
		fmt.Fprintf(w, "  %s: partitions %v\n", n, owners[n])
	}
	printQuarantine(w, ps)
}
