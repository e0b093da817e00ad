package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/pause"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/orderlog"
)

// Name is the projection's name in orderctl.
const Name = "search"

// DefaultPrefix starts the names of Ordo's indices, alias and template.
const DefaultPrefix = "ordo-"

// ErrUnavailable means Elasticsearch did not answer (or answered with a
// server error): search is down, the rest of Ordo is not.
var ErrUnavailable = errors.New("search: elasticsearch unavailable")

// ErrBadQuery means the search request itself is invalid (the API answers
// 400).
var ErrBadQuery = errors.New("search: bad query")

// Loader reads one order's history; *streams.Store implements it. The
// projection uses it to rebuild a document that is out of step with the
// log (which a lost or restored index can cause).
type Loader interface {
	Load(ctx context.Context, aggType, id string, afterSeq uint64) ([]eventlog.Record, error)
}

// Options configure [New].
type Options struct {
	// Prefix starts every index, alias and template name (default
	// [DefaultPrefix]); tests give each test its own.
	Prefix string
	// Partitions is the ORDERS stream's partition count. Required.
	Partitions int
	// Loader, if set, heals documents out of step with the log.
	Loader Loader
	// Logger receives what the store cannot return (default: discard).
	Logger *slog.Logger
	// Log, if set, identifies the log the index is built from
	// ([streams.Store.Identity] of ORDERS). New indices record it in
	// their mapping's _meta; [Store.Status] reports the live index's, so
	// an index of another log is recognised.
	Log string
}

// Store is the customer-service search index: the index template, the
// versioned indices behind one alias, the live [Sink], search and
// rebuild. It is safe for concurrent use. New does no I/O: the index is
// set up on first use, so Ordo starts while Elasticsearch is down.
type Store struct {
	// es is the client every request goes through; [Store.SetClient]
	// replaces it when the server moves.
	es    atomic.Pointer[elasticsearch.Client]
	opts  Options
	log   *slog.Logger
	dec   *orderlog.Decoder
	alias string

	mu    sync.Mutex
	ready bool

	degraded degradedOrders
}

// NewClient returns a go-elasticsearch client for url with short
// timeouts, so a dead cluster is noticed quickly.
func NewClient(rawURL string) (*elasticsearch.Client, error) {
	if _, err := url.Parse(rawURL); err != nil || rawURL == "" {
		return nil, fmt.Errorf("search: elasticsearch url %q is invalid", rawURL)
	}
	return elasticsearch.NewClient(elasticsearch.Config{
		Addresses:  []string{rawURL},
		MaxRetries: 1,
		Transport: &http.Transport{
			MaxIdleConnsPerHost:   64,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
		},
	})
}

// New returns the Store.
func New(es *elasticsearch.Client, opts Options) (*Store, error) {
	if es == nil || opts.Partitions < 1 {
		return nil, errors.New("search: a client and the partition count are required")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	reg, err := events.Standard()
	if err != nil {
		return nil, err
	}
	s := &Store{opts: opts, log: opts.Logger, dec: orderlog.NewDecoder(reg), alias: opts.Prefix + "orders"}
	s.es.Store(es)
	return s, nil
}

// SetClient sends every later request through es: the Elasticsearch
// the store uses moved to another address (go-elasticsearch cannot
// change a client's addresses, so the whole client is replaced).
// Requests in flight finish on the former client. The index is checked
// again on the next use, in case the server there is not the same.
func (s *Store) SetClient(es *elasticsearch.Client) {
	if es == nil {
		return
	}
	s.es.Store(es)
	s.mu.Lock()
	s.ready = false
	s.mu.Unlock()
}

// Alias returns the alias searches read: it points at the live index.
func (s *Store) Alias() string { return s.alias }

// indexName returns the name of version v's index.
func (s *Store) indexName(v int) string { return fmt.Sprintf("%sorders_v%d", s.opts.Prefix, v) }

// esError is an error answer of Elasticsearch.
type esError struct {
	Status int
	Type   string
	Reason string
}

func (e *esError) Error() string {
	return fmt.Sprintf("elasticsearch %d %s: %s", e.Status, e.Type, e.Reason)
}

func statusOf(err error) int {
	var e *esError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// do sends one request. body is marshalled as JSON unless it is already
// []byte; out, if set, receives a 2xx answer. Connection failures and
// server errors (and 429, too many requests) wrap [ErrUnavailable]; other
// error answers are *esError.
func (s *Store) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.es.Load().Perform(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s %s: %v", ErrUnavailable, method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb struct {
			Error json.RawMessage `json:"error"`
		}
		e := &esError{Status: resp.StatusCode}
		if json.Unmarshal(raw, &eb) == nil && len(eb.Error) > 0 {
			var d struct{ Type, Reason string }
			if json.Unmarshal(eb.Error, &d) == nil && d.Type != "" {
				e.Type, e.Reason = d.Type, d.Reason
			} else {
				e.Reason = string(eb.Error)
			}
		} else {
			e.Reason = string(raw)
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			// 429: Elasticsearch sheds load (a full queue, a circuit
			// breaker): as unavailable as a 503.
			return fmt.Errorf("%w: %s %s: %v", ErrUnavailable, method, path, e)
		}
		return e
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%w: decode %s %s: %v", ErrUnavailable, method, path, err)
	}
	return nil
}

