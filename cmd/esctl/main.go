// Command esctl starts, stops and locates the shared local Elasticsearch
// of internal/local/esserver; scripts/elasticsearch runs it.
//
//	esctl start   start (or reuse) it and print its URL
//	esctl url     print its URL if it runs (exit 1 otherwise)
//	esctl stop    stop it
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordo-shop/ordo/internal/local/esserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "elasticsearch:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cache := esserver.DefaultCacheDir(os.Getenv)
	if len(args) != 1 {
		return fmt.Errorf("usage: esctl start|url|stop")
	}
	switch args[0] {
	case "start":
		u, err := esserver.Shared(ctx, esserver.Options{CacheDir: cache, Heap: os.Getenv("ORDO_ES_HEAP"), JavaHome: os.Getenv("ES_JAVA_HOME"), Logger: log})
		if err != nil {
			return err
		}
		fmt.Println(u)
	case "url":
		u, ok := esserver.SharedURL(ctx, cache)
		if !ok {
			return fmt.Errorf("no shared Elasticsearch runs (cache %s)", cache)
		}
		fmt.Println(u)
	case "stop":
		return esserver.StopShared(ctx, esserver.Options{CacheDir: cache, Logger: log})
	default:
		return fmt.Errorf("unknown command %q: want start, url or stop", args[0])
	}
	return nil
}
