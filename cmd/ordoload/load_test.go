package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/testkit"
)

const testSecret = "ordoload-test-secret-0123456789abcdef"

// testEnv is the environment ordoload sees in the tests: only the
// secret orderd signs tokens with.
func testEnv(k string) string {
	if k == "ORDO_AUTH_SECRET" {
		return testSecret
	}
	return ""
}

// startOrderd runs orderd as the local default on a temporary data dir
// with the given extra environment, and returns its API's URL once it is
// ready.
func startOrderd(t *testing.T, env ...string) string {
	t.Helper()
	return testkit.StartOrderd(t, t.TempDir(), testSecret, env...).Base
}

// load runs ordoload against base with args and returns its exit code,
// its JSON summary and its progress output.
func load(t *testing.T, base string, args ...string) (int, summary, string) {
	t.Helper()
	var out, errs bytes.Buffer
	// A liveness bound only: the run ends by itself after its duration
	// and drain.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := runMain(ctx, append([]string{"--url", base, "--json", "--progress", "1s"}, args...), testEnv, &out, &errs)
	var s summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("exit %d, summary %q: %v\nstderr:\n%s", code, out.String(), err, errs.String())
	}
	return code, s, errs.String()
}

// checkAccounting checks that every accepted order has exactly one
// outcome and that the latencies the flows produced were recorded.
func checkAccounting(t *testing.T, s summary) {
	t.Helper()
	sum := s.Rejected + s.Paid + s.Shipped + s.Cancelled + s.TimedOut + s.Declined + s.Failed + s.InFlight
	if s.Accepted == 0 || sum != s.Accepted {
		t.Errorf("accepted %d, outcomes add up to %d: %+v", s.Accepted, sum, s)
	}
	if s.Reserved+s.Rejected+s.Failed+s.InFlight < s.Accepted {
		t.Errorf("accepted %d but only %d reserved and %d rejected", s.Accepted, s.Reserved, s.Rejected)
	}
	// Every paid order was kept, shipped or cancelled (a cancellation
	// may also come before paying).
	if s.ReachedPaid < s.Paid+s.Shipped || s.ReachedPaid > s.Paid+s.Shipped+s.Cancelled {
		t.Errorf("%d reached paid, with %d paid, %d shipped and %d cancelled", s.ReachedPaid, s.Paid, s.Shipped, s.Cancelled)
	}
	if s.Attempts < s.Accepted+s.PlaceFailed {
		t.Errorf("%d attempts for %d accepted and %d refused", s.Attempts, s.Accepted, s.PlaceFailed)
	}
	lat := map[string]stats{}
	for _, l := range s.Latency {
		lat[l.Name] = l.stats
	}
	if got := lat["place → 202"].Count; got != s.Accepted {
		t.Errorf("place → 202 has %d samples for %d accepted", got, s.Accepted)
	}
	if got := lat["placed → paid"].Count; got > s.ReachedPaid {
		t.Errorf("placed → paid has %d samples for %d paid", got, s.ReachedPaid)
	}
	if got := lat["timer lateness"].Count; got > s.TimedOut {
		t.Errorf("timer lateness has %d samples for %d timed out", got, s.TimedOut)
	}
	for name, st := range lat {
		if st.Count > 0 && (st.P50 > st.P90 || st.P90 > st.P99 || st.P99 > st.P999 || st.P999 > st.Max) {
			t.Errorf("%s: quantiles out of order: %+v", name, st)
		}
	}
}

// TestLoadAgainstOrderd runs short loads against a real orderd (the
// local default, the simulator in manual mode, a payment timeout of a
// few seconds): a storefront in a closed loop, whose counts must add up
// with nothing left in flight, and a flash sale, which must never sell
// more than its stock and leave the catalog holding exactly what sold.
func TestLoadAgainstOrderd(t *testing.T) {
	dir := t.TempDir() // the storefront finds orderd's metrics.url here
	base := testkit.StartOrderd(t, dir, testSecret, "ORDO_PSP_MODE=manual", "ORDO_PAYMENT_TIMEOUT=3s").Base

	t.Run("storefront", func(t *testing.T) {
		code, s, progress := load(t, base, "--pay", "manual", "--payment-timeout", "3s", "--duration", "4s", "--drain", "60s",
			"--shoppers", "4", "--skus", "5", "--abandon", "0.2", "--decline", "0.1", "--cancel-ratio", "0.15", "--ship-ratio", "0.3",
			"--think", "20ms", "--probe-every", "200ms", "--run-id", "store", "--data-dir", dir)
		if code != exitOK {
			t.Fatalf("exit %d: %+v", code, s)
		}
		checkAccounting(t, s)
		if s.InFlight != 0 || s.Failed != 0 {
			t.Errorf("in flight %d, failed %d after a drain of a minute; errors %v", s.InFlight, s.Failed, s.Errors)
		}
		if len(s.Violations) != 0 {
			t.Errorf("violations: %v", s.Violations)
		}
		if !strings.Contains(progress, "ordoload ") {
			t.Errorf("no progress line on stderr: %q", progress)
		}
		// The process managers' backlog, followed on orderd's metrics
		// (found through the data dir): read, and empty once every
		// order has settled.
		if b := s.Backlog; b == nil || b.Samples == 0 || b.AtLoadEnd < 0 || b.AtFlowsEnd < 0 || b.LastAfterLoad != 0 || b.EmptyAfter < 0 {
			t.Errorf("backlog report: %+v", b)
		}
		t.Logf("%+v", s)
	})

	t.Run("flash sale", func(t *testing.T) {
		code, s, _ := load(t, base, "--hot", "--stock", "8", "--pay", "manual", "--payment-timeout", "3s", "--duration", "4s", "--drain", "60s",
			"--shoppers", "6", "--customers", "12", "--abandon", "0.1", "--cancel-ratio", "0.2", "--ship-ratio", "0.3",
			"--think", "10ms", "--probe-every", "0", "--run-id", "flash")
		if code != exitOK {
			t.Fatalf("exit %d: %+v", code, s)
		}
		checkAccounting(t, s)
		h := s.Hot
		if h == nil || !h.CatalogRead {
			t.Fatalf("no flash-sale report: %+v", s)
		}
		if h.Sold > h.Stock || len(s.Violations) != 0 {
			t.Errorf("sold %d of %d; violations %v", h.Sold, h.Stock, s.Violations)
		}
		if s.InFlight == 0 && h.Held != h.Sold {
			t.Errorf("catalog holds %d, %d sold", h.Held, h.Sold)
		}
		if h.Sold != s.Paid+s.Shipped {
			t.Errorf("sold %d units, but %d orders paid or shipped (one unit each)", h.Sold, s.Paid+s.Shipped)
		}
		t.Logf("%+v %+v", s, *h)
	})
}

