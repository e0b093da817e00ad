package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// lineAdded is the one event type of the workload: a line added to an
// order, padded to payloadBytes of JSON so that every store writes the
// same data.
type lineAdded struct {
	Order     string `json:"order"`
	Line      int    `json:"line"`
	SKU       string `json:"sku"`
	Title     string `json:"title"`
	Qty       int    `json:"qty"`
	UnitMinor int64  `json:"unit_minor"`
	Currency  string `json:"currency"`
	Pad       string `json:"pad"`
}

// payloadBytes is the JSON size of one event's data.
const payloadBytes = 300

// newLine returns line n of order id, its JSON exactly payloadBytes long
// (for ids up to 36 characters and n below 10^6).
func newLine(id string, n int) lineAdded {
	l := lineAdded{
		Order: id, Line: n, SKU: fmt.Sprintf("SKU-%06d", (n*7919)%1000000),
		Title: "Loose-leaf green tea, 250 g tin", Qty: 1 + n%4,
		UnitMinor: 1299, Currency: "EUR",
	}
	b, err := json.Marshal(l)
	if err == nil && len(b) < payloadBytes {
		l.Pad = strings.Repeat("-", payloadBytes-len(b))
	}
	return l
}

// store is one event store under test.
type store interface {
	// Name is the short name printed in the tables.
	Name() string
	// Reset gives the next run an empty store (outside the timed part).
	Reset(ctx context.Context) error
	// NewAggregate returns a handle on a new aggregate, not yet stored.
	NewAggregate() aggregate
	// Reload returns another handle on a's aggregate, read from the
	// store through its own load path.
	Reload(ctx context.Context, a aggregate) (aggregate, error)
	// Check confirms, after a run, that the store holds exactly the
	// acknowledged commits and events.
	Check(ctx context.Context, commits, events int64) error
	// Close releases the store's clients.
	Close()
}

// aggregate is one order, owned by one writer.
type aggregate interface {
	// Append records k lineAdded events on the aggregate and stores them
	// in one commit (one transaction, one message) that expects the
	// aggregate's current version; the version advances by k on success.
	Append(ctx context.Context, k int) error
	// Version is the version of the aggregate's last stored event.
	Version() int
}

// runConfig is the shape of one run.
type runConfig struct {
	Writers, K int
	Aggregates int           // split evenly over the writers
	MinDur     time.Duration // a run lasts at least this long,
	MinEvents  int64         // and until this many events are stored,
	MaxDur     time.Duration // but never longer than this
}

// result is one run of one store.
type result struct {
	Commits, Events int64
	Elapsed         time.Duration
	P50, P99        time.Duration // per commit, as its writer saw it
	Load1           float64       // load average (1 min) at the end
	PerFsync        float64       // PostgreSQL peers: commits per WAL fsync
}

func (r result) commitsPerSec() float64 { return float64(r.Commits) / r.Elapsed.Seconds() }
func (r result) eventsPerSec() float64  { return float64(r.Events) / r.Elapsed.Seconds() }

// run resets s and runs one timed run on it: cfg.Writers goroutines,
// each appending commits of cfg.K events to its own aggregates in turn,
// so that no two writers ever touch the same aggregate.
func run(ctx context.Context, s store, cfg runConfig) (result, error) {
	if err := s.Reset(ctx); err != nil {
		return result{}, fmt.Errorf("reset: %w", err)
	}
	owned := make([][]aggregate, cfg.Writers)
	for i := range max(cfg.Aggregates, cfg.Writers) {
		owned[i%cfg.Writers] = append(owned[i%cfg.Writers], s.NewAggregate())
	}
	var (
		stop            atomic.Bool
		commits, events atomic.Int64
		errOnce         sync.Once
		firstErr        error
		wg              sync.WaitGroup
	)
	lat := make([][]time.Duration, cfg.Writers)
	start := time.Now()
	for w := range cfg.Writers {
		wg.Go(func() {
			mine := owned[w]
			l := make([]time.Duration, 0, 1<<14)
			for i := 0; !stop.Load(); i++ {
				a := mine[i%len(mine)]
				t0 := time.Now()
				if err := a.Append(ctx, cfg.K); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("writer %d, at version %d: %w", w, a.Version(), err) })
					stop.Store(true)
					break
				}
				l = append(l, time.Since(t0))
				commits.Add(1)
				events.Add(int64(cfg.K))
			}
			lat[w] = l
		})
	}
	tick := time.NewTicker(20 * time.Millisecond)
	for range tick.C {
		el := time.Since(start)
		if stop.Load() || el >= cfg.MaxDur || (el >= cfg.MinDur && events.Load() >= cfg.MinEvents) {
			break
		}
	}
	tick.Stop()
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return result{}, firstErr
	}
	if err := s.Check(ctx, commits.Load(), events.Load()); err != nil {
		return result{}, fmt.Errorf("check: %w", err)
	}
	for _, a := range []aggregate{owned[0][0], owned[cfg.Writers-1][len(owned[cfg.Writers-1])-1]} {
		if a.Version() == 0 {
			continue
		}
		b, err := s.Reload(ctx, a)
		if err != nil {
			return result{}, fmt.Errorf("check: reload: %w", err)
		}
		if b.Version() != a.Version() {
			return result{}, fmt.Errorf("check: reloaded at version %d, appended up to %d", b.Version(), a.Version())
		}
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := result{Commits: commits.Load(), Events: events.Load(), Elapsed: elapsed, Load1: loadAvg()[0]}
	if len(all) > 0 {
		r.P50 = all[len(all)/2]
		r.P99 = all[len(all)*99/100]
	}
	return r, nil
}

// occCheck appends to an aggregate through two handles, the second one
// stale, and fails unless the store refuses the stale append.
func occCheck(ctx context.Context, s store) error {
	a := s.NewAggregate()
	if err := a.Append(ctx, 1); err != nil {
		return fmt.Errorf("first append: %w", err)
	}
	b, err := s.Reload(ctx, a)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if err := a.Append(ctx, 1); err != nil {
		return fmt.Errorf("second append: %w", err)
	}
	if err := b.Append(ctx, 1); err == nil {
		return fmt.Errorf("%s accepted an append at a stale version", s.Name())
	}
	return nil
}

// loadAvg returns the machine's load averages (1, 5 and 15 minutes), or
// zeros where /proc/loadavg cannot be read.
func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	_, _ = fmt.Sscan(string(b), &l[0], &l[1], &l[2])
	return l
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
