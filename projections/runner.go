package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
)

// ErrCheckpointMoved is returned by [Sink.Commit] when the partition's
// checkpoint is no longer the one the batch was read after: another
// writer applied it (or the read model was swapped). Nothing was applied.
var ErrCheckpointMoved = errors.New("projections: checkpoint moved")

// Source is the log a [Runner] reads ([eventlog.StreamReader] less
// FetchRaw); *streams.Store and *memlog.Log implement it.
type Source interface {
	Partitions() int
	Partition(id string) int
	LastSeq(ctx context.Context, aggType string) (uint64, error)
	Fetch(ctx context.Context, aggType string, fromSeq uint64, max int) ([]eventlog.Record, error)
	Watch(ctx context.Context, aggType string, fn func(partition int, seq uint64)) (func(), error)
}

// Sink holds one projection's read model and its checkpoints.
// Implementations must be safe for concurrent use by one goroutine per
// partition.
type Sink interface {
	// Checkpoint returns the partition's checkpoint (0: nothing applied).
	Checkpoint(ctx context.Context, partition int) (uint64, error)
	// Commit applies recs, the partition's commits with from < seq <= to
	// in log order (possibly none), and moves the checkpoint from from to
	// to, all in one transaction. It returns [ErrCheckpointMoved], having
	// applied nothing, if the checkpoint is not from.
	Commit(ctx context.Context, partition int, from, to uint64, recs []eventlog.Record) error
}

// RawSource is a [Source] that can also return the stream's commits
// undecoded; *streams.Store implements it ([streams.Store.FetchRaw]).
type RawSource interface {
	FetchRaw(ctx context.Context, aggType string, fromSeq uint64, max int) ([]eventlog.RawRecord, error)
}

// DecodingSink is a [Sink] that decodes the stream's commits itself,
// typically reading only what it needs. When the [Source] is also a
// [RawSource], a [Runner] reads the stream undecoded, calls Decode for
// each commit on its reader goroutine as soon as a chunk arrives (so
// decoding overlaps the transactions of earlier batches) and applies
// batches with CommitDecoded instead of Commit.
type DecodingSink interface {
	Sink
	// Decode decodes one commit and returns its aggregate id (which
	// picks its partition) and the value CommitDecoded gets. Calls come
	// one at a time, but not always from the same goroutine.
	Decode(rec eventlog.RawRecord) (aggregateID string, value any, err error)
	// CommitDecoded is [Sink.Commit] for decoded commits: recs are the
	// partition's commits with from < seq <= to, in log order.
	CommitDecoded(ctx context.Context, partition int, from, to uint64, recs []Decoded) error
}

// Decoded is one commit as a [DecodingSink] decoded it.
type Decoded struct {
	Seq         uint64
	Partition   int // of the aggregate id Decode returned
	AggregateID string
	Value       any // an [Undecodable] when Decode failed
}

// Leases divides the partitions among the instances that run a
// projection.
type Leases interface {
	// Claim renews this instance's leases, takes free or expired
	// partitions up to its fair share and gives up those above it; it
	// returns the partitions this instance holds.
	Claim(ctx context.Context) ([]int, error)
	// Release gives up every lease this instance holds.
	Release(ctx context.Context) error
}

// Defaults of [Options].
const (
	DefaultBatchSize         = 500
	DefaultIdlePoll          = time.Second
	DefaultLeaseInterval     = time.Second
	DefaultWatermarkInterval = 200 * time.Millisecond
)

// Options tune a [Runner]. Zero values take the defaults.
type Options struct {
	// AggType is the stream to read (default eventlog.TypeOrder).
	AggType string
	// BatchSize is the most commits applied in one transaction (default
	// 500). The stream is read in chunks of twice that.
	BatchSize int
	// IdlePoll is how often an idle runner looks for new commits when no
	// notification woke it (default 1s).
	IdlePoll time.Duration
	// WatermarkInterval is how often a partition with no commits of its
	// own moves its checkpoint up to what the runner has read (default
	// 200ms): that is what lets a reader waiting for a position of some
	// other partition, or for all of them, go on.
	WatermarkInterval time.Duration
	// LeaseInterval is how often [Runner.Run] renews and rebalances its
	// leases (default 1s).
	LeaseInterval time.Duration
	// Logger receives errors the runner retries (default: discard).
	Logger *slog.Logger
}

