package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/streams"
)

// logFlags are the flags of every command that reads the log.
type logFlags struct {
	dataDir, natsURL string
	// ext is how to authenticate to ORDO_NATS_URL: --nats-creds
	// (ORDO_NATS_CREDS), or ORDO_NATS_USER and ORDO_NATS_PASSWORD, and
	// --nats-ca (ORDO_NATS_CA).
	ext natsauth.External
	// local is set by openStore when it opened a stopped local default
	// in-process, holding the data dir's lock.
	local bool
	// stderr receives what NATS refuses outside of a request's answer.
	stderr io.Writer
}

func (l *logFlags) register(fs *flag.FlagSet, e env) {
	fs.StringVar(&l.dataDir, "data-dir", dataDirDefault(e), "local default's data dir")
	fs.StringVar(&l.natsURL, "nats-url", e.getenv("ORDO_NATS_URL"), "NATS URL of a running deployment")
	fs.StringVar(&l.ext.CredsFile, "nats-creds", e.getenv("ORDO_NATS_CREDS"), "credentials for --nats-url: a .creds file or an nkey seed file")
	fs.StringVar(&l.ext.User, "nats-user", e.getenv("ORDO_NATS_USER"), "NATS user for --nats-url (password: ORDO_NATS_PASSWORD)")
	fs.StringVar(&l.ext.CAFile, "nats-ca", e.getenv("ORDO_NATS_CA"), "CA certificate (PEM) of --nats-url's TLS")
	l.ext.Password = e.getenv("ORDO_NATS_PASSWORD")
	l.stderr = e.stderr
}

// openStore opens the log to read it, as NATS's auditor user on the
// local default. See [logFlags.openStoreAs].
func (l *logFlags) openStore(ctx context.Context) (*streams.Store, func(), error) {
	return l.openStoreAs(ctx, natsauth.Auditor)
}

// openStoreAs opens the log as role (on the local default; see
// [logFlags.connect]).
func (l *logFlags) openStoreAs(ctx context.Context, role natsauth.Role) (*streams.Store, func(), error) {
	nc, closeAll, err := l.connect(role)
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

// connect finds the log's NATS as the README says: ORDO_NATS_URL, with
// the credentials given for it; else the nats.url of the live orderd
// holding the data dir; else the stopped local default's store, opened
// in-process under the data dir's lock. On the local default it connects
// as role with the key in the data dir: the auditor for commands that
// read, the admin for those that write. It returns the connection with
// what closes it (and the in-process server).
func (l *logFlags) connect(role natsauth.Role) (*nats.Conn, func(), error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	common := []nats.Option{nats.Name("orderctl"), nats.Timeout(5 * time.Second), l.errorHandler(role)}
	var nc *nats.Conn
	switch {
	case l.natsURL != "":
		creds, err := l.ext.Options()
		if err != nil {
			return nil, nil, fmt.Errorf("NATS credentials: %w", err)
		}
		c, err := nats.Connect(l.natsURL, append(common, creds...)...)
		if natsauth.Refused(err) {
			return nil, nil, fmt.Errorf("NATS at %s refused orderctl's credentials (set --nats-creds or ORDO_NATS_CREDS, or ORDO_NATS_USER and ORDO_NATS_PASSWORD): %w", l.natsURL, err)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("connect to NATS at %s: %w", l.natsURL, err)
		}
		nc = c
	default:
		if l.ext.Set() {
			return nil, nil, errors.New("--nats-creds, --nats-user, --nats-ca and ORDO_NATS_PASSWORD are for --nats-url (ORDO_NATS_URL); on the local default orderctl uses the keys in the data dir")
		}
		if _, err := os.Stat(filepath.Join(l.dataDir, datadir.StoreDir)); err != nil {
			return nil, nil, fmt.Errorf("no Ordo store in %s (set --data-dir, ORDO_DATA_DIR or ORDO_NATS_URL)", l.dataDir)
		}
		unlock, err := datadir.Lock(l.dataDir)
		switch {
		case errors.Is(err, datadir.ErrLocked):
			url := datadir.ReadURL(l.dataDir)
			if url == "" {
				return nil, nil, fmt.Errorf("a live process holds %s but it wrote no %s", l.dataDir, datadir.NATSURL)
			}
			keys, err := natsauth.LoadLocal(l.dataDir, false)
			if err != nil {
				return nil, nil, err
			}
			c, err := nats.Connect(url, append(common, keys.Option(role))...)
			if err != nil {
				return nil, nil, fmt.Errorf("connect to the running orderd's NATS at %s as %s: %w", url, role, err)
			}
			nc = c
		case err != nil:
			return nil, nil, err
		default:
			closers = append(closers, unlock)
			l.local = true
			// Holding the lock, orderctl may make the keys of a data
			// dir that has none yet, as orderd would.
			keys, err := natsauth.LoadLocal(l.dataDir, true)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			ns, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(l.dataDir, datadir.StoreDir), ServerName: "ordo-local", SyncAlways: true, Users: keys.Users()})
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("open the store in %s: %w", l.dataDir, err)
			}
			closers = append(closers, func() { ns.Shutdown(); ns.WaitForShutdown() })
			c, err := natsembed.Connect(ns, append(common, keys.Option(role))...)
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

// errorHandler prints what NATS refuses: a refused request is never
// answered, so the command itself would only see it time out.
func (l *logFlags) errorHandler(role natsauth.Role) nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if l.stderr == nil {
			return
		}
		if errors.Is(err, nats.ErrPermissionViolation) {
			who := "the NATS user orderctl connected as"
			if l.natsURL == "" {
				who = "NATS's " + string(role) + " user"
			}
			fmt.Fprintf(l.stderr, "orderctl: NATS refused a request: %v (%s may not do this)\n", err, who)
			return
		}
		fmt.Fprintf(l.stderr, "orderctl: NATS: %v\n", err)
	})
}
