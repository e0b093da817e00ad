// Package memlog is Ordo's log (package eventlog) in memory: the same
// contract as the JetStream log in package streams, checked by the same
// acceptance suite (package logtest), for tests that exercise what sits
// above the log (the command handler, the process managers' decisions,
// the HTTP handlers) without starting a server.
//
// It is not a production log and not a model of JetStream's failures: it
// keeps nothing across restarts, has one copy, and never loses its
// leader. Tests of how Ordo behaves against real servers (failover,
// deleted streams, redelivery, a full disk) use streams and
// internal/testkit.
//
// Appends are checked like a replicated JetStream stream checks them: a
// commit id seen within the duplicate window is answered as a duplicate
// of its first append whatever the expected sequence; otherwise the
// expected sequence must be the aggregate's last.
package memlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// Defaults of [Options].
const (
	DefaultPartitions      = 16
	DefaultDuplicateWindow = 2 * time.Minute
)

// Options configure a [Log]. Zero values take the defaults.
type Options struct {
	// Partitions is the partition count (default 16).
	Partitions int
	// DuplicateWindow is how long a commit id is remembered to answer a
	// retried append as a duplicate (default 2 minutes).
	DuplicateWindow time.Duration
	// Now is the clock that stamps messages and ages commit ids
	// (default time.Now).
	Now func() time.Time
}

// Log is an in-memory log. It is safe for concurrent use.
type Log struct {
	partitions int
	window     time.Duration
	now        func() time.Time

	mu       sync.Mutex
	streams  map[string]*stream // by aggregate type
	timers   map[string]eventlog.Timer
	refused  []eventlog.RefusedReport
	refusals map[string]uint64 // report identity -> id
}

// stream is one aggregate type's commits.
type stream struct {
	name       string
	msgs       []message           // msgs[i] is at seq i+1
	aggregates map[string][]uint64 // aggregate id -> its sequences
	ids        map[string]sent     // commit id -> first append
	watchers   map[*watcher]struct{}
}

type message struct {
	aggregateID string
	data        []byte
}

type sent struct {
	seq uint64
	at  time.Time
}

// New returns an empty log.
func New(opts Options) (*Log, error) {
	switch {
	case opts.Partitions == 0:
		opts.Partitions = DefaultPartitions
	case opts.Partitions < 0:
		return nil, fmt.Errorf("memlog: %d partitions", opts.Partitions)
	}
	switch {
	case opts.DuplicateWindow == 0:
		opts.DuplicateWindow = DefaultDuplicateWindow
	case opts.DuplicateWindow < 0:
		return nil, fmt.Errorf("memlog: negative duplicate window %s", opts.DuplicateWindow)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Log{
		partitions: opts.Partitions, window: opts.DuplicateWindow, now: opts.Now,
		streams: map[string]*stream{}, timers: map[string]eventlog.Timer{}, refusals: map[string]uint64{},
	}
	for _, typ := range []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment} {
		name, err := eventlog.StreamOf(typ)
		if err != nil {
			return nil, err
		}
		l.streams[typ] = &stream{name: name, aggregates: map[string][]uint64{}, ids: map[string]sent{}, watchers: map[*watcher]struct{}{}}
	}
	return l, nil
}

var _ eventlog.Log = (*Log)(nil)

// stream returns an aggregate type's stream; call with mu held.
func (l *Log) stream(aggType string) (*stream, error) {
	st, ok := l.streams[aggType]
	if !ok {
		return nil, fmt.Errorf("memlog: %w: %q", eventlog.ErrUnknownType, aggType)
	}
	return st, nil
}

func checkID(id string) error {
	if !events.ValidID(id) {
		if len(id) > 40 {
			id = id[:40] + "..."
		}
		return fmt.Errorf("memlog: %w: %q", eventlog.ErrInvalidID, id)
	}
	return nil
}

// Partitions implements [eventlog.StreamReader].
func (l *Log) Partitions() int { return l.partitions }

// Partition implements [eventlog.StreamReader].
func (l *Log) Partition(id string) int { return eventlog.Partition(id, l.partitions) }

