// Package config holds Ordo's one configuration struct. Only main reads the
// environment: it passes getenv and the command-line arguments to [Load].
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/psp"
)

// Config is everything orderd and orderctl can be told. Each field names
// its environment variable and flag; the defaults give the local embedded
// default (README: the two commands).
type Config struct {
	// HTTPAddr is where orderd serves its API (ORDO_HTTP_ADDR,
	// --http-addr). Default 127.0.0.1:8080.
	HTTPAddr string
	// MetricsAddr is where orderd serves GET /metrics, on a listener of
	// its own, apart from the API, so that the API port never exposes
	// them and Prometheus needs no token (ORDO_METRICS_ADDR,
	// --metrics-addr). Default 127.0.0.1:0: a free port on loopback,
	// whose URL the local default writes to <DataDir>/metrics.url. "off"
	// serves no metrics.
	MetricsAddr string
	// DataDir holds the embedded NATS store, the generated auth secret and
	// the discovery files nats.url and orderd.pid (ORDO_DATA_DIR,
	// --data-dir). Default ./ordo-data.
	DataDir string
	// NATSURL is an external NATS server; empty embeds one under DataDir
	// (ORDO_NATS_URL, --nats-url).
	NATSURL string
	// NATSCreds is the credentials orderd presents to the external NATS:
	// a .creds file (user JWT and seed) or an nkey seed file, told apart
	// by content (ORDO_NATS_CREDS, --nats-creds). The local default makes
	// its own in DataDir instead.
	NATSCreds string
	// NATSUser and NATSPassword are a user and password of the external
	// NATS, the alternative to NATSCreds (ORDO_NATS_USER, --nats-user;
	// ORDO_NATS_PASSWORD, environment only, so it stays out of the
	// process list). A nats://user:password@host URL works too.
	NATSUser, NATSPassword string
	// NATSCA is a PEM file of the private certificate authority that
	// signed the external NATS servers' TLS certificates (ORDO_NATS_CA,
	// --nats-ca); use a tls:// URL.
	NATSCA string
	// PostgresURL is the PostgreSQL of the read models; empty runs a
	// private server from the installed binaries under
	// <DataDir>/postgres and writes its URL to <DataDir>/postgres.url
	// (ORDO_POSTGRES_URL, --postgres-url).
	PostgresURL string
	// ElasticsearchURL is the Elasticsearch of the customer-service
	// search (ORDO_ELASTICSEARCH_URL, --elasticsearch-url). Empty: see
	// Elasticsearch.
	ElasticsearchURL string
	// Elasticsearch, when ElasticsearchURL is empty, is "local" to start
	// (or reuse) the shared local Elasticsearch of scripts/elasticsearch,
	// fetched into a cache outside the repository; empty means no search
	// (GET /v1/search/orders answers 503) (ORDO_ELASTICSEARCH,
	// --elasticsearch).
	Elasticsearch string
	// ElasticsearchPrefix starts the names of Ordo's indices, alias and
	// template (ORDO_ELASTICSEARCH_PREFIX). Default "ordo-".
	ElasticsearchPrefix string
	// ReadYourWritesWait bounds how long a query with ?position= waits
	// for the read model (ORDO_READ_YOUR_WRITES_WAIT). Default 2s.
	ReadYourWritesWait time.Duration
	// ProjectionLeaseTTL is how long a projector instance holds a
	// partition without renewing it: how soon another instance takes
	// over from one that died (ORDO_PROJECTION_LEASE_TTL). Default 5s.
	ProjectionLeaseTTL time.Duration
	// NATSListen is where the embedded server listens, on loopback by
	// default; port 0 picks a free one (ORDO_NATS_LISTEN, --nats-listen).
	// Default 127.0.0.1:4222.
	NATSListen string
	// NATSSync is the embedded server's fsync policy: "always" (default:
	// no acknowledged write is lost on power failure) or "lazy"
	// (ORDO_NATS_SYNC, --nats-sync).
	NATSSync string
	// Replicas is the replica count of newly created streams: 1 in
	// development, 3 in production (ORDO_REPLICAS, --replicas).
	Replicas int
	// Partitions is the partition count P of newly created streams; an
	// existing stream keeps its own (ORDO_PARTITIONS, --partitions).
	// Default 16.
	Partitions int
	// LogID, if set, is the id of the log orderd must find (ORDO_LOG_ID,
	// --log-id): the one `orderctl init` printed. orderd refuses a NATS
	// whose streams are another log, or none, instead of serving it.
	LogID string
	// AuthSecret signs bearer tokens, at least 32 bytes (ORDO_AUTH_SECRET).
	// Empty in the local default: a random one is generated once into
	// <DataDir>/auth.secret and reused.
	AuthSecret string
	// TokenMaxLifetimes are the longest lifetimes (exp - iat) of an
	// accepted bearer token, per role (ORDO_TOKEN_MAX_LIFETIME_CUSTOMER,
	// _AGENT, _ADMIN). Default 24h, 12h and 8h; each 1m to 720h.
	// `orderctl token` reads the same variables for its default --ttl.
	TokenMaxLifetimes auth.MaxLifetimes
	// SigningKey is the file holding the Ed25519 private key orderd signs
	// every commit with: PEM PKCS #8, as `orderctl keys new` or `openssl
	// genpkey -algorithm ed25519` write it (ORDO_SIGNING_KEY,
	// --signing-key). Empty: <DataDir>/signing.key, generated on first
	// start, its public key added to <DataDir>/signing.keys.
	SigningKey string
	// Roles lists what this instance runs (ORDO_ROLES, --roles). Default
	// "api,sagas,projections,search" (sagas: the process managers, such
	// as the checkout; projections: the projector keeping the PostgreSQL
	// read model; search: the projector keeping the Elasticsearch index,
	// when one is configured).
	Roles []string
	// MaxBodyBytes caps a request body (ORDO_MAX_BODY_BYTES). Default 1 MiB.
	MaxBodyBytes int64
	// RequestTimeout bounds one API request (ORDO_REQUEST_TIMEOUT).
	// Default 10s.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds the graceful drain on SIGINT/SIGTERM
	// (ORDO_SHUTDOWN_TIMEOUT). Default 15s.
	ShutdownTimeout time.Duration
	// StartTimeout bounds how long orderd waits at start for NATS, its
	// streams and PostgreSQL to answer, retrying with backoff, before it
	// gives up and exits (ORDO_START_TIMEOUT, --start-timeout). Default
	// 3m: long enough for a cluster that is forming or restarting.
	StartTimeout time.Duration
	// LogLevel is debug, info, warn or error (ORDO_LOG_LEVEL). Default info.
	LogLevel string

	// PaymentTimeout is how long an order waits for its payment before
	// the checkout cancels it (ORDO_PAYMENT_TIMEOUT). Default 15m.
	PaymentTimeout time.Duration
	// PSPURL is the payment provider's API; empty runs the simulator in
	// process on PSPListen (ORDO_PSP_URL).
	PSPURL string
	// PSPListen is where the in-process simulator listens
	// (ORDO_PSP_LISTEN). Default 127.0.0.1:0 (a free port).
	PSPListen string
	// PSPMode is the in-process simulator's mode: auto approves every
	// payment at once, manual waits for a click on its pay page
	// (ORDO_PSP_MODE). Default auto.
	PSPMode string
	// PSPFaults is the in-process simulator's failure injection, such as
	// "decline=0.1,latency=20ms,duplicate=0.2,reorder=0.2,loss=0.1"
	// (ORDO_PSP_FAULTS). Default none.
	PSPFaults string
	// PSPWebhookSecret verifies (and, for the in-process simulator,
	// signs) payment webhooks (ORDO_PSP_WEBHOOK_SECRET). Empty in the
	// local default: generated once into <DataDir>/psp-webhook.secret.
	PSPWebhookSecret string
	// PSPReconcileAfter is how long a payment may stay pending before
	// the checkout asks the provider about it, and how often it asks
	// again (ORDO_PSP_RECONCILE_AFTER). Default 2m.
	PSPReconcileAfter time.Duration
	// PSPAPIKey is the key orderd calls the payment provider's API with
	// (ORDO_PSP_API_KEY); required with PSPURL. For the in-process
	// simulator empty means generated once into
	// <DataDir>/psp-sim-api.key.
	PSPAPIKey string
	// MaxUnpaidOrders is how many orders one customer may have waiting
	// for payment (placed, stock reserved or payment pending) before
	// placing another is refused with 429 too_many_unpaid_orders
	// (ORDO_MAX_UNPAID_ORDERS). Default 5; 0 turns the limit off.
	MaxUnpaidOrders int
	// CheckoutWorkers bounds how many messages of each of the checkout's
	// lanes (new orders, compensations, inventory, payments, timers) one
	// instance handles at once; one order's messages are handled one at
	// a time (ORDO_CHECKOUT_WORKERS). Default 32: the handlers mostly
	// wait for the log, so more of them pipeline appends (decisions 005,
	// 024).
	CheckoutWorkers int
	// CheckoutMaxBacklog is the admission bound: while the checkout has
	// more than this many commits of the order stream not yet handled,
	// POST /v1/orders answers 429 checkout_busy with Retry-After
	// (ORDO_CHECKOUT_MAX_BACKLOG). Default 300; 0 turns the check off.
	// The backlog is sampled at most every 250ms per instance.
	CheckoutMaxBacklog int
}

