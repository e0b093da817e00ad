package natsembed

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nats-io/nats-server/v2/server"
)

// What nats-server v2.15 does when a stream's store cannot write (a full
// disk): the file store logs "Critical write error: <err>" and keeps the
// error, the stream logs "JetStream stream '<account> > <stream>'
// critical write error: <err>", and from then on the stream refuses every
// write *without answering the publisher* (its publishers wait for their
// own timeouts), until JetStream is restarted. Its /healthz reports the
// stream's write error. A single server does not disable JetStream for
// it (a clustered one steps the stream down or disables JetStream).

// isWriteError reports whether a message the server logged at error level
// says a store failed to write.
func isWriteError(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "critical write error") || strings.Contains(m, "failed to store a msg")
}

// ErrStorage is what [StorageError] returns, wrapped, when a stream can no
// longer write; it also wraps [syscall.ENOSPC] when the disk is full.
var ErrStorage = errors.New("JetStream storage failed")

// StorageError returns nil if JetStream runs and every stream can write,
// else why not: a stream's write error (wrapping [ErrStorage], and
// [syscall.ENOSPC] for a full disk), a stream that could not be
// recovered, or JetStream not running.
func StorageError(s *server.Server) error {
	return storageProblem(s.Healthz(&server.HealthzOptions{Details: true}))
}

// storageProblem picks out of a health report what says that JetStream
// cannot store. The rest is not a storage failure and must not stop
// writes: a busy server that was not "ready for connections" within the
// 1 ms the health check gives it, say, reports 500 too.
func storageProblem(h *server.HealthStatus) error {
	var msgs []string
	for _, e := range h.Errors {
		switch {
		case e.Type == server.HealthzErrorJetStream,
			e.Type == server.HealthzErrorStream && (strings.Contains(e.Error, "write error") || strings.Contains(e.Error, "could not be recovered")):
			msgs = append(msgs, e.Error)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	msg := strings.Join(msgs, "; ")
	if strings.Contains(msg, "no space left on device") {
		return fmt.Errorf("%w: %s: %w", ErrStorage, msg, syscall.ENOSPC)
	}
	return fmt.Errorf("%w: %s", ErrStorage, msg)
}

// RestartJetStream stops JetStream in s and starts it again from its store
// directory, with the same limits: every stream and consumer is recovered
// from disk with a fresh store, which clears a write error once the
// disk has space again. Client connections stay up; requests made during
// the restart fail (JetStream not enabled) and may be retried.
func RestartJetStream(s *server.Server) error {
	cfg := s.JetStreamConfig()
	if cfg == nil {
		return errors.New("natsembed: restart JetStream: it is not enabled")
	}
	// The running configuration names the store's "jetstream"
	// subdirectory; EnableJetStream appends it again.
	if filepath.Base(cfg.StoreDir) != server.JetStreamStoreDir {
		return fmt.Errorf("natsembed: restart JetStream: unexpected store dir %q", cfg.StoreDir)
	}
	cfg.StoreDir = filepath.Dir(cfg.StoreDir)
	if err := s.ShutdownJetStream(); err != nil {
		return fmt.Errorf("natsembed: stop JetStream: %w", err)
	}
	if err := s.EnableJetStream(cfg); err != nil {
		return fmt.Errorf("natsembed: start JetStream again: %w", err)
	}
	return nil
}
