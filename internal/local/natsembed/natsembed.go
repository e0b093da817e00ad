package natsembed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyTimeout bounds how long [Start] waits for the server to accept
// connections.
const readyTimeout = 10 * time.Second

// Options configures an embedded server. The zero value is an in-process
// server with lazy fsync and the server's default store limits; StoreDir is
// required.
type Options struct {
	// StoreDir is the directory JetStream keeps its streams in. Required.
	StoreDir string

	// Listen is the client address as "host:port". Port "0" picks a free
	// port (read it back with [server.Server.ClientURL]). The empty string
	// means the server does not listen at all and is reachable only in
	// process through [Connect].
	Listen string

	// SyncAlways makes JetStream fsync every write before it acknowledges
	// it. Without it the server syncs lazily (every two minutes), and
	// acknowledged writes can be lost on power failure. Ordo's
	// configuration defaults to true; the zero value here is false so tests
	// stay fast.
	SyncAlways bool

	// ServerName names the server; the server picks a random id if empty.
	// Servers of one JetStream cluster need distinct names.
	ServerName string

	// JetStreamMaxStore caps JetStream's file storage in bytes; 0 lets the
	// server size it from the free disk space.
	JetStreamMaxStore int64

	// Logger, if set, receives the server's warnings (at slog's warn
	// level) and errors (error level), such as a store's "Critical write
	// error: ... no space left on device"; its notices (start-up banner,
	// JetStream restarts) arrive at debug level, and its own debug and
	// trace stay off. Nil means the server logs nothing.
	Logger *slog.Logger

	// OnWriteError, if set, is called when the server reports that a
	// store failed to write (a full disk, an I/O error): the stream then
	// refuses every write, without answering its publishers, until
	// JetStream is restarted ([RestartJetStream]). It is called from
	// inside the server, with the server's locks held: it must return at
	// once and must not call the server.
	OnWriteError func(msg string)

	// Users, if set, are the only clients the server accepts: each
	// proves it holds the seed of one of these nkeys, and may then do
	// what its permissions allow ([github.com/ordo-shop/ordo/internal/natsauth]
	// makes Ordo's three). The server applies them to in-process
	// connections ([Connect]) as to network ones. Without users (or other
	// authentication set through Configure) the server accepts any
	// client, and [Start] refuses to listen anywhere but on loopback.
	Users []*server.NkeyUser

	// Configure, if set, adjusts the server options after these settings
	// are applied: clustering, TLS, accounts. It is how
	// [github.com/ordo-shop/ordo/internal/testkit] builds clusters.
	Configure func(*server.Options)
}

// Start starts a server with JetStream enabled and waits until it accepts
// connections and JetStream is enabled. It never panics; on any failure it
// shuts the server down and returns an error. The caller owns the server
// and stops it with Shutdown and WaitForShutdown.
func Start(opts Options) (*server.Server, error) {
	sopts, err := serverOptions(opts)
	if err != nil {
		return nil, err
	}
	s, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: new server: %w", err)
	}
	log := &logger{l: opts.Logger, onWriteError: opts.OnWriteError}
	s.SetLoggerV2(log, false, false, false)
	// Start returns once the listeners and JetStream are set up; a failure
	// to enable JetStream is reported only through the logger.
	s.Start()
	fail := func(err error) (*server.Server, error) {
		s.Shutdown()
		s.WaitForShutdown()
		if msg := log.fatal(); msg != "" {
			return nil, fmt.Errorf("natsembed: %s", msg)
		}
		return nil, err
	}
	if log.fatal() != "" {
		return fail(nil)
	}
	if !s.JetStreamEnabled() {
		return fail(fmt.Errorf("natsembed: JetStream did not start (store dir %q)", opts.StoreDir))
	}
	if !s.ReadyForConnections(readyTimeout) {
		return fail(fmt.Errorf("natsembed: server not ready for connections within %s", readyTimeout))
	}
	return s, nil
}

