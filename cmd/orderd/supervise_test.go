//go:build linux

package main

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/testkit"
)

// postmasterPid reads the pid of the local default's private PostgreSQL
// from its postmaster.pid.
func postmasterPid(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, datadir.PostgresDir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// The private PostgreSQL of the local default is orderd's own: when it is
// SIGKILLed, orderd restarts it, and queries come back by themselves.
// While it is down /readyz is 503 naming PostgreSQL.
func TestPrivatePostgreSQLIsRestartedAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills a private PostgreSQL")
	}
	ta := mustStart(t, withProjector, func(c *config.Config) { c.PostgresURL = "" })
	ta.putSKU("TEA-250", 1999, 10)
	placed := ta.place(ta.alice, "k1", orderBody(line("TEA-250", 1)))
	if placed.status != 202 {
		t.Fatalf("place: %d %s", placed.status, placed.raw)
	}
	orderPath := "/v1/orders/" + placed.body["order_id"].(string)
	if r := ta.do("GET", orderPath+"?position="+url.QueryEscape(placed.body["position"].(string)), ta.alice, nil); r.status != 200 {
		t.Fatalf("read the order: %d %s", r.status, r.raw)
	}
	queriesAnswer := func() bool { return ta.do("GET", orderPath, ta.alice, nil).status == 200 }

	// A plain kill: how long until queries answer again.
	old := postmasterPid(t, ta.cfg.DataDir)
	killed := time.Now()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "PostgreSQL to be restarted", 60*time.Second, testkit.Holds(func() bool {
		return gonePid(old) && queriesAnswer()
	}))
	t.Logf("queries answered again %s after the SIGKILL", time.Since(killed).Round(time.Millisecond))

	// Again, with PostgreSQL kept from starting (its configuration moved
	// aside) until /readyz has been seen saying so: the outage is then
	// seen for certain, however fast the restart.
	conf := filepath.Join(ta.cfg.DataDir, datadir.PostgresDir, "data", "postgresql.conf")
	if err := os.Rename(conf, conf+".aside"); err != nil {
		t.Fatal(err)
	}
	old = postmasterPid(t, ta.cfg.DataDir)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "/readyz to answer 503 naming PostgreSQL", 60*time.Second, testkit.Holds(func() bool {
		r := ta.do("GET", "/readyz", "", nil)
		msg, _ := errorOf(r.body)
		return r.status == 503 && r.code() == "read_model_unavailable" && strings.Contains(msg, "PostgreSQL")
	}))
	if r := ta.do("GET", orderPath, ta.alice, nil); r.status != 503 || r.code() == "" {
		t.Errorf("a query while PostgreSQL is down: %d %s, want 503 with a code", r.status, r.raw)
	}
	if err := os.Rename(conf+".aside", conf); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "/readyz 200 after PostgreSQL is back", 60*time.Second, testkit.Holds(func() bool {
		return ta.do("GET", "/readyz", "", nil).status == 200
	}))
	if !queriesAnswer() {
		t.Fatal("queries do not answer after /readyz said ready")
	}
}

// gonePid reports whether process pid has exited (or is a zombie).
func gonePid(pid int) bool {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(st), ") Z ")
}
