// Command peers measures Ordo's durable append path next to two Go event
// stores that keep their events in PostgreSQL, on the same machine and in
// the same process, taking turns:
//
//   - goes: github.com/modernice/goes, backend/postgres (pgx), through its
//     aggregate repository (Save);
//   - hallgren: github.com/hallgren/eventsourcing with its SQL event store
//     (eventstore/sql, database/sql and lib/pq), through aggregate.Save;
//   - ordo: streams.Store.Append through the port (eventlog.AggregateLog),
//     every commit sealed and signed as orderd signs it;
//   - raw-js: JetStream publish of a message as large as Ordo's commit,
//     with the same two headers: the floor under Ordo.
//
// It starts a private PostgreSQL (fsync=on, synchronous_commit=on) and, for
// every Ordo and raw run, an embedded nats-server with JetStream that fsyncs
// every write. Each run has W writers, each appending commits of K events
// to its own aggregates in turn (1000 aggregates in all), after an empty
// store; the stores take turns within each configuration, in an order that
// rotates from round to round. It prints every run and then, per
// configuration, the median of the rounds and Ordo's ratio to each.
//
// This is its own module so that Ordo's go.mod does not depend on the
// peers; see README.md for how to run it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/ordo-shop/ordo/internal/local/pgserver"
)

type flags struct {
	writers, ks []int
	stores      []string
	reps        int
	cfg         runConfig
	dir         string
}

func parseFlags() (flags, error) {
	var f flags
	writers := flag.String("writers", "1,16", "writer counts, comma-separated")
	ks := flag.String("k", "1,3", "events per commit, comma-separated")
	stores := flag.String("stores", "goes,hallgren,ordo,raw-js", "stores to run, comma-separated (also: ordo-unsigned, Ordo without commit signatures; raw-js-<n>, raw-js spread over n streams)")
	flag.IntVar(&f.reps, "reps", 3, "rounds; every store runs every configuration once per round (medians are reported)")
	flag.IntVar(&f.cfg.Aggregates, "aggs", 1000, "aggregates per run, split evenly over the writers")
	flag.DurationVar(&f.cfg.MinDur, "min-dur", 3*time.Second, "a run lasts at least this long ...")
	flag.Int64Var(&f.cfg.MinEvents, "min-events", 3000, "... and until this many events are stored ...")
	flag.DurationVar(&f.cfg.MaxDur, "max-dur", 8*time.Second, "... but never longer than this")
	flag.StringVar(&f.dir, "dir", "", "directory for the servers' data (default: a new one under the system temp dir, removed at the end)")
	flag.Parse()
	var err error
	if f.writers, err = positiveInts(*writers); err != nil {
		return f, fmt.Errorf("-writers: %w", err)
	}
	if f.ks, err = positiveInts(*ks); err != nil {
		return f, fmt.Errorf("-k: %w", err)
	}
	for _, s := range strings.Split(*stores, ",") {
		switch s = strings.TrimSpace(s); s {
		case "goes", "hallgren", "ordo", "raw-js", "ordo-unsigned":
			f.stores = append(f.stores, s)
		default:
			if n, err := strconv.Atoi(strings.TrimPrefix(s, "raw-js-")); err == nil && strings.HasPrefix(s, "raw-js-") && n >= 2 && n <= 64 {
				f.stores = append(f.stores, s)
				continue
			}
			return f, fmt.Errorf("-stores: unknown store %q (goes, hallgren, ordo, raw-js, raw-js-<2..64>, ordo-unsigned)", s)
		}
	}
	if f.reps < 1 || f.cfg.Aggregates < 1 || f.cfg.MaxDur <= 0 || f.cfg.MinDur > f.cfg.MaxDur {
		return f, fmt.Errorf("need -reps >= 1, -aggs >= 1 and 0 < -min-dur <= -max-dur")
	}
	return f, nil
}

func positiveInts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%q is not a positive number", p)
		}
		out = append(out, v)
	}
	return out, nil
}

