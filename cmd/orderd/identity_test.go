package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// offline opens the store of a stopped local default in-process, as
// orderctl does, and runs f on a connection to it as the NATS admin (with
// the data dir's key): an operator's, who may delete or change streams.
func offline(t *testing.T, dataDir string, f func(js jetstream.JetStream, nc *nats.Conn)) {
	t.Helper()
	_, nc, stop := testkit.LocalNATS(t, dataDir, natsauth.Admin, false)
	defer stop()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	f(js, nc)
}

func deleteStreams(t *testing.T, js jetstream.JetStream, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := js.DeleteStream(context.Background(), n); err != nil {
			t.Fatalf("delete %s: %v", n, err)
		}
	}
}

func marker(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, datadir.LogMarker))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// The local default creates its log on its first start and records its
// id in the data dir. Once the log's streams are gone, some or all of
// them, orderd refuses to start, saying what is missing and what to do;
// only after an operator moves the marker and the store aside does it
// start a new log.
func TestLocalDefaultRefusesADestroyedLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts orderd several times")
	}
	for _, tc := range []struct {
		name    string
		deleted []string
	}{
		{"one stream", []string{"PAYMENTS"}},
		{"the commit streams", []string{"ORDERS", "INVENTORY", "PAYMENTS"}},
		{"every stream", streams.LogStreams()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := mustStart(t)
			cfg := ta.cfg
			id := ta.store.Log().ID
			if len(id) != 32 || marker(t, cfg.DataDir) != id {
				t.Fatalf("log id %q, marker %q", id, marker(t, cfg.DataDir))
			}
			ta.putSKU("TEA-250", 1999, 10)
			if err := ta.close(); err != nil {
				t.Fatal(err)
			}
			// A restart finds the same log.
			again := mustStart(t, func(c *config.Config) { c.DataDir = cfg.DataDir })
			if again.store.Log().ID != id {
				t.Fatalf("after a restart orderd serves log %s, not %s", again.store.Log().ID, id)
			}
			if err := again.close(); err != nil {
				t.Fatal(err)
			}

			offline(t, cfg.DataDir, func(js jetstream.JetStream, _ *nats.Conn) { deleteStreams(t, js, tc.deleted...) })
			_, err := start(context.Background(), cfg, slog.New(slog.DiscardHandler))
			msg := fmt.Sprint(err)
			for _, want := range []string{tc.deleted[0], id, "destroyed", filepath.Join(cfg.DataDir, datadir.LogMarker), "backup"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the refusal does not say %q: %v", want, err)
				}
			}
			if !errors.Is(err, eventlog.ErrStreamMissing) && !errors.Is(err, eventlog.ErrNoLog) {
				t.Fatalf("start on a destroyed log: %v", err)
			}
			t.Logf("refusal: %v", err)
			offline(t, cfg.DataDir, func(js jetstream.JetStream, _ *nats.Conn) {
				for _, n := range tc.deleted {
					if _, err := js.Stream(context.Background(), n); !errors.Is(err, jetstream.ErrStreamNotFound) {
						t.Errorf("%s after the refused start: %v, want still missing", n, err)
					}
				}
			})

			// What the message says to do for a new, empty log.
			for _, p := range []string{datadir.LogMarker, datadir.StoreDir} {
				if err := os.Rename(filepath.Join(cfg.DataDir, p), filepath.Join(cfg.DataDir, p+".destroyed")); err != nil {
					t.Fatal(err)
				}
			}
			fresh := mustStart(t, func(c *config.Config) { c.DataDir = cfg.DataDir })
			if got := fresh.store.Log().ID; got == id || marker(t, cfg.DataDir) != got {
				t.Fatalf("new log %s (marker %s), old %s", got, marker(t, cfg.DataDir), id)
			}
		})
	}
}