// Default returns the configuration of the local embedded default.
func Default() Config {
	return Config{
		HTTPAddr:        "127.0.0.1:8080",
		MetricsAddr:     "127.0.0.1:0",
		DataDir:         "ordo-data",
		NATSListen:      "127.0.0.1:4222",
		NATSSync:        "always",
		Replicas:        1,
		Partitions:      16,
		Roles:           []string{"api", "sagas", "projections", "search"},
		MaxBodyBytes:    1 << 20,
		RequestTimeout:  10 * time.Second,
		ShutdownTimeout: 15 * time.Second,
		StartTimeout:    3 * time.Minute,
		LogLevel:        "info",

		ReadYourWritesWait:  2 * time.Second,
		ElasticsearchPrefix: "ordo-",
		ProjectionLeaseTTL:  5 * time.Second,

		TokenMaxLifetimes: auth.DefaultMaxLifetimes(),

		PaymentTimeout:     15 * time.Minute,
		PSPListen:          "127.0.0.1:0",
		PSPMode:            "auto",
		PSPReconcileAfter:  2 * time.Minute,
		MaxUnpaidOrders:    5,
		CheckoutWorkers:    32,
		CheckoutMaxBacklog: 300,
	}
}

// MetricsOff as MetricsAddr serves no metrics.
const MetricsOff = "off"

