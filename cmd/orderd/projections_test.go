package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/postgres"
)

// openReadModel opens the order-status read model in database url with
// its own pool, as orderctl or another instance would.
func (ta *testApp) openReadModel(url string) *postgres.Store {
	ta.t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		ta.t.Fatal(err)
	}
	ta.t.Cleanup(pool.Close)
	s, err := postgres.Open(context.Background(), pool, postgres.Options{Partitions: ta.store.Partitions(), Partition: ta.store.Partition})
	if err != nil {
		ta.t.Fatal(err)
	}
	return s
}

// freshReplay projects the whole log into a new database.
func (ta *testApp) freshReplay() postgres.Snapshot {
	ta.t.Helper()
	s := ta.openReadModel(testkit.Postgres(ta.t))
	r, err := projections.New(ta.store, s.Sink(), nil, projections.Options{})
	if err != nil {
		ta.t.Fatal(err)
	}
	if err := r.CatchUp(context.Background(), 0); err != nil {
		ta.t.Fatal(err)
	}
	return ta.snapshot(s)
}

func (ta *testApp) snapshot(s *postgres.Store) postgres.Snapshot {
	ta.t.Helper()
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		ta.t.Fatal(err)
	}
	return snap
}

// orderEvents counts the events in the ORDERS stream.
func (ta *testApp) orderEvents() int {
	ta.t.Helper()
	n := 0
	if err := logtest.Replay(context.Background(), ta.store, eventlog.TypeOrder, 0, func(r eventlog.Record) error {
		n += len(r.Commit.Events)
		return nil
	}); err != nil {
		ta.t.Fatal(err)
	}
	return n
}

// waitCaughtUp waits, bounded, until s has applied the whole ORDERS
// stream.
func (ta *testApp) waitCaughtUp(s *postgres.Store) {
	ta.t.Helper()
	last, err := ta.store.LastSeq(context.Background(), eventlog.TypeOrder)
	if err != nil {
		ta.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if ok, err := s.WaitFor(ctx, last, ""); !ok || err != nil {
		ta.t.Fatalf("the read model did not reach the end of the log (seq %d): %v", last, err)
	}
}

func sameRows(t *testing.T, got, want postgres.Snapshot) {
	t.Helper()
	for _, c := range []struct {
		name      string
		got, want []string
	}{{"orders", got.Orders, want.Orders}, {"order_lines", got.Lines, want.Lines}, {"order_timeline", got.Timeline, want.Timeline}} {
		if slices.Equal(c.got, c.want) {
			continue
		}
		t.Errorf("%s: %d rows, a fresh replay has %d", c.name, len(c.got), len(c.want))
		for i := range min(len(c.got), len(c.want)) {
			if c.got[i] != c.want[i] {
				t.Errorf("first difference at row %d:\n got  %s\n want %s", i, c.got[i], c.want[i])
				break
			}
		}
	}
}

// loadOrders runs orders through their lives from workers goroutines
// until stop is closed, and returns how many it ran.
func (ta *testApp) loadOrders(prefix string, workers int, stop <-chan struct{}, ids chan<- string) func() int {
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%s-%d-%d", prefix, w, i)
				if err := testkit.RunOrder(context.Background(), ta.orders, id, fmt.Sprint("cust-", i%7), i); err != nil {
					ta.t.Errorf("load: %v", err)
					return
				}
				n.Add(1)
				if ids != nil {
					select {
					case ids <- id:
					default:
					}
				}
			}
		})
	}
	return func() int { wg.Wait(); return int(n.Load()) }
}

// projector is orderd running only the projector, as its own process,
// connected to another orderd's embedded NATS as its service user.
type projector struct {
	cmd  *exec.Cmd
	logs *strings.Builder
}

func startProjector(t *testing.T, bin string, ta *testApp, pgURL string) *projector {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"ORDO_DATA_DIR="+t.TempDir(), "ORDO_HTTP_ADDR="+addr, "ORDO_POSTGRES_URL="+pgURL,
		"ORDO_NATS_URL="+ta.natsURL, "ORDO_NATS_CREDS="+natsauth.SeedFile(ta.cfg.DataDir, natsauth.Service),
		"ORDO_ROLES=projections", "ORDO_PROJECTION_LEASE_TTL=1s", "ORDO_AUTH_SECRET="+testSecret, "ORDO_LOG_LEVEL=warn")
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return &projector{cmd, logs}
			}
		}
	}
	t.Fatalf("projector did not start:\n%s", logs)
	return nil
}