func main() {
	f, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = benchmark(ctx, f)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

// pgSettings make the private PostgreSQL as durable as the JetStream
// server it is compared with: a commit is acknowledged only after its WAL
// is on disk. (Both are PostgreSQL's defaults; they are set so that a
// changed default cannot weaken the comparison.)
var pgSettings = map[string]string{
	"fsync":              "on",
	"synchronous_commit": "on",
	"full_page_writes":   "on",
	"max_connections":    "100",
}

func benchmark(ctx context.Context, f flags) error {
	dir := f.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "ordo-peers-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	loadStart := loadAvg()
	started := time.Now()
	fmt.Printf("# peers: %s, %s, GOMAXPROCS=%d, %d CPUs, load average at start %.2f %.2f %.2f\n",
		started.UTC().Format(time.RFC3339), runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), loadStart[0], loadStart[1], loadStart[2])

	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	pg, err := pgserver.Start(pctx, pgserver.Options{Dir: filepath.Join(dir, "postgres"), Settings: pgSettings})
	cancel()
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	defer pg.Stop()
	if err := describePostgres(ctx, pg.URL()); err != nil {
		return err
	}
	fmt.Printf("# nats-server %s embedded, JetStream file store, sync_interval always (fsync before every ack), client in process; a fresh server per run\n", server.VERSION)
	fmt.Printf("# workload: %d aggregates per run split over the writers, %d-byte JSON per event, run >= %s and >= %d events (at most %s), %d rounds, store order rotating per round\n",
		f.cfg.Aggregates, payloadBytes, f.cfg.MinDur, f.cfg.MinEvents, f.cfg.MaxDur, f.reps)

	stores, err := openStores(ctx, f, dir, pg)
	for _, s := range stores {
		defer s.Close()
	}
	if err != nil {
		return err
	}
	for _, s := range stores {
		if r, ok := s.(*rawStore); ok {
			for _, k := range f.ks {
				fmt.Printf("# Ordo's signed commit of %d events (and raw-js's message): %d bytes\n", k, len(r.payloads[k]))
			}
		}
	}
	for _, s := range stores {
		if err := s.Reset(ctx); err != nil {
			return fmt.Errorf("%s: reset: %w", s.Name(), err)
		}
		if err := occCheck(ctx, s); err != nil {
			return fmt.Errorf("%s: optimistic concurrency: %w", s.Name(), err)
		}
	}
	fmt.Printf("# each store refused an append at a stale version\n\n")

	type key struct{ w, k int }
	var configs []key
	for _, w := range f.writers {
		for _, k := range f.ks {
			configs = append(configs, key{w, k})
		}
	}
	results := map[key]map[string][]result{}
	for round := range f.reps {
		for _, c := range configs {
			if results[c] == nil {
				results[c] = map[string][]result{}
			}
			for i := range stores {
				s := stores[(i+round)%len(stores)]
				cfg := f.cfg
				cfg.Writers, cfg.K = c.w, c.k
				r, err := run(ctx, s, cfg)
				if err != nil {
					return fmt.Errorf("%s, %d writers, %d events per commit: %w", s.Name(), c.w, c.k, err)
				}
				if fs, ok := s.(interface {
					fsyncs(context.Context) (int64, error)
				}); ok {
					if n, err := fs.fsyncs(ctx); err == nil && n > 0 {
						r.PerFsync = float64(r.Commits) / float64(n)
					}
				}
				results[c][s.Name()] = append(results[c][s.Name()], r)
				fmt.Printf("round %d  writers %-2d  k %d  %-13s  commits %6d  %5.1fs  commits/s %6.0f  events/s %6.0f  p50 %6.2f ms  p99 %6.2f ms  load %.2f",
					round+1, c.w, c.k, s.Name(), r.Commits, r.Elapsed.Seconds(), r.commitsPerSec(), r.eventsPerSec(), ms(r.P50), ms(r.P99), r.Load1)
				if r.PerFsync > 0 {
					fmt.Printf("  commits/WAL fsync %.2f", r.PerFsync)
				}
				fmt.Println()
			}
		}
	}

	loadEnd := loadAvg()
	fmt.Printf("\n## Medians of %d rounds (load average %.2f at start, %.2f at end; %s)\n\n", f.reps, loadStart[0], loadEnd[0], time.Since(started).Round(time.Second))
	fmt.Println("| writers | events/commit | store | commits/s | events/s | p50 ms | p99 ms | commits per WAL fsync |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, c := range configs {
		for _, s := range stores {
			rs := results[c][s.Name()]
			var cps, eps []float64
			var p50, p99 []time.Duration
			var perFsync []float64
			for _, r := range rs {
				cps, eps = append(cps, r.commitsPerSec()), append(eps, r.eventsPerSec())
				p50, p99 = append(p50, r.P50), append(p99, r.P99)
				if r.PerFsync > 0 {
					perFsync = append(perFsync, r.PerFsync)
				}
			}
			fsync := "-"
			if len(perFsync) > 0 {
				fsync = fmt.Sprintf("%.2f", median(perFsync))
			}
			fmt.Printf("| %d | %d | %s | %.0f | %.0f | %.2f | %.2f | %s |\n",
				c.w, c.k, s.Name(), median(cps), median(eps), ms(median(p50)), ms(median(p99)), fsync)
		}
	}
	if _, ok := indexOf(stores, "ordo"); ok {
		fmt.Println("\n| writers | events/commit | ordo / best PostgreSQL peer | ordo / goes | ordo / hallgren | ordo / raw-js |")
		fmt.Println("| --- | --- | --- | --- | --- | --- |")
		for _, c := range configs {
			rate := func(name string) float64 {
				rs := results[c][name]
				if len(rs) == 0 {
					return 0
				}
				var cps []float64
				for _, r := range rs {
					cps = append(cps, r.commitsPerSec())
				}
				return median(cps)
			}
			ordo := rate("ordo")
			ratio := func(base float64) string {
				if base == 0 {
					return "-"
				}
				return fmt.Sprintf("%.2f", ordo/base)
			}
			best, bestName := rate("goes"), "goes"
			if h := rate("hallgren"); h > best {
				best, bestName = h, "hallgren"
			}
			fmt.Printf("| %d | %d | %s (%s) | %s | %s | %s |\n", c.w, c.k, ratio(best), bestName,
				ratio(rate("goes")), ratio(rate("hallgren")), ratio(rate("raw-js")))
		}
	}
	return nil
}

