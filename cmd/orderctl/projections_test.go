package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/local/pgserver"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections"
)

// TestMain stops the test binary's PostgreSQL (see testkit.Postgres).
func TestMain(m *testing.M) { os.Exit(testkit.RunMain(m)) }

func TestProjectionsStatusAndRebuild(t *testing.T) {
	dir, _ := seedDataDir(t, true)
	pg := testkit.Postgres(t)
	env := map[string]string{"ORDO_DATA_DIR": dir, "ORDO_POSTGRES_URL": pg}

	status := func(env map[string]string) projections.View {
		t.Helper()
		code, out, errOut := orderctl(t, env, "projections", "status", "--json")
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		var st projections.View
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status JSON %q: %v", out, err)
		}
		return st
	}
	// Nothing projects in this test: version 1 is empty and 3 behind.
	if st := status(env); st.Name != "order_status" || st.Version != 1 || st.StreamLastSeq != 3 || st.LagText() != "3" || st.State != "catching_up" {
		t.Fatalf("before the rebuild: %+v", st)
	}
	code, out, errOut := orderctl(t, env, "projections", "rebuild", "order_status")
	if code != 0 || !strings.Contains(out, "version 2 is live (was 1)") {
		t.Fatalf("rebuild: exit %d\n%s\n%s", code, out, errOut)
	}
	// Through the postgres.url a local orderd would have written.
	if err := datadir.WriteFile(dir, datadir.PostgresURL, []byte(pg+"\n")); err != nil {
		t.Fatal(err)
	}
	st := status(map[string]string{"ORDO_DATA_DIR": dir})
	if st.Version != 2 || st.LagText() != "0" || st.Checkpoint != 3 || st.State != "live" || len(st.Versions) != 2 || st.Versions[0].State != "retired" {
		t.Fatalf("after the rebuild: %+v", st)
	}
	code, out, _ = orderctl(t, env, "projections", "status")
	for _, want := range []string{"order_status", "live", "v2", "retired"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("status table lacks %q (exit %d):\n%s", want, code, out)
		}
	}
}

func TestProjectionsBadUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"projections"},
		{"projections", "rebuild"},
		{"projections", "rebuild", "orders_v9"},
		{"projections", "explode"},
		{"projections", "rebuild", "order_status", "--batch", "0"},
		{"projections", "rebuild", "order_status", "--batch", "many"},
		{"projections", "status", "order_status", "extra"},
		{"projections", "status", "orders"},
		{"projections", "rebuild", "order_status", "again"},
	} {
		code, _, errOut := orderctl(t, map[string]string{"ORDO_DATA_DIR": dir}, args...)
		if code != exitUsage || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	// A stopped local default that never ran a read model.
	stopped, _ := seedDataDir(t, false)
	code, _, errOut := orderctl(t, map[string]string{"ORDO_DATA_DIR": stopped}, "projections", "status")
	if code != exitError || !strings.Contains(errOut, "ORDO_POSTGRES_URL") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("no PostgreSQL: exit %d, %q", code, errOut)
	}
	// A live local default started with ORDO_POSTGRES_URL wrote no
	// postgres.url.
	live, _ := seedDataDir(t, true)
	code, _, errOut = orderctl(t, map[string]string{"ORDO_DATA_DIR": live}, "projections", "status")
	if code != exitError || !strings.Contains(errOut, "ORDO_POSTGRES_URL") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("live orderd without postgres.url: exit %d, %q", code, errOut)
	}
	// An unreachable PostgreSQL.
	code, _, errOut = orderctl(t, map[string]string{"ORDO_DATA_DIR": stopped, "ORDO_POSTGRES_URL": "postgres://nobody@127.0.0.1:1/x?connect_timeout=2"}, "projections", "status")
	if code != exitError || errOut == "" {
		t.Errorf("unreachable PostgreSQL: exit %d, %q", code, errOut)
	}
}

// TestProjectionsOnAStoppedLocalDefault: with orderd stopped, orderctl
// runs the local default's private PostgreSQL itself (under the data
// dir's lock), answers, rebuilds, and stops it again.
func TestProjectionsOnAStoppedLocalDefault(t *testing.T) {
	dir, _ := seedDataDir(t, false)
	// The private PostgreSQL a local orderd made once, now stopped.
	pgDir := filepath.Join(dir, datadir.PostgresDir)
	srv, err := pgserver.Start(t.Context(), pgserver.Options{Dir: pgDir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ORDO_DATA_DIR": dir}
	// A deleted password file (how the password is rotated) gets a new
	// one, and orderctl says so on stderr.
	if err := os.Remove(filepath.Join(dir, datadir.PostgresPassword)); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := orderctl(t, env, "projections", "status"); code != 0 || !strings.Contains(errOut, "set a new generated password") {
		t.Fatalf("status after the password file was deleted: exit %d: %s", code, errOut)
	}
	status := func() projections.View {
		t.Helper()
		code, out, errOut := orderctl(t, env, "projections", "status", "--json")
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		var st projections.View
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status JSON %q: %v", out, err)
		}
		return st
	}
	if st := status(); st.Version != 1 || st.StreamLastSeq != 3 || st.LagText() != "3" {
		t.Fatalf("before the rebuild: %+v", st)
	}
	code, out, errOut := orderctl(t, env, "projections", "rebuild", "order_status")
	if code != 0 || !strings.Contains(out, "version 2 is live (was 1)") {
		t.Fatalf("rebuild: exit %d\n%s\n%s", code, out, errOut)
	}
	if st := status(); st.Version != 2 || st.Checkpoint != 3 || st.LagText() != "0" || st.State != "live" {
		t.Fatalf("after the rebuild: %+v", st)
	}
	// orderctl stopped the server it started.
	if pid, err := os.ReadFile(filepath.Join(pgDir, "data", "postmaster.pid")); err == nil {
		t.Fatalf("postmaster.pid left behind: %s", pid)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.PostgresURL)); !os.IsNotExist(err) {
		t.Fatalf("orderctl wrote %s: %v", datadir.PostgresURL, err)
	}
}
