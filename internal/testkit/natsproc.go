package testkit

import (
	"encoding/json"
	"fmt"
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

// NATSNode is one nats-server process of a [ProcessCluster]: a real
// server that a test can SIGKILL (a crash: no leader steps down, sockets
// close as the kernel reaps it), stop with SIGTERM (a planned restart:
// nats-server steps down the Raft leaders it holds before it exits) and
// start again on the same ports and store.
type NATSNode struct {
	Name      string
	ClientURL string
	tb        testing.TB
	bin, conf string
	monitor   string
	logPath   string
	mu        sync.Mutex
	cmd       *exec.Cmd
}

// processReadyTimeout bounds how long a node may take to report healthy.
const processReadyTimeout = 60 * time.Second

var natsBin struct {
	once sync.Once
	path string
	err  error
}

// natsServerBinary builds nats-server from the module version go.mod
// requires (it is a dependency, so the build needs nothing new), once per
// test binary.
func natsServerBinary(tb testing.TB) string {
	tb.Helper()
	natsBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "ordo-nats-server-")
		if err != nil {
			natsBin.err = err
			return
		}
		natsBin.path = filepath.Join(dir, "nats-server")
		out, err := exec.Command("go", "build", "-o", natsBin.path, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			natsBin.err = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if natsBin.err != nil {
		tb.Fatal(natsBin.err)
	}
	return natsBin.path
}

// ProcessCluster starts an n-node JetStream cluster of nats-server
// processes on loopback, with fsync on every write (sync_interval:
// always) as production runs, and waits until every node reports healthy.
// Every process is killed when the test ends (and when the test binary
// dies: they run with a parent-death signal). With [WithUsers] the nodes
// are configured as deploy/nats/cluster-node.conf configures production:
// Ordo's three users with their permissions, routes with a password. It
// skips the test under -short ([SkipShort]).
func ProcessCluster(tb testing.TB, n int, opts ...ClusterOption) []*NATSNode {
	tb.Helper()
	SkipShort(tb, "nats-server processes")
	o := clusterOpts(opts)
	bin := natsServerBinary(tb)
	ports := freePorts(tb, 3*n) // client, cluster and monitor port per node
	var routes []string
	userinfo, auth := "", ""
	if o.users != nil {
		userinfo = routeUser + ":" + o.routePassword + "@"
		auth = fmt.Sprintf("%s\n", o.users.ServerConfig())
	}
	for i := range n {
		routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats://%s127.0.0.1:%d", userinfo, ports[3*i+1])))
	}
	clusterAuth := ""
	if o.users != nil {
		clusterAuth = fmt.Sprintf(", authorization: { user: %q, password: %q }", routeUser, o.routePassword)
	}
	nodes := make([]*NATSNode, n)
	for i := range n {
		dir := tb.TempDir()
		nd := &NATSNode{
			Name:      fmt.Sprintf("n%d", i+1),
			ClientURL: fmt.Sprintf("nats://127.0.0.1:%d", ports[3*i]),
			tb:        tb, bin: bin,
			conf:    filepath.Join(dir, "nats.conf"),
			monitor: fmt.Sprintf("http://127.0.0.1:%d", ports[3*i+2]),
			logPath: filepath.Join(dir, "nats.log"),
		}
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q, sync_interval: always }
cluster { name: ordo-proc, listen: 127.0.0.1:%d, routes: [%s], compression: off%s }
%s`, nd.Name, ports[3*i], ports[3*i+2], filepath.Join(dir, "store"), ports[3*i+1], strings.Join(routes, ", "), clusterAuth, auth)
		if err := os.WriteFile(nd.conf, []byte(conf), 0o600); err != nil {
			tb.Fatal(err)
		}
		nodes[i] = nd
		tb.Cleanup(func() { nd.signal(syscall.SIGKILL) })
	}
	for _, nd := range nodes {
		nd.Start()
	}
	for _, nd := range nodes {
		nd.WaitHealthy()
	}
	return nodes
}

// Start starts the node's process (again).
func (nd *NATSNode) Start() {
	nd.tb.Helper()
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		nd.tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(nd.bin, "-c", nd.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		nd.tb.Fatalf("start nats-server %s: %v", nd.Name, err)
	}
	nd.mu.Lock()
	nd.cmd = cmd
	nd.mu.Unlock()
}

// Kill SIGKILLs the node and waits until it is gone.
func (nd *NATSNode) Kill() { nd.signal(syscall.SIGKILL) }

// Stop sends SIGTERM, as a service manager stopping it for a restart
// does, and waits until it has exited.
func (nd *NATSNode) Stop() { nd.signal(syscall.SIGTERM) }

func (nd *NATSNode) signal(sig syscall.Signal) {
	nd.mu.Lock()
	cmd := nd.cmd
	nd.cmd = nil
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	_, _ = cmd.Process.Wait()
}

// WaitHealthy waits until the node's /healthz answers 200: it runs, and
// its JetStream assets are current with their leaders.
func (nd *NATSNode) WaitHealthy() {
	nd.tb.Helper()
	end := time.Now().Add(processReadyTimeout)
	for {
		resp, err := http.Get(nd.monitor + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(end) {
			log, _ := os.ReadFile(nd.logPath)
			nd.tb.Fatalf("nats-server %s not healthy within %s (last: %v); log:\n%s", nd.Name, processReadyTimeout, err, tail(log, 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MetaLeader returns the server name of the JetStream meta leader as this
// node sees it ("" if it knows none or does not answer).
func (nd *NATSNode) MetaLeader() string {
	resp, err := http.Get(nd.monitor + "/jsz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var jsz struct {
		Meta struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if json.NewDecoder(resp.Body).Decode(&jsz) != nil {
		return ""
	}
	return jsz.Meta.Leader
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
