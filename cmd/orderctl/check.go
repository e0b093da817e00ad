package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ordo-shop/ordo/audit"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/psp"
)

// inProgressShown is how many things in progress the text output lists
// (--json lists all).
const inProgressShown = 20

// cmdCheck is `orderctl check [--json] [--settled] [--no-psp]`: the
// money-and-stock invariants ([audit.CheckInvariants]) from the log,
// with the dead letters and, on a local default whose PSP is the
// simulator, the simulator's intents from its state file.
func cmdCheck(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	asJSON := fs.Bool("json", false, "print the report as one JSON document")
	settled := fs.Bool("settled", false, "the shop is quiescent: an order or payment in progress, a release or refund not yet made, is a violation")
	noPSP := fs.Bool("no-psp", false, "do not compare with the local PSP simulator's state file")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	reg, err := events.Standard()
	if err != nil {
		return err
	}
	store, closeStore, err := lf.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	opts := audit.InvariantOptions{Registry: reg, Settled: *settled,
		DeadLetters: func(ctx context.Context) (int, error) {
			dls, err := store.DeadLetters(ctx)
			return len(dls), err
		}}
	// The local default's simulator journals its intents in the data dir
	// (read after the log, by CheckInvariants' call: see journalReader).
	pspSource := ""
	if !*noPSP && lf.natsURL == "" {
		file := filepath.Join(lf.dataDir, datadir.PSPSimState)
		if _, err := os.Stat(file); err == nil {
			opts.PSP = &journalReader{file: file}
			pspSource = file
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	rep, err := audit.CheckInvariants(ctx, store, opts)
	if err != nil {
		return err
	}
	if jr, ok := opts.PSP.(*journalReader); ok && jr.err != nil {
		return fmt.Errorf("read the PSP simulator's state file: %w", jr.err)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(checkJSON{InvariantReport: rep, ByInvariant: rep.ByInvariant(), PSPSource: pspSource}); err != nil {
			return err
		}
	} else {
		for _, v := range rep.Violations {
			fmt.Fprintln(e.stdout, v)
		}
		for i, p := range rep.InProgress {
			if i == inProgressShown {
				fmt.Fprintf(e.stdout, "... and %d more in progress (--json lists all)\n", len(rep.InProgress)-i)
				break
			}
			fmt.Fprintln(e.stdout, "in progress:", p)
		}
		fmt.Fprint(e.stdout, rep.Summary())
		if pspSource != "" {
			fmt.Fprintf(e.stdout, "  PSP: the local simulator's state file %s\n", pspSource)
		}
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %d violation(s) of the invariants", errCheckFailed, len(rep.Violations))
	}
	return nil
}

// checkJSON is what `check --json` prints.
type checkJSON struct {
	audit.InvariantReport
	ByInvariant map[string]int `json:"by_invariant"`
	// PSPSource is the simulator state file compared with, if any.
	PSPSource string `json:"psp_source,omitempty"`
}

// journalReader reads the simulator's state file when the check asks
// for the intents, which is after it read the log: the PSP may then be
// ahead of the log, never behind it.
type journalReader struct {
	file string
	err  error
}

func (j *journalReader) Intents() []psp.Intent {
	ins, err := pspsim.ReadIntents(j.file)
	j.err = err
	return ins
}
