package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/testkit"
)

// mountTmpfs mounts a tmpfs of size at a new directory and unmounts it
// when the test ends; it skips the test where that is not possible.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs at %s (%v: %s); this test needs a small file system to fill", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = io.Copy(f, zeros{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling %s: %v, want ENOSPC", dir, err)
	}
	return path
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// With the embedded store's disk full, commands answer 503 storage_full
// promptly (not after the request timeout) and /readyz is 503 naming it;
// reads go on. Once space is freed, commands succeed again without a
// restart of orderd, and the process managers and the projector go on.
func TestDiskFullAnswers503AndRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a tmpfs under a running orderd")
	}
	dir := mountTmpfs(t, "64m")
	var logs testLog
	cfg := testConfig(t, withSagas("auto"), func(c *config.Config) {
		c.Roles = append(c.Roles, "projections")
		c.DataDir = dir
		c.NATSSync = "always"
	})
	a, err := start(t.Context(), cfg, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	ta := newTestApp(t, a)
	defer func() {
		if t.Failed() {
			t.Logf("orderd's log:\n%s", logs.String())
		}
	}()
	ta.putSKU("TEA-250", 1999, 1_000_000)
	filler := fill(t, dir)

	// The first writes may still fit in pages the store's files hold;
	// then one fails, and it must say why at once.
	var first time.Duration
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("1000 orders placed on a full disk")
		}
		began := time.Now()
		r := ta.place(ta.alice, fmt.Sprint("full-", i), orderBody(line("TEA-250", 1)))
		if r.status == 202 {
			continue
		}
		first = time.Since(began)
		if r.status != 503 || r.code() != "storage_full" {
			t.Fatalf("place on a full disk: %d %s, want 503 storage_full", r.status, r.raw)
		}
		t.Logf("the first write that hit the full disk (after %d that fit) answered 503 storage_full in %s", i, first.Round(time.Millisecond))
		break
	}
	began := time.Now()
	r := ta.do("PUT", "/v1/skus/TEA-250", ta.admin, map[string]any{"name": "Tea", "price": map[string]any{"amount": 1999, "currency": "CNY"}, "on_hand": 5})
	if r.status != 503 || r.code() != "storage_full" {
		t.Fatalf("a command while the disk is full: %d %s, want 503 storage_full", r.status, r.raw)
	}
	t.Logf("a later command answered 503 storage_full in %s", time.Since(began).Round(time.Millisecond))
	if r := ta.do("GET", "/readyz", "", nil); r.status != 503 || r.code() != "storage_full" {
		t.Fatalf("/readyz on a full disk: %d %s, want 503 storage_full", r.status, r.raw)
	}
	if r := ta.do("GET", "/v1/skus/TEA-250", ta.admin, nil); r.status != 200 {
		t.Errorf("a read while the disk is full: %d %s", r.status, r.raw)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	var attempts int
	testkit.Eventually(t, "commands to succeed after space was freed", 60*time.Second, testkit.Holds(func() bool {
		attempts++
		return ta.place(ta.alice, fmt.Sprint("after-", attempts), orderBody(line("TEA-250", 1))).status == 202
	}))
	t.Logf("commands succeeded again %s after space was freed", time.Since(freed).Round(time.Millisecond))
	if r := ta.do("GET", "/readyz", "", nil); r.status != 200 {
		t.Fatalf("/readyz after recovery: %d %s", r.status, r.raw)
	}
	// The process managers and the projector went on too: an order
	// placed now is paid, and the read model shows it.
	placed := ta.place(ta.alice, "after-recovery", orderBody(line("TEA-250", 1)))
	if placed.status != 202 {
		t.Fatalf("place after recovery: %d %s", placed.status, placed.raw)
	}
	placedAt := time.Now()
	testkit.Eventually(t, "the order placed after recovery to be paid in the read model", 60*time.Second, testkit.Holds(func() bool {
		r := ta.do("GET", "/v1/orders/"+placed.body["order_id"].(string), ta.alice, nil)
		return r.status == 200 && r.body["status"] == "paid"
	}))
	// The process managers' consumers lost their pull requests with the
	// JetStream restart; this is how long they took to notice.
	t.Logf("the order placed after recovery was paid in the read model %s later (%s after space was freed)",
		time.Since(placedAt).Round(time.Millisecond), time.Since(freed).Round(time.Millisecond))
}
