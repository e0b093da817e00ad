package testkit

import (
	"bytes"
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
	// Cmd is the running process and Logs what it printed.
	Cmd  *exec.Cmd
	Logs *bytes.Buffer
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
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), "ORDO_DATA_DIR="+dataDir, "ORDO_HTTP_ADDR="+addr, "ORDO_NATS_LISTEN=127.0.0.1:0",
		"ORDO_AUTH_SECRET="+authSecret, "ORDO_LOG_LEVEL=warn"), env...)
	o := &Orderd{Base: "http://" + addr, Cmd: cmd, Logs: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = o.Logs, o.Logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if t.Failed() {
			t.Logf("orderd's log:\n%s", o.Logs)
		}
	})
	Eventually(t, "orderd ready", 90*time.Second, Holds(func() bool {
		resp, err := http.Get(o.Base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}))
	return o
}
