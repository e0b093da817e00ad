// Command orderctl is Ordo's operator and auditor CLI. It reads the event
// log straight from JetStream: against a running deployment (ORDO_NATS_URL),
// through the nats.url a live local orderd wrote, or by opening a stopped
// local default's store itself.
//
// Exit codes: 0 success, 1 error, 2 bad usage, 3 the log failed a check
// (or a read model drifts from it, or an invariant of the money and
// stock is violated).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runWith(ctx, os.Args[1:], env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr, tty: isTerminal(os.Stderr)})
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	exitCheck = 3
)

// usageError is a mistake in how orderctl was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// checkFailed means the command ran and the log failed its check.
var errCheckFailed = errors.New("check failed")

const usage = `usage: orderctl <command> [arguments] [flags]

commands:
  init [--partitions P] [--replicas R] [--recreate-lost]
                                                create the log (its five streams, with a new log id) on a
                                                deployment's NATS (ORDO_NATS_URL), which orderd never does, and
                                                print the id for ORDO_LOG_ID; on an existing log: check it, give
                                                it an id if it has none; exit 3 if it is not whole
                                                (P, R default to ORDO_PARTITIONS, ORDO_REPLICAS: 16, 1)
  token --role ROLE --sub SUBJECT [--ttl D]     print a bearer token signed with ORDO_AUTH_SECRET (--ttl: at most, and by default, the role's maximum lifetime)
  nats-user --role ROLE --seed-file FILE       make a new nkey for one of Ordo's NATS users (service,
                                                auditor, admin) of an external NATS: the seed goes to FILE
                                                (mode 0600), the public key for the servers is printed
  history <type> <id> [--json] [--keys FILE]    an aggregate's commits straight from the log, with its
                                                hash-chain check and each commit's signature checked;
                                                type: order, inventory, payment
  state <type> <id> [--at TIME | --version N] [--json]
                                                an aggregate's state as it was at TIME (RFC 3339) or after
                                                its first N events, replayed from the log
  export [--type T] [--since TIME] [--until TIME] [--after POSITIONS]
                                                the log as JSON Lines, one stored commit per line with its
                                                stream and seq, in log order; ends by printing the positions
                                                to resume from
  verify [--type T] [--id ID] [--json] [--save-heads FILE] [--check-heads FILE] [--keys FILE]
                                                check the log: every aggregate's hash chain, versions without
                                                gaps, every event decodable, every commit's signature (one
                                                missing once signing began, by an unknown key or not verifying
                                                is named; unsigned history from before is counted); names each
                                                problem by aggregate and version (exit 3);
                                                --save-heads keeps each aggregate's last hash, so a later
                                                --check-heads sees a history cut short or rewritten since
  check [--json] [--settled] [--no-psp]         check the money and stock invariants from the log: no stock
                                                oversold or sold unshipped, on hand = adjustments - sold, no
                                                stock held for an ended order, every captured payment kept by
                                                a paid order or refunded in full, no command applied twice or
                                                without its cause, no dead letter, and on the local default the
                                                PSP simulator's money agreeing with the log; names each
                                                violation (exit 3); orders, payments, releases and refunds
                                                still in progress are listed apart, and are violations
                                                with --settled (a quiescent shop)
  keys new [FILE] [--keys KEYRING]              make a commit-signing key: into FILE (0600), or, without FILE,
                                                as the local default's new key in its data dir; its public key
                                                is added to the keyring (a rotation: old keys stay)
  keys public FILE                              print the keyring line of a private key, for the auditors
  keys list [--keys KEYRING]                    the keys of a keyring
  dlq list [--json]                             messages the process managers gave up on (dead letters)
  dlq retry <id>                                send a dead letter back to its process manager
  dlq refused [--json]                          outside reports refused for contradicting the log
                                                (PSP webhooks whose intent does not match its payment)
  projections status [--json]                   each projection's state, versions, checkpoints, lag and leases
  projections rebuild order_status              build a new version of the read model beside the live one,
                                                catch it up and swap it in; queries keep answering
  projections rebuild search                    build a new Elasticsearch index behind the alias, catch it up,
                                                swap the alias in one step; searches keep answering
  projections retry [order_status|search]       apply the commits a projection set aside (quarantined) again,
                                                after a fix: each order concerned is projected again from the
                                                log; exit 3 if one still fails
  projections ack <projection> <seq> [--note T] accept that a quarantined commit can never apply: it stays
                                                recorded, its order stays degraded, it no longer counts as open
  reconcile [--json] [--no-search]              every drift of the read models (search too, when Elasticsearch
                                                is known) from the log up to their checkpoints; exit 3 on drift

flags common to commands that read the log:
  --data-dir DIR   local default's data dir (ORDO_DATA_DIR, default ordo-data)
  --nats-url URL   a running deployment's NATS (ORDO_NATS_URL)
  --nats-creds FILE  its credentials: a .creds file or an nkey seed file (ORDO_NATS_CREDS);
                   or ORDO_NATS_USER and ORDO_NATS_PASSWORD; --nats-ca FILE (ORDO_NATS_CA)
                   for a private CA. On the local default orderctl uses the data dir's
                   keys: the auditor's to read, the admin's for dlq retry.
  --postgres-url URL  the read models' PostgreSQL (ORDO_POSTGRES_URL; default: the
                   postgres.url a running local orderd wrote into its data dir)
  --keys FILE      the public keys commits are signed with (ORDO_SIGNING_KEYS; default
                   for the local default: signing.keys in its data dir)
Flags may come before or after the arguments. Exit codes: 0 ok, 1 error, 2 bad usage,
3 a check failed (a broken chain, a damaged message, a signature missing or wrong, a read
model drifting from the log, an invariant violated).
`

