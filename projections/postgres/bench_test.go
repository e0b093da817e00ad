package postgres

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/pgserver"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/orderlog"
	"github.com/ordo-shop/ordo/streams"
)

const (
	benchOrders     = 12000 // ~46k commits and events
	benchBatch      = projections.DefaultBatchSize
	benchPartitions = 16
	benchConns      = 16
)

// benchLog appends benchOrders orders' lives to a fresh ORDERS stream,
// interleaved across 8 writers, and returns the store and the event
// count.
func benchLog(b *testing.B) (*streams.Store, int) {
	b.Helper()
	ctx := context.Background()
	log, h := testkit.OrderLog(b, benchPartitions)
	if err := testkit.RunOrders(ctx, h, "ord", benchOrders, 97, 8); err != nil {
		b.Fatal(err)
	}
	n := 0
	if err := logtest.Replay(ctx, log, eventlog.TypeOrder, 0, func(r eventlog.Record) error { n += len(r.Commit.Events); return nil }); err != nil {
		b.Fatal(err)
	}
	return log, n
}

// benchServer is a PostgreSQL with durable settings (fsync and
// synchronous commit on, as in production), unlike the test server's.
var benchServer struct {
	once sync.Once
	srv  *pgserver.Server
	err  error
	n    int
}

func benchDatabase(b *testing.B) string {
	b.Helper()
	benchServer.once.Do(func() {
		// Directories of benchmark runs that were killed.
		stale, _ := filepath.Glob(filepath.Join(os.TempDir(), "ordo-pgbench-*"))
		for _, d := range stale {
			_ = pgserver.Remove(d, nil) // a live run's directory is locked
		}
		dir, err := os.MkdirTemp("", "ordo-pgbench-")
		if err != nil {
			benchServer.err = err
			return
		}
		benchServer.srv, benchServer.err = pgserver.Start(context.Background(), pgserver.Options{Dir: dir, NoSync: true,
			Settings: map[string]string{"shared_buffers": "128MB", "max_connections": "100"}})
	})
	if benchServer.err != nil {
		b.Fatal(benchServer.err)
	}
	benchServer.n++
	name := fmt.Sprintf("bench%d", benchServer.n)
	conn, err := pgx.Connect(context.Background(), benchServer.srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		b.Fatal(err)
	}
	return benchServer.srv.URLFor(name)
}