// Append implements [eventlog.Appender].
func (l *Log) Append(ctx context.Context, c *events.Commit, expectedSeq uint64) (eventlog.AppendResult, error) {
	if c == nil {
		return eventlog.AppendResult{}, fmt.Errorf("append: %w: nil commit", events.ErrInvalidCommit)
	}
	if err := c.Validate(); err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append %s: %w", c.CommitID, err)
	}
	if err := checkID(c.AggregateID); err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append %s: %w", c.CommitID, err)
	}
	data, err := events.Marshal(c)
	if err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append %s: %w", c.CommitID, err)
	}
	if err := ctx.Err(); err != nil {
		return eventlog.AppendResult{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := l.stream(c.AggregateType)
	if err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append %s: %w", c.CommitID, err)
	}
	now := l.now()
	if first, ok := st.ids[c.CommitID]; ok && now.Sub(first.at) < l.window {
		return eventlog.AppendResult{Stream: st.name, Seq: first.seq, Duplicate: true}, nil
	}
	seqs := st.aggregates[c.AggregateID]
	var last uint64
	if len(seqs) > 0 {
		last = seqs[len(seqs)-1]
	}
	if last != expectedSeq {
		return eventlog.AppendResult{}, fmt.Errorf("append %s %s at expected seq %d: %w: its last commit is at seq %d",
			c.AggregateType, c.AggregateID, expectedSeq, eventlog.ErrConflict, last)
	}
	st.msgs = append(st.msgs, message{aggregateID: c.AggregateID, data: data})
	seq := uint64(len(st.msgs))
	st.aggregates[c.AggregateID] = append(seqs, seq)
	st.ids[c.CommitID] = sent{seq: seq, at: now}
	p := l.Partition(c.AggregateID)
	for w := range st.watchers {
		w.notify(p, seq)
	}
	return eventlog.AppendResult{Stream: st.name, Seq: seq}, nil
}

// record returns the commit stored at seq; call with mu held.
func (st *stream) record(seq uint64) (eventlog.Record, error) {
	c, err := events.Unmarshal(st.msgs[seq-1].data)
	if err != nil {
		return eventlog.Record{}, fmt.Errorf("%s seq %d: %w", st.name, seq, err)
	}
	return eventlog.Record{Stream: st.name, Seq: seq, Commit: c}, nil
}

