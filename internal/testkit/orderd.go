package testkit

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Orderd is an orderd process a test started with [StartOrderd].
type Orderd struct {
	// Base is its API's URL.
	Base string
	// Cmd is the running process and Logs what it printed (every run's,
	// after a [Orderd.Restart]).
	Cmd  *exec.Cmd
	Logs *bytes.Buffer

	t    *testing.T
	bin  string
	addr string
	env  []string
}

// StartOrderd builds cmd/orderd and runs it as the local default on
// dataDir (its own NATS and PostgreSQL), with authSecret as its token
// secret and env added to its environment, and returns it once /readyz
// answers 200. The process is killed when the test ends; its log is
// printed if the test failed. It skips the test under -short.
func StartOrderd(t *testing.T, dataDir, authSecret string, env ...string) *Orderd {
	t.Helper()
	SkipShort(t, "an orderd process with its own NATS and PostgreSQL")
	bin := filepath.Join(t.TempDir(), "orderd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ordo-shop/ordo/cmd/orderd").CombinedOutput(); err != nil {
		t.Fatalf("go build orderd: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	o := &Orderd{Base: "http://" + addr, Logs: &bytes.Buffer{}, t: t, bin: bin, addr: addr,
		env: append(append(os.Environ(), "ORDO_DATA_DIR="+dataDir, "ORDO_HTTP_ADDR="+addr, "ORDO_NATS_LISTEN=127.0.0.1:0",
			"ORDO_AUTH_SECRET="+authSecret, "ORDO_LOG_LEVEL=warn"), env...)}
	t.Cleanup(func() {
		o.kill()
		if t.Failed() {
			t.Logf("orderd's log:\n%s", o.Logs)
		}
	})
	o.start()
	return o
}

// start runs the process and waits until it is ready.
func (o *Orderd) start() {
	o.t.Helper()
	cmd := exec.Command(o.bin)
	cmd.Env = o.env
	cmd.Stdout, cmd.Stderr = o.Logs, o.Logs
	if err := cmd.Start(); err != nil {
		o.t.Fatal(err)
	}
	o.Cmd = cmd
	Eventually(o.t, "orderd ready", 90*time.Second, Holds(func() bool {
		resp, err := http.Get(o.Base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}))
}

// kill SIGKILLs the process, if it still runs, and reaps it.
func (o *Orderd) kill() {
	if o.Cmd == nil || o.Cmd.ProcessState != nil {
		return
	}
	_ = o.Cmd.Process.Kill()
	_ = o.Cmd.Wait()
}

// Kill ends orderd with SIGKILL, as a crash or the kernel's OOM killer
// would: no shutdown runs. Its PostgreSQL dies with it (the parent-death
// signal); the data dir keeps what was synced.
func (o *Orderd) Kill() {
	o.t.Helper()
	if o.Cmd.ProcessState != nil {
		o.t.Fatalf("orderd is not running (%s)", o.Cmd.ProcessState)
	}
	if err := o.Cmd.Process.Kill(); err != nil {
		o.t.Fatal(err)
	}
	_ = o.Cmd.Wait() // "signal: killed"
	fmt.Fprintf(o.Logs, "--- killed (SIGKILL) by the test ---\n")
}

// Restart starts orderd again on the same data dir, address and
// environment after [Orderd.Kill] (or its own exit), and waits until it
// is ready.
func (o *Orderd) Restart() {
	o.t.Helper()
	if o.Cmd.ProcessState == nil {
		o.t.Fatal("orderd still runs: Kill it first")
	}
	o.start()
}