func serverOptions(opts Options) (*server.Options, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	if opts.JetStreamMaxStore < 0 {
		return nil, fmt.Errorf("natsembed: JetStreamMaxStore %d is negative", opts.JetStreamMaxStore)
	}
	sopts := &server.Options{
		ServerName:        opts.ServerName,
		JetStream:         true,
		StoreDir:          opts.StoreDir,
		SyncAlways:        opts.SyncAlways,
		JetStreamMaxStore: opts.JetStreamMaxStore,
		NoLog:             opts.Logger == nil,
		NoSigs:            true,
		Nkeys:             opts.Users,
	}
	if opts.Listen == "" {
		sopts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("natsembed: listen address %q: %w", opts.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("natsembed: listen address %q: bad port", opts.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		sopts.Host, sopts.Port = host, p
	}
	if opts.Configure != nil {
		opts.Configure(sopts)
	}
	// The server starts routing only after its client listener is up;
	// without one it would never finish starting, nor shutting down.
	if sopts.DontListen && (sopts.Cluster.Port != 0 || sopts.Gateway.Port != 0 || sopts.LeafNode.Port != 0) {
		return nil, errors.New("natsembed: clustering, gateways and leaf nodes need a client listener (set Listen)")
	}
	if !sopts.DontListen && !isLoopback(sopts.Host) && !authenticates(sopts) {
		return nil, fmt.Errorf("natsembed: refusing to listen on %s without authentication: any client that reaches it could rewrite the log (set Users, or listen on 127.0.0.1)", net.JoinHostPort(sopts.Host, strconv.Itoa(sopts.Port)))
	}
	return sopts, nil
}

// isLoopback reports whether host names only the loopback interface. The
// empty host, 0.0.0.0 and :: mean every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authenticates reports whether the server asks every client for
// credentials (no user is let in without them).
func authenticates(o *server.Options) bool {
	if o.NoAuthUser != "" {
		return false
	}
	return len(o.Nkeys) > 0 || len(o.Users) > 0 || o.Username != "" || o.Authorization != "" ||
		len(o.TrustedOperators) > 0 || len(o.TrustedKeys) > 0 || o.CustomClientAuthentication != nil
}

// Connect opens a client connection to s through an in-process pipe, so it
// works whether or not s listens on the network. Extra options (name,
// credentials, reconnect handlers, ...) are applied after the in-process
// one. A server with [Options.Users] authenticates this connection as
// any other: without one of their keys it is refused.
//
// A refused in-process client does not see the server's "Authorization
// Violation": nats.go writes CONNECT and PING separately on the
// synchronous in-process pipe, the server blocks writing its error while
// the client blocks writing PING, and after the server's write deadline
// (10 s) it closes the pipe. Connect then says that the server refused
// the connection.
func Connect(s *server.Server, opts ...nats.Option) (*nats.Conn, error) {
	if s == nil {
		return nil, errors.New("natsembed: connect: nil server")
	}
	all := make([]nats.Option, 0, len(opts)+1)
	all = append(all, nats.InProcessServer(s))
	all = append(all, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		if v, verr := s.Varz(nil); errors.Is(err, io.ErrClosedPipe) && verr == nil && v.AuthRequired {
			return nil, fmt.Errorf("natsembed: connect: the server closed the in-process connection, as it does when it refuses a client's credentials (%w): %w", nats.ErrAuthorization, err)
		}
		return nil, fmt.Errorf("natsembed: connect: %w", err)
	}
	return nc, nil
}

// logger adapts the server's logger interface to an optional
// *slog.Logger and remembers the first fatal message, so [Start] can
// return it as an error. Fatalf never exits the process.
type logger struct {
	l            *slog.Logger
	onWriteError func(string)

	mu        sync.Mutex
	fatalText string
}

func (l *logger) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatalText
}

func (l *logger) log(level slog.Level, format string, v []any) {
	if l.l == nil || !l.l.Enabled(context.Background(), level) {
		return
	}
	l.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
}

func (l *logger) Noticef(format string, v ...any) { l.log(slog.LevelDebug, format, v) }
func (l *logger) Warnf(format string, v ...any)   { l.log(slog.LevelWarn, format, v) }
func (l *logger) Debugf(format string, v ...any)  { l.log(slog.LevelDebug, format, v) }
func (l *logger) Tracef(format string, v ...any)  { l.log(slog.LevelDebug, format, v) }

func (l *logger) Errorf(format string, v ...any) {
	l.log(slog.LevelError, format, v)
	if l.onWriteError != nil {
		if msg := fmt.Sprintf(format, v...); isWriteError(msg) {
			l.onWriteError(msg)
		}
	}
}

func (l *logger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	if l.fatalText == "" {
		l.fatalText = msg
	}
	l.mu.Unlock()
	l.log(slog.LevelError, "%s", []any{msg})
}
