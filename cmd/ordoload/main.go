// Command ordoload drives a running Ordo like a storefront and measures
// it: many customers place orders, pay through the payment simulator (or
// let it approve), cancel, ship or abandon them, and the generator prints
// throughput and latency percentiles at the end (README, Load).
//
// It plays one customer per simulated shopper, with tokens signed as
// `orderctl token` signs them (ORDO_AUTH_SECRET, else <data dir>/auth.secret),
// so the per-customer limit on unpaid orders does not throttle it, and it
// honours Retry-After.
//
// Exit codes: 0 the run completed, 1 error (the server could not be set
// up for the run), 2 bad usage, 3 the run completed and saw an invariant
// violated (a flash sale oversold; the summary says what).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/datadir"
)

// Exit codes.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitViolation = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// runMain parses args, runs the load, prints the summary on stdout and
// progress on stderr, and returns the exit code.
func runMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, asJSON, secret, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "ordoload: %s (ordoload -h for help)\n", ue.msg)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "ordoload: %v\n", err)
		return exitError
	}
	signer, err := signerFor(secret, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "ordoload: %v\n", err)
		return exitError
	}
	conns := cfg.Shoppers + 8
	if cfg.Mode == "open" {
		conns = cfg.MaxInFlight + 8
	}
	cl := newClient(cfg.URL, signer, conns)
	cl.unreachableFor = cfg.UnreachableRetry
	s, err := run(ctx, cfg, cl, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ordoload: %v\n", err)
		return exitError
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			fmt.Fprintf(stderr, "ordoload: %v\n", err)
			return exitError
		}
	} else {
		s.write(stdout)
	}
	if len(s.Violations) > 0 {
		return exitViolation
	}
	return exitOK
}

// signerFor returns the token signer for secret with the maximum token
// lifetimes orderd is configured with (ORDO_TOKEN_MAX_LIFETIME_*).
func signerFor(secret string, getenv func(string) string) (*auth.Signer, error) {
	maxima, err := config.TokenMaxLifetimes(getenv)
	if err != nil {
		return nil, err
	}
	signer, err := auth.NewSigner(secret)
	if err != nil {
		return nil, err
	}
	return signer.WithMaxLifetimes(maxima)
}

const usageHead = `usage: ordoload [flags]

Drives a running Ordo (the local default: go run ./cmd/orderd) like a
storefront and prints throughput and latency percentiles. Closed loop
(--shoppers N, each placing its next order when its last is done) or open
loop (--rate R orders/s, at most --max-in-flight at a time). Spread over
--skus fresh SKUs, or --hot: one SKU with --stock units, a flash sale.
--pay must match the server's ORDO_PSP_MODE (auto: the simulator approves;
manual: ordoload presses Approve on the signed pay link after --think, or
abandons --abandon of the orders to the payment timeout).

flags:
`

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (settings, bool, string, error) {
	fs := flag.NewFlagSet("ordoload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageHead); fs.PrintDefaults() }
	defURL := "http://127.0.0.1:8080"
	if a := getenv("ORDO_HTTP_ADDR"); a != "" {
		defURL = "http://" + a
	}
	defDir := getenv("ORDO_DATA_DIR")
	if defDir == "" {
		defDir = "ordo-data"
	}
	defTimeout := 15 * time.Minute
	if v := getenv("ORDO_PAYMENT_TIMEOUT"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			defTimeout = d
		}
	}
	var c settings
	fs.StringVar(&c.URL, "url", defURL, "Ordo's API (ORDO_HTTP_ADDR when set)")
	dataDir := fs.String("data-dir", defDir, "data dir holding the generated auth.secret (when ORDO_AUTH_SECRET is not set)")
	fs.StringVar(&c.Mode, "mode", "", "closed (default) or open (default when --rate is given)")
	fs.IntVar(&c.Shoppers, "shoppers", 16, "closed loop: concurrent shoppers")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop: orders started per second")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", 256, "open loop: most orders in progress at once; a start beyond it is skipped and counted")
	fs.IntVar(&c.Customers, "customers", 0, "distinct customers (default: one per shopper, or --max-in-flight); each has at most one order in progress")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "how long new orders are started")
	fs.DurationVar(&c.Drain, "drain", 30*time.Second, "after --duration, how long orders in progress (and abandoned ones waiting for their timeout) may take to finish")
	fs.IntVar(&c.SKUs, "skus", 20, "SKUs the orders spread over (each order: 1-2 of them, 1-3 units each)")
	fs.BoolVar(&c.Hot, "hot", false, "flash sale: one SKU with --stock units, one unit per order; checks it never oversells")
	fs.Int64Var(&c.Stock, "stock", 0, "units of each SKU (default 100 with --hot, else 1000000)")
	fs.StringVar(&c.Pay, "pay", "auto", "auto (the simulator approves: ORDO_PSP_MODE=auto) or manual (ordoload pays through the signed link: ORDO_PSP_MODE=manual)")
	fs.DurationVar(&c.Think, "think", 200*time.Millisecond, "manual pay: mean time a shopper looks at the pay page (uniform, 0 to twice this)")
	fs.Float64Var(&c.Abandon, "abandon", 0.05, "manual pay: fraction of orders left unpaid for the payment timeout to cancel")
	fs.Float64Var(&c.Decline, "decline", 0, "manual pay: fraction of orders whose payment the shopper declines")
	fs.Float64Var(&c.CancelRatio, "cancel-ratio", 0.05, "fraction of orders the customer cancels (manual pay: instead of paying; auto: once paid)")
	fs.Float64Var(&c.ShipRatio, "ship-ratio", 0.3, "fraction of orders the admin ships once paid")
	fs.DurationVar(&c.PaymentTimeout, "payment-timeout", defTimeout, "the server's ORDO_PAYMENT_TIMEOUT, to know when an abandoned order is due (ORDO_PAYMENT_TIMEOUT when set)")
	fs.DurationVar(&c.Poll, "poll", 100*time.Millisecond, "pause before a shopper's first look at an order's status, and between the first two (each next pause twice as long, up to --poll-max); the latencies reported come from the order's timeline, not from these polls")
	fs.DurationVar(&c.PollMax, "poll-max", time.Second, "longest pause between a shopper's looks at an order's status")
	fs.DurationVar(&c.ProbePoll, "probe-poll", 10*time.Millisecond, "the release-delay probe's pause between its reads of the catalog (the resolution of the release delay)")
	fs.DurationVar(&c.ProbeEvery, "probe-every", time.Second, "the release-delay probe's pause between its orders (0: no probe)")
	fs.DurationVar(&c.Progress, "progress", 5*time.Second, "a progress line on stderr this often (0: none)")
	fs.DurationVar(&c.UnreachableRetry, "unreachable-retry", time.Minute, "how long a request that is safe to send again (a read, a place with its Idempotency-Key, a cancel or ship) is retried while the server does not answer it, or answers 503 starting (orderd killed or restarting); counted apart from errors (0: not retried)")
	metricsURL := fs.String("metrics", "", "orderd's metrics URL, to follow the process managers' backlog through the run (default: the URL in the data dir's metrics.url, if there is one; off: none)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	seed := fs.Uint64("seed", 0, "random seed (default: from the clock)")
	fs.StringVar(&c.RunID, "run-id", "", "names the run's SKUs, customers and idempotency keys (default: from the clock)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, false, "", err
		}
		return c, false, "", usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return c, false, "", usagef("unexpected argument %q", fs.Arg(0))
	}
	abandonSet := false
	fs.Visit(func(f *flag.Flag) { abandonSet = abandonSet || f.Name == "abandon" })
	if c.Pay == "auto" && !abandonSet {
		c.Abandon = 0 // the default is for manual pay
	}
	if err := c.check(); err != nil {
		return c, false, "", err
	}
	now := time.Now()
	c.Seed = *seed
	if c.Seed == 0 {
		c.Seed = uint64(now.UnixNano())
	}
	if c.RunID == "" {
		c.RunID = strconv.FormatInt(now.UnixMilli(), 36)
	}
	switch *metricsURL {
	case "off":
	case "":
		c.MetricsURL = datadir.ReadTrimmed(*dataDir, datadir.MetricsURL)
	default:
		c.MetricsURL = *metricsURL
	}
	secret := getenv("ORDO_AUTH_SECRET")
	if secret == "" {
		var err error
		if secret, err = datadir.Secret(*dataDir, false); err != nil {
			return c, false, "", fmt.Errorf("token secret: %w (set ORDO_AUTH_SECRET or --data-dir)", err)
		}
	}
	return c, *asJSON, secret, nil
}

