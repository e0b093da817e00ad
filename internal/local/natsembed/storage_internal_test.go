package natsembed

import (
	"errors"
	"syscall"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestOnlyStoreFailuresAreStorageErrors: a health report is a storage
// failure only when a stream cannot write or recover, or JetStream is
// not running; a server slow to say it is ready (which the full suite's
// load caused, and which stopped every write) is not.
func TestOnlyStoreFailuresAreStorageErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		errs   []server.HealthzError
		want   bool
		enospc bool
	}{
		{"healthy", nil, false, false},
		{"slow to be ready", []server.HealthzError{{Type: server.HealthzErrorConn, Error: "failed to be ready for connections after 1ms"}}, false, false},
		{"consumer behind", []server.HealthzError{{Type: server.HealthzErrorConsumer, Error: "JetStream consumer 'x > ORDERS > c' is not current"}}, false, false},
		{"disk full", []server.HealthzError{{Type: server.HealthzErrorStream, Stream: "ORDERS",
			Error: "JetStream stream '$G > ORDERS' write error: write /d/1.blk: no space left on device"}}, true, true},
		{"not recovered", []server.HealthzError{{Type: server.HealthzErrorStream, Error: "JetStream stream '$G > ORDERS' could not be recovered"}}, true, false},
		{"jetstream off", []server.HealthzError{{Type: server.HealthzErrorJetStream, Error: "JetStream not enabled"}}, true, false},
	} {
		err := storageProblem(&server.HealthStatus{StatusCode: 503, Errors: c.errs})
		if (err != nil) != c.want || errors.Is(err, ErrStorage) != c.want || errors.Is(err, syscall.ENOSPC) != c.enospc {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
