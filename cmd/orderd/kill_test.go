package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// orderdProcess is orderd running as its own process, so it can be killed.
type orderdProcess struct {
	cmd  *exec.Cmd
	base string
}

func buildOrderd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "orderd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startProcess(t *testing.T, bin, dataDir string) *orderdProcess {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"ORDO_DATA_DIR="+dataDir, "ORDO_HTTP_ADDR="+addr, "ORDO_NATS_LISTEN=127.0.0.1:0",
		"ORDO_AUTH_SECRET="+testSecret, "ORDO_LOG_LEVEL=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &orderdProcess{cmd: cmd, base: "http://" + addr}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		waitNoProcessIn(t, dataDir)
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("orderd did not become ready; output:\n%s", logs.String())
	return nil
}

// waitNoProcessIn waits, bounded, until no process works in dir or below
// it: the private PostgreSQL that a killed orderd started goes on writing
// its WAL for a moment after the kill, and removing the data dir under it
// fails.
func waitNoProcessIn(t *testing.T, dir string) {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Error(err)
		return
	}
	busy := func() bool {
		procs, _ := filepath.Glob("/proc/[0-9]*/cwd")
		for _, p := range procs {
			if cwd, err := os.Readlink(p); err == nil && (cwd == abs || strings.HasPrefix(cwd, abs+"/")) {
				return true
			}
		}
		return false
	}
	for end := time.Now().Add(30 * time.Second); busy(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Errorf("processes still work in %s 30 s after orderd was killed", dir)
			return
		}
	}
}

func TestAcknowledgedAppendsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real orderd process")
	}
	bin := buildOrderd(t)
	dataDir := t.TempDir()
	p := startProcess(t, bin, dataDir)
	ta := &testApp{t: t, base: p.base, admin: mint(t, "ops", "admin"), alice: mint(t, "cust-alice", "customer")}
	ta.putSKU("TEA-250", 1999, 1_000_000)

	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", p.base+"/v1/orders", strings.NewReader(mustJSON(orderBody(line("TEA-250", 1)))))
				req.Header.Set("Authorization", "Bearer "+ta.alice)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("w%d-%d", w, i))
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				var body map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if resp.StatusCode == 202 {
					mu.Lock()
					acked = append(acked, body["order_id"].(string))
					mu.Unlock()
				}
			}
		})
	}
	// Kill in the middle of the stream, once a good number of appends
	// have been acknowledged.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = p.cmd.Process.Wait()
	close(stop)
	wg.Wait()

	mu.Lock()
	ids := append([]string(nil), acked...)
	mu.Unlock()
	restarted := startProcess(t, bin, dataDir)
	ta.base = restarted.base
	lost := 0
	for _, id := range ids {
		r := ta.do("POST", "/v1/orders/"+id+"/cancel", ta.alice, nil)
		if r.status != 202 && r.status != 200 { // 200: cancelled already
			lost++
			t.Errorf("acknowledged order %s after restart: %d %s", id, r.status, r.raw)
		}
	}
	t.Logf("%d acknowledged orders before SIGKILL, %d missing after restart", len(ids), lost)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
