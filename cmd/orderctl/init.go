package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/streams"
)

// cmdInit is `orderctl init [--partitions P] [--replicas R]
// [--recreate-lost]`: create the log of a deployment on its own NATS
// (ORDO_NATS_URL), which orderd never does, and print its id; on an
// existing log, check it, say so, and give it an id if it has none
// (docs/decisions/017-log-identity.md). It is idempotent.
func cmdInit(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	partitions := fs.Int("partitions", envInt(e, "ORDO_PARTITIONS", streams.DefaultPartitions), "partitions of a new log (ORDO_PARTITIONS)")
	replicas := fs.Int("replicas", envInt(e, "ORDO_REPLICAS", streams.DefaultReplicas), "replicas of a new log's streams (ORDO_REPLICAS)")
	recreate := fs.Bool("recreate-lost", false, "recreate a DLQ or TIMERS stream the log lost, accepting that what it held is gone")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *partitions < 1 || *partitions > streams.MaxPartitions {
		return usagef("partitions %d: want 1..%d", *partitions, streams.MaxPartitions)
	}
	if *replicas != 1 && *replicas != 3 && *replicas != 5 {
		return usagef("replicas %d: want 1, 3 or 5", *replicas)
	}
	nc, closeAll, err := lf.connect(natsauth.Admin)
	if err != nil {
		return err
	}
	defer closeAll()
	cfg := streams.Config{Partitions: *partitions, Replicas: *replicas, RecreateLost: *recreate, LogID: e.getenv("ORDO_LOG_ID")}
	if lf.natsURL == "" {
		// The local default: its data dir remembers its log.
		marker, err := os.ReadFile(filepath.Join(lf.dataDir, datadir.LogMarker))
		switch {
		case err == nil:
			cfg.LogID = strings.TrimSpace(string(marker))
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("read the log id: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	li, err := streams.Init(ctx, nc, cfg)
	if err != nil {
		if errors.Is(err, eventlog.ErrStreamMissing) || errors.Is(err, eventlog.ErrLogMismatch) || errors.Is(err, streams.ErrStreamConfig) {
			return fmt.Errorf("%w: %w", errCheckFailed, err)
		}
		return err
	}
	where := "NATS at " + lf.natsURL
	if lf.natsURL == "" {
		where = "the local default in " + lf.dataDir
	}
	switch {
	case li.New:
		fmt.Fprintf(e.stdout, "created log %s on %s: streams %s, %d partitions, %d replicas\n",
			li.ID, where, strings.Join(streams.LogStreams(), ", "), li.Partitions, li.Replicas)
	case li.Adopted:
		fmt.Fprintf(e.stdout, "gave the existing log on %s the id %s (it predates log ids; commits appended from now on must be signed)\n", where, li.ID)
	default:
		fmt.Fprintf(e.stdout, "log %s exists on %s (created %s, %d partitions, %d replicas); it is whole\n",
			li.ID, where, li.Created.Format(time.RFC3339), li.Partitions, li.Replicas)
	}
	if len(li.Added) > 0 {
		fmt.Fprintf(e.stdout, "added the streams %s\n", strings.Join(li.Added, ", "))
	}
	if lf.natsURL != "" {
		fmt.Fprintf(e.stdout, "start orderd with:\nORDO_LOG_ID=%s\n", li.ID)
	}
	return nil
}

// envInt is the integer in the environment variable name, or def when it
// is unset or not an integer (the flag's check then names the value).
func envInt(e env, name string, def int) int {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}