// TestProjectorKilledRepeatedlyDuringLoad SIGKILLs an orderd running the
// projector again and again while orders are placed, paid, shipped and
// cancelled, restarting it each time. Once the load stops and the last
// projector catches up, the read model must equal a fresh replay of the
// log row for row, with exactly one timeline entry per event.
func TestProjectorKilledRepeatedlyDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills orderd processes")
	}
	bin := buildOrderd(t)
	ta := mustStart(t) // the command side, with its embedded NATS
	rm := ta.openReadModel(ta.cfg.PostgresURL)

	stop := make(chan struct{})
	wait := ta.loadOrders("kill", 4, stop, nil)
	kills := 0
	var last uint64
	p := startProjector(t, bin, ta, ta.cfg.PostgresURL)
	for kills < 6 {
		// Kill once the projector has applied more than before, after a
		// random moment, so kills land mid-batch as well as between.
		for end := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			st, err := rm.Status(context.Background(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if cp := slices.Max(st.Live.Checkpoints); cp > last {
				last = cp
				break
			}
			if time.Now().After(end) {
				t.Fatalf("the projector made no progress:\n%s", p.logs)
			}
		}
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_, _ = p.cmd.Process.Wait()
		kills++
		p = startProjector(t, bin, ta, ta.cfg.PostgresURL)
	}
	close(stop)
	orders := wait()
	ta.waitCaughtUp(rm)

	got := ta.snapshot(rm)
	events := ta.orderEvents()
	if len(got.Timeline) != events {
		t.Errorf("%d timeline entries for %d order events in the log", len(got.Timeline), events)
	}
	sameRows(t, got, ta.freshReplay())
	t.Logf("%d orders, %d events, projector SIGKILLed %d times; read model = fresh replay: %v", orders, events, kills, !t.Failed())
}