// check validates and completes the settings.
func (c *settings) check() error {
	if c.Mode == "" {
		c.Mode = "closed"
		if c.Rate > 0 {
			c.Mode = "open"
		}
	}
	switch c.Mode {
	case "closed":
		if c.Rate != 0 {
			return usagef("--rate is for the open loop (--mode open)")
		}
		if c.Shoppers < 1 {
			return usagef("--shoppers must be at least 1")
		}
		if c.Customers == 0 {
			c.Customers = c.Shoppers
		}
		if c.Customers < c.Shoppers {
			return usagef("--customers %d is fewer than --shoppers %d", c.Customers, c.Shoppers)
		}
	case "open":
		if c.Rate <= 0 {
			return usagef("--mode open needs --rate (orders per second)")
		}
		if c.MaxInFlight < 1 {
			return usagef("--max-in-flight must be at least 1")
		}
		if c.Customers == 0 {
			c.Customers = c.MaxInFlight
		}
		c.Shoppers = 0
	default:
		return usagef("--mode %q: want closed or open", c.Mode)
	}
	if c.Duration <= 0 || c.Drain < 0 {
		return usagef("--duration must be positive and --drain not negative")
	}
	if c.Hot {
		c.SKUs = 1
		if c.Stock == 0 {
			c.Stock = 100
		}
	} else if c.Stock == 0 {
		c.Stock = 1_000_000
	}
	if c.SKUs < 1 || c.Stock < 1 {
		return usagef("--skus and --stock must be at least 1")
	}
	switch c.Pay {
	case "auto":
		if c.Abandon > 0 || c.Decline > 0 {
			return usagef("--abandon and --decline need --pay manual (in auto mode the simulator pays at once)")
		}
	case "manual":
	default:
		return usagef("--pay %q: want auto or manual", c.Pay)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"abandon", c.Abandon}, {"decline", c.Decline}, {"cancel-ratio", c.CancelRatio}, {"ship-ratio", c.ShipRatio}} {
		if f.v < 0 || f.v > 1 {
			return usagef("--%s %v: want a fraction from 0 to 1", f.name, f.v)
		}
	}
	if c.CancelRatio+c.ShipRatio > 1 || c.Abandon+c.Decline > 1 {
		return usagef("--cancel-ratio plus --ship-ratio, and --abandon plus --decline, must each be at most 1")
	}
	if c.Poll < time.Millisecond || c.PollMax < c.Poll || c.ProbePoll < time.Millisecond || c.PaymentTimeout <= 0 || c.Think < 0 || c.ProbeEvery < 0 || c.Progress < 0 || c.UnreachableRetry < 0 {
		return usagef("--poll and --probe-poll must be at least 1ms, --poll at most --poll-max, --payment-timeout positive, and --think, --probe-every, --progress, --unreachable-retry not negative")
	}
	return nil
}