// Load implements [eventlog.AggregateReader].
func (l *Log) Load(ctx context.Context, aggType, id string, afterSeq uint64) ([]eventlog.Record, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := l.stream(aggType)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var recs []eventlog.Record
	for _, seq := range st.aggregates[id] {
		if seq <= afterSeq {
			continue
		}
		r, err := st.record(seq)
		if err != nil {
			return nil, fmt.Errorf("load %s %s: %w", aggType, id, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// Last implements [eventlog.AggregateReader].
func (l *Log) Last(ctx context.Context, aggType, id string) (eventlog.Record, bool, error) {
	if err := checkID(id); err != nil {
		return eventlog.Record{}, false, fmt.Errorf("last: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return eventlog.Record{}, false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := l.stream(aggType)
	if err != nil {
		return eventlog.Record{}, false, fmt.Errorf("last: %w", err)
	}
	seqs := st.aggregates[id]
	if len(seqs) == 0 {
		return eventlog.Record{}, false, nil
	}
	r, err := st.record(seqs[len(seqs)-1])
	if err != nil {
		return eventlog.Record{}, false, fmt.Errorf("last %s %s: %w", aggType, id, err)
	}
	return r, true, nil
}

// LastSeq implements [eventlog.StreamReader].
func (l *Log) LastSeq(ctx context.Context, aggType string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := l.stream(aggType)
	if err != nil {
		return 0, fmt.Errorf("last seq: %w", err)
	}
	return uint64(len(st.msgs)), nil
}

// window returns the sequences a fetch of max from fromSeq reads; call
// with mu held.
func (st *stream) window(fromSeq uint64, max int) (from, to uint64, err error) {
	if max < 1 {
		return 0, 0, fmt.Errorf("fetch %s: batch size %d", st.name, max)
	}
	from = fromSeq
	if from == 0 {
		from = 1
	}
	last := uint64(len(st.msgs))
	if from > last {
		return from, from - 1, nil
	}
	return from, min(last, from+uint64(max)-1), nil
}

// Fetch implements [eventlog.StreamReader].
func (l *Log) Fetch(ctx context.Context, aggType string, fromSeq uint64, max int) ([]eventlog.Record, error) {
	return fetch(ctx, l, aggType, fromSeq, max, func(st *stream, seq uint64) (eventlog.Record, error) {
		r, err := st.record(seq)
		if err != nil {
			return eventlog.Record{}, fmt.Errorf("fetch: %w", err)
		}
		return r, nil
	})
}

// FetchRaw implements [eventlog.StreamReader]. The data is a copy: the
// caller may keep and change it.
func (l *Log) FetchRaw(ctx context.Context, aggType string, fromSeq uint64, max int) ([]eventlog.RawRecord, error) {
	return fetch(ctx, l, aggType, fromSeq, max, func(st *stream, seq uint64) (eventlog.RawRecord, error) {
		return eventlog.RawRecord{Seq: seq, Data: bytes.Clone(st.msgs[seq-1].data)}, nil
	})
}

// fetch is what Fetch and FetchRaw share: under the lock, the messages of
// aggType's stream from fromSeq on, at most max, each made into an R by
// one.
func fetch[R any](ctx context.Context, l *Log, aggType string, fromSeq uint64, max int, one func(st *stream, seq uint64) (R, error)) ([]R, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := l.stream(aggType)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	from, to, err := st.window(fromSeq, max)
	if err != nil {
		return nil, err
	}
	recs := make([]R, 0, to+1-from)
	for seq := from; seq <= to; seq++ {
		r, err := one(st, seq)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// ListIDs implements [eventlog.Log].
func (l *Log) ListIDs(ctx context.Context, aggType string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := l.stream(aggType)
	if err != nil {
		return nil, fmt.Errorf("list ids: %w", err)
	}
	ids := make([]string, 0, len(st.aggregates))
	for id := range st.aggregates {
		ids = append(ids, id)
	}
	return ids, nil
}

// watcher delivers one Watch's notifications on a goroutine of its own,
// so that Append never waits for a watcher's function.
type watcher struct {
	ch   chan note
	done chan struct{}
}

type note struct {
	partition int
	seq       uint64
}

// watchBuffer bounds the notifications a slow watcher has not taken yet;
// beyond it they are dropped, as the port allows (readers poll too).
const watchBuffer = 1024

func (w *watcher) notify(p int, seq uint64) {
	select {
	case w.ch <- note{p, seq}:
	default:
	}
}

// Watch implements [eventlog.StreamReader].
func (l *Log) Watch(ctx context.Context, aggType string, fn func(partition int, seq uint64)) (func(), error) {
	if fn == nil {
		return nil, errors.New("watch: nil function")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	st, err := l.stream(aggType)
	if err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &watcher{ch: make(chan note, watchBuffer), done: make(chan struct{})}
	st.watchers[w] = struct{}{}
	l.mu.Unlock()

	stopped := make(chan struct{})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			l.mu.Lock()
			delete(st.watchers, w)
			l.mu.Unlock()
			close(stopped)
			<-w.done
		})
	}
	go func() {
		defer close(w.done)
		for {
			select {
			case n := <-w.ch:
				fn(n.partition, n.seq)
			case <-stopped:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	stopAfter := context.AfterFunc(ctx, stop)
	return func() { stopAfter(); stop() }, nil
}

// ScheduleTimer implements [eventlog.TimerScheduler]: it keeps the timer
// (replacing a pending one of the same owner, kind and key) for
// [Log.Timers] to list. Nothing fires it: a test takes it from there.
func (l *Log) ScheduleTimer(ctx context.Context, t eventlog.Timer) error {
	for _, p := range []string{t.Owner, t.Kind, t.Key} {
		if err := checkID(p); err != nil {
			return fmt.Errorf("schedule timer: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t.Data = bytes.Clone(t.Data)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timers[t.Owner+"."+t.Kind+"."+t.Key] = t
	return nil
}

// Timers returns the pending timers, earliest first (then by owner, kind
// and key).
func (l *Log) Timers() []eventlog.Timer {
	l.mu.Lock()
	out := make([]eventlog.Timer, 0, len(l.timers))
	for _, t := range l.timers {
		out = append(out, t)
	}
	l.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		return a.Owner+"."+a.Kind+"."+a.Key < b.Owner+"."+b.Kind+"."+b.Key
	})
	return out
}

// AddRefusedReport implements [eventlog.RefusalLog]. The same report
// (source, cause and content) is kept once, whenever it comes again.
func (l *Log) AddRefusedReport(ctx context.Context, r eventlog.RefusedReport) (uint64, error) {
	if err := checkID(r.Source); err != nil {
		return 0, fmt.Errorf("add refused report: source: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	sum := sha256.Sum256(append([]byte(r.Source+"\x00"+r.Cause+"\x00"), r.Report...))
	key := hex.EncodeToString(sum[:])
	l.mu.Lock()
	defer l.mu.Unlock()
	if id, ok := l.refusals[key]; ok {
		return id, nil
	}
	r.ID = uint64(len(l.refused) + 1)
	r.Report = bytes.Clone(r.Report)
	l.refused = append(l.refused, r)
	l.refusals[key] = r.ID
	return r.ID, nil
}

// RefusedReports returns the refused reports, oldest first.
func (l *Log) RefusedReports() []eventlog.RefusedReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]eventlog.RefusedReport(nil), l.refused...)
}
