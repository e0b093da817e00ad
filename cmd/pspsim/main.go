// Command pspsim runs the payment provider simulator (package
// internal/local/pspsim) on its own, for an orderd started with ORDO_PSP_URL:
//
//	ORDO_PSP_WEBHOOK_SECRET=... ORDO_PSP_API_KEY=... pspsim --listen 127.0.0.1:8090 \
//	    --webhook-url http://127.0.0.1:8080/v1/psp/webhook [--mode manual] [--faults decline=0.1,loss=0.1]
//
// orderd must have the same ORDO_PSP_WEBHOOK_SECRET and ORDO_PSP_API_KEY:
// every call of the simulator's API needs the key ("Authorization: Bearer
// <key>"). Its pay links are signed with ORDO_PSP_LINK_SECRET (empty: a
// random secret, so the links of a previous run no longer open) and work
// for ORDO_PSP_LINK_TTL after their intent was created (default 1h).
//
// Its counters (intents, webhooks, faults injected) are served as
// Prometheus series (ordo_psp_sim_*) at GET /metrics on a listener of
// their own, --metrics-listen (ORDO_PSP_METRICS_ADDR; "off": none); the
// address is printed at start. With --state-file (ORDO_PSP_STATE_FILE)
// its intents survive a restart (a journal of one line per change).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/metrics"
	"github.com/ordo-shop/ordo/internal/psp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pspsim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pspsim", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a mistake is one line (main prints it); -h prints the flags
	listen := fs.String("listen", or(getenv("ORDO_PSP_LISTEN"), "127.0.0.1:8090"), "listen address (ORDO_PSP_LISTEN)")
	webhook := fs.String("webhook-url", getenv("ORDO_PSP_WEBHOOK_URL"), "where webhooks go, orderd's /v1/psp/webhook (ORDO_PSP_WEBHOOK_URL)")
	mode := fs.String("mode", or(getenv("ORDO_PSP_MODE"), "auto"), "auto or manual (ORDO_PSP_MODE)")
	faults := fs.String("faults", getenv("ORDO_PSP_FAULTS"), "failure injection, e.g. decline=0.1,loss=0.1 (ORDO_PSP_FAULTS)")
	linkTTL := fs.Duration("link-ttl", pspsim.DefaultLinkTTL, "how long a pay link works after its intent was created (ORDO_PSP_LINK_TTL)")
	metricsAddr := fs.String("metrics-listen", or(getenv("ORDO_PSP_METRICS_ADDR"), "127.0.0.1:0"), "listen address of GET /metrics, off for none (ORDO_PSP_METRICS_ADDR)")
	stateFile := fs.String("state-file", getenv("ORDO_PSP_STATE_FILE"), "keep the intents in this journal across restarts; empty: in memory only (ORDO_PSP_STATE_FILE)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fmt.Fprintln(stdout, "usage: ORDO_PSP_WEBHOOK_SECRET=... ORDO_PSP_API_KEY=... pspsim [flags]")
		fs.PrintDefaults()
		return nil
	} else if err != nil {
		return err
	}
	secret := getenv("ORDO_PSP_WEBHOOK_SECRET")
	if len(secret) < 32 {
		return errors.New("ORDO_PSP_WEBHOOK_SECRET must be set to at least 32 bytes, the same as orderd's")
	}
	key := getenv("ORDO_PSP_API_KEY")
	if len(key) < 32 {
		return errors.New("ORDO_PSP_API_KEY must be set to at least 32 bytes, the same as orderd's")
	}
	link := getenv("ORDO_PSP_LINK_SECRET")
	if link != "" && len(link) < 32 {
		return errors.New("ORDO_PSP_LINK_SECRET, when set, must have at least 32 bytes")
	}
	if v := getenv("ORDO_PSP_LINK_TTL"); v != "" && !flagSet(fs, "link-ttl") {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("ORDO_PSP_LINK_TTL: %w", err)
		}
		*linkTTL = d
	}
	if *linkTTL <= 0 {
		return errors.New("the pay link TTL must be positive")
	}
	f, err := psp.ParseFaults(*faults)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	s, err := pspsim.New(pspsim.Config{Mode: pspsim.Mode(*mode), WebhookURL: *webhook, Secret: []byte(secret), Faults: f, Logger: log,
		APIKey: key, LinkSecret: []byte(link), LinkTTL: *linkTTL, StateFile: *stateFile})
	if err != nil {
		return err
	}
	base, err := s.Start(*listen)
	if err != nil {
		return errors.Join(err, s.Close())
	}
	var msrv *http.Server
	if *metricsAddr != "off" {
		if msrv, err = serveMetrics(*metricsAddr, s, log); err != nil {
			return errors.Join(err, s.Close())
		}
	}
	fmt.Fprintf(stdout, "pspsim: serving %s (mode %s, faults %q, webhooks to %s)\n", base, *mode, f.String(), *webhook)
	if msrv != nil {
		fmt.Fprintf(stdout, "pspsim: metrics at http://%s/metrics\n", msrv.Addr)
	}
	<-ctx.Done()
	if msrv != nil {
		_ = msrv.Close()
	}
	return s.Close()
}

// serveMetrics serves the simulator's counters at GET /metrics on addr;
// the server's Addr is the address it got.
func serveMetrics(addr string, s *pspsim.Sim, log *slog.Logger) (*http.Server, error) {
	h, err := metrics.PSPSimHandler(func() metrics.PSPSimCounts { return s.Stats().Counts() })
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pspsim: metrics server stopped", "err", err)
		}
	}()
	return srv, nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
