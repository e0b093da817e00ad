package testkit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
