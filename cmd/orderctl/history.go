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

	"github.com/ordo-shop/ordo/audit"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// aggregateArg reads the <type> <id> arguments of history and state.
func aggregateArg(pos []string) (typ, id string, err error) {
	if len(pos) != 2 {
		return "", "", usagef("want <type> <id>, got %d arguments", len(pos))
	}
	typ, id = pos[0], pos[1]
	if !audit.ValidType(typ) {
		return "", "", usagef("unknown type %q (want order, inventory or payment)", typ)
	}
	if !events.ValidID(id) {
		return "", "", usagef("invalid id %q", id)
	}
	return typ, id, nil
}

// loadAggregate reads all of one aggregate's commits from the log; an
// aggregate without any is an error.
func (l *logFlags) loadAggregate(ctx context.Context, typ, id string) ([]eventlog.Record, error) {
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
		return audit.Types, nil
	case audit.ValidType(typ):
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
	// Signature is the commit's signature status.
	Signature audit.SignatureStatus `json:"signature"`
}

func cmdHistory(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	asJSON := fs.Bool("json", false, "print JSON Lines, one commit per line")
	var kf keyFlags
	kf.register(fs, e)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	typ, id, err := aggregateArg(pos)
	if err != nil {
		return err
	}
	keys, keySource, err := kf.load(&lf)
	if err != nil {
		return err
	}
	store, closeStore, err := lf.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	check, err := audit.CheckAggregate(ctx, store, typ, id, keys)
	if err != nil {
		return err
	}
	recs, breaks, statuses, issues, metaProblem := check.Records, check.Breaks, check.Statuses, check.Issues, check.MetaProblem
	broken := map[uint64]bool{}
	for _, b := range breaks {
		broken[b.Version] = true
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		for i, r := range recs {
			if err := enc.Encode(historyLine{Stream: r.Stream, Seq: r.Seq, Commit: r.Commit, ChainOK: !broken[r.Commit.Version], Signature: statuses[i]}); err != nil {
				return err
			}
		}
	} else {
		printHistory(e, typ, id, recs, breaks, statuses)
		printSignatures(e, typ, id, statuses, issues, metaProblem, keyringName(keySource, keys))
	}
	switch {
	case len(breaks) > 0 && len(issues) > 0:
		return fmt.Errorf("%w: %s %s hash chain is broken at %d point(s) and %d commit(s) have a signature missing or wrong", errCheckFailed, typ, id, len(breaks), len(issues))
	case len(breaks) > 0:
		return fmt.Errorf("%w: %s %s hash chain is broken at %d point(s)", errCheckFailed, typ, id, len(breaks))
	case len(issues) > 0:
		return fmt.Errorf("%w: %s %s: %d commit(s) have a signature missing or wrong", errCheckFailed, typ, id, len(issues))
	case metaProblem != "":
		return fmt.Errorf("%w: %s", errCheckFailed, metaProblem)
	}
	return nil
}

// sigColumn is a commit's SIGNATURE column in history's table.
func sigColumn(status audit.SignatureStatus, c *events.Commit) string {
	switch status {
	case audit.SigVerified:
		return "verified " + c.KeyID
	case audit.SigUnsigned:
		return "unsigned (before signing began)"
	case audit.SigMissing:
		return "MISSING"
	case audit.SigUnknownKey:
		return "UNKNOWN KEY " + c.KeyID
	case audit.SigBad:
		return "FORGED OR ALTERED"
	}
	return "not checked (hash not computable)"
}

func printSignatures(e env, typ, id string, statuses []audit.SignatureStatus, issues []audit.SignatureIssue, metaProblem, keyring string) {
	n := map[audit.SignatureStatus]uint64{}
	for _, s := range statuses {
		n[s]++
	}
	fmt.Fprintf(e.stdout, "signatures: %s\n", signatureCounts(n, keyring))
	if metaProblem != "" {
		fmt.Fprintf(e.stdout, "  %s\n", metaProblem)
	}
	for _, is := range issues {
		fmt.Fprintf(e.stdout, "  %s %s v%d: %s (expected %s, found %s)\n", typ, id, is.Version, is.Problem, is.Expected, is.Found)
	}
}

func printHistory(e env, typ, id string, recs []eventlog.Record, breaks []events.ChainBreak, statuses []audit.SignatureStatus) {
	fmt.Fprintf(e.stdout, "%s %s: %d commit(s)\n\n", typ, id, len(recs))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSEQ\tRECORDED AT\tACTOR\tCORRELATION\tCAUSATION\tSIGNATURE\tEVENTS")
	for i, r := range recs {
		c := r.Commit
		types := make([]string, len(c.Events))
		for i, ev := range c.Events {
			types[i] = ev.Type
		}
		ver := fmt.Sprint(c.Version)
		if len(c.Events) > 1 {
			ver = fmt.Sprintf("%d-%d", c.Version, c.LastVersion())
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", ver, r.Seq, c.Metadata.RecordedAt.UTC().Format(time.RFC3339Nano),
			dash(c.Metadata.Actor), dash(c.Metadata.CorrelationID), dash(c.Metadata.CausationID), sigColumn(statuses[i], c), strings.Join(types, ", "))
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
		fmt.Fprintf(e.stdout, "hash chain: verified (%d commits, head %s)\n", len(recs), events.ShortHash(recs[len(recs)-1].Commit.Hash))
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

func compact(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}
