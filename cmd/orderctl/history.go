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

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/streams"
)

var aggregateTypes = map[string]bool{eventlog.TypeOrder: true, eventlog.TypeInventory: true, eventlog.TypePayment: true}

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
		return []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment}, nil
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
	// Signature is the commit's signature status (signatures.go).
	Signature string `json:"signature"`
}

// signatureIssue is a commit whose signature history names.
type signatureIssue struct {
	version                          uint64
	problem, expected, found, status string
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
	recs, err := store.Load(ctx, typ, id, 0)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("no commits for %s %s", typ, id)
	}
	rule, metaProblem, err := streamSigningRule(ctx, store, typ)
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
	// Signatures, by the rule verify applies to the whole stream.
	statuses := make([]string, len(recs))
	var issues []signatureIssue
	for i, r := range recs {
		c := r.Commit
		hash, hashErr := c.ComputeHash()
		var sigErr error
		if hashErr == nil {
			sigErr = c.VerifySignature(hash, keys)
		}
		statuses[i] = rule.judge(c, r.Seq, sigErr, hashErr)
		if problem, expected, found, ok := rule.sigProblem(statuses[i], c, sigErr); ok {
			issues = append(issues, signatureIssue{c.Version, problem, expected, found, statuses[i]})
		}
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
func sigColumn(status string, c *events.Commit) string {
	switch status {
	case sigVerified:
		return "verified " + c.KeyID
	case sigUnsigned:
		return "unsigned (before signing began)"
	case sigMissing:
		return "MISSING"
	case sigUnknownKey:
		return "UNKNOWN KEY " + c.KeyID
	case sigBad:
		return "FORGED OR ALTERED"
	}
	return "not checked (hash not computable)"
}

func printSignatures(e env, typ, id string, statuses []string, issues []signatureIssue, metaProblem, keyring string) {
	n := map[string]uint64{}
	for _, s := range statuses {
		n[s]++
	}
	fmt.Fprintf(e.stdout, "signatures: %s\n", signatureCounts(n, keyring))
	if metaProblem != "" {
		fmt.Fprintf(e.stdout, "  %s\n", metaProblem)
	}
	for _, is := range issues {
		fmt.Fprintf(e.stdout, "  %s %s v%d: %s (expected %s, found %s)\n", typ, id, is.version, is.problem, is.expected, is.found)
	}
}

func printHistory(e env, typ, id string, recs []eventlog.Record, breaks []events.ChainBreak, statuses []string) {
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
