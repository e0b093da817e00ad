package command

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// Store is what a Handler needs of the log: the methods of
// [eventlog.AggregateLog], which *streams.Store (JetStream) and
// *memlog.Log (in memory) have.
type Store interface {
	Append(ctx context.Context, c *events.Commit, expectedSeq uint64) (eventlog.AppendResult, error)
	Load(ctx context.Context, aggType, id string, afterSeq uint64) ([]eventlog.Record, error)
	Last(ctx context.Context, aggType, id string) (eventlog.Record, bool, error)
}

// Request is one command for one aggregate.
type Request[C any] struct {
	// AggregateID names the aggregate.
	AggregateID string
	// CommandID becomes the commit id. Give a deterministic one (derived
	// from an idempotency key or a causing event) so a retried command is
	// recognised as already applied; empty gets a random id.
	CommandID string
	// Command is what to decide.
	Command C
	// Metadata is stored with the commit; RecordedAt is set by the Handler.
	Metadata events.Metadata
	// AssumeNew says the aggregate most likely has no events yet (placing
	// an order under a fresh id). An uncached aggregate is then decided
	// from its initial state without reading the log first; if it does
	// exist, the append's expected sequence 0 conflicts and the command is
	// decided again on the real state. It saves a read per creation and
	// changes no outcome.
	AssumeNew bool
}

// Result is the outcome of a handled command.
type Result[S any] struct {
	// State is the aggregate's state after the command.
	State S
	// Version is the aggregate's version after the command (0: no events).
	Version uint64
	// Stream and Seq locate the aggregate's last commit: the position a
	// reader waits for to see this command's effect.
	Stream string
	Seq    uint64
	// Events are the events this call appended; none when the command
	// changed nothing or had been applied before.
	Events []events.Payload
	// Duplicate is true when a commit with the same CommandID was already
	// in the log, so nothing new was appended.
	Duplicate bool
}

// Errors returned by [Handler.Handle] and [Handler.State].
var (
	// ErrRetriesExhausted means the aggregate kept changing under the
	// command.
	ErrRetriesExhausted = errors.New("command: too many concurrent changes to the aggregate")
	// ErrCorruptHistory means the aggregate's commits do not form an
	// unbroken chain (a version gap or a prev_hash that does not link), so
	// no command is decided on it; `orderctl history` names the break.
	ErrCorruptHistory = errors.New("command: the aggregate's history is broken")
	// ErrNotYetReadable means [Handler.State] was asked for a state that
	// [Includes] a commit the log's reads do not return yet: on a cluster
	// a consumer can deliver a commit from a replica that applied it
	// before the stream leader, which every read here asks, has. Ask
	// again shortly (a process manager's runtime retries the message).
	ErrNotYetReadable = errors.New("command: the log does not show the commit asked for yet")
)

// Options tune a Handler. Zero values take the defaults.
type Options struct {
	// CacheSize bounds how many aggregate states are kept. Default 10000.
	CacheSize int
	// MaxAttempts bounds decide+append attempts per command. Default 10.
	MaxAttempts int
	// Now is the clock stamped into commits. Default time.Now.
	Now func() time.Time
	// RecentIDs is how many recent commit ids each cached aggregate keeps
	// to recognise a repeated command. Default 32.
	RecentIDs int
	// Observer, if set, is told the outcome of every command.
	Observer Observer
	// Signer, if set, signs every commit the Handler seals (decision
	// 016); nil appends unsigned commits.
	Signer events.CommitSigner
}

// Observer is told what became of each command: outcome is "appended",
// "unchanged" (decided no events), "duplicate" (already in the log),
// "refused" (a domain error) or "failed"; conflicts counts the appends
// that lost a race and were retried. It must be safe for concurrent use.
type Observer interface {
	Command(aggregate, outcome string, conflicts int, d time.Duration)
}

// Handler handles commands for one aggregate type. It is safe for
// concurrent use; commands for the same aggregate run one at a time.
type Handler[S, C any] struct {
	decider  aggregates.Decider[S, C]
	store    Store
	registry *events.Registry
	opts     Options
	locks    keyedMutex
	cache    *lru[entry[S]]
}

type entry[S any] struct {
	state   S
	version uint64
	stream  string
	seq     uint64
	hash    string
	recent  []string
}