// KnownRoles are the role names ORDO_ROLES accepts, and AvailableRoles the
// ones this build runs.
var (
	KnownRoles     = []string{"api", "sagas", "projections", "search"}
	AvailableRoles = []string{"api", "sagas", "projections", "search"}
)

type setting struct {
	env, flag, usage string
	set              func(c *Config, v string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func integer(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		*p(c) = n
		return nil
	}
}

func duration(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration: %q", v)
		}
		*p(c) = d
		return nil
	}
}

var settings = []setting{
	{"ORDO_HTTP_ADDR", "http-addr", "HTTP listen address", str(func(c *Config) *string { return &c.HTTPAddr })},
	{"ORDO_METRICS_ADDR", "metrics-addr", "listen address of GET /metrics, apart from the API (off: none)", str(func(c *Config) *string { return &c.MetricsAddr })},
	{"ORDO_DATA_DIR", "data-dir", "data directory of the local default", str(func(c *Config) *string { return &c.DataDir })},
	{"ORDO_NATS_URL", "nats-url", "external NATS URL (empty: embedded server)", str(func(c *Config) *string { return &c.NATSURL })},
	{"ORDO_NATS_CREDS", "nats-creds", "credentials file (.creds or nkey seed) for ORDO_NATS_URL", str(func(c *Config) *string { return &c.NATSCreds })},
	{"ORDO_NATS_USER", "nats-user", "NATS user for ORDO_NATS_URL (password: ORDO_NATS_PASSWORD)", str(func(c *Config) *string { return &c.NATSUser })},
	{"ORDO_NATS_PASSWORD", "", "", str(func(c *Config) *string { return &c.NATSPassword })},
	{"ORDO_NATS_CA", "nats-ca", "CA certificate (PEM) of ORDO_NATS_URL's TLS", str(func(c *Config) *string { return &c.NATSCA })},
	{"ORDO_POSTGRES_URL", "postgres-url", "PostgreSQL URL of the read models (empty: private server under the data dir)", str(func(c *Config) *string { return &c.PostgresURL })},
	{"ORDO_ELASTICSEARCH_URL", "elasticsearch-url", "Elasticsearch URL of the search (empty: see ORDO_ELASTICSEARCH)", str(func(c *Config) *string { return &c.ElasticsearchURL })},
	{"ORDO_ELASTICSEARCH", "elasticsearch", "local: start or reuse the shared local Elasticsearch (scripts/elasticsearch); empty: no search", str(func(c *Config) *string { return &c.Elasticsearch })},
	{"ORDO_ELASTICSEARCH_PREFIX", "", "", str(func(c *Config) *string { return &c.ElasticsearchPrefix })},
	{"ORDO_READ_YOUR_WRITES_WAIT", "", "", duration(func(c *Config) *time.Duration { return &c.ReadYourWritesWait })},
	{"ORDO_PROJECTION_LEASE_TTL", "", "", duration(func(c *Config) *time.Duration { return &c.ProjectionLeaseTTL })},
	{"ORDO_NATS_LISTEN", "nats-listen", "embedded NATS listen address", str(func(c *Config) *string { return &c.NATSListen })},
	{"ORDO_NATS_SYNC", "nats-sync", "embedded NATS fsync policy: always or lazy", str(func(c *Config) *string { return &c.NATSSync })},
	{"ORDO_REPLICAS", "replicas", "replicas of new streams", integer(func(c *Config) *int { return &c.Replicas })},
	{"ORDO_PARTITIONS", "partitions", "partitions of new streams", integer(func(c *Config) *int { return &c.Partitions })},
	{"ORDO_LOG_ID", "log-id", "id of the log to serve, as orderctl init printed it (refuse any other)", str(func(c *Config) *string { return &c.LogID })},
	{"ORDO_AUTH_SECRET", "", "", str(func(c *Config) *string { return &c.AuthSecret })},
	{"ORDO_TOKEN_MAX_LIFETIME_CUSTOMER", "", "", duration(func(c *Config) *time.Duration { return &c.TokenMaxLifetimes.Customer })},
	{"ORDO_TOKEN_MAX_LIFETIME_AGENT", "", "", duration(func(c *Config) *time.Duration { return &c.TokenMaxLifetimes.Agent })},
	{"ORDO_TOKEN_MAX_LIFETIME_ADMIN", "", "", duration(func(c *Config) *time.Duration { return &c.TokenMaxLifetimes.Admin })},
	{"ORDO_SIGNING_KEY", "signing-key", "commit-signing private key file (empty: generated into the data dir)", str(func(c *Config) *string { return &c.SigningKey })},
	{"ORDO_ROLES", "roles", "comma-separated roles to run", func(c *Config, v string) error {
		c.Roles = nil
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r != "" {
				c.Roles = append(c.Roles, r)
			}
		}
		return nil
	}},
	{"ORDO_MAX_BODY_BYTES", "", "", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		c.MaxBodyBytes = n
		return nil
	}},
	{"ORDO_REQUEST_TIMEOUT", "", "", duration(func(c *Config) *time.Duration { return &c.RequestTimeout })},
	{"ORDO_SHUTDOWN_TIMEOUT", "", "", duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{"ORDO_START_TIMEOUT", "start-timeout", "how long to wait at start for NATS, the streams and PostgreSQL", duration(func(c *Config) *time.Duration { return &c.StartTimeout })},
	{"ORDO_LOG_LEVEL", "log-level", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
	{"ORDO_PAYMENT_TIMEOUT", "payment-timeout", "how long an order waits for its payment", duration(func(c *Config) *time.Duration { return &c.PaymentTimeout })},
	{"ORDO_PSP_URL", "psp-url", "payment provider API (empty: in-process simulator)", str(func(c *Config) *string { return &c.PSPURL })},
	{"ORDO_PSP_LISTEN", "psp-listen", "in-process simulator listen address", str(func(c *Config) *string { return &c.PSPListen })},
	{"ORDO_PSP_MODE", "psp-mode", "in-process simulator mode: auto or manual", str(func(c *Config) *string { return &c.PSPMode })},
	{"ORDO_PSP_FAULTS", "psp-faults", "in-process simulator faults, e.g. decline=0.1,loss=0.1", str(func(c *Config) *string { return &c.PSPFaults })},
	{"ORDO_PSP_WEBHOOK_SECRET", "", "", str(func(c *Config) *string { return &c.PSPWebhookSecret })},
	{"ORDO_PSP_RECONCILE_AFTER", "", "", duration(func(c *Config) *time.Duration { return &c.PSPReconcileAfter })},
	{"ORDO_PSP_API_KEY", "", "", str(func(c *Config) *string { return &c.PSPAPIKey })},
	{"ORDO_MAX_UNPAID_ORDERS", "max-unpaid-orders", "orders one customer may have waiting for payment (0: no limit)", integer(func(c *Config) *int { return &c.MaxUnpaidOrders })},
	{"ORDO_CHECKOUT_WORKERS", "", "", integer(func(c *Config) *int { return &c.CheckoutWorkers })},
	{"ORDO_CHECKOUT_MAX_BACKLOG", "checkout-max-backlog", "order commits the checkout may be behind before new orders get 429 checkout_busy (0: no bound)", integer(func(c *Config) *int { return &c.CheckoutMaxBacklog })},
}

// FromEnv returns the defaults overridden by the ORDO_* variables that
// getenv reports as set and non-empty.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Default()
	var errs []error
	for _, s := range settings {
		if v := getenv(s.env); v != "" {
			if err := s.set(&c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
			}
		}
	}
	return c, errors.Join(errs...)
}