// TestRebuildDuringLoad rebuilds the read model twice while orders are
// placed and queries run: no query may fail with a 5xx, and the result
// must equal a fresh replay.
func TestRebuildDuringLoad(t *testing.T) {
	ta := mustStart(t, withProjector)
	ta.putSKU("TEA-250", 1999, 1_000_000)
	stop := make(chan struct{})
	ids := make(chan string, 1000)
	wait := ta.loadOrders("rb", 3, stop, ids)

	var queries, failures atomic.Int64
	var qwg sync.WaitGroup
	for range 2 {
		qwg.Go(func() {
			known := []string{}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case id := <-ids:
					known = append(known, id)
				default:
				}
				var path string
				switch {
				case len(known) == 0 || i%4 == 0:
					placed := ta.place(ta.alice, fmt.Sprint("rbq-", rand.Int64()), orderBody(line("TEA-250", 1)))
					if placed.status != 202 {
						t.Errorf("place during rebuild: %d %s", placed.status, placed.raw)
						failures.Add(1)
						continue
					}
					path = "/v1/orders/" + placed.body["order_id"].(string) + "?position=" + placed.body["position"].(string)
				case i%4 == 1:
					path = "/v1/orders/" + known[rand.IntN(len(known))] + "/timeline"
				case i%4 == 2:
					path = fmt.Sprintf("/v1/customers/cust-%d/orders?limit=5", rand.IntN(7))
				default:
					path = "/v1/orders/" + known[rand.IntN(len(known))]
				}
				r := ta.do("GET", path, ta.agent, nil)
				queries.Add(1)
				ok := r.status == 200 || (r.status == 404 && r.code() == "order_not_found") // not projected yet
				if strings.Contains(path, "?position=") {
					ok = r.status == 200 // read-your-writes holds during a rebuild too
				}
				if !ok {
					failures.Add(1)
					t.Errorf("GET %s during rebuild: %d %s", path, r.status, r.raw)
				}
			}
		})
	}
	// Let some history build up, so that a rebuild takes a while. However
	// long the load takes on this machine; it fails only if the log stops
	// growing.
	began := time.Now()
	if err := waitGrowth(func() (uint64, error) { return ta.store.LastSeq(context.Background(), eventlog.TypeOrder) }, 8000, time.Minute); err != nil {
		close(stop)
		wait()
		qwg.Wait()
		t.Fatalf("the load stopped: %v", err)
	}
	t.Logf("the load wrote 8000 commits of history in %s", time.Since(began).Round(time.Millisecond))
	other := ta.openReadModel(ta.cfg.PostgresURL)
	during := int64(0)
	for range 2 {
		before := queries.Load()
		res, err := other.Rebuild(context.Background(), ta.store, postgres.RebuildOptions{BatchSize: 50, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		during += queries.Load() - before
		t.Logf("rebuilt v%d -> v%d in %s, projector held %s", res.From, res.To, res.Took.Round(time.Millisecond), res.Held.Round(time.Millisecond))
	}
	time.Sleep(200 * time.Millisecond) // queries after the swap too
	close(stop)
	orders := wait()
	qwg.Wait()
	rm := ta.readModel
	ta.waitCaughtUp(rm)
	st, err := rm.Status(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.Version != 3 {
		t.Fatalf("live version %d after two rebuilds", st.Live.Version)
	}
	got := ta.snapshot(rm)
	sameRows(t, got, ta.freshReplay())
	if n := ta.orderEvents(); len(got.Timeline) != n {
		t.Errorf("%d timeline entries for %d events", len(got.Timeline), n)
	}
	// How many queries ran depends on the machine; none at all would
	// mean the rebuilds held them up.
	if during == 0 {
		t.Errorf("no query completed during the two rebuilds")
	}
	t.Logf("%d orders by the load, %d queries (%d while rebuilding), %d failed", orders, queries.Load(), during, failures.Load())
}

// waitGrowth waits until read reports at least target. It is a liveness
// bound, not a timing: it gives up only when the value has not grown
// for stall (or read has failed for that long), however long the whole
// wait takes.
func waitGrowth(read func() (uint64, error), target uint64, stall time.Duration) error {
	var seen uint64
	var lastErr error
	moved := time.Now()
	for {
		v, err := read()
		switch {
		case err != nil:
			lastErr = err
		case v >= target:
			return nil
		case v > seen:
			seen, moved = v, time.Now()
		}
		if time.Since(moved) > stall {
			return fmt.Errorf("stuck at %d of %d for %s (last error: %v)", seen, target, stall, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orderctl runs a freshly built orderctl with only the given environment
// (no ORDO_POSTGRES_URL, no ORDO_NATS_URL unless given).
func runOrderctl(t *testing.T, bin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

// TestOrderctlProjectionsOnTheLocalDefault runs `orderctl projections
// status` and `rebuild` against a running local-default orderd (found
// through its data dir: nats.url and postgres.url) while it serves
// queries, then against the same data dir once orderd has stopped (orderctl
// then runs the private PostgreSQL itself).
// buildOrderctl builds cmd/orderctl into the test's temporary dir; the
// test is skipped under -short.
func buildOrderctl(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds orderctl")
	}
	bin := filepath.Join(t.TempDir(), "orderctl")
	if out, err := exec.Command("go", "build", "-o", bin, "../orderctl").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestOrderctlProjectionsOnTheLocalDefault(t *testing.T) {
	bin := buildOrderctl(t)
	ta := mustStart(t, withProjector, func(c *config.Config) { c.PostgresURL = "" })
	env := []string{"ORDO_DATA_DIR=" + ta.cfg.DataDir}
	ta.putSKU("TEA-250", 1999, 100)
	placed := ta.place(ta.alice, "k", orderBody(line("TEA-250", 1)))
	id, pos := placed.body["order_id"].(string), placed.body["position"].(string)
	if r := ta.do("GET", "/v1/orders/"+id+"?position="+pos, ta.alice, nil); r.status != 200 {
		t.Fatalf("read back: %d %s", r.status, r.raw)
	}
	status := func() map[string]any {
		t.Helper()
		code, out, errOut := runOrderctl(t, bin, env, "projections", "status", "--json")
		var st map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
		}
		return st
	}
	// The order's partition has the commit (the read back saw it); the
	// idle partitions' checkpoints follow within moments (every 200 ms),
	// later on a loaded machine.
	var st map[string]any
	waitUntil(t, "every partition's checkpoint to reach the first commit", func() bool {
		st = status()
		return st["checkpoint"].(float64) >= 1
	})
	if st["name"] != "order_status" || st["version"] != float64(1) {
		t.Fatalf("status of the running orderd: %v", st)
	}
	code, out, errOut := runOrderctl(t, bin, env, "projections", "rebuild", "order_status")
	if code != 0 || !strings.Contains(out, "version 2 is live (was 1)") {
		t.Fatalf("rebuild on the running orderd: exit %d\n%s\n%s", code, out, errOut)
	}
	// The running orderd answers from the new version and keeps projecting.
	cancel := ta.do("POST", "/v1/orders/"+id+"/cancel", ta.alice, map[string]any{"reason": "test"})
	r := ta.do("GET", "/v1/orders/"+id+"?position="+cancel.body["position"].(string), ta.alice, nil)
	if r.status != 200 || r.body["status"] != "cancelled" {
		t.Fatalf("after the rebuild: %d %s", r.status, r.raw)
	}
	r = ta.do("GET", "/v1/projections", ta.admin, nil)
	if p := r.body["projections"].([]any)[0].(map[string]any); p["version"] != float64(2) {
		t.Fatalf("GET /v1/projections after the rebuild: %s", r.raw)
	}

	if err := ta.close(); err != nil {
		t.Fatal(err)
	}
	// (Idle partitions' checkpoints may trail the end by the last commits:
	// they move up to the reader every 200 ms, and lag counts from the
	// smallest checkpoint; so no claim on the lag here.)
	if st := status(); st["version"] != float64(2) || st["stream_last_seq"] != float64(2) {
		t.Fatalf("status of the stopped local default: %v", st)
	}
	code, out, errOut = runOrderctl(t, bin, env, "projections", "rebuild", "order_status")
	if code != 0 || !strings.Contains(out, "version 3 is live (was 2)") {
		t.Fatalf("rebuild on the stopped local default: exit %d\n%s\n%s", code, out, errOut)
	}
	if st := status(); st["version"] != float64(3) || st["lag"] != float64(0) || st["state"] != "live" || st["stream_last_seq"] != float64(2) {
		t.Fatalf("status after rebuilding the stopped local default: %v", st)
	}
	if pid, err := os.ReadFile(filepath.Join(ta.cfg.DataDir, datadir.PostgresDir, "data", "postmaster.pid")); err == nil {
		t.Fatalf("orderctl left PostgreSQL running: %s", pid)
	}
}