// NewHandler returns a Handler for the aggregate type d describes.
func NewHandler[S, C any](d aggregates.Decider[S, C], store Store, registry *events.Registry, opts Options) (*Handler[S, C], error) {
	if d.Type == "" || d.Decide == nil || d.Evolve == nil || d.Initial == nil {
		return nil, errors.New("command: incomplete decider")
	}
	if store == nil || registry == nil {
		return nil, errors.New("command: store and registry are required")
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 10000
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RecentIDs <= 0 {
		opts.RecentIDs = 32
	}
	return &Handler[S, C]{decider: d, store: store, registry: registry, opts: opts, cache: newLRU[entry[S]](opts.CacheSize)}, nil
}

// Type is the aggregate type this Handler serves.
func (h *Handler[S, C]) Type() string { return h.decider.Type }

// Freshness says how new a state [Handler.State] must be. There are
// three: [Cached], [Current] and [Includes].
type Freshness struct {
	atLeast uint64 // the aggregate's commits up to this stream sequence
	current bool   // everything the log had acknowledged when the call began
}

var (
	// Cached asks for the newest state this handler knows: the state
	// after the last command it appended on the aggregate, or read of
	// it. It does not ask the log about an aggregate it has cached, and
	// does not wait for a command in flight on it, so reading a hot SKU's
	// price does not queue behind its reservations; what another
	// instance appended since may be missing. An aggregate it has not
	// cached is read from the log, as [Current] reads it: "not found" is
	// always the log's answer.
	Cached = Freshness{}
	// Current asks for every commit of the aggregate the log had
	// acknowledged when the call began, whoever appended it: a cached
	// state costs one read of the aggregate's last commit and is caught
	// up if it is behind. For reads that other processes must agree
	// with, such as the catalog an administrator looks at.
	Current = Freshness{current: true}
)

// Includes asks for a state that includes the aggregate's commit at
// stream sequence seq and every commit before it. A process manager
// handling a commit reads its aggregate with it: the log can deliver a
// commit before the command that appended it has updated this handler's
// cache, and a commit appended by another instance never reaches this
// cache by itself. A cached state older than seq waits for a command in
// flight on the aggregate in this process, then is caught up from the
// log (everything the stream leader has when it is read). If that still
// ends before seq (a consumer on a replica delivered the commit before
// the leader applied it), State returns [ErrNotYetReadable], never a
// state without the commit. A cached state at or after seq is answered
// as [Cached] answers it.
func Includes(seq uint64) Freshness { return Freshness{atLeast: seq} }

// State returns an aggregate's state as new as f asks, its version and
// the stream sequence of its last commit. An aggregate without events
// has version 0.
//
// Whatever f says, a command decided by [Handler.Handle] is never
// decided on a stale state (an append on one conflicts; a refusal or
// no-op on one is checked against the log first): freshness matters to
// callers that act on a state read without a command, such as a process
// manager choosing which command to send, or a query.
func (h *Handler[S, C]) State(ctx context.Context, id string, f Freshness) (Result[S], error) {
	if e, ok := h.cache.get(id); ok && e.seq >= f.atLeast {
		if !f.current {
			return e.result(), nil
		}
		last, found, err := h.store.Last(ctx, h.decider.Type, id)
		if err != nil {
			return Result[S]{}, fmt.Errorf("check %s %s is current: %w", h.decider.Type, id, err)
		}
		if !found || last.Seq <= e.seq {
			return e.result(), nil
		}
	}
	unlock := h.locks.lock(id)
	defer unlock()
	e, cached := h.cache.get(id)
	if !cached {
		// Read from the log: as current as f can ask.
		e, err := h.current(ctx, id)
		if err != nil {
			return Result[S]{}, err
		}
		return h.reached(id, e, f)
	}
	if !f.current && e.seq >= f.atLeast {
		// A command in flight while we waited brought it this far.
		return e.result(), nil
	}
	next, err := h.behind(ctx, id, e)
	if err != nil {
		return Result[S]{}, err
	}
	if next != nil {
		h.cache.put(id, next)
		e = next
	}
	return h.reached(id, e, f)
}

// reached returns e if it is as new as f asks: a state read from the log
// can still lack the commit [Includes] names, which the log delivered
// before its leader shows it.
func (h *Handler[S, C]) reached(id string, e *entry[S], f Freshness) (Result[S], error) {
	if e.seq < f.atLeast {
		return Result[S]{}, fmt.Errorf("%w: %s %s is read up to seq %d, the commit at seq %d is not there", ErrNotYetReadable, h.decider.Type, id, e.seq, f.atLeast)
	}
	return e.result(), nil
}

func (e *entry[S]) result() Result[S] {
	return Result[S]{State: e.state, Version: e.version, Stream: e.stream, Seq: e.seq}
}

// Handle decides req.Command against the aggregate's current state and
// appends the events it produces as one commit.
func (h *Handler[S, C]) Handle(ctx context.Context, req Request[C]) (res Result[S], err error) {
	if obs := h.opts.Observer; obs != nil {
		start, conflicts := time.Now(), 0
		defer func() { obs.Command(h.decider.Type, outcome(res, err), conflicts, time.Since(start)) }()
		return h.handle(ctx, req, &conflicts)
	}
	return h.handle(ctx, req, new(int))
}

func outcome[S any](res Result[S], err error) string {
	var de *aggregates.DomainError
	switch {
	case errors.As(err, &de):
		return "refused"
	case err != nil:
		return "failed"
	case res.Duplicate:
		return "duplicate"
	case len(res.Events) == 0:
		return "unchanged"
	}
	return "appended"
}

func (h *Handler[S, C]) handle(ctx context.Context, req Request[C], conflicts *int) (Result[S], error) {
	// Metadata goes into the commit beside the events: it must be as
	// storable as they are.
	if err := aggregates.RefuseText("metadata", req.Metadata.CheckText()); err != nil {
		return Result[S]{}, err
	}
	if req.CommandID == "" {
		req.CommandID = randomID()
	}
	unlock := h.locks.lock(req.AggregateID)
	defer unlock()

	// fresh says e was just read from the log; a cached (or assumed new)
	// state may be behind what another instance appended.
	e, cached := h.cache.get(req.AggregateID)
	fresh := false
	if !cached && req.AssumeNew {
		e = &entry[S]{state: h.decider.Initial(req.AggregateID)}
	} else if !cached {
		var err error
		if e, err = h.current(ctx, req.AggregateID); err != nil {
			return Result[S]{}, err
		}
		fresh = true
	}
	for attempt := 1; ; attempt++ {
		if e.seen(req.CommandID) {
			return Result[S]{State: e.state, Version: e.version, Stream: e.stream, Seq: e.seq, Duplicate: true}, nil
		}
		evs, err := h.decider.Decide(e.state, req.Command)
		if err != nil || len(evs) == 0 {
			// A refusal or a no-op appends nothing, so no conflict would
			// reveal a stale state: check that the log has nothing newer,
			// and decide again if it has.
			if !fresh {
				newer, nerr := h.behind(ctx, req.AggregateID, e)
				if nerr != nil {
					return Result[S]{}, nerr
				}
				fresh = true
				if newer != nil {
					e = newer
					h.cache.put(req.AggregateID, e)
					continue
				}
			}
			if err != nil {
				return Result[S]{}, err
			}
			return Result[S]{State: e.state, Version: e.version, Stream: e.stream, Seq: e.seq}, nil
		}
		commit, err := h.commit(req, e, evs)
		if err != nil {
			return Result[S]{}, err
		}
		res, err := h.store.Append(ctx, commit, e.seq)
		if err == nil && res.Duplicate {
			return h.duplicate(ctx, req.AggregateID, e, res)
		}
		if err == nil {
			next := h.advance(e, commit, evs, res)
			h.cache.put(req.AggregateID, next)
			return Result[S]{State: next.state, Version: next.version, Stream: next.stream, Seq: next.seq, Events: evs}, nil
		}
		if !errors.Is(err, eventlog.ErrConflict) {
			// The append may or may not have landed: forget the cached
			// state so the next command reads the log.
			h.cache.remove(req.AggregateID)
			return Result[S]{}, fmt.Errorf("append %s %s: %w", h.decider.Type, req.AggregateID, err)
		}
		*conflicts++
		if attempt >= h.opts.MaxAttempts {
			h.cache.remove(req.AggregateID)
			return Result[S]{}, fmt.Errorf("%w: %s %s after %d attempts", ErrRetriesExhausted, h.decider.Type, req.AggregateID, attempt)
		}
		// Another writer got there first: read what it wrote and decide
		// again on the newer state.
		if e, err = h.catchUp(ctx, req.AggregateID, e); err != nil {
			return Result[S]{}, err
		}
		h.cache.put(req.AggregateID, e)
	}
}

// duplicate answers a command whose commit the log already held: it was
// decided earlier, perhaps on another state, so the answer is the state
// the log has, not the events just decided. That state must include the
// earlier commit (at res.Seq): a checkout that read a reservation's state
// without it would think the SKU short and reject the order.
func (h *Handler[S, C]) duplicate(ctx context.Context, id string, e *entry[S], res eventlog.AppendResult) (Result[S], error) {
	e, err := h.catchUp(ctx, id, e)
	if err == nil && e.seq < res.Seq {
		err = fmt.Errorf("load %s %s: read up to seq %d, but the command's commit is at seq %d", h.decider.Type, id, e.seq, res.Seq)
	}
	if err != nil {
		h.cache.remove(id)
		return Result[S]{}, err
	}
	h.cache.put(id, e)
	return Result[S]{State: e.state, Version: e.version, Stream: e.stream, Seq: e.seq, Duplicate: true}, nil
}

// behind returns e caught up with the log if the log has commits after
// e.seq, or nil if e is current.
func (h *Handler[S, C]) behind(ctx context.Context, id string, e *entry[S]) (*entry[S], error) {
	last, ok, err := h.store.Last(ctx, h.decider.Type, id)
	if err != nil {
		return nil, fmt.Errorf("check %s %s is current: %w", h.decider.Type, id, err)
	}
	if !ok || last.Seq <= e.seq {
		return nil, nil
	}
	return h.catchUp(ctx, id, e)
}

// current returns the cached state or reads it from the log. An
// aggregate the log does not have is not cached: its first commit may
// come from another instance, which this cache would never hear of, and
// "not found" must be asked of the log each time.
func (h *Handler[S, C]) current(ctx context.Context, id string) (*entry[S], error) {
	if e, ok := h.cache.get(id); ok {
		return e, nil
	}
	e := &entry[S]{state: h.decider.Initial(id)}
	e, err := h.catchUp(ctx, id, e)
	if err != nil {
		return nil, err
	}
	if e.version > 0 {
		h.cache.put(id, e)
	}
	return e, nil
}

// catchUp applies the commits after e.seq to a copy of e.
func (h *Handler[S, C]) catchUp(ctx context.Context, id string, e *entry[S]) (*entry[S], error) {
	recs, err := h.store.Load(ctx, h.decider.Type, id, e.seq)
	if err != nil {
		return nil, fmt.Errorf("load %s %s: %w", h.decider.Type, id, err)
	}
	next := *e
	next.recent = append([]string(nil), e.recent...)
	for _, r := range recs {
		c := r.Commit
		if c.Version != next.version+1 {
			return nil, fmt.Errorf("%w: %s %s: commit at seq %d has version %d, want %d", ErrCorruptHistory, h.decider.Type, id, r.Seq, c.Version, next.version+1)
		}
		if c.PrevHash != next.hash {
			return nil, fmt.Errorf("%w: %s %s: commit v%d does not link to the previous hash", ErrCorruptHistory, h.decider.Type, id, c.Version)
		}
		payloads, err := h.registry.DecodeAll(c)
		if err != nil {
			return nil, fmt.Errorf("load %s %s: %w", h.decider.Type, id, err)
		}
		next.state = h.decider.Fold(next.state, payloads)
		next.version = c.LastVersion()
		next.stream, next.seq, next.hash = r.Stream, r.Seq, c.Hash
		next.remember(c.CommitID, h.opts.RecentIDs)
	}
	return &next, nil
}

func (h *Handler[S, C]) commit(req Request[C], e *entry[S], evs []events.Payload) (*events.Commit, error) {
	c := &events.Commit{
		CommitID:      req.CommandID,
		AggregateType: h.decider.Type,
		AggregateID:   req.AggregateID,
		Version:       e.version + 1,
		Metadata:      req.Metadata,
	}
	c.Metadata.RecordedAt = h.opts.Now().UTC()
	for _, p := range evs {
		ev, err := h.registry.Encode(p)
		if err != nil {
			return nil, err
		}
		c.Events = append(c.Events, ev)
	}
	if err := c.SealSigned(e.hash, h.opts.Signer); err != nil {
		return nil, err
	}
	return c, nil
}

func (h *Handler[S, C]) advance(e *entry[S], c *events.Commit, evs []events.Payload, res eventlog.AppendResult) *entry[S] {
	next := *e
	next.recent = append([]string(nil), e.recent...)
	next.state = h.decider.Fold(e.state, evs)
	next.version = c.LastVersion()
	next.stream, next.seq, next.hash = res.Stream, res.Seq, c.Hash
	next.remember(c.CommitID, h.opts.RecentIDs)
	return &next
}

func (e *entry[S]) seen(id string) bool {
	for _, r := range e.recent {
		if r == id {
			return true
		}
	}
	return false
}

func (e *entry[S]) remember(id string, max int) {
	e.recent = append(e.recent, id)
	if len(e.recent) > max {
		e.recent = e.recent[len(e.recent)-max:]
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// keyedMutex serialises work per key and forgets keys nobody holds.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*refMutex{}
	}
	m := k.locks[key]
	if m == nil {
		m = &refMutex{}
		k.locks[key] = m
	}
	m.refs++
	k.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		k.mu.Lock()
		if m.refs--; m.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