// TestUsage: bad flags are exit 2 with one line on stderr, before any
// request.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--mode", "open"},
		{"--rate", "5", "--mode", "closed"},
		{"--pay", "auto", "--abandon", "0.1"},
		{"--cancel-ratio", "0.8", "--ship-ratio", "0.5"},
		{"--pay", "card"},
		{"--shoppers", "0"},
		{"--customers", "2", "--shoppers", "4"},
		{"extra"},
	} {
		var out, errs bytes.Buffer
		code := runMain(context.Background(), append([]string{"--url", "http://127.0.0.1:1"}, args...),
			testEnv, &out, &errs)
		if code != exitUsage || strings.Count(errs.String(), "\n") != 1 || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out.String(), errs.String())
		}
	}
}

// lockedBuffer is a buffer safe to write from the run and read from the
// test while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// placedSoFar is the order count of the last progress line in out.
func placedSoFar(out string) int {
	m := regexp.MustCompile(`placed (\d+) `).FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// TestLoadSurvivesOrderdKills SIGKILLs the orderd a storefront load runs
// against, twice, and starts it again on the same data dir each time:
// the requests the server did not answer are sent again once it is back
// (counted apart, not as errors), and the run ends with every order
// accounted for, none failed or in flight.
func TestLoadSurvivesOrderdKills(t *testing.T) {
	o := testkit.StartOrderd(t, t.TempDir(), testSecret, "ORDO_PSP_MODE=auto", "ORDO_PAYMENT_TIMEOUT=20s", "ORDO_PSP_RECONCILE_AFTER=2s")
	var out, progress lockedBuffer
	done := make(chan int, 1)
	go func() {
		// A liveness bound only: the run ends by itself after its
		// duration and drain.
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
		defer cancel()
		done <- runMain(ctx, []string{"--url", o.Base, "--json", "--progress", "1s", "--pay", "auto", "--payment-timeout", "20s",
			"--duration", "20s", "--drain", "120s", "--unreachable-retry", "120s", "--shoppers", "4", "--skus", "5",
			"--cancel-ratio", "0.2", "--ship-ratio", "0.3", "--probe-every", "0", "--run-id", "kill"}, testEnv, &out, &progress)
	}()
	// Each kill comes once the run has placed orders since the last
	// start, so that it hits requests in progress.
	next := 3
	for kill := range 2 {
		testkit.Eventually(t, "orders placed before kill", 3*time.Minute, testkit.Holds(func() bool {
			return placedSoFar(progress.String()) >= next
		}))
		o.Kill()
		time.Sleep(500 * time.Millisecond) // the shoppers find it gone
		o.Restart()
		t.Logf("kill %d after %d orders placed; orderd back", kill+1, placedSoFar(progress.String()))
		next = placedSoFar(progress.String()) + 3
	}
	code := <-done
	var s summary
	if err := json.Unmarshal([]byte(out.String()), &s); err != nil {
		t.Fatalf("exit %d, summary %q: %v\nstderr:\n%s", code, out.String(), err, progress.String())
	}
	t.Logf("%+v", s)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	checkAccounting(t, s)
	if s.InFlight != 0 || s.Failed != 0 || len(s.Errors) != 0 || len(s.Violations) != 0 {
		t.Errorf("in flight %d, failed %d, errors %v, violations %v after two kills", s.InFlight, s.Failed, s.Errors, s.Violations)
	}
	var resent int64
	for _, n := range s.Unreachable {
		resent += n
	}
	if resent == 0 {
		t.Errorf("no request was sent again after a kill: %v", s.Unreachable)
	}
}
