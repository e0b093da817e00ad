//go:build linux

package pgserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var testSettings = map[string]string{"fsync": "off", "shared_buffers": "16MB"}

func start(t *testing.T, dir string) *Server {
	t.Helper()
	needServer(t)
	s, err := Start(t.Context(), Options{Dir: dir, NoSync: true, Settings: testSettings})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func exec1(t *testing.T, url, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", Redacted(url), err)
	}
	defer c.Close(ctx)
	if !strings.HasPrefix(sql, "SELECT") {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return ""
	}
	var out string
	if err := c.QueryRow(ctx, sql).Scan(&out); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// gone waits, bounded, for a process to disappear; it reports whether it
// did.
func gone(pid int, within time.Duration) bool {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(st), ") Z ") {
			return true
		}
	}
	return false
}

func TestStartRestartAndLock(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	if len(s.sockDir)+1+len(socketName) > maxSocketPath {
		t.Fatalf("socket path too long: %s", s.sockDir)
	}
	exec1(t, s.URL(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
	if os.Geteuid() == 0 && exec1(t, s.URL(), "SELECT current_setting('data_directory')") == "" {
		t.Fatal("no data directory")
	}

	if _, err := Start(t.Context(), Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second server on the same directory: %v, want ErrLocked", err)
	}

	pid := s.Pid()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if !gone(pid, time.Second) {
		t.Fatalf("postmaster %d still running after Stop", pid)
	}
	s2 := start(t, dir)
	if got := exec1(t, s2.URL(), "SELECT v FROM kept"); got != "yes" {
		t.Fatalf("data after restart: %q", got)
	}
}

// TestStalePostmasterIsTakenOver leaves a server running with its lock
// released, as a process that died without stopping it would, and starts
// again on the same directory.
func TestStalePostmasterIsTakenOver(t *testing.T) {
	dir := t.TempDir()
	old := start(t, dir)
	exec1(t, old.URL(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
	old.unlock()
	old.unlock = nil

	s := start(t, dir)
	select {
	case <-old.Exited():
	default:
		t.Fatal("the stale postmaster is still running after the takeover")
	}
	if got := exec1(t, s.URL(), "SELECT v FROM kept"); got != "yes" {
		t.Fatalf("data after takeover: %q", got)
	}
}

// TestKilledPostmasterIsTakenOver SIGKILLs the postmaster itself while a
// client is connected (its backend may outlive it for a moment, holding
// the shared memory) and releases the lock as a dead owner would: the
// next Start must come up on the same data, whatever was left behind.
func TestKilledPostmasterIsTakenOver(t *testing.T) {
	dir := t.TempDir()
	old := start(t, dir)
	exec1(t, old.URL(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, old.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := syscall.Kill(old.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-old.Exited()
	old.unlock()
	old.unlock = nil

	s := start(t, dir)
	if got := exec1(t, s.URL(), "SELECT v FROM kept"); got != "yes" {
		t.Fatalf("data after the takeover: %q", got)
	}
}

// TestServerOutlivesTheThreadThatStartedIt starts a server from a
// goroutine locked to its thread, which then ends (and the Go runtime
// ends the thread with it): the parent-death signal must not fire, the
// parent process lives on.
func TestServerOutlivesTheThreadThatStartedIt(t *testing.T) {
	needServer(t)
	dir := t.TempDir()
	type result struct {
		s   *Server
		err error
	}
	ch := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		s, err := Start(context.Background(), Options{Dir: dir, NoSync: true, Settings: testSettings})
		ch <- result{s, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { _ = r.s.Stop() })
	select {
	case <-r.s.Exited():
		t.Fatal("the server stopped when the thread that started it ended")
	case <-time.After(time.Second):
	}
	if got := exec1(t, r.s.URL(), "SELECT 'up'"); got != "up" {
		t.Fatalf("query: %q", got)
	}
}

// TestServerDiesWithItsParent runs a server in a child process, SIGKILLs
// the child and checks that the postmaster follows it and that the next
// Start on the directory works.
func TestServerDiesWithItsParent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServer$")
	cmd.Env = append(os.Environ(), "ORDO_PGSERVER_HELPER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	pid := 0
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "postmaster "); ok {
			pid, _ = strconv.Atoi(v)
			break
		}
	}
	if pid == 0 {
		t.Fatal("helper did not report its postmaster")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !gone(pid, 30*time.Second) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("postmaster %d outlived its SIGKILLed parent", pid)
	}
	s := start(t, dir)
	if got := exec1(t, s.URL(), "SELECT v FROM kept"); got != "yes" {
		t.Fatalf("data after the parent was killed: %q", got)
	}
}

// TestHelperServer is the child of TestServerDiesWithItsParent.
func TestHelperServer(t *testing.T) {
	dir := os.Getenv("ORDO_PGSERVER_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	s, err := Start(context.Background(), Options{Dir: dir, NoSync: true, Settings: testSettings})
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, s.URL(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
	fmt.Printf("postmaster %d\n", s.Pid())
	select {} // wait for SIGKILL
}

func TestLongDirectoryGetsShortSocket(t *testing.T) {
	dir := t.TempDir() + "/" + strings.Repeat("d", 100)
	s := start(t, dir)
	if !s.tmpSock || !strings.HasPrefix(s.sockDir, "/tmp/") {
		t.Fatalf("socket dir %s for a long base dir", s.sockDir)
	}
	exec1(t, s.URL(), "SELECT 'ok'")
	sock := s.sockDir
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("temporary socket dir left behind: %v", err)
	}
}

// A supervised server that is SIGKILLed comes back by itself on the same
// URL, with what it had committed.
func TestSuperviseRestartsAKilledServer(t *testing.T) {
	s := start(t, t.TempDir())
	exec1(t, s.URL(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
	ctx, cancel := context.WithCancel(t.Context())
	supervised := make(chan struct{})
	go func() { defer close(supervised); s.Supervise(ctx) }()
	defer func() { cancel(); <-supervised }()

	for round := 1; round <= 2; round++ {
		old := s.Pid()
		killed := time.Now()
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var err error
		for end := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if err = ping(t.Context(), s.URL()); err == nil && s.Pid() != old {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("round %d: postgres not back 60 s after SIGKILL: %v", round, err)
			}
		}
		t.Logf("round %d: postgres answered again %s after SIGKILL", round, time.Since(killed).Round(time.Millisecond))
		if got := exec1(t, s.URL(), "SELECT v FROM kept"); got != "yes" {
			t.Fatalf("after restart: %q", got)
		}
	}
}