// TokenMaxLifetimes reads only the maximum token lifetimes from the
// environment (the ORDO_TOKEN_MAX_LIFETIME_* variables), checked: what
// `orderctl token` needs, without the rest of orderd's settings.
func TokenMaxLifetimes(getenv func(string) string) (auth.MaxLifetimes, error) {
	c := Default()
	var errs []error
	for _, s := range settings {
		if !strings.HasPrefix(s.env, "ORDO_TOKEN_MAX_LIFETIME_") {
			continue
		}
		if v := getenv(s.env); v != "" {
			if err := s.set(&c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c.TokenMaxLifetimes, err
	}
	return c.TokenMaxLifetimes, validLifetimes(c.TokenMaxLifetimes)
}

// validLifetimes checks the maximum token lifetimes; unlike
// [auth.MaxLifetimes], a configured zero is not "the default" but wrong.
func validLifetimes(m auth.MaxLifetimes) error {
	if m.Customer <= 0 || m.Agent <= 0 || m.Admin <= 0 {
		return fmt.Errorf("maximum token lifetimes %s, %s, %s (customer, agent, admin): want each 1m to %s",
			m.Customer, m.Agent, m.Admin, auth.LongestMaxLifetime)
	}
	return m.Validate()
}

// RegisterFlags adds the flag form of every setting to fs, writing into c.
// Flags override the environment when fs is parsed.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		fs.Func(s.flag, s.usage+" ("+s.env+")", func(v string) error { return s.set(c, v) })
	}
}

