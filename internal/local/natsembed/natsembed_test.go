package natsembed_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/testkit"
)

func start(t *testing.T, opts natsembed.Options) *nats.Conn {
	t.Helper()
	testkit.SkipShort(t, "a NATS server")
	s, err := natsembed.Start(opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	nc, err := natsembed.Connect(s)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// roundTrip checks JetStream works: create a file stream, publish, read.
func roundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	ack, err := js.Publish(ctx, "t.1", []byte("hello"))
	if err != nil || ack.Sequence != 1 {
		t.Fatalf("publish: %+v, %v", ack, err)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil || string(m.Data) != "hello" {
		t.Fatalf("get: %v", err)
	}
}

func TestStartInProcessOnly(t *testing.T) {
	testkit.SkipShort(t, "a NATS server")
	dir := t.TempDir()
	s, err := natsembed.Start(natsembed.Options{StoreDir: dir, SyncAlways: true, ServerName: "ordo-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if s.Addr() != nil {
		t.Errorf("in-process server listens on %v", s.Addr())
	}
	if cfg := s.JetStreamConfig(); cfg == nil || !cfg.SyncAlways || cfg.StoreDir == "" || !strings.HasPrefix(cfg.StoreDir, dir) {
		t.Errorf("JetStream config %+v, want SyncAlways under %s", cfg, dir)
	}
	if s.Name() != "ordo-test" {
		t.Errorf("server name %q", s.Name())
	}
	nc, err := natsembed.Connect(s, nats.Name("test-client"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	roundTrip(t, nc)
}

func TestStartListensOnLoopback(t *testing.T) {
	testkit.SkipShort(t, "a NATS server")
	s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	url := s.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":0") || strings.HasSuffix(url, ":4222") {
		t.Fatalf("client URL %q, want a free loopback port", url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("tcp connect: %v", err)
	}
	defer nc.Close()
	roundTrip(t, nc)
}

func TestStartErrors(t *testing.T) {
	for name, opts := range map[string]natsembed.Options{
		"no store dir":    {},
		"bad listen":      {StoreDir: t.TempDir(), Listen: "localhost"},
		"bad port":        {StoreDir: t.TempDir(), Listen: "127.0.0.1:http"},
		"negative store":  {StoreDir: t.TempDir(), JetStreamMaxStore: -1},
		"store is a file": {StoreDir: "/dev/null/x"},
		"cluster, no listener": {StoreDir: t.TempDir(), ServerName: "a", Configure: func(o *server.Options) {
			o.Cluster.Name, o.Cluster.Host, o.Cluster.Port = "c", "127.0.0.1", server.RANDOM_PORT
		}},
	} {
		if s, err := natsembed.Start(opts); err == nil {
			s.Shutdown()
			t.Errorf("%s: Start succeeded", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// The server's notices arrive at debug level; at info only its warnings
// and errors would.
func TestLoggerReceivesServerLog(t *testing.T) {
	var debug, info bytes.Buffer
	nc := start(t, natsembed.Options{StoreDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	roundTrip(t, nc)
	if !strings.Contains(debug.String(), "Starting nats-server") {
		t.Errorf("logger at debug got %q, want the server's start-up notice", debug.String())
	}
	nc = start(t, natsembed.Options{StoreDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&info, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	roundTrip(t, nc)
	if info.Len() != 0 {
		t.Errorf("logger at info got %q, want nothing from a healthy start", info.String())
	}
}

// RestartJetStream recovers every stream from disk: what was stored stays,
// and writes go on, through the same client connection.
func TestRestartJetStreamKeepsStreams(t *testing.T) {
	testkit.SkipShort(t, "a NATS server")
	s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := natsembed.Connect(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "kept", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := natsembed.RestartJetStream(s); err != nil {
		t.Fatal(err)
	}
	if err := natsembed.StorageError(s); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	ack, err := js.Publish(ctx, "kept", []byte("after"))
	if err != nil || ack.Sequence != 2 {
		t.Fatalf("publish after the restart: %+v %v, want seq 2", ack, err)
	}
	st, err := js.Stream(ctx, "KEPT")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := st.GetMsg(ctx, 1); err != nil || string(m.Data) != "before" {
		t.Fatalf("message 1 after the restart: %v %v", m, err)
	}
}

// A server that accepts any client listens only on loopback; with users
// it may listen anywhere, and refuses clients without credentials there
// and in process.
func TestListeningBeyondLoopbackNeedsUsers(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0"} {
		s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Listen: listen})
		if err == nil {
			s.Shutdown()
			t.Errorf("%s without users: started", listen)
		} else if !strings.Contains(err.Error(), "without authentication") {
			t.Errorf("%s without users: %v", listen, err)
		}
	}
	testkit.SkipShort(t, "a NATS server with users")
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Listen: "0.0.0.0:0", Users: []*server.NkeyUser{{Nkey: pub}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if nc, err := nats.Connect(s.ClientURL()); !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("connect without credentials: %v", err)
	}
	nc, err := natsembed.Connect(s, nats.Nkey(pub, kp.Sign))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	roundTrip(t, nc)
}