// A local default from before log ids (streams without one, no marker)
// is adopted on its next start: its streams get an id, the marker is
// written, and what it held is still there.
func TestLocalDefaultAdoptsALogWithoutIdentity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts orderd twice")
	}
	ta := mustStart(t)
	cfg := ta.cfg
	ta.putSKU("TEA-250", 1999, 10)
	if err := ta.close(); err != nil {
		t.Fatal(err)
	}
	// Make it look like an older orderd's data dir.
	if err := os.Remove(filepath.Join(cfg.DataDir, datadir.LogMarker)); err != nil {
		t.Fatal(err)
	}
	offline(t, cfg.DataDir, func(js jetstream.JetStream, nc *nats.Conn) {
		deleteStreams(t, js, streams.DLQStream, streams.TimersStream)
		if err := testkit.RemoveLogIdentity(context.Background(), nc); err != nil {
			t.Fatal(err)
		}
	})
	var logs testLog
	a, err := start(context.Background(), withDataDir(t, cfg), logs.logger())
	if err != nil {
		t.Fatalf("start on a log without identity: %v", err)
	}
	ta = newTestApp(t, a)
	id := ta.store.Log().ID
	if len(id) != 32 || marker(t, cfg.DataDir) != id || !strings.Contains(logs.String(), "predates log ids") {
		t.Fatalf("adopted log %q, marker %q; log:\n%s", id, marker(t, cfg.DataDir), logs.String())
	}
	if r := ta.do("GET", "/v1/skus/TEA-250", ta.admin, nil); r.status != 200 {
		t.Fatalf("the SKU after adoption: %d %s", r.status, r.raw)
	}
}

func withDataDir(t *testing.T, cfg config.Config) config.Config {
	t.Helper()
	return testConfig(t, func(c *config.Config) { c.DataDir = cfg.DataDir })
}

// While orderd runs, a deleted stream makes /readyz answer 503 naming
// it, and commands answer 503 log_unavailable instead of a generic error.
func TestReadyzNamesADeletedStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts orderd")
	}
	ta := mustStart(t)
	ta.putSKU("TEA-250", 1999, 10)
	if r := ta.do("GET", "/readyz", "", nil); r.status != 200 {
		t.Fatalf("/readyz before: %d %s", r.status, r.raw)
	}
	js, err := jetstream.New(ta.adminConn())
	if err != nil {
		t.Fatal(err)
	}
	deleteStreams(t, js, "INVENTORY")
	// A command sent while the server is still taking the stream down
	// may go unanswered: 503 outcome_unknown, which asks the client to
	// send it again (seen on a loaded machine). A client does so; once the
	// stream is gone the answer must be log_unavailable.
	var r response
	testkit.Eventually(t, "an answer other than outcome_unknown", 60*time.Second, func() (bool, error) {
		r = ta.do("PUT", "/v1/skus/TEA-250", ta.admin, map[string]any{"name": "Tea", "price": map[string]any{"amount": 1999, "currency": "CNY"}, "on_hand": 11})
		return r.status != 503 || r.code() != "outcome_unknown", nil
	})
	if r.status != 503 || r.code() != "log_unavailable" {
		t.Errorf("a command on the deleted stream: %d %s, want 503 log_unavailable", r.status, r.raw)
	}
	checkUnready(t, ta.base, "INVENTORY")
}

// checkUnready waits (a liveness bound: the log is checked every 5 s)
// for /readyz to answer 503 with a problem stream_missing naming stream.
func checkUnready(t *testing.T, base, stream string) {
	t.Helper()
	var last string
	testkit.Eventually(t, "/readyz to answer 503 naming "+stream, 60*time.Second, testkit.Holds(func() bool {
		code, body, err := getJSON(base + "/readyz")
		last = fmt.Sprintf("%d %v %v", code, body, err)
		if err != nil || code != 503 || body["status"] != "unavailable" || errorCode(body) != "stream_missing" {
			return false
		}
		problems, _ := body["problems"].([]any)
		for _, p := range problems {
			if p, _ := p.(map[string]any); p["code"] == "stream_missing" && p["component"] == "log" && strings.Contains(fmt.Sprint(p["message"]), stream) {
				return true
			}
		}
		return false
	}))
	t.Logf("/readyz: %s", last)
}

