package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/local/pgserver"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/postgres"
	"github.com/ordo-shop/ordo/projections/search"
	"github.com/ordo-shop/ordo/streams"
)

// deployment is a running Ordo as orderctl reconcile sees it: a log on a
// NATS server listening on loopback, the read model in PostgreSQL and
// the search index in Elasticsearch, and the env that points at them.
type deployment struct {
	t      *testing.T
	ctx    context.Context
	log    *streams.Store
	orders *command.Handler[order.State, order.Command]
	rm     *postgres.Store
	index  *search.Store
	esURL  string
	env    map[string]string
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	srv, nc := testkit.NATS(t, func(o *natsembed.Options) { o.Listen = "127.0.0.1:0" })
	log, err := testkit.OpenLog(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, order.Decider(), log)
	pgURL := testkit.Postgres(t)
	pool, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rm, err := postgres.Open(ctx, pool, postgres.Options{Partitions: log.Partitions(), Partition: log.Partition})
	if err != nil {
		t.Fatal(err)
	}
	esURL, prefix := testkit.Elasticsearch(t)
	client, err := search.NewClient(esURL)
	if err != nil {
		t.Fatal(err)
	}
	index, err := search.New(client, search.Options{Prefix: prefix, Partitions: log.Partitions(), Loader: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := index.EnsureIndex(ctx); err != nil {
		t.Fatal(err)
	}
	return &deployment{t: t, ctx: ctx, log: log, orders: h, rm: rm, index: index, esURL: esURL, env: map[string]string{
		"ORDO_DATA_DIR": t.TempDir(), "ORDO_NATS_URL": srv.ClientURL(), "ORDO_POSTGRES_URL": pgURL,
		"ORDO_ELASTICSEARCH_URL": esURL, "ORDO_ELASTICSEARCH_PREFIX": prefix,
	}}
}

// place runs n order lives, o-<from> on, interleaved.
func (d *deployment) place(prefix string, n int) {
	d.t.Helper()
	if err := testkit.RunOrders(d.ctx, d.orders, prefix, n, 7, 4); err != nil {
		d.t.Fatal(err)
	}
}

func (d *deployment) runners() []*projections.Runner {
	d.t.Helper()
	var rs []*projections.Runner
	for _, sink := range []projections.Sink{d.rm.Sink(), d.index.Sink()} {
		r, err := projections.New(d.log, sink, nil, projections.Options{BatchSize: 100, IdlePoll: 50 * time.Millisecond, WatermarkInterval: 50 * time.Millisecond})
		if err != nil {
			d.t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

// project catches both read models up with the log.
func (d *deployment) project() {
	d.t.Helper()
	for _, r := range d.runners() {
		if err := r.CatchUp(d.ctx, 0); err != nil {
			d.t.Fatal(err)
		}
	}
}

func (d *deployment) sql(stmt string) {
	d.t.Helper()
	if _, err := d.rm.Pool().Exec(d.ctx, stmt); err != nil {
		d.t.Fatalf("%s: %v", stmt, err)
	}
}

// es sends a request to Elasticsearch, failing on anything but 2xx.
func (d *deployment) es(method, path string, body any) map[string]any {
	d.t.Helper()
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			d.t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(d.ctx, method, d.esURL+path, &buf)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode >= 300 {
		d.t.Fatalf("%s %s: %d %v %v", method, path, resp.StatusCode, out, err)
	}
	return out
}

// hasLine reports whether one line of out holds every part.
func hasLine(out string, parts ...string) bool {
	for line := range strings.Lines(out) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestReconcileNamesEveryDrift: a deployment whose read models the
// projector filled reconciles with no drift; each corrupted row or
// document is then one line naming the order, the table or index and
// the field, and the exit code is 3.
func TestReconcileNamesEveryDrift(t *testing.T) {
	d := newDeployment(t)
	d.place("o", 300)
	d.project()
	prefix := d.env["ORDO_ELASTICSEARCH_PREFIX"]
	index := prefix + "orders_v1"

	code, out, errOut := orderctl(t, d.env, "reconcile")
	if code != exitOK || !hasLine(out, "order_status order_status_v1: no drift", "300 orders") || !hasLine(out, "search "+index+": no drift", "300 documents") {
		t.Fatalf("a fresh deployment: exit %d\n%s\n%s", code, out, errOut)
	}

	// o-0 was cancelled (path 0), o-3 refunded (path 3).
	d.sql("UPDATE order_status_v1.orders SET status = 'delivered' WHERE order_id = 'o-0'")
	d.sql("DELETE FROM order_status_v1.order_timeline WHERE order_id = 'o-1' AND version = 3")
	d.sql("UPDATE order_status_v1.order_lines SET qty = 7 WHERE order_id = 'o-2' AND line_no = 1")
	doc := d.es("GET", "/"+index+"/_doc/o-3", nil)
	src := doc["_source"].(map[string]any)
	src["status"] = "shipped"
	d.es("PUT", fmt.Sprintf("/%s/_doc/o-3?version=%d&version_type=external_gte", index, int64(doc["_version"].(float64))), src)
	d.es("DELETE", "/"+index+"/_doc/o-4", nil)

	// Flags before the command, with a value.
	env := map[string]string{}
	for k, v := range d.env {
		env[k] = v
	}
	delete(env, "ORDO_ELASTICSEARCH_PREFIX")
	code, out, errOut = orderctl(t, env, "--elasticsearch-prefix", prefix, "reconcile")
	if code != exitCheck || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "5 drift(s)") {
		t.Fatalf("corrupted: exit %d, stderr %q\n%s", code, errOut, out)
	}
	for _, want := range [][]string{
		{"order_status order_status_v1: 3 drift(s)"},
		{"o-0 ", "orders.status", "differs", `log "cancelled"`, `store "delivered"`},
		{"o-1 ", "order_timeline[version=3]", "missing", "order.payment_requested", "store -"},
		{"o-2 ", "order_lines[line_no=1].qty", "differs", `log "2"`, `store "7"`},
		{"search " + index + ": 2 drift(s)"},
		{"o-3 ", index + ".status", "differs", `log "refunded"`, `store "shipped"`},
		{"o-4 ", index + " ", "missing", "store -"},
	} {
		if !hasLine(out, want...) {
			t.Errorf("no line with %q in:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 7 {
		t.Errorf("%d lines, want 2 summaries and 5 drifts:\n%s", n, out)
	}

	// --json: JSON Lines, one drift each, then the summary.
	code, out, _ = orderctl(t, d.env, "reconcile", "--json")
	if code != exitCheck {
		t.Fatalf("--json: exit %d", code)
	}
	lines := jsonLines(t, out)
	if len(lines) != 6 {
		t.Fatalf("%d JSON lines, want 6:\n%s", len(lines), out)
	}
	first, sum := lines[0], lines[5]
	if first["type"] != "drift" || first["projection"] != "order_status" || first["order_id"] != "o-0" || first["table"] != "orders" ||
		first["field"] != "status" || first["kind"] != "differs" || first["log"] != "cancelled" || first["store"] != "delivered" {
		t.Errorf("first drift %v", first)
	}
	if sum["type"] != "summary" || sum["drifts"] != float64(5) {
		t.Fatalf("summary %v", sum)
	}
	ps := sum["projections"].([]any)
	pg, es := ps[0].(map[string]any), ps[1].(map[string]any)
	if pg["projection"] != "order_status" || pg["drifts"] != float64(3) || pg["orders"] != float64(300) || es["target"] != index || es["drifts"] != float64(2) {
		t.Errorf("summary projections %v", ps)
	}

	// --no-search checks the read model only.
	code, out, _ = orderctl(t, d.env, "reconcile", "--no-search")
	if code != exitCheck || strings.Contains(out, "search") || !strings.Contains(out, "3 drift(s)") {
		t.Errorf("--no-search: exit %d\n%s", code, out)
	}
	// Elasticsearch known but down is an error, not a skip.
	env = map[string]string{"ORDO_NATS_URL": d.env["ORDO_NATS_URL"], "ORDO_POSTGRES_URL": d.env["ORDO_POSTGRES_URL"], "ORDO_DATA_DIR": t.TempDir()}
	env["ORDO_ELASTICSEARCH_URL"] = "http://127.0.0.1:1"
	code, out, errOut = orderctl(t, env, "reconcile")
	if code != exitError || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "elasticsearch") || out != "" {
		t.Errorf("Elasticsearch down: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	// So is the elasticsearch.url of a live orderd that points nowhere.
	delete(env, "ORDO_ELASTICSEARCH_URL")
	if err := datadir.WriteFile(env["ORDO_DATA_DIR"], datadir.ElasticsearchURL, []byte("http://127.0.0.1:1\n")); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut = orderctl(t, env, "reconcile"); code != exitError || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("elasticsearch.url pointing nowhere: exit %d, stderr %q", code, errOut)
	}
	if code, out, _ = orderctl(t, env, "reconcile", "--no-search"); code != exitCheck || strings.Contains(out, "search") {
		t.Errorf("--no-search with Elasticsearch down: exit %d\n%s", code, out)
	}
}

// TestReconcileWhileTheProjectorsRun: orders are written while both
// projectors apply them and orderctl reconciles: the read models lag,
// which is no drift.
func TestReconcileWhileTheProjectorsRun(t *testing.T) {
	d := newDeployment(t)
	d.place("before", 50)
	ctx, cancel := context.WithCancel(d.ctx)
	rs := d.runners()
	done := make(chan error, len(rs))
	for _, r := range rs {
		go func() { done <- r.Run(ctx) }()
	}
	defer func() {
		cancel()
		for range rs {
			<-done
		}
	}()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		d.place("during", 250)
	}()
	for i, loading := 0, true; loading; i++ {
		select {
		case <-loadDone:
			loading = false // and once more, the projectors still applying the end
		default:
		}
		code, out, errOut := orderctl(t, d.env, "reconcile")
		if code != exitOK || strings.Count(out, "no drift") != 2 {
			t.Fatalf("reconciliation %d: exit %d\n%s\n%s", i, code, out, errOut)
		}
		t.Logf("reconciliation %d:\n%s", i, out)
	}
	// Caught up, the same again, with every order.
	last, err := d.log.LastSeq(d.ctx, eventlog.TypeOrder)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := d.rm.WaitFor(d.ctx, last, ""); !ok || err != nil {
		t.Fatalf("read model at %d: %v %v", last, ok, err)
	}
	if ok, err := d.index.WaitFor(d.ctx, last); !ok || err != nil {
		t.Fatalf("search at %d: %v %v", last, ok, err)
	}
	code, out, errOut := orderctl(t, d.env, "reconcile")
	if code != exitOK || !hasLine(out, "order_status", "no drift", "300 orders") || !hasLine(out, "search", "no drift", "300 documents") {
		t.Fatalf("caught up: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestReconcileAStoppedLocalDefault: against the data dir of a stopped
// local default, orderctl opens the store and runs the private
// PostgreSQL itself, as projections does.
func TestReconcileAStoppedLocalDefault(t *testing.T) {
	dir, id := seedDataDir(t, false)
	srv, err := pgserver.Start(t.Context(), pgserver.Options{Dir: filepath.Join(dir, datadir.PostgresDir), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ORDO_DATA_DIR": dir}
	if code, out, errOut := orderctl(t, env, "projections", "rebuild", "order_status"); code != exitOK {
		t.Fatalf("rebuild: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := orderctl(t, env, "reconcile")
	if code != exitOK || !hasLine(out, "order_status order_status_v2: no drift", "1 orders", "3 commits") || strings.Contains(out, "search") {
		t.Fatalf("reconcile %s: exit %d\n%s\n%s", id, code, out, errOut)
	}
}

func TestReconcileBadUsage(t *testing.T) {
	dir, _ := seedDataDir(t, false)
	for _, args := range [][]string{
		{"reconcile", "order_status"},
		{"reconcile", "--bogus"},
		{"reconcile", "--no-search=maybe"},
		{"--elasticsearch-url", "http://127.0.0.1:1", "reconcile", "now"},
	} {
		code, out, errOut := orderctl(t, map[string]string{"ORDO_DATA_DIR": dir}, args...)
		if code != exitUsage || strings.Count(errOut, "\n") != 1 || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
