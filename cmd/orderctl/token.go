package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/datadir"
)

// cmdToken prints only the raw token, so it can be captured with $(...).
func cmdToken(_ context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	role := fs.String("role", "", "customer, agent or admin")
	sub := fs.String("sub", "", "subject: the customer id, or the agent's or admin's name")
	ttl := fs.Duration("ttl", 0, "how long the token is valid (default and most: the role's maximum lifetime, ORDO_TOKEN_MAX_LIFETIME_<ROLE>, 24h customer, 12h agent, 8h admin)")
	dataDir := fs.String("data-dir", dataDirDefault(e), "data dir holding the generated auth.secret")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *role == "" || *sub == "" {
		return usagef("--role and --sub are required")
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return usageError{err.Error()}
	}
	maxima, err := config.TokenMaxLifetimes(e.getenv)
	if err != nil {
		return usageError{err.Error()}
	}
	max := maxima.For(r)
	switch {
	case *ttl == 0:
		*ttl = max
	case *ttl < time.Second:
		return usagef("--ttl must be at least 1s")
	case *ttl > max:
		return usagef("--ttl %s is more than the %s maximum of %s, which orderd would refuse (ORDO_TOKEN_MAX_LIFETIME_%s)", *ttl, r, max, strings.ToUpper(string(r)))
	}
	secret := e.getenv("ORDO_AUTH_SECRET")
	if secret == "" {
		if secret, err = datadir.Secret(*dataDir, false); err != nil {
			return err
		}
	}
	signer, err := auth.NewSigner(secret)
	if err != nil {
		return err
	}
	if signer, err = signer.WithMaxLifetimes(maxima); err != nil {
		return err
	}
	tok, err := signer.Mint(*sub, r, time.Now(), *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, tok)
	return err
}

func dataDirDefault(e env) string {
	if d := e.getenv("ORDO_DATA_DIR"); d != "" {
		return d
	}
	return "ordo-data"
}
