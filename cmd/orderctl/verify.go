package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/ordo-shop/ordo/audit"
	"github.com/ordo-shop/ordo/events"
)

// verifySummary is the last line of `verify --json`.
type verifySummary struct {
	Summary    bool           `json:"summary"`
	Commits    uint64         `json:"commits"`
	Aggregates map[string]int `json:"aggregates"`
	Findings   int            `json:"findings"`
	// Signatures counts the commits by signature status: verified,
	// unsigned (from before signing began), missing, unknown_key, bad,
	// not_checkable.
	Signatures map[audit.SignatureStatus]uint64 `json:"signatures"`
	// SigningBegan is, per stream, the sequence from which on every
	// commit must be signed (absent: signing has not begun).
	SigningBegan map[string]uint64 `json:"signing_began,omitempty"`
	// Keyring is where the public keys came from, Keys how many it held.
	Keyring string `json:"keyring"`
	Keys    int    `json:"keys"`
}

// cmdVerify parses verify's flags, runs [audit.Verify] and prints what
// it found (decision 010).
func cmdVerify(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	typ := fs.String("type", "", "check only this aggregate type: order, inventory or payment")
	id := fs.String("id", "", "check only this aggregate (needs --type)")
	asJSON := fs.Bool("json", false, "print JSON Lines: one finding per line, then a summary")
	saveHeads := fs.String("save-heads", "", "write every aggregate's head (last version and hash) to this file")
	checkHeads := fs.String("check-heads", "", "check that the heads a previous --save-heads wrote are still in the log")
	var kf keyFlags
	kf.register(fs, e)
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	types, err := typesArg(*typ)
	if err != nil {
		return err
	}
	if *id != "" {
		if *typ == "" {
			return usagef("--id needs --type")
		}
		if !events.ValidID(*id) {
			return usagef("invalid id %q", *id)
		}
	}
	opts := audit.Options{Types: types, ID: *id}
	if *checkHeads != "" {
		if opts.Heads, err = audit.ReadHeads(*checkHeads); err != nil {
			return fmt.Errorf("--check-heads: %w", err)
		}
	}
	if opts.Registry, err = events.Standard(); err != nil {
		return err
	}
	keys, keySource, err := kf.load(&lf)
	if err != nil {
		return err
	}
	opts.Keys = keys
	store, closeStore, err := lf.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()

	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	if *asJSON {
		opts.Found = func(f audit.Finding) { _ = enc.Encode(f) }
	}
	rep, err := audit.Verify(ctx, store, opts, progressBars(e, "verify "))
	if err != nil {
		return err
	}
	if *saveHeads != "" {
		if err := audit.WriteHeads(*saveHeads, rep.Heads); err != nil {
			return fmt.Errorf("--save-heads: %w", err)
		}
	}
	if *asJSON {
		summary := verifySummary{Summary: true, Commits: rep.Commits, Aggregates: rep.Aggregates, Findings: len(rep.Findings),
			Signatures: rep.Signatures, SigningBegan: rep.SigningBegan, Keyring: keySource, Keys: keys.Len()}
		if err := enc.Encode(summary); err != nil {
			return err
		}
	} else {
		for _, f := range rep.Findings {
			fmt.Fprintln(e.stdout, f)
		}
		fmt.Fprintf(e.stdout, "verified %d commit(s) of %s: %s; signatures: %s\n", rep.Commits, aggregateCounts(types, rep.Aggregates),
			verdict(len(rep.Findings)), signatureCounts(rep.Signatures, keyringName(keySource, keys)))
	}
	if len(rep.Findings) > 0 {
		return fmt.Errorf("%w: %d finding(s) in the log", errCheckFailed, len(rep.Findings))
	}
	return nil
}

func aggregateCounts(types []string, n map[string]int) string {
	s := ""
	for i, t := range types {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", n[t], t)
	}
	return s
}

func verdict(findings int) string {
	if findings == 0 {
		return "every chain intact, every event decodes, no signature missing or wrong"
	}
	return fmt.Sprintf("%d finding(s)", findings)
}

// signatureCounts says how many commits verify, how many are unsigned
// from before signing began and how many have a problem.
func signatureCounts(n map[audit.SignatureStatus]uint64, keyring string) string {
	s := fmt.Sprintf("%d verified, %d unsigned from before signing began", n[audit.SigVerified], n[audit.SigUnsigned])
	if bad := n[audit.SigMissing] + n[audit.SigUnknownKey] + n[audit.SigBad]; bad > 0 {
		s += fmt.Sprintf(", %d missing or wrong (%d unsigned in signed history, %d by an unknown key, %d not verifying)",
			bad, n[audit.SigMissing], n[audit.SigUnknownKey], n[audit.SigBad])
	}
	return s + " (keyring: " + keyring + ")"
}
