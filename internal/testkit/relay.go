package testkit

import (
	"net"
	"sync"
	"testing"
)

// Relay passes TCP connections on a loopback port through to a server,
// so a test can make the server swallow requests: after [Relay.Hold] the
// bytes clients send are dropped instead of passed on, as a server that
// died with a request in hand would never answer it. Connect clients to
// [Relay.URL].
type Relay struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	holding bool
	held    chan struct{} // closed once bytes were dropped
	conns   []net.Conn
	closed  bool
}

// NewRelay starts a relay to target ("host:port"); it is closed when the
// test ends.
func NewRelay(tb testing.TB, target string) *Relay {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("relay: listen: %v", err)
	}
	r := &Relay{ln: ln, target: target, held: make(chan struct{})}
	go r.accept()
	tb.Cleanup(r.Close)
	return r
}

// URL is the address clients connect to.
func (r *Relay) URL() string { return "nats://" + r.ln.Addr().String() }

// Hold makes the relay drop what clients send from now on.
func (r *Relay) Hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holding = true
}

// Held is closed once the relay has dropped bytes a client sent after
// Hold.
func (r *Relay) Held() <-chan struct{} { return r.held }

// Close cuts every connection and stops accepting new ones.
func (r *Relay) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	r.ln.Close()
	for _, c := range r.conns {
		c.Close()
	}
}

func (r *Relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil || !r.track(c, s) {
			c.Close()
			if s != nil {
				s.Close()
			}
			continue
		}
		go r.pipe(s, c, false)
		go r.pipe(c, s, true)
	}
}

// track registers a client connection and its server side, unless the
// relay was closed.
func (r *Relay) track(c, s net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns = append(r.conns, c, s)
	return true
}

// pipe copies from src to dst; from a client (fromClient) it drops what
// arrives while the relay holds (the client's server never sees it).
func (r *Relay) pipe(src, dst net.Conn, fromClient bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !(fromClient && r.keep()) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// keep reports whether bytes from a client are to be dropped, and
// signals Held the first time.
func (r *Relay) keep() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.holding {
		return false
	}
	select {
	case <-r.held:
	default:
		close(r.held)
	}
	return true
}