// template is the index template of every version's index.
func (s *Store) template() map[string]any {
	kwLower := map[string]any{"type": "keyword", "normalizer": "lowercase"}
	return map[string]any{
		"index_patterns": []string{s.opts.Prefix + "orders_v*"},
		"priority":       100,
		"template": map[string]any{
			"settings": map[string]any{
				"number_of_shards":   1,
				"number_of_replicas": 0,
				"refresh_interval":   "1s",
			},
			"mappings": map[string]any{
				"_meta":   map[string]any{"ordo_log": s.opts.Log},
				"dynamic": false,
				"properties": map[string]any{
					"doc_type":    map[string]any{"type": "keyword"},
					"order_id":    map[string]any{"type": "keyword"},
					"customer_id": map[string]any{"type": "keyword"},
					"customer":    map[string]any{"type": "object", "enabled": false},
					// The standard tokenizer makes every CJK character a
					// token: a phrase of them finds a Chinese name or part
					// of it; Latin names are words. index_prefixes serves
					// match_bool_prefix ("zha" finds Zhang) without the
					// edge_ngram filter this distribution lacks.
					"name": map[string]any{
						"type": "text", "analyzer": "standard",
						"index_prefixes": map[string]any{"min_chars": 1, "max_chars": 10},
						"fields":         map[string]any{"kw": kwLower},
					},
					"email": map[string]any{
						"type":   "keyword",
						"fields": map[string]any{"text": map[string]any{"type": "text", "analyzer": "standard"}},
					},
					"phone_digits":    map[string]any{"type": "keyword"},
					"phone_tails":     map[string]any{"type": "keyword"},
					"skus":            kwLower,
					"status":          map[string]any{"type": "keyword"},
					"payment_status":  map[string]any{"type": "keyword"},
					"payment_id":      map[string]any{"type": "keyword"},
					"tracking_number": kwLower,
					"carrier":         map[string]any{"type": "keyword"},
					"total_amount":    map[string]any{"type": "long"},
					"currency":        map[string]any{"type": "keyword"},
					"city":            map[string]any{"type": "text", "analyzer": "standard"},
					"created_at":      map[string]any{"type": "date"},
					"updated_at":      map[string]any{"type": "date"},
					"version":         map[string]any{"type": "long"},
					"seq":             map[string]any{"type": "long"},
					"deleted":         map[string]any{"type": "boolean"},
					"partition":       map[string]any{"type": "integer"},
				},
			},
		},
	}
}

// EnsureIndex puts the index template and, if the alias does not exist
// yet, creates version 1's index behind it. It is idempotent and cheap
// once it has succeeded.
func (s *Store) EnsureIndex(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	if err := s.do(ctx, "PUT", "/_index_template/"+s.alias, s.template(), nil); err != nil {
		return fmt.Errorf("search: index template: %w", err)
	}
	if _, err := s.liveIndex(ctx); err == nil {
		s.ready = true
		return nil
	} else if statusOf(err) != http.StatusNotFound {
		return err
	}
	body := map[string]any{"aliases": map[string]any{s.alias: map[string]any{}}}
	err := s.do(ctx, "PUT", "/"+s.indexName(1), body, nil)
	if err != nil && statusOf(err) != http.StatusBadRequest { // 400: it exists (another instance made it)
		return fmt.Errorf("search: create %s: %w", s.indexName(1), err)
	}
	if _, err := s.liveIndex(ctx); err != nil {
		return err
	}
	s.ready = true
	return nil
}

