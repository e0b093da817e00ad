package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/internal/localdir"
	"github.com/ordo-shop/ordo/internal/natsembed"
	"github.com/ordo-shop/ordo/streams"
)

// logFlags are the flags of every command that reads the log.
type logFlags struct {
	dataDir, natsURL string
	// local is set by openStore when it opened a stopped local default
	// in-process, holding the data dir's lock.
	local bool
}

func (l *logFlags) register(fs *flag.FlagSet, e env) {
	fs.StringVar(&l.dataDir, "data-dir", dataDirDefault(e), "local default's data dir")
	fs.StringVar(&l.natsURL, "nats-url", e.getenv("ORDO_NATS_URL"), "NATS URL of a running deployment")
}

// openStore finds the log as the README says: ORDO_NATS_URL; else the
// nats.url of the live orderd holding the data dir; else the stopped local
// default's store, opened in-process under the data dir's lock.
func (l *logFlags) openStore(ctx context.Context) (*streams.Store, func(), error) {
	nc, closeAll, err := l.connect()
	if err != nil {
		return nil, nil, err
	}
	store, err := streams.Open(ctx, nc, streams.Config{})
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("open event store: %w", err)
	}
	return store, closeAll, nil
}

// connect connects to the log's NATS as openStore finds it, and returns
// the connection with what closes it (and the in-process server).
func (l *logFlags) connect() (*nats.Conn, func(), error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	var nc *nats.Conn
	switch {
	case l.natsURL != "":
		c, err := nats.Connect(l.natsURL, nats.Name("orderctl"), nats.Timeout(5*time.Second))
		if err != nil {
			return nil, nil, fmt.Errorf("connect to NATS at %s: %w", l.natsURL, err)
		}
		nc = c
	default:
		if _, err := os.Stat(filepath.Join(l.dataDir, localdir.StoreDir)); err != nil {
			return nil, nil, fmt.Errorf("no Ordo store in %s (set --data-dir, ORDO_DATA_DIR or ORDO_NATS_URL)", l.dataDir)
		}
		unlock, err := localdir.Lock(l.dataDir)
		switch {
		case errors.Is(err, localdir.ErrLocked):
			url := localdir.ReadURL(l.dataDir)
			if url == "" {
				return nil, nil, fmt.Errorf("a live process holds %s but it wrote no %s", l.dataDir, localdir.NATSURL)
			}
			c, err := nats.Connect(url, nats.Name("orderctl"), nats.Timeout(5*time.Second))
			if err != nil {
				return nil, nil, fmt.Errorf("connect to the running orderd's NATS at %s: %w", url, err)
			}
			nc = c
		case err != nil:
			return nil, nil, err
		default:
			closers = append(closers, unlock)
			l.local = true
			ns, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(l.dataDir, localdir.StoreDir), ServerName: "ordo-local", SyncAlways: true})
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("open the store in %s: %w", l.dataDir, err)
			}
			closers = append(closers, func() { ns.Shutdown(); ns.WaitForShutdown() })
			c, err := natsembed.Connect(ns, nats.Name("orderctl"))
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			nc = c
		}
	}
	closers = append(closers, nc.Close)
	return nc, closeAll, nil
}
