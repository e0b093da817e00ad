package testkit

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/natsauth"
)

// clusterReadyTimeout bounds how long [Cluster] waits for its meta leader.
const clusterReadyTimeout = 30 * time.Second

// NATS starts an in-process NATS server with JetStream for one test, with
// its store in tb.TempDir(), lazy fsync and no network listener, and
// returns it with a client connected in process. Options adjust the
// defaults, for example to turn on SyncAlways or to listen on loopback.
// The connection and the server are closed when the test ends. It skips
// the test under -short ([SkipShort]); the log's own tests use [LogNATS].
func NATS(tb testing.TB, opts ...func(*natsembed.Options)) (*server.Server, *nats.Conn) {
	tb.Helper()
	SkipShort(tb, "a NATS server")
	return startNATS(tb, opts)
}

func startNATS(tb testing.TB, opts []func(*natsembed.Options)) (*server.Server, *nats.Conn) {
	tb.Helper()
	o := natsembed.Options{StoreDir: tb.TempDir()}
	for _, opt := range opts {
		opt(&o)
	}
	s, err := natsembed.Start(o)
	if err != nil {
		tb.Fatalf("start nats server: %v", err)
	}
	tb.Cleanup(func() { shutdown(s) })
	nc, err := natsembed.Connect(s)
	if err != nil {
		tb.Fatalf("connect to nats server: %v", err)
	}
	tb.Cleanup(nc.Close)
	return s, nc
}

// Cluster starts an n-node JetStream cluster in this process, routed over
// loopback on ports it picks, waits until the cluster has elected its meta
// leader and every node knows all n peers (so streams with n replicas can
// be created), and returns the servers with a client connected in process
// to the first one (as the admin, with [WithUsers]). Everything is shut
// down when the test ends.
//
// Clusters cost several goroutines and timers per node and a few seconds to
// elect: keep cluster tests few on small machines. It skips the test under
// -short ([SkipShort]).
func Cluster(tb testing.TB, n int, opts ...ClusterOption) (servers []*server.Server, nc *nats.Conn) {
	tb.Helper()
	return PlanCluster(tb, n, opts...).Start()
}

// ClusterOption adjusts a cluster of [Cluster], [PlanCluster] or
// [ProcessCluster].
type ClusterOption func(*clusterOptions)

type clusterOptions struct {
	users         *natsauth.Keys
	routePassword string
}

// WithUsers makes the cluster's servers admit only Ordo's three users
// with keys, as deploy/nats configures a production cluster, and its
// nodes authenticate their routes to each other with a password.
func WithUsers(keys *natsauth.Keys) ClusterOption {
	return func(o *clusterOptions) {
		o.users = keys
		o.routePassword = "route-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
}

func clusterOpts(opts []ClusterOption) clusterOptions {
	var o clusterOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// ClusterPlan is an n-node cluster whose ports are chosen but whose
// servers are not started yet: a test can point a client at its URLs
// first, as a service started before its cluster would be.
type ClusterPlan struct {
	tb                      testing.TB
	name                    string
	clientPorts, routePorts []int
	routes                  []*url.URL
	storeDirs               []string
	opts                    clusterOptions
}

// PlanCluster reserves the client and route ports of an n-node cluster.
// It skips the test under -short ([SkipShort]).
func PlanCluster(tb testing.TB, n int, opts ...ClusterOption) *ClusterPlan {
	tb.Helper()
	SkipShort(tb, "a NATS cluster")
	if n < 1 {
		tb.Fatalf("cluster of %d nodes", n)
	}
	ports := freePorts(tb, 2*n)
	p := &ClusterPlan{tb: tb, clientPorts: ports[:n], routePorts: ports[n:], opts: clusterOpts(opts)}
	p.name = fmt.Sprintf("ordo-test-%d", p.routePorts[0])
	for range n {
		p.storeDirs = append(p.storeDirs, tb.TempDir())
	}
	for _, port := range p.routePorts {
		u := &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if p.opts.users != nil {
			u.User = url.UserPassword(routeUser, p.opts.routePassword)
		}
		p.routes = append(p.routes, u)
	}
	return p
}

// routeUser is the user cluster nodes authenticate their routes as.
const routeUser = "ordo-route"

// URL is the client URL of every node, comma-separated, as
// ORDO_NATS_URL takes it.
func (p *ClusterPlan) URL() string {
	urls := make([]string, len(p.clientPorts))
	for i, port := range p.clientPorts {
		urls[i] = "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	return strings.Join(urls, ",")
}

// Start starts the planned servers and waits as [Cluster] does. Started
// again after [ClusterPlan.Stop], the servers find what they stored.
func (p *ClusterPlan) Start() (servers []*server.Server, nc *nats.Conn) {
	tb := p.tb
	tb.Helper()
	for i := range p.clientPorts {
		o := natsembed.Options{
			StoreDir:   p.storeDirs[i],
			Listen:     net.JoinHostPort("127.0.0.1", strconv.Itoa(p.clientPorts[i])), // routing waits for a client listener
			ServerName: fmt.Sprintf("%s-n%d", p.name, i+1),
			Configure: func(so *server.Options) {
				so.Cluster.Name = p.name
				so.Cluster.Host = "127.0.0.1"
				so.Cluster.Port = p.routePorts[i]
				so.Cluster.Compression.Mode = server.CompressionOff
				so.Routes = p.routes
				if p.opts.users != nil {
					so.Cluster.Username, so.Cluster.Password = routeUser, p.opts.routePassword
				}
			},
		}
		if p.opts.users != nil {
			o.Users = p.opts.users.Users()
		}
		s, err := natsembed.Start(o)
		if err != nil {
			tb.Fatalf("start cluster node %d: %v", i+1, err)
		}
		tb.Cleanup(func() { shutdown(s) })
		servers = append(servers, s)
	}
	waitClusterReady(tb, servers)
	var copts []nats.Option
	if p.opts.users != nil {
		copts = append(copts, p.opts.users.Option(natsauth.Admin))
	}
	nc, err := natsembed.Connect(servers[0], copts...)
	if err != nil {
		tb.Fatalf("connect to cluster: %v", err)
	}
	tb.Cleanup(nc.Close)
	return servers, nc
}

// Stop shuts down servers that Start returned.
func (p *ClusterPlan) Stop(servers []*server.Server) {
	for _, s := range servers {
		shutdown(s)
	}
}

// freePorts reserves n distinct loopback ports by listening on port 0 and
// releasing them together, so no two nodes get the same port.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("reserve a loopback port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func waitClusterReady(tb testing.TB, servers []*server.Server) {
	tb.Helper()
	deadline := time.Now().Add(clusterReadyTimeout)
	for time.Now().Before(deadline) {
		if clusterReady(servers) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("JetStream cluster of %d not ready within %s", len(servers), clusterReadyTimeout)
}

func clusterReady(servers []*server.Server) bool {
	var leader *server.Server
	for _, s := range servers {
		if !s.JetStreamIsCurrent() {
			return false
		}
		if s.JetStreamIsLeader() {
			if leader != nil {
				return false
			}
			leader = s
		}
	}
	// Only the meta leader reports peers, and only those it has heard from.
	return leader != nil && len(leader.JetStreamClusterPeers()) == len(servers)
}

func shutdown(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}