// liveIndex returns the index the alias points at.
func (s *Store) liveIndex(ctx context.Context) (string, error) {
	var out map[string]any
	if err := s.do(ctx, "GET", "/_alias/"+s.alias, nil, &out); err != nil {
		return "", err
	}
	if len(out) != 1 {
		return "", fmt.Errorf("search: alias %s points at %d indices", s.alias, len(out))
	}
	for k := range out {
		return k, nil
	}
	return "", nil
}

// versions returns the existing versions' numbers, ascending.
func (s *Store) versions(ctx context.Context) ([]int, error) {
	var out map[string]any
	err := s.do(ctx, "GET", "/"+s.opts.Prefix+"orders_v*?expand_wildcards=open", nil, &out)
	if err != nil {
		return nil, err
	}
	var vs []int
	for name := range out {
		if n, err := strconv.Atoi(strings.TrimPrefix(name, s.opts.Prefix+"orders_v")); err == nil {
			vs = append(vs, n)
		}
	}
	sort.Ints(vs)
	return vs, nil
}

func checkpointID(p int) string { return "~checkpoint~" + strconv.Itoa(p) }

// checkpointDoc is a partition's checkpoint, stored in the index it
// describes.
type checkpointDoc struct {
	DocType   string    `json:"doc_type"`
	Partition int       `json:"partition"`
	Seq       uint64    `json:"seq"`
	UpdatedAt time.Time `json:"updated_at"`
}

// checkpoints reads every partition's checkpoint from target (an index
// or the alias) in one real-time multi-get; it also returns the
// concrete index.
func (s *Store) checkpoints(ctx context.Context, target string) ([]uint64, string, error) {
	ids := make([]string, s.opts.Partitions)
	for p := range ids {
		ids[p] = checkpointID(p)
	}
	var out struct {
		Docs []struct {
			Index  string        `json:"_index"`
			Found  bool          `json:"found"`
			Source checkpointDoc `json:"_source"`
		} `json:"docs"`
	}
	if err := s.do(ctx, "POST", "/"+target+"/_mget?realtime=true", map[string]any{"ids": ids}, &out); err != nil {
		return nil, "", err
	}
	cps := make([]uint64, s.opts.Partitions)
	index := ""
	for p, d := range out.Docs {
		if d.Found && p < len(cps) {
			cps[p] = d.Source.Seq
		}
		if d.Index != "" {
			index = d.Index
		}
	}
	return cps, index, nil
}

// Checkpoints returns the live index's checkpoint per partition.
func (s *Store) Checkpoints(ctx context.Context) ([]uint64, error) {
	if err := s.EnsureIndex(ctx); err != nil {
		return nil, err
	}
	cps, _, err := s.checkpoints(ctx, s.alias)
	return cps, err
}

// ResetCheckpoints sets every checkpoint of the live index back to 0, so
// the projection replays the whole log into it (the documents' versions
// keep what is already applied from going back).
func (s *Store) ResetCheckpoints(ctx context.Context) error {
	index, err := s.liveIndex(ctx)
	if err != nil {
		return err
	}
	for p := 0; p < s.opts.Partitions; p++ {
		if err := s.do(ctx, "DELETE", "/"+index+"/_doc/"+checkpointID(p), nil, nil); err != nil && statusOf(err) != http.StatusNotFound {
			return err
		}
	}
	return nil
}

// Refresh makes everything indexed so far visible to search.
func (s *Store) Refresh(ctx context.Context) error {
	return s.do(ctx, "POST", "/"+s.alias+"/_refresh", nil, nil)
}

// WaitFor waits until every partition's checkpoint in the live index has
// reached seq and then refreshes the index, so a search sees everything
// up to seq. It reports false if ctx ends first.
func (s *Store) WaitFor(ctx context.Context, seq uint64) (bool, error) {
	if err := s.EnsureIndex(ctx); err != nil {
		return false, err
	}
	err := pause.Until(ctx, time.Millisecond, 20*time.Millisecond, func() (bool, error) {
		cps, _, err := s.checkpoints(ctx, s.alias)
		if err != nil || minOf(cps) < seq {
			return false, err
		}
		return true, s.Refresh(ctx)
	})
	switch {
	case err == nil:
		return true, nil
	case ctx.Err() != nil:
		return false, nil
	}
	return false, err
}

