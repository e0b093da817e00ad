package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/ordo-shop/ordo/internal/natsauth"
)

// cmdNATSUser is `orderctl nats-user --role ROLE --seed-file FILE`: it
// makes a new nkey for one of Ordo's NATS users of an external
// deployment, writes the seed to FILE (mode 0600) for the client and
// prints the public key for the servers.
func cmdNATSUser(_ context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("nats-user", flag.ContinueOnError)
	role := fs.String("role", "", "service (orderd), auditor (orderctl's reads) or admin")
	seedFile := fs.String("seed-file", "", "where to write the new seed (must not exist)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *role == "" || *seedFile == "" {
		return usagef("--role and --seed-file are required")
	}
	r, err := natsauth.ParseRole(*role)
	if err != nil {
		return usageError{err.Error()}
	}
	pub, err := natsauth.WriteNewSeed(*seedFile)
	if err != nil {
		return fmt.Errorf("write the seed: %w", err)
	}
	_, err = fmt.Fprintf(e.stdout, `%s
seed written to %s (mode 0600): give it to the %s's client as ORDO_NATS_CREDS
servers: set %s=%s in every NATS server's environment (deploy/nats) and restart or reload them
`, pub, *seedFile, r, r.NkeyVariable(), pub)
	return err
}