func benchStore(b *testing.B, log *streams.Store) *Store {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(benchDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = benchConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	s, err := Open(context.Background(), pool, Options{Partitions: log.Partitions(), Partition: log.Partition})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// rawBatch is what one projection transaction writes, precomputed.
type rawBatch struct {
	partition int
	to        int64
	ch        *change
}

// rawBatches folds the log, partition by partition in batches of
// benchBatch commits, into the rows the projection writes: the baseline
// writes exactly these rows, with nothing to read or decode.
func rawBatches(b *testing.B, log *streams.Store) [][]rawBatch {
	b.Helper()
	reg, err := events.Standard()
	if err != nil {
		b.Fatal(err)
	}
	dec := orderlog.NewDecoder(reg)
	out := make([][]rawBatch, log.Partitions())
	for p := range out {
		rows := map[string]*orderRow{}
		from := uint64(1)
		for {
			recs, err := logtest.FetchPartition(context.Background(), log, eventlog.TypeOrder, p, from, benchBatch)
			if err != nil {
				b.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			commits, err := decodeAll(dec, recs)
			if err != nil {
				b.Fatal(err)
			}
			ch, err := fold(commits, rows)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range ch.orders {
				cp := *r
				rows[r.OrderID] = &cp
			}
			out[p] = append(out[p], rawBatch{p, int64(recs[len(recs)-1].Seq), ch})
			from = recs[len(recs)-1].Seq + 1
		}
	}
	return out
}

// writeRaw writes precomputed batches, one goroutine per partition like
// the runner: per batch one transaction with the checkpoint and the
// upserts. With oneTrip the batch is sent as one pipeline that is its own
// implicit transaction (pgx's SendBatch outside a transaction: one round
// trip); otherwise inside BEGIN ... COMMIT (three round trips).
func writeRaw(b *testing.B, s *Store, batches [][]rawBatch, workers int, queue func(*pgx.Batch, string, *change), oneTrip bool) {
	ctx := context.Background()
	schema := versionSchema(1)
	next := make(chan []rawBatch, len(batches))
	for _, part := range batches {
		next <- part
	}
	close(next)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for part := range next {
				for _, rb := range part {
					var bt pgx.Batch
					bt.Queue("UPDATE "+schema+".checkpoints SET seq = $2, updated_at = now() WHERE partition = $1", rb.partition, rb.to)
					queue(&bt, schema, rb.ch)
					var err error
					if oneTrip {
						err = s.pool.SendBatch(ctx, &bt).Close()
					} else {
						err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
							return tx.SendBatch(ctx, &bt).Close()
						})
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// countingSink counts the runner's transactions.
type countingSink struct {
	*Sink
	n atomic.Int64
}

func (c *countingSink) CommitDecoded(ctx context.Context, partition int, from, to uint64, recs []projections.Decoded) error {
	c.n.Add(1)
	return c.Sink.CommitDecoded(ctx, partition, from, to, recs)
}

// BenchmarkProjection measures the order-status projection (read from
// JetStream, decode, fold, write with the checkpoint in one transaction
// per batch of 500) against the raw baseline: the same rows, precomputed,
// written by batched upserts in the same number of transactions with the
// same concurrency. Both run in every iteration, each into a fresh
// database; the ratio is runner / raw.
func BenchmarkProjection(b *testing.B) {
	log, events := benchLog(b)
	batches := rawBatches(b, log)
	for _, workers := range []int{1, 2, benchPartitions} {
		b.Run(fmt.Sprintf("writers=%d", workers), func(b *testing.B) { benchProjection(b, log, events, batches, workers) })
	}
}

func benchProjection(b *testing.B, log *streams.Store, events int, batches [][]rawBatch, workers int) {
	// The contestants, each into its own fresh database; their order
	// rotates from one iteration to the next, so none always runs first
	// (or right after the heaviest).
	const (
		runner = iota
		rawArrays
		rawArraysTx
		rawRows
		contestants
	)
	var took [contestants]time.Duration
	var cpu [contestants][2]time.Duration // this process (client and NATS), PostgreSQL
	var runnerTx int64
	rawTx := 0
	for _, part := range batches {
		rawTx += len(part)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var st [contestants]*Store
		for c := range st {
			st[c] = benchStore(b, log)
		}
		sink := &countingSink{Sink: st[runner].Sink()}
		r, err := projections.New(log, sink, nil, projections.Options{BatchSize: benchBatch})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for k := range contestants {
			c := (i + k) % contestants
			start, c0 := time.Now(), cpuNow()
			switch c {
			case runner:
				if err := r.CatchUp(context.Background(), workers); err != nil {
					b.Fatal(err)
				}
			case rawArrays:
				writeRaw(b, st[c], batches, workers, queueWrites, true)
			case rawArraysTx:
				writeRaw(b, st[c], batches, workers, queueWrites, false)
			case rawRows:
				writeRaw(b, st[c], batches, workers, queueRowWrites, true)
			}
			took[c] += time.Since(start)
			cpu[c] = addCPU(cpu[c], c0)
		}
		b.StopTimer()
		runnerTx += sink.n.Load()
		if i == 0 {
			a, err := st[runner].Snapshot(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if len(a.Timeline) != events {
				b.Fatalf("the runner wrote %d timeline rows for %d events", len(a.Timeline), events)
			}
			for _, s := range st[1:] {
				d, err := s.Snapshot(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if !slices.Equal(a.Orders, d.Orders) || !slices.Equal(a.Timeline, d.Timeline) || !slices.Equal(a.Lines, d.Lines) {
					b.Fatalf("the runner and a baseline wrote different rows: %d/%d timeline rows, %d/%d orders",
						len(a.Timeline), len(d.Timeline), len(a.Orders), len(d.Orders))
				}
			}
		}
		for _, s := range st {
			s.pool.Close()
		}
		b.StartTimer()
	}
	b.StopTimer()
	rate := func(c int) float64 { return float64(events*b.N) / took[c].Seconds() }
	b.ReportMetric(rate(runner), "events/s")
	b.ReportMetric(rate(rawArrays), "raw-array-events/s")
	b.ReportMetric(rate(runner)/rate(rawArrays), "ratio-array")
	b.ReportMetric(rate(rawArraysTx), "raw-array-tx-events/s")
	b.ReportMetric(rate(runner)/rate(rawArraysTx), "ratio-array-tx")
	b.ReportMetric(rate(rawRows), "raw-rows-events/s")
	b.ReportMetric(rate(runner)/rate(rawRows), "ratio-rows")
	perEvent := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(events*b.N) }
	b.ReportMetric(perEvent(cpu[runner][0]), "go-µs/event")
	b.ReportMetric(perEvent(cpu[runner][1]), "pg-µs/event")
	b.ReportMetric(perEvent(cpu[rawArrays][0]), "raw-go-µs/event")
	b.ReportMetric(perEvent(cpu[rawArrays][1]), "raw-pg-µs/event")
	b.ReportMetric(float64(runnerTx)/float64(b.N), "tx/op")
	b.ReportMetric(float64(rawTx), "raw-tx/op")
}

// queueRowWrites queues the same rows as queueWrites, one upsert
// statement per row: the classic batched upsert (the usual reference figure,
// "~28k rows/s at 500 per transaction").
func queueRowWrites(b *pgx.Batch, schema string, ch *change) {
	for _, r := range ch.orders {
		b.Queue(`INSERT INTO `+schema+`.orders (`+orderColumns+`)
			VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
			ON CONFLICT (order_id) DO UPDATE SET
				status = EXCLUDED.status, payment_status = EXCLUDED.payment_status, payment_id = EXCLUDED.payment_id,
				checkout_url = EXCLUDED.checkout_url, carrier = EXCLUDED.carrier, tracking_number = EXCLUDED.tracking_number,
				status_reason = EXCLUDED.status_reason, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version,
				last_seq = EXCLUDED.last_seq`,
			r.OrderID, r.CustomerID, r.Customer, r.ShippingAddress, r.Status, r.TotalAmount, r.Currency, r.PaymentStatus,
			r.PaymentID, r.CheckoutURL, r.Carrier, r.TrackingNumber, r.StatusReason, r.CreatedAt, r.UpdatedAt, r.Version, r.LastSeq)
	}
	for _, l := range ch.lines {
		b.Queue(`INSERT INTO `+schema+`.order_lines (order_id, line_no, sku, qty, unit_price, amount) VALUES ($1, $2, $3, $4, $5, $6)`,
			l.OrderID, l.LineNo, l.SKU, l.Qty, l.UnitPrice, l.Amount)
	}
	for _, t := range ch.timeline {
		b.Queue(`INSERT INTO `+schema+`.order_timeline (order_id, version, seq, at, event_type, status, detail, commit_id, causation_id, correlation_id, actor)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			t.OrderID, t.Version, t.Seq, t.At, t.EventType, t.Status, t.Detail, t.CommitID, t.CausationID, t.CorrelationID, t.Actor)
	}
}

// StopBenchServer stops the benchmarks' server and removes its
// directory; TestMain calls it.
func StopBenchServer() {
	if benchServer.srv != nil {
		_ = benchServer.srv.Stop()
		_ = pgserver.Remove(benchServer.srv.Dir(), nil)
	}
}

// cpuNow returns the CPU time used so far by this process (the client
// and the in-process NATS server) and by the benchmark's PostgreSQL.
func cpuNow() [2]time.Duration {
	return [2]time.Duration{selfCPU(), postgresCPU()}
}

func addCPU(sum, since [2]time.Duration) [2]time.Duration {
	now := cpuNow()
	return [2]time.Duration{sum[0] + now[0] - since[0], sum[1] + now[1] - since[1]}
}

// postgresCPU sums the CPU time of the bench server's processes: the
// postmaster and its children (live ones; a backend that exited in
// between is missed, so keep pools open across a measurement).
func postgresCPU() time.Duration {
	if benchServer.srv == nil {
		return 0
	}
	root := benchServer.srv.Pid()
	tick := time.Second / 100 // USER_HZ
	var total time.Duration
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		stat, err := os.ReadFile("/proc/" + p.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15)
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+2:]))
		if len(f) < 13 {
			continue
		}
		pid, _ := strconv.Atoi(p.Name())
		ppid, _ := strconv.Atoi(f[1])
		if pid != root && ppid != root {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * tick
	}
	return total
}

// BenchmarkReadLog measures what the projection pays before PostgreSQL:
// reading the whole log (FetchRaw, chunks of 1,000) and decoding it
// (fast path), or reading it with Fetch (events.Unmarshal), per event,
// CPU of this process (the client and the in-process NATS server).
func BenchmarkReadLog(b *testing.B) {
	log, n := benchLog(b)
	reg, err := events.Standard()
	if err != nil {
		b.Fatal(err)
	}
	dec := orderlog.NewDecoder(reg)
	ctx := context.Background()
	for _, mode := range []string{"raw", "raw+decode", "fetch"} {
		b.Run(mode, func(b *testing.B) {
			c0 := cpuNow()
			for range b.N {
				from := uint64(1)
				for {
					var last uint64
					var got int
					if mode == "fetch" {
						recs, err := log.Fetch(ctx, eventlog.TypeOrder, from, 1000)
						if err != nil {
							b.Fatal(err)
						}
						if got = len(recs); got > 0 {
							last = recs[got-1].Seq
						}
					} else {
						recs, err := log.FetchRaw(ctx, eventlog.TypeOrder, from, 1000)
						if err != nil {
							b.Fatal(err)
						}
						if mode == "raw+decode" {
							for _, r := range recs {
								if _, err := dec.Decode(r); err != nil {
									b.Fatal(err)
								}
							}
						}
						if got = len(recs); got > 0 {
							last = recs[got-1].Seq
						}
					}
					if got < 1000 {
						break
					}
					from = last + 1
				}
			}
			c := addCPU([2]time.Duration{}, c0)
			b.ReportMetric(float64(c[0].Nanoseconds())/1000/float64(n*b.N), "cpu-µs/event")
		})
	}
}