// Runner applies a stream to a [Sink]: one reader fetches the stream in
// log order and hands each partition its commits; one committer per
// partition applies them in batches, each batch with the partition's
// checkpoint in one transaction, while the reader reads on. Its methods
// are safe for concurrent use, but run one [Runner.Run] per Runner at a
// time.
type Runner struct {
	src    Source
	sink   Sink
	leases Leases
	opts   Options
	log    *slog.Logger
	wake   chan struct{}
}

// New returns a Runner. leases may be nil: the runner then works on every
// partition (one instance only).
func New(src Source, sink Sink, leases Leases, opts Options) (*Runner, error) {
	if src == nil || sink == nil {
		return nil, errors.New("projections: source and sink are required")
	}
	if opts.AggType == "" {
		opts.AggType = eventlog.TypeOrder
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.IdlePoll <= 0 {
		opts.IdlePoll = DefaultIdlePoll
	}
	if opts.WatermarkInterval <= 0 {
		opts.WatermarkInterval = DefaultWatermarkInterval
	}
	if opts.LeaseInterval <= 0 {
		opts.LeaseInterval = DefaultLeaseInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{src: src, sink: sink, leases: leases, opts: opts, log: opts.Logger, wake: make(chan struct{}, 1)}, nil
}

func (r *Runner) allPartitions() []int {
	ps := make([]int, r.src.Partitions())
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// Run applies the stream until ctx ends, to the partitions this instance
// holds, woken by new commits. It returns nil when ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	stopWatch, err := r.src.Watch(ctx, r.opts.AggType, func(int, uint64) {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return fmt.Errorf("projections: %w", err)
	}
	defer stopWatch()
	if r.leases != nil {
		defer func() {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.leases.Release(rctx); err != nil {
				r.log.Warn("projection: releasing leases", slog.Any("err", err))
			}
		}()
	}

	// cur is the pipeline running for the partitions held now.
	type running struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	var (
		owned []int
		cur   *running
	)
	stop := func() {
		if cur != nil {
			cur.cancel()
			<-cur.done
			cur = nil
		}
	}
	defer stop()
	tick := time.NewTicker(r.opts.LeaseInterval)
	defer tick.Stop()
	failures := 0
	for {
		now := r.allPartitions()
		if r.leases != nil {
			held, err := r.leases.Claim(ctx)
			switch {
			case err == nil:
				now = held
			case ctx.Err() != nil:
				return nil
			default:
				r.log.Warn("projection: claiming partitions", slog.Any("err", err))
				now = owned // keep what we have
			}
		}
		alive := false
		if cur != nil {
			select {
			case <-cur.done: // the pipeline failed: start it again
			default:
				alive = true
			}
		}
		if alive {
			failures = 0
		}
		if !slices.Equal(now, owned) || !alive {
			stop()
			owned = now
			if len(owned) > 0 {
				pctx, cancel := context.WithCancel(ctx)
				cur = &running{cancel: cancel, done: make(chan struct{})}
				wait := min(time.Duration(failures)*200*time.Millisecond, 5*time.Second)
				go func(done chan struct{}, parts []int) {
					defer close(done)
					sleepCtx(pctx, wait)
					if err := r.pipeline(pctx, parts, 0); err != nil && pctx.Err() == nil {
						r.log.Warn("projection: restarting after an error", slog.Any("err", err))
					}
				}(cur.done, owned)
				failures++
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// CatchUp applies every partition (without leases) until each checkpoint
// has reached the stream's last sequence as it was when CatchUp was
// called, with up to workers transactions at once (0: one per
// partition). It is how a rebuild fills a new read model; the partitions
// must not be worked on by anyone else meanwhile, or CatchUp only follows
// their checkpoints.
func (r *Runner) CatchUp(ctx context.Context, workers int) error {
	target, err := r.src.LastSeq(ctx, r.opts.AggType)
	if err != nil {
		return fmt.Errorf("projections: catch up: %w", err)
	}
	if target == 0 {
		return nil
	}
	ctx = withWorkers(ctx, workers)
	return r.pipeline(ctx, r.allPartitions(), target)
}

type workersKey struct{}

func withWorkers(ctx context.Context, n int) context.Context {
	if n <= 0 {
		return ctx
	}
	return context.WithValue(ctx, workersKey{}, make(chan struct{}, n))
}

// path is how a pipeline reads and applies the stream: decoded
// [eventlog.Record]s through [Sink.Commit], or [Decoded] values through a
// [DecodingSink].
type path[R any] struct {
	fetch     func(ctx context.Context, from uint64, max int) ([]R, error)
	seq       func(R) uint64
	part      func(R) int
	aggregate func(R) string
	// bad returns the [ErrPoison] error of a commit known not to apply
	// before it is tried (it did not decode), else nil.
	bad    func(R) error
	commit func(ctx context.Context, partition int, from, to uint64, recs []R) error
}

func (r *Runner) recordPath() path[eventlog.Record] {
	return path[eventlog.Record]{
		fetch: func(ctx context.Context, from uint64, max int) ([]eventlog.Record, error) {
			return r.src.Fetch(ctx, r.opts.AggType, from, max)
		},
		seq:       func(rec eventlog.Record) uint64 { return rec.Seq },
		part:      func(rec eventlog.Record) int { return r.src.Partition(rec.Commit.AggregateID) },
		aggregate: func(rec eventlog.Record) string { return rec.Commit.AggregateID },
		bad:       func(eventlog.Record) error { return nil },
		commit:    r.sink.Commit,
	}
}

func (r *Runner) decodedPath(raw RawSource, sink DecodingSink) path[Decoded] {
	return path[Decoded]{
		fetch: func(ctx context.Context, from uint64, max int) ([]Decoded, error) {
			recs, err := raw.FetchRaw(ctx, r.opts.AggType, from, max)
			if err != nil {
				return nil, err
			}
			out := make([]Decoded, len(recs))
			for i, rec := range recs {
				id, v, err := sink.Decode(rec)
				if err != nil {
					if id == "" {
						var lerr error
						if id, lerr = r.locate(ctx, rec.Seq); lerr != nil {
							return nil, lerr
						}
					}
					v = Undecodable{AggregateID: id, Err: err}
				}
				out[i] = Decoded{Seq: rec.Seq, Partition: r.partitionOf(id), AggregateID: id, Value: v}
			}
			return out, nil
		},
		seq:       func(d Decoded) uint64 { return d.Seq },
		part:      func(d Decoded) int { return d.Partition },
		aggregate: func(d Decoded) string { return d.AggregateID },
		bad: func(d Decoded) error {
			if u, ok := d.Value.(Undecodable); ok {
				return undecodableErr(d.Seq, u)
			}
			return nil
		},
		commit: sink.CommitDecoded,
	}
}

// locate names the aggregate of the undecodable commit at seq from its
// subject, when the source can; "" if it cannot.
func (r *Runner) locate(ctx context.Context, seq uint64) (string, error) {
	loc, ok := r.src.(AggregateLocator)
	if !ok {
		return "", nil
	}
	id, err := loc.AggregateAt(ctx, r.opts.AggType, seq)
	if err != nil {
		return "", fmt.Errorf("locate undecodable seq %d: %w", seq, err)
	}
	return id, nil
}

// partitionOf is an aggregate's partition. Commits whose aggregate is
// unknown are partition 0's to set aside.
func (r *Runner) partitionOf(id string) int {
	if id == "" {
		return 0
	}
	return r.src.Partition(id)
}

// pipeline reads the stream once for the partitions parts and applies
// it. With until > 0 it returns once every partition's checkpoint is at
// least until; otherwise it follows the stream until ctx ends (nil) or a
// read fails.
func (r *Runner) pipeline(ctx context.Context, parts []int, until uint64) error {
	raw, okSrc := r.src.(RawSource)
	sink, okSink := r.sink.(DecodingSink)
	if okSrc && okSink {
		return runPipeline(ctx, r, r.decodedPath(raw, sink), parts, until)
	}
	return runPipeline(ctx, r, r.recordPath(), parts, until)
}

// queue is one partition's commits read but not yet applied.
type queue[R any] struct {
	p  int
	mu sync.Mutex
	// recs are the partition's commits after cp, in log order; through
	// is how far the reader has read the stream for them: every commit
	// of the partition up to through is in recs or applied.
	recs    []R
	through uint64
	cp      atomic.Uint64
	ready   chan struct{} // reader -> committer: more to do
	room    chan struct{} // committer -> reader: the queue shrank
	// idle is shared by a pipeline's queues: the reader has read all
	// there is (for now), so committers apply what they have instead of
	// waiting for full batches.
	idle *atomic.Bool
}

// runPipeline is [Runner.pipeline] along one path.
func runPipeline[R any](ctx context.Context, r *Runner, pa path[R], parts []int, until uint64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queues := make(map[int]*queue[R], len(parts))
	idle := &atomic.Bool{}
	var pos uint64
	first := true
	for _, p := range parts {
		cp, err := r.sink.Checkpoint(ctx, p)
		if err != nil {
			return fmt.Errorf("projections: %w", err)
		}
		q := &queue[R]{p: p, through: cp, ready: make(chan struct{}, 1), room: make(chan struct{}, 1), idle: idle}
		q.cp.Store(cp)
		queues[p] = q
		if first || cp < pos {
			pos = cp
		}
		first = false
	}
	var wg sync.WaitGroup
	for _, q := range queues {
		wg.Go(func() {
			if err := commitLoop(ctx, r, pa, q, until); err != nil {
				cancel(err)
			}
		})
	}
	err := read(ctx, r, pa, queues, idle, pos, until)
	if until > 0 && err == nil {
		wg.Wait() // every committer stops at until
	}
	cancel(err)
	wg.Wait()
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	if err == nil && until > 0 {
		for _, q := range queues {
			if q.cp.Load() < until {
				return fmt.Errorf("projections: partition %d stopped at %d before %d: %w", q.p, q.cp.Load(), until, context.Cause(ctx))
			}
		}
	}
	return err
}

// read fetches the stream after pos and hands each queue its commits.
func read[R any](ctx context.Context, r *Runner, pa path[R], queues map[int]*queue[R], idle *atomic.Bool, pos, until uint64) error {
	chunk := 2 * r.opts.BatchSize
	limit := 4 * r.opts.BatchSize
	type fetched struct {
		recs []R
		err  error
	}
	fetch := func(from uint64) <-chan fetched {
		ch := make(chan fetched, 1)
		go func() {
			recs, err := pa.fetch(ctx, from, chunk)
			ch <- fetched{recs, err}
		}()
		return ch
	}
	var ahead <-chan fetched // the next chunk, read while this one is handed out
	defer func() {
		if ahead != nil {
			<-ahead
		}
	}()
	for {
		if until > 0 && pos >= until {
			idle.Store(true)
			for _, q := range queues {
				signal(q.ready)
			}
			return nil
		}
		if ahead == nil {
			ahead = fetch(pos + 1)
		}
		f := <-ahead
		ahead = nil
		recs, err := f.recs, f.err
		if err == nil && len(recs) == chunk {
			ahead = fetch(pa.seq(recs[len(recs)-1]) + 1)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("projections: read: %w", err)
		}
		upTo := pos
		if n := len(recs); n > 0 {
			upTo = pa.seq(recs[n-1])
		}
		byPart := map[int][]R{}
		for _, rec := range recs {
			p := pa.part(rec)
			if q := queues[p]; q != nil && pa.seq(rec) > q.cp.Load() {
				byPart[p] = append(byPart[p], rec)
			}
		}
		idle.Store(len(recs) < chunk || (until > 0 && upTo >= until))
		for _, q := range queues {
			for {
				q.mu.Lock()
				full := len(q.recs) >= limit
				if !full {
					q.recs = append(q.recs, byPart[q.p]...)
					q.through = max(q.through, upTo)
				}
				q.mu.Unlock()
				if !full {
					break
				}
				select { // wait for the committer to make room
				case <-ctx.Done():
					return nil
				case <-q.room:
				}
			}
			signal(q.ready)
		}
		pos = upTo
		if len(recs) == chunk {
			continue
		}
		if until > 0 {
			if pos < until && len(recs) == 0 {
				sleepCtx(ctx, 10*time.Millisecond) // a replica catching up
			}
			continue
		}
		t := time.NewTimer(r.opts.IdlePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// commitLoop applies one partition's queue in batches until ctx ends, or
// with until > 0 until the checkpoint reaches it.
func commitLoop[R any](ctx context.Context, r *Runner, pa path[R], q *queue[R], until uint64) error {
	var sem chan struct{}
	if v, ok := ctx.Value(workersKey{}).(chan struct{}); ok {
		sem = v
	}
	qr, _ := r.sink.(Quarantiner)
	var lastCommit time.Time
	failures := 0
	var timer *time.Timer
	var timerC <-chan time.Time
	// After a batch failed as poison, commits up to suspect are applied
	// one at a time to find the one that does not apply; attempts counts
	// the tries of the commit at poisonSeq.
	var suspect, poisonSeq uint64
	attempts := 0
	for {
		cp := q.cp.Load()
		if until > 0 && cp >= until {
			return nil
		}
		q.mu.Lock()
		i := 0
		for i < len(q.recs) && pa.seq(q.recs[i]) <= cp {
			i++
		}
		q.recs = q.recs[i:]
		full := min(len(q.recs), r.opts.BatchSize)
		n := full
		if qr != nil {
			n = poisonCut(pa, q.recs[:n], cp < suspect)
		}
		batch := q.recs[:n:n]
		to := q.through
		if n < len(q.recs) {
			to = pa.seq(batch[n-1])
		}
		q.mu.Unlock()

		// While the reader is busy, wait for a full batch. A partition with
		// nothing of its own moves its checkpoint up to the reader only
		// now and then.
		busy := full < r.opts.BatchSize && !q.idle.Load()
		wait := time.Duration(0)
		if to > cp && n == 0 && until == 0 {
			wait = r.opts.WatermarkInterval - time.Since(lastCommit)
		}
		if to <= cp || busy || wait > 0 {
			if wait > 0 && timerC == nil {
				timer = time.NewTimer(wait)
				timerC = timer.C
			}
			select {
			case <-ctx.Done():
				if timer != nil {
					timer.Stop()
				}
				return nil
			case <-q.ready:
			case <-timerC:
				timerC = nil
			}
			continue
		}
		if sem != nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
		}
		var err error
		if n == 1 && qr != nil {
			err = pa.bad(batch[0])
		}
		if err == nil {
			err = pa.commit(ctx, q.p, cp, to, batch)
		}
		if sem != nil {
			<-sem
		}
		if errors.Is(err, ErrPoison) && qr != nil && n > 0 {
			if n > 1 { // find the commit that does not apply
				suspect = to
				continue
			}
			if seq := pa.seq(batch[0]); seq != poisonSeq {
				poisonSeq, attempts = seq, 0
			}
			if attempts++; attempts < MaxPoisonAttempts {
				r.log.Warn("projection: commit does not apply; trying again before quarantining it", slog.Int("partition", q.p),
					slog.Uint64("stream_seq", poisonSeq), slog.Int("attempt", attempts), slog.Any("err", err))
				sleepCtx(ctx, poisonWait(attempts))
				continue
			}
			qd := Quarantined{Seq: poisonSeq, Partition: q.p, AggregateID: pa.aggregate(batch[0]), Err: err.Error(), Attempts: attempts}
			if err = qr.Quarantine(ctx, cp, to, qd); err == nil {
				r.logQuarantine(qd)
			}
		}
		switch {
		case err == nil:
			q.cp.Store(to)
			lastCommit = time.Now()
			failures = 0
			signal(q.room)
		case errors.Is(err, ErrCheckpointMoved):
			now, cerr := r.sink.Checkpoint(ctx, q.p)
			if cerr != nil {
				return fmt.Errorf("projections: partition %d: %w", q.p, cerr)
			}
			if now < cp {
				return fmt.Errorf("projections: partition %d: checkpoint went back from %d to %d", q.p, cp, now)
			}
			q.cp.Store(now)
		case ctx.Err() != nil:
			return nil
		case until > 0:
			return fmt.Errorf("projections: partition %d: %w", q.p, err)
		default:
			failures++
			wait := min(time.Duration(failures)*100*time.Millisecond, 5*time.Second)
			r.log.Warn("projection: batch failed; retrying", slog.Int("partition", q.p), slog.Any("err", err), slog.Duration("in", wait))
			sleepCtx(ctx, wait)
		}
	}
}

// poisonCut returns how many of recs (the next batch, cut to the batch
// size) to apply at once: only the first when one at a time is asked
// for or it is known not to apply, else those before the first commit
// known not to apply.
func poisonCut[R any](pa path[R], recs []R, oneAtATime bool) int {
	n := len(recs)
	if oneAtATime {
		n = min(n, 1)
	}
	for i := range n {
		if pa.bad(recs[i]) != nil {
			return max(i, 1)
		}
	}
	return n
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
