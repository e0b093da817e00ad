package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/internal/testkit"
)

// started runs pspsim with args until the test ends and returns the
// addresses it printed.
func started(t *testing.T, args ...string) (base, metricsURL string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out safeBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, env(map[string]string{"ORDO_PSP_WEBHOOK_SECRET": secret, "ORDO_PSP_API_KEY": apiKey}), &out, &bytes.Buffer{})
	}()
	testkit.Eventually(t, "pspsim's addresses", 10*time.Second, func() (bool, error) {
		s := out.String()
		if !strings.Contains(s, "metrics at ") {
			return false, fmt.Errorf("output %q", s)
		}
		base = strings.Fields(strings.SplitN(s, "serving ", 2)[1])[0]
		metricsURL = strings.Fields(strings.SplitN(s, "metrics at ", 2)[1])[0]
		return true, nil
	})
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	}
	t.Cleanup(stop)
	return base, metricsURL, stop
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestMetricsCountTheFaults: pspsim serves its counters at /metrics, and
// they count what it injected; with --state-file its intents survive a
// restart.
func TestMetricsCountTheFaults(t *testing.T) {
	state := filepath.Join(t.TempDir(), "psp-sim.json")
	args := []string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--faults", "loss=1",
		"--webhook-url", "http://127.0.0.1:9/nowhere", "--state-file", state}
	base, metricsURL, stop := started(t, args...)
	c, err := psp.NewHTTPClient(base, "sim", apiKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	var ids []string
	for i := range n {
		ref := fmt.Sprintf("pay_%d", i)
		in, err := c.CreateIntent(t.Context(), psp.CreateIntentRequest{Reference: ref, Amount: events.Money{Amount: 100, Currency: "CNY"}}, ref+":create")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	want := []string{
		fmt.Sprintf(`ordo_psp_sim_faults_injected_total{kind="loss"} %d`, n),
		fmt.Sprintf(`ordo_psp_sim_webhook_events_total %d`, n),
		fmt.Sprintf(`ordo_psp_sim_intents %d`, n),
		`ordo_psp_sim_faults_injected_total{kind="decline"} 0`,
		`ordo_psp_sim_webhook_attempts_total{result="failed"} 0`,
		`go_goroutines`,
	}
	testkit.Eventually(t, "the counters", 30*time.Second, func() (bool, error) {
		text := scrape(t, metricsURL)
		for _, w := range want {
			if !strings.Contains(text, w) {
				return false, fmt.Errorf("no %s in\n%s", w, text)
			}
		}
		return true, nil
	})
	stop()

	base, _, _ = started(t, args...)
	c, err = psp.NewHTTPClient(base, "sim", apiKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if in, err := c.Intent(t.Context(), id); err != nil || in.Status != psp.StatusCaptured {
			t.Fatalf("intent %s after a restart: %+v %v", id, in, err)
		}
	}
}
