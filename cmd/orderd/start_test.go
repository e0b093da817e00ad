package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// testLog collects an orderd's log for the test to print when it fails;
// unlike t.Log it may be written after the test ended.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *testLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// getJSON GETs url and decodes the JSON body, if any.
func getJSON(url string) (int, map[string]any, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, nil
}

// startResult is what start returned in the background.
type startResult struct {
	a   *app
	err error
}

func startAsync(cfg config.Config, log *slog.Logger) <-chan startResult {
	ch := make(chan startResult, 1)
	go func() {
		a, err := start(context.Background(), cfg, log)
		ch <- startResult{a, err}
	}()
	return ch
}

// orderd started before its three-node cluster waits for it, says so on
// /readyz, and becomes ready by itself once the servers are up and it
// finds the log (made by `orderctl init`, with three replicas).
func TestStartWaitsForAClusterStartedLater(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	plan := testkit.PlanCluster(t, 3)
	// The deployment's log is made once (orderctl init), then the cluster
	// is down when orderd starts.
	servers, _ := plan.Start()
	li := testkit.InitLog(t, plan.URL(), streams.Config{Replicas: 3})
	plan.Stop(servers)
	cfg := testConfig(t, func(c *config.Config) {
		c.HTTPAddr = freeAddr(t)
		c.NATSURL = plan.URL()
		c.Replicas = 3
		c.StartTimeout = 3 * time.Minute
	})
	var logs testLog
	started := startAsync(cfg, logs.logger())

	// Before the cluster runs: live, not ready, and /readyz names NATS.
	base := "http://" + cfg.HTTPAddr
	testkit.Eventually(t, "/readyz to say it waits for NATS", time.Minute, func() (bool, error) {
		code, body, err := getJSON(base + "/readyz")
		msg, _ := errorOf(body)
		return err == nil && code == 503 && strings.Contains(msg, "NATS"), err
	})
	if code, _, err := getJSON(base + "/healthz"); err != nil || code != 200 {
		t.Fatalf("/healthz while waiting: %d %v", code, err)
	}
	code, body, _ := getJSON(base + "/v1/skus")
	if c := errorCode(body); code != 503 || c != "starting" {
		t.Fatalf("an API route while waiting: %d %v, want 503 starting", code, body)
	}

	_, nc := plan.Start()
	var res startResult
	select {
	case res = <-started:
	case <-time.After(3 * time.Minute):
		t.Fatalf("orderd did not finish starting after the cluster came up; log:\n%s", logs.String())
	}
	if res.err != nil {
		t.Fatalf("start: %v; log:\n%s", res.err, logs.String())
	}
	ta := newTestApp(t, res.a)
	t.Logf("orderd's log while it waited:\n%s", logs.String())
	if code, body, err := getJSON(ta.base + "/readyz"); err != nil || code != 200 {
		t.Fatalf("/readyz after start: %d %v %v", code, body, err)
	}
	ta.putSKU("TEA-250", 1999, 10)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), "ORDERS")
	if err != nil || st.CachedInfo().Config.Replicas != 3 {
		t.Fatalf("ORDERS after start: %v", err)
	}
	if ta.store.Log().ID != li.ID {
		t.Fatalf("orderd serves log %q, orderctl init made %s", ta.store.Log().ID, li.ID)
	}
}

// With nothing to connect to, orderd gives up after its start timeout
// and says what it waited for.
func TestStartGivesUpAfterTheStartTimeout(t *testing.T) {
	cfg := config.Default()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AuthSecret = testSecret
	cfg.NATSURL = "nats://" + freeAddr(t) // nothing listens there
	cfg.PostgresURL = "postgres://never-reached"
	cfg.StartTimeout = 2 * time.Second
	var logs testLog
	_, err := start(context.Background(), cfg, logs.logger())
	if err == nil || !strings.Contains(err.Error(), "NATS at "+cfg.NATSURL) || !strings.Contains(err.Error(), "ORDO_START_TIMEOUT") {
		t.Fatalf("start without NATS: %v, want it to give up naming NATS and ORDO_START_TIMEOUT", err)
	}
	if !strings.Contains(logs.String(), "waiting for NATS") {
		t.Fatalf("no log line says it waits for NATS:\n%s", logs.String())
	}
	t.Logf("error: %v", err)
}

// A stream that a working server reports as missing is a destroyed log:
// orderd refuses to start at once instead of waiting or creating an
// empty stream in its place.
func TestStartRefusesADestroyedStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts orderd twice")
	}
	ta := mustStart(t)
	cfg := ta.cfg
	ta.putSKU("TEA-250", 1999, 10)
	js, err := jetstream.New(ta.adminConn())
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(t.Context(), "INVENTORY"); err != nil {
		t.Fatal(err)
	}
	if err := ta.close(); err != nil {
		t.Fatal(err)
	}
	_, err = start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if !errors.Is(err, eventlog.ErrStreamMissing) || !strings.Contains(err.Error(), "INVENTORY") {
		t.Fatalf("start without INVENTORY: %v, want ErrStreamMissing naming it", err)
	}
	// Nothing was created in its place.
	offline(t, cfg.DataDir, func(js jetstream.JetStream, _ *nats.Conn) {
		if _, err := js.Stream(t.Context(), "INVENTORY"); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("INVENTORY after the refused start: %v", err)
		}
	})
}

func errorOf(body map[string]any) (msg, code string) {
	e, _ := body["error"].(map[string]any)
	msg, _ = e["message"].(string)
	code, _ = e["code"].(string)
	return msg, code
}

func errorCode(body map[string]any) string {
	_, code := errorOf(body)
	return code
}
