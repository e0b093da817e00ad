package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ordo-shop/ordo/internal/local/natsembed"
)

// The embedded server's storage: when a stream cannot write (a full
// disk), nats-server answers its publishers nothing and keeps refusing
// that stream until JetStream is restarted (see natsembed/storage.go).
// storageGuard turns that into prompt 503 storage_full answers and a
// failing /readyz, and restarts JetStream once the disk has room again.
const (
	// storageCheckEvery is how often the guard asks the server's health
	// (a fallback for a write error it was not told about) and, while
	// failed, looks at the disk's free space.
	storageCheckEvery = time.Second
	// minFreeBytes is the free space the store's file system needs
	// before the guard restarts JetStream: room for new message blocks
	// and the index files written at recovery.
	minFreeBytes = 8 << 20
	// restartBackoffMax bounds the wait between restarts that did not
	// clear the failure.
	restartBackoffMax = 30 * time.Second
)

// storageGuard watches the embedded server's storage. Its context (see
// [storageGuard.context]) ends with the failure as its cause when
// storage fails, and a new one begins when it recovers.
type storageGuard struct {
	log      *slog.Logger
	storeDir string
	ns       *server.Server // set once the server runs
	poke     chan struct{}  // a write error was reported

	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelCauseFunc
	failed time.Time
}

func newStorageGuard(log *slog.Logger, storeDir string) *storageGuard {
	g := &storageGuard{log: log, storeDir: storeDir, poke: make(chan struct{}, 1)}
	g.ctx, g.cancel = context.WithCancelCause(context.Background())
	return g
}

// context is httpapi's Deps.Storage.
func (g *storageGuard) context() context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ctx
}

// onWriteError is natsembed's OnWriteError: it is called inside the
// server, so it only marks the failure and wakes the guard.
func (g *storageGuard) onWriteError(msg string) {
	err := fmt.Errorf("%w: %s", natsembed.ErrStorage, msg)
	if strings.Contains(msg, "no space left on device") {
		err = fmt.Errorf("%w: %w", err, syscall.ENOSPC)
	}
	g.fail(err)
	select {
	case g.poke <- struct{}{}:
	default:
	}
}

// fail ends the current healthy period with err as the cause, once.
func (g *storageGuard) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx.Err() != nil {
		return
	}
	g.failed = time.Now()
	g.cancel(err)
	g.log.Error("event store: JetStream cannot write; commands answer 503 until it can (orderd restarts JetStream once the disk has space)",
		slog.Any("err", err), slog.String("store", g.storeDir))
}

// recovered begins a new healthy period.
func (g *storageGuard) recovered() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ctx, g.cancel = context.WithCancelCause(context.Background())
	g.log.Info("event store: JetStream writes again", slog.Duration("failed_for", time.Since(g.failed).Round(time.Millisecond)))
}

// run watches the storage until ctx ends.
func (g *storageGuard) run(ctx context.Context) {
	tick := time.NewTicker(storageCheckEvery)
	defer tick.Stop()
	backoff, nextRestart := storageCheckEvery, time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-g.poke:
		}
		if g.context().Err() == nil {
			if err := natsembed.StorageError(g.ns); err != nil {
				g.fail(err)
			}
			backoff, nextRestart = storageCheckEvery, time.Time{}
			continue
		}
		if time.Now().Before(nextRestart) || !g.roomOnDisk() {
			continue
		}
		if err := g.restart(); err != nil {
			g.log.Warn("event store: JetStream still cannot write after a restart", slog.Duration("retry_in", backoff), slog.Any("err", err))
			nextRestart = time.Now().Add(backoff)
			backoff = min(2*backoff, restartBackoffMax)
			continue
		}
		g.recovered()
	}
}

// restart restarts JetStream and checks that every stream can write.
func (g *storageGuard) restart() error {
	g.log.Info("event store: the disk has space again; restarting JetStream")
	if err := natsembed.RestartJetStream(g.ns); err != nil {
		return err
	}
	return natsembed.StorageError(g.ns)
}

// roomOnDisk reports whether the store's file system has minFreeBytes
// free (and free inodes, where it counts them).
func (g *storageGuard) roomOnDisk() bool {
	free, inodes, err := diskFree(g.storeDir)
	if errors.Is(err, errors.ErrUnsupported) {
		return true // this system cannot tell: the restart's own check tells
	}
	if err != nil {
		g.log.Warn("event store: cannot read the disk's free space", slog.Any("err", err))
		return true // try: the restart's own check tells
	}
	return free >= minFreeBytes && inodes
}
