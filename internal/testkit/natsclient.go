package testkit

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/streams"
)

// NATSClient is a client connection that collects the permission
// violations NATS reports to it, for tests of what a user may not do.
type NATSClient struct {
	*nats.Conn
	denied chan error
}

// ConnectNATS connects to url with opts (credentials, say) and closes the
// connection when the test ends.
func ConnectNATS(tb testing.TB, url string, opts ...nats.Option) *NATSClient {
	tb.Helper()
	c := &NATSClient{denied: make(chan error, 64)}
	all := append([]nats.Option{nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			select {
			case c.denied <- err:
			default:
			}
		}
	})}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		tb.Fatalf("connect to NATS at %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	c.Conn = nc
	return c
}

// Refused runs op and fails the test unless NATS refuses it with a
// permissions violation. A refused request is never answered, so op is
// cancelled as soon as the violation arrives; a plain publish returns
// before it does, so Refused waits for it a while.
func (c *NATSClient) Refused(tb testing.TB, what string, op func(ctx context.Context) error) {
	tb.Helper()
	for len(c.denied) > 0 {
		<-c.denied
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- op(ctx) }()
	select {
	case v := <-c.denied:
		cancel()
		<-done
		tb.Logf("%s: refused: %v", what, v)
	case err := <-done:
		select {
		case v := <-c.denied:
			tb.Logf("%s: refused: %v", what, v)
		case <-time.After(10 * time.Second):
			tb.Errorf("%s: NATS reported no permissions violation (the call returned %v)", what, err)
		}
	}
}

// PublishOp returns an operation for [NATSClient.Refused] that publishes
// data on subject and flushes.
func (c *NATSClient) PublishOp(subject string, data []byte) func(context.Context) error {
	return func(context.Context) error {
		if err := c.Conn.Publish(subject, data); err != nil {
			return err
		}
		return c.Conn.Flush()
	}
}

// RefusesStreamChanges checks that c can neither create, change, purge
// nor delete a stream, nor delete a commit, and that ORDERS, which must
// exist with the log's identity, is as it was: what neither the auditor
// nor the service may do to a log.
func (c *NATSClient) RefusesStreamChanges(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(c.Conn)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	before := st.CachedInfo()
	c.Refused(t, "create a stream", func(ctx context.Context) error {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}})
		return err
	})
	c.Refused(t, "shrink ORDERS", func(ctx context.Context) error {
		cfg := before.Config
		cfg.MaxMsgs = 1
		_, err := js.UpdateStream(ctx, cfg)
		return err
	})
	c.Refused(t, "allow purges on ORDERS", func(ctx context.Context) error {
		cfg := before.Config
		cfg.DenyPurge, cfg.DenyDelete = false, false
		_, err := js.UpdateStream(ctx, cfg)
		return err
	})
	// Where signing began and the log's id are stream metadata: moving
	// the one would pass unsigned commits off as old history, changing
	// the other a log off as another.
	for key, value := range map[string]string{streams.SignedFromKey: "1000000", streams.LogIDKey: strings.Repeat("f", 32)} {
		c.Refused(t, "set "+key+" of ORDERS", func(ctx context.Context) error {
			cfg := before.Config
			cfg.Metadata = maps.Clone(cfg.Metadata)
			cfg.Metadata[key] = value
			_, err := js.UpdateStream(ctx, cfg)
			return err
		})
	}
	c.Refused(t, "purge ORDERS", func(ctx context.Context) error { return st.Purge(ctx) })
	c.Refused(t, "delete a commit", func(ctx context.Context) error { return st.DeleteMsg(ctx, 1) })
	c.Refused(t, "delete ORDERS", func(ctx context.Context) error { return js.DeleteStream(ctx, "ORDERS") })
	c.Refused(t, "delete TIMERS", func(ctx context.Context) error { return js.DeleteStream(ctx, "TIMERS") })
	after, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("ORDERS after the attempts: %v", err)
	}
	if after.State.Msgs != before.State.Msgs || after.Config.MaxMsgs != before.Config.MaxMsgs || !after.Config.DenyPurge || !after.Config.DenyDelete {
		t.Fatalf("ORDERS changed: %+v, was %+v", after, before)
	}
	for _, key := range []string{streams.SignedFromKey, streams.LogIDKey} {
		if got, was := after.Config.Metadata[key], before.Config.Metadata[key]; got != was || was == "" {
			t.Fatalf("ORDERS %s is %q, was %q", key, got, was)
		}
	}
	if _, err := js.Stream(ctx, "EVIL"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream EVIL: %v", err)
	}
}