// On a three-node cluster orderd creates no log: it refuses to start
// until `orderctl init` made one, then serves it; a stream deleted while
// it runs makes /readyz answer 503 naming it, and the next start refuse.
func TestClusterLogIsMadeByInitAndNeverRecreated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	servers, nc := testkit.Cluster(t, 3)
	url := servers[0].ClientURL()
	cluster := func(c *config.Config) {
		c.NATSURL = url
		c.Replicas = 3
	}
	_, err := start(context.Background(), testConfig(t, cluster), slog.New(slog.DiscardHandler))
	if !errors.Is(err, eventlog.ErrNoLog) || !strings.Contains(err.Error(), "orderctl init") || !strings.Contains(err.Error(), "ORDO_LOG_ID") {
		t.Fatalf("start without a log: %v, want ErrNoLog naming orderctl init and ORDO_LOG_ID", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if names := js.StreamNames(context.Background()); len(collect(t, names)) > 0 {
		t.Fatal("orderd created streams")
	}

	li := testkit.InitLog(t, url, streams.Config{Replicas: 3})
	// Told to serve another log, orderd refuses this one.
	other := strings.Repeat("0", 32)
	_, err = start(context.Background(), testConfig(t, cluster, func(c *config.Config) { c.LogID = other }), slog.New(slog.DiscardHandler))
	if !errors.Is(err, eventlog.ErrLogMismatch) || !strings.Contains(err.Error(), li.ID) {
		t.Fatalf("start expecting another log: %v, want ErrLogMismatch", err)
	}
	serving := cluster
	withID := func(c *config.Config) { serving(c); c.LogID = li.ID }
	ta := mustStart(t, withID)
	if ta.store.Log().ID != li.ID {
		t.Fatalf("serving log %s, init made %s", ta.store.Log().ID, li.ID)
	}
	ta.putSKU("TEA-250", 1999, 10)
	if r := ta.do("GET", "/readyz", "", nil); r.status != 200 {
		t.Fatalf("/readyz: %d %s", r.status, r.raw)
	}

	deleteStreams(t, js, "PAYMENTS")
	checkUnready(t, ta.base, "PAYMENTS")
	if err := ta.close(); err != nil {
		t.Fatal(err)
	}
	_, err = start(context.Background(), testConfig(t, withID), slog.New(slog.DiscardHandler))
	if !errors.Is(err, eventlog.ErrStreamMissing) || !strings.Contains(err.Error(), "PAYMENTS") || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("start after PAYMENTS was deleted: %v, want ErrStreamMissing naming it", err)
	}
	t.Logf("refusal: %v", err)
	if _, err := js.Stream(context.Background(), "PAYMENTS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("PAYMENTS after the refused start: %v", err)
	}
}

func collect(t *testing.T, names jetstream.StreamNameLister) []string {
	t.Helper()
	var out []string
	for n := range names.Name() {
		out = append(out, n)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// With its NATS connection down, /readyz answers 503 nats_disconnected.
func TestReadyzNamesALostNATSConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("starts orderd")
	}
	srv, _ := testkit.NATS(t, func(o *natsembed.Options) { o.Listen = "127.0.0.1:0" })
	li := testkit.InitLog(t, srv.ClientURL(), streams.Config{})
	relay := testkit.NewRelay(t, srv.Addr().String())
	ta := mustStart(t, func(c *config.Config) { c.NATSURL = relay.URL(); c.LogID = li.ID })
	if r := ta.do("GET", "/readyz", "", nil); r.status != 200 {
		t.Fatalf("/readyz: %d %s", r.status, r.raw)
	}
	relay.Close()
	testkit.Eventually(t, "/readyz to answer 503 nats_disconnected", 60*time.Second, testkit.Holds(func() bool {
		r := ta.do("GET", "/readyz", "", nil)
		problems, _ := r.body["problems"].([]any)
		return r.status == 503 && r.body["status"] == "unavailable" && r.code() == "nats_disconnected" && len(problems) == 1
	}))
}
