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
)

// Config is everything orderd and orderctl can be told. Each field names
// its environment variable and flag; the defaults give the local embedded
// default of DESIGN §9.
type Config struct {
	// HTTPAddr is where orderd serves its API (ORDO_HTTP_ADDR,
	// --http-addr). Default 127.0.0.1:8080.
	HTTPAddr string
	// DataDir holds the embedded NATS store, the generated auth secret and
	// the discovery files nats.url and orderd.pid (ORDO_DATA_DIR,
	// --data-dir). Default ./ordo-data.
	DataDir string
	// NATSURL is an external NATS server; empty embeds one under DataDir
	// (ORDO_NATS_URL, --nats-url).
	NATSURL string
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
	// AuthSecret signs bearer tokens, at least 32 bytes (ORDO_AUTH_SECRET).
	// Empty in the local default: a random one is generated once into
	// <DataDir>/auth.secret and reused.
	AuthSecret string
	// Roles lists what this instance runs (ORDO_ROLES, --roles). Default
	// "api".
	Roles []string
	// MaxBodyBytes caps a request body (ORDO_MAX_BODY_BYTES). Default 1 MiB.
	MaxBodyBytes int64
	// RequestTimeout bounds one API request (ORDO_REQUEST_TIMEOUT).
	// Default 10s.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds the graceful drain on SIGINT/SIGTERM
	// (ORDO_SHUTDOWN_TIMEOUT). Default 15s.
	ShutdownTimeout time.Duration
	// LogLevel is debug, info, warn or error (ORDO_LOG_LEVEL). Default info.
	LogLevel string
}

// Default returns the configuration of the local embedded default.
func Default() Config {
	return Config{
		HTTPAddr:        "127.0.0.1:8080",
		DataDir:         "ordo-data",
		NATSListen:      "127.0.0.1:4222",
		NATSSync:        "always",
		Replicas:        1,
		Partitions:      16,
		Roles:           []string{"api"},
		MaxBodyBytes:    1 << 20,
		RequestTimeout:  10 * time.Second,
		ShutdownTimeout: 15 * time.Second,
		LogLevel:        "info",
	}
}

// KnownRoles are the role names ORDO_ROLES accepts, and AvailableRoles the
// ones this build runs.
var (
	KnownRoles     = []string{"api", "sagas", "projections", "search"}
	AvailableRoles = []string{"api"}
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
	{"ORDO_DATA_DIR", "data-dir", "data directory of the local default", str(func(c *Config) *string { return &c.DataDir })},
	{"ORDO_NATS_URL", "nats-url", "external NATS URL (empty: embedded server)", str(func(c *Config) *string { return &c.NATSURL })},
	{"ORDO_NATS_LISTEN", "nats-listen", "embedded NATS listen address", str(func(c *Config) *string { return &c.NATSListen })},
	{"ORDO_NATS_SYNC", "nats-sync", "embedded NATS fsync policy: always or lazy", str(func(c *Config) *string { return &c.NATSSync })},
	{"ORDO_REPLICAS", "replicas", "replicas of new streams", integer(func(c *Config) *int { return &c.Replicas })},
	{"ORDO_PARTITIONS", "partitions", "partitions of new streams", integer(func(c *Config) *int { return &c.Partitions })},
	{"ORDO_AUTH_SECRET", "", "", str(func(c *Config) *string { return &c.AuthSecret })},
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
	{"ORDO_LOG_LEVEL", "log-level", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
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
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is empty"))
	}
	if c.NATSURL == "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			errs = append(errs, fmt.Errorf("nats listen %q: %w", c.NATSListen, err))
		}
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
	if c.AuthSecret != "" && len(c.AuthSecret) < 32 {
		errs = append(errs, fmt.Errorf("ORDO_AUTH_SECRET is %d bytes; at least 32 are required", len(c.AuthSecret)))
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
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("max body bytes %d: want at least 1024", c.MaxBodyBytes))
	}
	if c.RequestTimeout <= 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("timeouts must be positive"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
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
