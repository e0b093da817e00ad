package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/streams"
)

// deadLetterLine is one dead letter as `dlq list --json` prints it: the
// original message inline as JSON when it is JSON.
type deadLetterLine struct {
	streams.DeadLetter
	Data json.RawMessage `json:"data"`
}

// cmdDLQ is `orderctl dlq list [--json]`, `orderctl dlq retry <id>` and
// `orderctl dlq refused [--json]` (the outside reports Ordo refused, such
// as PSP webhooks that contradict their payment).
func cmdDLQ(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("dlq", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	asJSON := fs.Bool("json", false, "list, refused: print JSON Lines, one entry per line")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("want a subcommand: list, retry <id> or refused")
	}
	switch pos[0] {
	case "list":
		if len(pos) != 1 {
			return usagef("dlq list takes no arguments")
		}
		store, closeStore, err := lf.openStore(ctx)
		if err != nil {
			return err
		}
		defer closeStore()
		return dlqList(ctx, e, store, *asJSON)
	case "retry":
		if len(pos) != 2 {
			return usagef("want dlq retry <id>")
		}
		id, err := strconv.ParseUint(pos[1], 10, 64)
		if err != nil || id == 0 {
			return usagef("dead letter id %q is not a positive integer", pos[1])
		}
		// A redrive publishes: on the local default it takes the admin.
		store, closeStore, err := lf.openStoreAs(ctx, natsauth.Admin)
		if err != nil {
			return err
		}
		defer closeStore()
		dl, err := store.Redrive(ctx, id)
		if errors.Is(err, streams.ErrDeadLetterNotFound) {
			return fmt.Errorf("no dead letter %d (run 'orderctl dlq list')", id)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "dead letter %d (%s %s seq %d) sent back to %s; it is removed once handled\n",
			id, dl.Handler, dl.Stream, dl.Seq, dl.Owner)
		return nil
	case "refused":
		if len(pos) != 1 {
			return usagef("dlq refused takes no arguments")
		}
		store, closeStore, err := lf.openStore(ctx)
		if err != nil {
			return err
		}
		defer closeStore()
		return dlqRefused(ctx, e, store, *asJSON)
	default:
		return usagef("unknown dlq subcommand %q (want list, retry or refused)", pos[0])
	}
}

func dlqList(ctx context.Context, e env, store *streams.Store, asJSON bool) error {
	dls, err := store.DeadLetters(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		for _, dl := range dls {
			line := deadLetterLine{DeadLetter: dl}
			if json.Valid(dl.Data) {
				line.Data = dl.Data
			} else {
				b, _ := json.Marshal(dl.Data) // base64 string
				line.Data = b
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
		return nil
	}
	if len(dls) == 0 {
		fmt.Fprintln(e.stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tOWNER\tHANDLER\tSOURCE\tSUBJECT\tATTEMPTS\tFAILED AT\tERROR")
	for _, dl := range dls {
		errText := strings.ReplaceAll(dl.Error, "\n", " ")
		if len(errText) > 120 {
			errText = errText[:117] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s:%d\t%s\t%d\t%s\t%s\n", dl.ID, dl.Owner, dl.Handler, dl.Stream, dl.Seq, dl.Subject,
			dl.Attempts, dl.FailedAt.UTC().Format(time.RFC3339), errText)
	}
	return tw.Flush()
}

func dlqRefused(ctx context.Context, e env, store *streams.Store, asJSON bool) error {
	rs, err := store.RefusedReports(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		for _, r := range rs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rs) == 0 {
		fmt.Fprintln(e.stdout, "no refused reports")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSOURCE\tCAUSE\tAGGREGATE\tREFUSED AT\tREASON")
	for _, r := range rs {
		reason := strings.ReplaceAll(r.Reason, "\n", " ")
		if len(reason) > 160 {
			reason = reason[:157] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s %s\t%s\t%s\n", r.ID, r.Source, r.Cause, r.AggregateType, r.AggregateID,
			r.RefusedAt.UTC().Format(time.RFC3339), reason)
	}
	return tw.Flush()
}