// Load builds the configuration of orderd from the environment and the
// command-line flags in args, then validates it.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c, err := FromEnv(getenv)
	if err != nil {
		return c, err
	}
	fs := flag.NewFlagSet("orderd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: orderd [flags]\n\nStarted bare, orderd is the local default: embedded NATS JetStream under\nthe data dir, API on 127.0.0.1:8080. Every flag has an ORDO_* variable;\nsee README.md for all settings.\n\n")
		fs.PrintDefaults()
	}
	c.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.Validate()
}

// Validate reports every invalid field at once.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("http addr %q: %w", c.HTTPAddr, err))
	}
	if c.MetricsAddr != MetricsOff {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("metrics addr %q: %w (or off)", c.MetricsAddr, err))
		} else if c.MetricsAddr == c.HTTPAddr && port != "0" {
			errs = append(errs, fmt.Errorf("metrics addr %q is the API's: metrics need a listener of their own", c.MetricsAddr))
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is empty"))
	}
	if c.NATSURL == "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			errs = append(errs, fmt.Errorf("nats listen %q: %w", c.NATSListen, err))
		}
		if c.NATSExternal().Set() {
			errs = append(errs, errors.New("ORDO_NATS_CREDS, ORDO_NATS_USER, ORDO_NATS_PASSWORD and ORDO_NATS_CA are for ORDO_NATS_URL; the embedded server's credentials are made in the data dir"))
		}
	} else if err := c.NATSExternal().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.NATSSync != "always" && c.NATSSync != "lazy" {
		errs = append(errs, fmt.Errorf("nats sync %q: want always or lazy", c.NATSSync))
	}
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("replicas %d: want 1, 3 or 5", c.Replicas))
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		errs = append(errs, fmt.Errorf("partitions %d: want 1..1024", c.Partitions))
	}
	if c.LogID != "" && !validLogID(c.LogID) {
		errs = append(errs, fmt.Errorf("log id %q: want the 32 hex digits orderctl init printed", c.LogID))
	}
	if c.AuthSecret != "" && len(c.AuthSecret) < 32 {
		errs = append(errs, fmt.Errorf("ORDO_AUTH_SECRET is %d bytes; at least 32 are required", len(c.AuthSecret)))
	}
	if err := validLifetimes(c.TokenMaxLifetimes); err != nil {
		errs = append(errs, err)
	}
	if len(c.Roles) == 0 {
		errs = append(errs, errors.New("roles: none given"))
	}
	for _, r := range c.Roles {
		switch {
		case !contains(KnownRoles, r):
			errs = append(errs, fmt.Errorf("role %q: want one of %s", r, strings.Join(KnownRoles, ", ")))
		case !contains(AvailableRoles, r):
			errs = append(errs, fmt.Errorf("role %q is not available in this version (available: %s)", r, strings.Join(AvailableRoles, ", ")))
		}
	}
	if c.Elasticsearch != "" && c.Elasticsearch != "local" {
		errs = append(errs, fmt.Errorf("elasticsearch %q: want local or nothing (set ORDO_ELASTICSEARCH_URL for a server of your own)", c.Elasticsearch))
	}
	if c.ElasticsearchPrefix == "" || strings.ToLower(c.ElasticsearchPrefix) != c.ElasticsearchPrefix || strings.ContainsAny(c.ElasticsearchPrefix, `*?"<>|/\, #:`) {
		errs = append(errs, fmt.Errorf("elasticsearch prefix %q: want lower case, no wildcards, spaces or separators", c.ElasticsearchPrefix))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("max body bytes %d: want at least 1024", c.MaxBodyBytes))
	}
	if c.PaymentTimeout <= 0 || c.PSPReconcileAfter <= 0 {
		errs = append(errs, errors.New("payment timeout and PSP reconcile interval must be positive"))
	}
	if c.PSPMode != "auto" && c.PSPMode != "manual" {
		errs = append(errs, fmt.Errorf("psp mode %q: want auto or manual", c.PSPMode))
	}
	if _, err := psp.ParseFaults(c.PSPFaults); err != nil {
		errs = append(errs, err)
	}
	if c.PSPURL == "" {
		if _, _, err := net.SplitHostPort(c.PSPListen); err != nil {
			errs = append(errs, fmt.Errorf("psp listen %q: %w", c.PSPListen, err))
		}
	}
	if c.PSPURL != "" && c.PSPAPIKey == "" {
		errs = append(errs, errors.New("ORDO_PSP_API_KEY is required with ORDO_PSP_URL"))
	}
	if c.MaxUnpaidOrders < 0 {
		errs = append(errs, fmt.Errorf("max unpaid orders %d: want 0 (no limit) or more", c.MaxUnpaidOrders))
	}
	if c.CheckoutWorkers < 1 || c.CheckoutWorkers > 1024 {
		errs = append(errs, fmt.Errorf("checkout workers %d: want 1 to 1024", c.CheckoutWorkers))
	}
	if c.CheckoutMaxBacklog < 0 {
		errs = append(errs, fmt.Errorf("checkout max backlog %d: want 0 (no bound) or more", c.CheckoutMaxBacklog))
	}
	if c.PSPWebhookSecret != "" && len(c.PSPWebhookSecret) < 32 {
		errs = append(errs, fmt.Errorf("ORDO_PSP_WEBHOOK_SECRET is %d bytes; at least 32 are required", len(c.PSPWebhookSecret)))
	}
	if c.ProjectionLeaseTTL < 500*time.Millisecond {
		errs = append(errs, fmt.Errorf("projection lease TTL %s: want at least 500ms", c.ProjectionLeaseTTL))
	}
	if c.ReadYourWritesWait <= 0 || c.ReadYourWritesWait >= c.RequestTimeout {
		errs = append(errs, fmt.Errorf("read-your-writes wait %s: want more than 0 and less than the request timeout", c.ReadYourWritesWait))
	}
	if c.RequestTimeout <= 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("timeouts must be positive"))
	}
	if c.StartTimeout < time.Second || c.StartTimeout > 24*time.Hour {
		errs = append(errs, fmt.Errorf("start timeout %s: want 1s to 24h", c.StartTimeout))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// NATSExternal returns how to authenticate to the external NATS.
func (c *Config) NATSExternal() natsauth.External {
	return natsauth.External{CredsFile: c.NATSCreds, User: c.NATSUser, Password: c.NATSPassword, CAFile: c.NATSCA}
}

// HasRole reports whether this instance runs role.
func (c *Config) HasRole(role string) bool { return contains(c.Roles, role) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validLogID reports whether id has the form of a log id: 32 lower-case
// hex digits.
func validLogID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, r := range id {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