func indexOf(stores []store, name string) (int, bool) {
	for i, s := range stores {
		if s.Name() == name {
			return i, true
		}
	}
	return 0, false
}

// openStores opens the chosen stores, each PostgreSQL peer on a database
// of its own.
func openStores(ctx context.Context, f flags, dir string, pg *pgserver.Server) ([]store, error) {
	var out []store
	for _, name := range f.stores {
		var (
			s   store
			err error
		)
		switch name {
		case "goes", "hallgren":
			db := "peers_" + name
			if err = createDatabase(ctx, pg.URL(), db); err != nil {
				return out, err
			}
			if name == "goes" {
				s, err = openGoes(ctx, pg.URLFor(db))
			} else {
				s, err = openHallgren(ctx, pg.URLFor(db))
			}
		case "ordo", "ordo-unsigned":
			s, err = openOrdo(filepath.Join(dir, "nats-"+name), name == "ordo")
		case "raw-js":
			s, err = openRaw(filepath.Join(dir, "nats-raw"), f.ks, 1)
		default:
			// raw-js-<n>: raw-js spread over n streams.
			n, convErr := strconv.Atoi(strings.TrimPrefix(name, "raw-js-"))
			if !strings.HasPrefix(name, "raw-js-") || convErr != nil || n < 2 {
				return out, fmt.Errorf("unknown store %q", name)
			}
			s, err = openRaw(filepath.Join(dir, "nats-"+name), f.ks, n)
		}
		if err != nil {
			return out, fmt.Errorf("open %s: %w", name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func createDatabase(ctx context.Context, url, name string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// describePostgres prints the server's version and the settings that
// decide what a commit costs.
func describePostgres(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return err
	}
	rows, err := conn.Query(ctx, `SELECT name || '=' || setting FROM pg_settings WHERE name IN
		('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'commit_delay', 'shared_buffers', 'default_transaction_isolation') ORDER BY name`)
	if err != nil {
		return err
	}
	settings, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	fmt.Printf("# PostgreSQL %s, private server on a Unix socket, %s; pools of %d connections\n", version, strings.Join(settings, " "), poolSize)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