func minOf(xs []uint64) uint64 {
	if len(xs) == 0 {
		return 0
	}
	m := xs[0]
	for _, x := range xs[1:] {
		m = min(m, x)
	}
	return m
}

// Status is the search projection's state for operators.
type Status struct {
	Index string `json:"index"`
	// Version is the live index's N (<prefix>orders_vN).
	Version int `json:"version"`
	// State is "live" (caught up with the log) or "catching_up".
	State string `json:"state"`
	// Log is the identity of the log the live index was built from
	// (empty if it was made without one).
	Log         string   `json:"log,omitempty"`
	Checkpoint  uint64   `json:"checkpoint"`
	Checkpoints []uint64 `json:"checkpoints"`
	Lag         uint64   `json:"lag"`
	// Quarantine lists the commits set aside but not resolved.
	Quarantine []projections.QuarantineView `json:"quarantine"`
}

// View returns the status, measured against the log's last sequence
// streamLast, as the API and orderctl show it: the live index is the
// one version, and Elasticsearch holds no leases.
func (st Status) View(streamLast uint64) projections.View {
	v := projections.View{
		Name: Name, State: st.State, StreamLastSeq: streamLast, Version: st.Version, Checkpoint: st.Checkpoint, Lag: projections.Lag(st.Lag),
		Versions:   []projections.VersionView{{Version: st.Version, State: "live", Checkpoint: st.Checkpoint, Lag: st.Lag, Checkpoints: st.Checkpoints}},
		Leases:     []projections.LeaseView{},
		Quarantine: st.Quarantine,
	}
	v.OpenQuarantines, _ = projections.CountQuarantine(st.Quarantine)
	return v
}

// UnavailableView is the search projection's view when its status
// cannot be read (Elasticsearch unreachable, or the index refused):
// state "unavailable", the lag unknown (nil, not 0) and err as the
// reason.
func UnavailableView(streamLast uint64, err error) projections.View {
	reason := "the status could not be read"
	if err != nil {
		reason = err.Error()
	}
	return projections.View{Name: Name, State: "unavailable", StreamLastSeq: streamLast, Reason: reason,
		Versions: []projections.VersionView{}, Leases: []projections.LeaseView{}, Quarantine: []projections.QuarantineView{}}
}

// Status returns the live index, its checkpoints and its lag behind
// streamLast.
func (s *Store) Status(ctx context.Context, streamLast uint64) (Status, error) {
	if err := s.EnsureIndex(ctx); err != nil {
		return Status{}, err
	}
	cps, index, err := s.checkpoints(ctx, s.alias)
	if err != nil {
		return Status{}, err
	}
	st := Status{Index: index, Version: IndexVersion(index), State: "live", Checkpoint: minOf(cps), Checkpoints: cps}
	if streamLast > st.Checkpoint {
		st.Lag = streamLast - st.Checkpoint
		st.State = "catching_up"
	}
	var mapping map[string]struct {
		Mappings struct {
			Meta struct {
				Log string `json:"ordo_log"`
			} `json:"_meta"`
		} `json:"mappings"`
	}
	if err := s.do(ctx, "GET", "/"+index+"/_mapping", nil, &mapping); err != nil {
		return Status{}, err
	}
	st.Log = mapping[index].Mappings.Meta.Log
	if st.Quarantine, err = s.Quarantined(ctx); err != nil {
		return Status{}, err
	}
	return st, nil
}

// DeleteAll removes every index and the template of this store's prefix
// (tests and operators starting over).
func (s *Store) DeleteAll(ctx context.Context) error {
	s.mu.Lock()
	s.ready = false
	s.mu.Unlock()
	if err := s.do(ctx, "DELETE", "/"+s.opts.Prefix+"orders_v*", nil, nil); err != nil && statusOf(err) != http.StatusNotFound {
		return err
	}
	if err := s.do(ctx, "DELETE", "/_index_template/"+s.alias, nil, nil); err != nil && statusOf(err) != http.StatusNotFound {
		return err
	}
	return nil
}

// All returns every order document of the live index, soft-deleted ones
// too (for tests: at most 100,000).
func (s *Store) All(ctx context.Context) ([]Document, error) {
	var out []Document
	err := s.eachDocument(ctx, s.alias, func(_ string, _ uint64, d *Document) error {
		out = append(out, *d)
		if len(out) >= 100000 {
			return errStopReading
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
