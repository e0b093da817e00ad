package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/orderlog"
)

// Sink applies commits to one index; see [projections.Sink]. The live
// sink ([Store.Sink]) reads its checkpoint through the alias and writes
// to whichever index the alias points at, so after a rebuild swapped the
// alias it continues in the new index from that index's checkpoint. It
// is safe for concurrent use.
//
// A commit is applied as follows: read the partition's checkpoint
// document (real time) and refuse the batch if it is not where the batch
// starts; fold the batch's commits into the documents they touch (reading
// those that continue an order with a real-time multi-get); write each
// document with the bulk API at version_type=external, version = the
// stream sequence of its last commit (Elasticsearch refuses a version at
// or below the stored one with 409: already applied, so a replay or a
// late writer never takes a document back); then move the checkpoint
// with optimistic concurrency (if_seq_no/if_primary_term), a 409 there
// meaning another writer moved it first.
type Sink struct {
	st *Store
	// index is the fixed index of a rebuild's sink; empty for the live
	// sink, which follows the alias.
	index string

	// parts caches, per partition, the checkpoint this sink last wrote
	// and the documents it wrote, valid while that checkpoint is still
	// the stored one (the conditional checkpoint write proves it): it
	// saves reading the checkpoint and the continued documents back
	// before every batch. The live sink reads its checkpoint through the
	// alias again at least every aliasRecheck, to notice a rebuild's
	// swap.
	mu    sync.Mutex
	parts map[int]*partState
}

// partState is one partition's cache.
type partState struct {
	cp   cpState
	at   time.Time // when cp was last read through the alias
	docs map[string]*Document
}

// aliasRecheck is how long the live sink trusts its cached checkpoint
// before reading it through the alias again.
const aliasRecheck = time.Second

// maxCachedDocs bounds one partition's document cache; a full cache
// starts over.
const maxCachedDocs = 20000

func (k *Sink) takeState(p int) *partState {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.parts[p]
	delete(k.parts, p)
	return st
}

func (k *Sink) putState(p int, st *partState) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.parts == nil {
		k.parts = map[int]*partState{}
	}
	k.parts[p] = st
}

var _ projections.Sink = (*Sink)(nil)

// Sink returns the live sink.
func (s *Store) Sink() *Sink { return &Sink{st: s} }

// sinkFor returns a sink writing the given index (a rebuild's).
func (s *Store) sinkFor(index string) *Sink { return &Sink{st: s, index: index} }

func (k *Sink) target() string {
	if k.index != "" {
		return k.index
	}
	return k.st.alias
}

// cpState is a checkpoint document as read, with what a conditional
// write needs.
type cpState struct {
	index   string
	seq     uint64
	found   bool
	seqNo   int64
	primary int64
}

func (k *Sink) readCheckpoint(ctx context.Context, p int) (cpState, error) {
	if err := k.st.EnsureIndex(ctx); err != nil {
		return cpState{}, err
	}
	var out struct {
		Index       string        `json:"_index"`
		Found       bool          `json:"found"`
		SeqNo       int64         `json:"_seq_no"`
		PrimaryTerm int64         `json:"_primary_term"`
		Source      checkpointDoc `json:"_source"`
	}
	err := k.st.do(ctx, "GET", "/"+k.target()+"/_doc/"+checkpointID(p)+"?realtime=true", nil, &out)
	if statusOf(err) == http.StatusNotFound {
		// No checkpoint yet: a fresh index.
		idx, ierr := k.concrete(ctx)
		if ierr != nil {
			return cpState{}, ierr
		}
		return cpState{index: idx}, nil
	}
	if err != nil {
		return cpState{}, fmt.Errorf("search: checkpoint of partition %d: %w", p, err)
	}
	return cpState{index: out.Index, seq: out.Source.Seq, found: out.Found, seqNo: out.SeqNo, primary: out.PrimaryTerm}, nil
}

func (k *Sink) concrete(ctx context.Context) (string, error) {
	if k.index != "" {
		return k.index, nil
	}
	return k.st.liveIndex(ctx)
}

