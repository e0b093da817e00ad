package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/streams"
)

var aggregateTypes = map[string]bool{streams.TypeOrder: true, streams.TypeInventory: true, streams.TypePayment: true}

// aggregateArg reads the <type> <id> arguments of history and state.
func aggregateArg(pos []string) (typ, id string, err error) {
	if len(pos) != 2 {
		return "", "", usagef("want <type> <id>, got %d arguments", len(pos))
	}
	typ, id = pos[0], pos[1]
	if !aggregateTypes[typ] {
		return "", "", usagef("unknown type %q (want order, inventory or payment)", typ)
	}
	if !streams.ValidID(id) {
		return "", "", usagef("invalid id %q", id)
	}
	return typ, id, nil
}

// loadAggregate reads all of one aggregate's commits from the log; an
// aggregate without any is an error.
func (l *logFlags) loadAggregate(ctx context.Context, typ, id string) ([]streams.Record, error) {
	store, closeStore, err := l.openStore(ctx)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	recs, err := store.Load(ctx, typ, id, 0)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("no commits for %s %s", typ, id)
	}
	return recs, nil
}

// typesArg reads a --type flag: the aggregate types a command reads,
// all of them in log-export order when the flag is empty.
func typesArg(typ string) ([]string, error) {
	switch {
	case typ == "":
		return []string{streams.TypeOrder, streams.TypeInventory, streams.TypePayment}, nil
	case aggregateTypes[typ]:
		return []string{typ}, nil
	default:
		return nil, usagef("unknown type %q (want order, inventory or payment)", typ)
	}
}

// historyLine is one commit as --json prints it.
type historyLine struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	*events.Commit
	ChainOK bool `json:"chain_ok"`
}

func cmdHistory(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	asJSON := fs.Bool("json", false, "print JSON Lines, one commit per line")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	typ, id, err := aggregateArg(pos)
	if err != nil {
		return err
	}
	recs, err := lf.loadAggregate(ctx, typ, id)
	if err != nil {
		return err
	}
	commits := make([]*events.Commit, len(recs))
	for i, r := range recs {
		commits[i] = r.Commit
	}
	breaks := events.VerifyChain(commits)
	broken := map[uint64]bool{}
	for _, b := range breaks {
		broken[b.Version] = true
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		for _, r := range recs {
			if err := enc.Encode(historyLine{Stream: r.Stream, Seq: r.Seq, Commit: r.Commit, ChainOK: !broken[r.Commit.Version]}); err != nil {
				return err
			}
		}
	} else {
		printHistory(e, typ, id, recs, breaks)
	}
	if len(breaks) > 0 {
		return fmt.Errorf("%w: %s %s hash chain is broken at %d point(s)", errCheckFailed, typ, id, len(breaks))
	}
	return nil
}

func printHistory(e env, typ, id string, recs []streams.Record, breaks []events.ChainBreak) {
	fmt.Fprintf(e.stdout, "%s %s: %d commit(s)\n\n", typ, id, len(recs))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSEQ\tRECORDED AT\tACTOR\tCORRELATION\tCAUSATION\tEVENTS")
	for _, r := range recs {
		c := r.Commit
		types := make([]string, len(c.Events))
		for i, ev := range c.Events {
			types[i] = ev.Type
		}
		ver := fmt.Sprint(c.Version)
		if len(c.Events) > 1 {
			ver = fmt.Sprintf("%d-%d", c.Version, c.LastVersion())
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", ver, r.Seq, c.Metadata.RecordedAt.UTC().Format(time.RFC3339Nano),
			dash(c.Metadata.Actor), dash(c.Metadata.CorrelationID), dash(c.Metadata.CausationID), strings.Join(types, ", "))
	}
	tw.Flush()
	fmt.Fprintln(e.stdout)
	for _, r := range recs {
		for i, ev := range r.Commit.Events {
			fmt.Fprintf(e.stdout, "v%d %s (schema v%d): %s\n", r.Commit.Version+uint64(i), ev.Type, ev.SchemaVersion, compact(ev.Data))
		}
	}
	fmt.Fprintln(e.stdout)
	if len(breaks) == 0 {
		fmt.Fprintf(e.stdout, "hash chain: verified (%d commits, head %s)\n", len(recs), shortHash(recs[len(recs)-1].Commit.Hash))
		return
	}
	fmt.Fprintf(e.stdout, "hash chain: BROKEN\n")
	for _, b := range breaks {
		fmt.Fprintf(e.stdout, "  %s\n", b)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

func compact(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}