// env is what every command may read of its surroundings.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	// tty is set when stderr is a terminal: long runs draw a progress bar.
	tty bool
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, env{getenv: getenv, stdout: stdout, stderr: stderr})
}

func runWith(ctx context.Context, args []string, e env) int {
	stdout, stderr := e.stdout, e.stderr
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmds := map[string]func(context.Context, env, []string) error{
		"init":        cmdInit,
		"token":       cmdToken,
		"nats-user":   cmdNATSUser,
		"history":     cmdHistory,
		"verify":      cmdVerify,
		"check":       cmdCheck,
		"state":       cmdState,
		"export":      cmdExport,
		"dlq":         cmdDLQ,
		"projections": cmdProjections,
		"reconcile":   cmdReconcile,
		"keys":        cmdKeys,
	}
	name, rest := splitCommand(args)
	cmd, ok := cmds[name]
	if name == "" {
		fmt.Fprintf(stderr, "orderctl: no command given (run 'orderctl help')\n")
		return exitUsage
	}
	if !ok {
		fmt.Fprintf(stderr, "orderctl: unknown command %q (run 'orderctl help')\n", name)
		return exitUsage
	}
	err := cmd(ctx, e, rest)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.Is(err, flag.ErrHelp):
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "orderctl %s: %v\n", args[0], err)
		}
		return exitUsage
	case errors.Is(err, errCheckFailed):
		fmt.Fprintf(stderr, "orderctl %s: %v\n", args[0], err)
		return exitCheck
	default:
		fmt.Fprintf(stderr, "orderctl %s: %v\n", args[0], err)
		return exitError
	}
}

// valueFlags are the flags that take a separate value, so that
// splitCommand can skip it when the flags come before the command.
var valueFlags = map[string]bool{"postgres-url": true, "batch": true, "data-dir": true, "nats-url": true, "role": true, "sub": true, "ttl": true,
	"elasticsearch-url": true, "elasticsearch-prefix": true, "type": true, "id": true, "at": true, "version": true,
	"since": true, "until": true, "after": true, "save-heads": true, "check-heads": true, "keys": true, "comment": true,
	"partitions": true, "replicas": true, "nats-creds": true, "nats-user": true, "nats-ca": true, "seed-file": true}

// splitCommand finds the command name among args, which may be preceded by
// flags, and returns it with all the other arguments in order.
func splitCommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest := append(append([]string(nil), args[:i]...), args[i+1:]...)
			return a, rest
		}
		if name := strings.TrimLeft(a, "-"); valueFlags[name] && !strings.Contains(name, "=") {
			i++
		}
	}
	return "", args
}

// parse parses flags that may stand before, between or after positional
// arguments and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseFlagsOnly parses the flags of a command that takes no positional
// argument: one is a usage error that names it.
func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("%s takes no arguments, got %q", fs.Name(), pos[0])
	}
	return nil
}
