package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// stateView is what `state` prints: an aggregate's state after the
// events up to a point in its history, and where that point is.
type stateView struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	// Version counts the events applied; 0 means the aggregate did not
	// exist yet at the point asked for.
	Version uint64 `json:"version"`
	// At is the --at time asked for, if any.
	At *time.Time `json:"at,omitempty"`
	// Seq, CommitID and RecordedAt name the last commit applied.
	Seq        uint64     `json:"seq,omitempty"`
	CommitID   string     `json:"commit_id,omitempty"`
	RecordedAt *time.Time `json:"recorded_at,omitempty"`
	// LastVersion is the aggregate's version today.
	LastVersion uint64 `json:"last_version"`
	State       any    `json:"state"`
}

// stopAt says how far to replay: the events up to version (0: no
// limit) of the commits recorded at or before at (zero: no limit).
type stopAt struct {
	at      time.Time
	version uint64
}

// parseTime reads an RFC 3339 time, fractional seconds allowed.
func parseTime(flagName, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usagef("bad %s %q: want an RFC 3339 time such as 2026-11-26T09:30:00Z or 2026-11-26T17:30:00.25+08:00", flagName, s)
	}
	return t, nil
}

func cmdState(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("state", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	atFlag := fs.String("at", "", "the state as it was at this RFC 3339 time")
	versionFlag := fs.String("version", "", "the state after this many events")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	typ, id, err := aggregateArg(pos)
	if err != nil {
		return err
	}
	var stop stopAt
	if *atFlag != "" && *versionFlag != "" {
		return usagef("give --at or --version, not both")
	}
	if *atFlag != "" {
		if stop.at, err = parseTime("--at", *atFlag); err != nil {
			return err
		}
	}
	if *versionFlag != "" {
		n, err := strconv.ParseUint(*versionFlag, 10, 64)
		if err != nil || n == 0 {
			return usagef("bad --version %q: want a count of events, 1 or more", *versionFlag)
		}
		stop.version = n
	}
	reg, err := events.Standard()
	if err != nil {
		return err
	}
	recs, err := lf.loadAggregate(ctx, typ, id)
	if err != nil {
		return err
	}
	var view stateView
	switch typ {
	case eventlog.TypeOrder:
		view, err = replayState(order.Decider(), reg, id, recs, stop)
	case eventlog.TypeInventory:
		view, err = replayState(inventory.Decider(), reg, id, recs, stop)
	default:
		view, err = replayState(payment.Decider(), reg, id, recs, stop)
	}
	if err != nil {
		return err
	}
	if !stop.at.IsZero() {
		at := stop.at
		view.At = &at
	}
	if err := printState(e, view, *asJSON); err != nil {
		return err
	}
	commits := make([]*events.Commit, len(recs))
	for i, r := range recs {
		commits[i] = r.Commit
	}
	if breaks := events.VerifyChain(commits); len(breaks) > 0 {
		return fmt.Errorf("%w: %s %s hash chain is broken at %d point(s): %s (see orderctl verify)", errCheckFailed, typ, id, len(breaks), breaks[0])
	}
	return nil
}

// replayState folds an aggregate's commits, in log order, up to stop.
// A stop by version may end inside a commit: its first events apply.
func replayState[S, C any](d aggregates.Decider[S, C], reg *events.Registry, id string, recs []eventlog.Record, stop stopAt) (stateView, error) {
	last := recs[len(recs)-1].Commit.LastVersion()
	view := stateView{Type: d.Type, ID: id, LastVersion: last}
	if stop.version > last {
		return view, fmt.Errorf("%s %s has %d event(s); --version %d is past its end", d.Type, id, last, stop.version)
	}
	s := d.Initial(id)
	for _, r := range recs {
		c := r.Commit
		if !stop.at.IsZero() && c.Metadata.RecordedAt.After(stop.at) {
			break
		}
		if stop.version > 0 && c.Version > stop.version {
			break
		}
		payloads, err := reg.DecodeAll(c)
		if err != nil {
			return view, err
		}
		for i, p := range payloads {
			v := c.Version + uint64(i)
			if stop.version > 0 && v > stop.version {
				break
			}
			s = d.Evolve(s, p)
			view.Version = v
		}
		recorded := c.Metadata.RecordedAt.UTC()
		view.Seq, view.CommitID, view.RecordedAt = r.Seq, c.CommitID, &recorded
	}
	if view.Version > 0 {
		view.State = s
	}
	return view, nil
}

func printState(e env, v stateView, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	if v.Version == 0 {
		fmt.Fprintf(e.stdout, "%s %s did not exist yet at %s (its history has %d event(s))\n", v.Type, v.ID, v.At.Format(time.RFC3339Nano), v.LastVersion)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s %s at version %d of %d", v.Type, v.ID, v.Version, v.LastVersion)
	if v.At != nil {
		fmt.Fprintf(e.stdout, ", as of %s", v.At.Format(time.RFC3339Nano))
	}
	fmt.Fprintf(e.stdout, " (last commit %s, recorded %s, seq %d)\n", v.CommitID, v.RecordedAt.Format(time.RFC3339Nano), v.Seq)
	b, err := json.MarshalIndent(v.State, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}