// Checkpoint implements [projections.Sink]. What it reads also starts the
// partition's cache, so the batch that follows does not read it again.
func (k *Sink) Checkpoint(ctx context.Context, partition int) (uint64, error) {
	cp, err := k.readCheckpoint(ctx, partition)
	if err != nil {
		return 0, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.parts == nil {
		k.parts = map[int]*partState{}
	}
	if st := k.parts[partition]; st != nil && st.cp == cp {
		st.at = time.Now()
	} else {
		k.parts[partition] = &partState{cp: cp, at: time.Now(), docs: map[string]*Document{}}
	}
	return cp.seq, nil
}

// Commit implements [projections.Sink].
func (k *Sink) Commit(ctx context.Context, partition int, from, to uint64, recs []eventlog.Record) error {
	cs := make([]*orderlog.Commit, len(recs))
	for i, r := range recs {
		c, err := k.st.dec.FromRecord(r)
		if err != nil {
			return projections.Poison(fmt.Errorf("search: partition %d: %w", partition, err))
		}
		cs[i] = c
	}
	return k.commit(ctx, partition, from, to, cs)
}

// commit is [Sink.Commit] for decoded commits.
func (k *Sink) commit(ctx context.Context, partition int, from, to uint64, recs []*orderlog.Commit) error {
	st := k.takeState(partition)
	if st == nil || st.cp.seq != from || (k.index == "" && time.Since(st.at) > aliasRecheck) {
		cp, err := k.readCheckpoint(ctx, partition)
		if err != nil {
			return err
		}
		if st == nil || st.cp != cp {
			st = &partState{docs: map[string]*Document{}}
		}
		st.cp, st.at = cp, time.Now()
	}
	if st.cp.seq != from {
		return projections.ErrCheckpointMoved
	}
	if len(recs) > 0 {
		docs, err := k.fold(ctx, st.cp.index, recs, st.docs)
		if err != nil {
			return fmt.Errorf("search: partition %d: %w", partition, err)
		}
		stale, err := k.st.index(ctx, st.cp.index, docs)
		if err != nil {
			return fmt.Errorf("search: partition %d: %w", partition, err)
		}
		if len(st.docs)+len(docs) > maxCachedDocs {
			clear(st.docs)
		}
		for _, d := range docs {
			st.docs[d.OrderID] = d
		}
		for _, id := range stale {
			delete(st.docs, id) // the stored one is newer than ours
		}
	}
	cp, err := k.moveCheckpoint(ctx, st.cp, partition, to)
	if err != nil {
		return err
	}
	st.cp = cp
	k.putState(partition, st)
	return nil
}

func (k *Sink) moveCheckpoint(ctx context.Context, cp cpState, p int, to uint64) (cpState, error) {
	if to == cp.seq && cp.found {
		return cp, nil
	}
	path := "/" + cp.index + "/_doc/" + checkpointID(p)
	if cp.found {
		path += "?if_seq_no=" + strconv.FormatInt(cp.seqNo, 10) + "&if_primary_term=" + strconv.FormatInt(cp.primary, 10)
	} else {
		path += "?op_type=create"
	}
	var out struct {
		SeqNo       int64 `json:"_seq_no"`
		PrimaryTerm int64 `json:"_primary_term"`
	}
	err := k.st.do(ctx, "PUT", path, checkpointDoc{DocType: docTypeCheckpoint, Partition: p, Seq: to, UpdatedAt: time.Now().UTC()}, &out)
	if statusOf(err) == http.StatusConflict {
		return cpState{}, projections.ErrCheckpointMoved
	}
	if err != nil {
		return cpState{}, fmt.Errorf("search: move checkpoint of partition %d: %w", p, err)
	}
	return cpState{index: cp.index, seq: to, found: true, seqNo: out.SeqNo, primary: out.PrimaryTerm}, nil
}

// fold returns the documents recs leave behind, one per order however
// many of the batch's commits it has, continuing the stored documents of
// orders whose history began before the batch (known holds those this
// sink wrote and still trusts; the others are read back).
func (k *Sink) fold(ctx context.Context, index string, recs []*orderlog.Commit, known map[string]*Document) ([]*Document, error) {
	docs := make(map[string]*Document, len(recs)/2+1)
	var need []string
	var order []string
	for _, c := range recs {
		if c.AggregateType != eventlog.TypeOrder {
			return nil, fmt.Errorf("seq %d: a %s commit in the order stream", c.Seq, c.AggregateType)
		}
		id := c.AggregateID
		if _, ok := docs[id]; ok {
			continue
		}
		order = append(order, id)
		if d := known[id]; d != nil {
			cp := *d
			docs[id] = &cp
			continue
		}
		docs[id] = nil
		if c.Version > 1 {
			need = append(need, id)
		}
	}
	if len(need) > 0 {
		if err := k.st.getDocs(ctx, index, need, docs); err != nil {
			return nil, err
		}
	}
	for _, c := range recs {
		id := c.AggregateID
		d, err := apply(docs[id], c)
		if errors.Is(err, errOutOfStep) {
			d, err = k.st.heal(ctx, id, c.Seq, docs[id])
		} else if err != nil {
			err = projections.Poison(err)
		}
		if err != nil {
			return nil, err
		}
		docs[id] = d
	}
	out := make([]*Document, 0, len(order))
	for _, id := range order {
		out = append(out, docs[id])
	}
	return out, nil
}

// heal rebuilds an order's document from its history up to seq, when the
// stored one does not continue (a document lost with a restored index,
// say). Without a Loader it reports the gap.
func (s *Store) heal(ctx context.Context, id string, seq uint64, have *Document) (*Document, error) {
	if s.opts.Loader == nil {
		return nil, projections.Poison(fmt.Errorf("%w: order %s at seq %d (no loader to rebuild it)", errOutOfStep, id, seq))
	}
	recs, err := s.opts.Loader.Load(ctx, eventlog.TypeOrder, id, 0)
	if err != nil {
		return nil, fmt.Errorf("search: load order %s: %w", id, err)
	}
	var d *Document
	for _, r := range recs {
		if r.Seq > seq {
			break
		}
		c, err := s.dec.FromRecord(r)
		if err != nil {
			return nil, projections.Poison(err)
		}
		if d, err = apply(d, c); err != nil {
			return nil, projections.Poison(err)
		}
	}
	if d == nil {
		return nil, projections.Poison(fmt.Errorf("search: order %s has no history up to seq %d", id, seq))
	}
	if have != nil && have.Seq > d.Seq {
		return have, nil
	}
	s.log.Info("search: rebuilt a document from the order's history", "order", id, "seq", d.Seq)
	return d, nil
}

// getDocs reads documents by id from index (real time) into out.
func (s *Store) getDocs(ctx context.Context, index string, ids []string, out map[string]*Document) error {
	var res struct {
		Docs []struct {
			ID     string          `json:"_id"`
			Found  bool            `json:"found"`
			Source json.RawMessage `json:"_source"`
		} `json:"docs"`
	}
	if err := s.do(ctx, "POST", "/"+index+"/_mget?realtime=true", map[string]any{"ids": ids}, &res); err != nil {
		return fmt.Errorf("read documents: %w", err)
	}
	for _, d := range res.Docs {
		if !d.Found {
			continue
		}
		doc := &Document{}
		if err := json.Unmarshal(d.Source, doc); err != nil {
			return fmt.Errorf("document %s: %w", d.ID, err)
		}
		out[d.ID] = doc
	}
	return nil
}

// index writes docs to index in one bulk request, each at external
// version = its Seq, and returns the ids Elasticsearch holds a later
// version of: a 409 means the stored document is at that version or
// later, already applied. Any other failure fails the call.
func (s *Store) index(ctx context.Context, index string, docs []*Document) (stale []string, err error) {
	if len(docs) == 0 {
		return nil, nil
	}
	body := make([]byte, 0, len(docs)*1024)
	for _, d := range docs {
		body = append(body, `{"index":{"_id":`...)
		body = appendString(body, d.OrderID)
		body = append(body, `,"version":`...)
		body = strconv.AppendUint(body, d.Seq, 10)
		body = append(body, `,"version_type":"external"}}`+"\n"...)
		body = appendDocument(body, d)
		body = append(body, '\n')
	}
	var res struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			ID     string `json:"_id"`
			Status int    `json:"status"`
			Error  struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error"`
		} `json:"items"`
	}
	// Only failures' details come back: Elasticsearch writes, and we
	// read, a few bytes per document instead of its whole result.
	path := "/" + index + "/_bulk?filter_path=errors,items.*.status,items.*._id,items.*.error.type,items.*.error.reason"
	if err := s.do(ctx, "POST", path, body, &res); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ErrUnavailable) {
			return nil, fmt.Errorf("bulk: %w", err)
		}
		return nil, fmt.Errorf("%w: bulk: %v", ErrUnavailable, err)
	}
	if !res.Errors {
		return nil, nil
	}
	for _, item := range res.Items {
		for _, r := range item {
			switch {
			case r.Status < 300:
			case r.Status == http.StatusConflict:
				stale = append(stale, r.ID) // the document is at this version or later
			case r.Status == http.StatusBadRequest: // the document itself is refused
				return nil, projections.Poison(fmt.Errorf("bulk: index %s: %d %s: %s", r.ID, r.Status, r.Error.Type, r.Error.Reason))
			default:
				return nil, fmt.Errorf("%w: bulk: index %s: %d %s: %s", ErrUnavailable, r.ID, r.Status, r.Error.Type, r.Error.Reason)
			}
		}
	}
	return stale, nil
}
