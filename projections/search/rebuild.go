package search

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/ordo-shop/ordo/projections"
)

// RebuildOptions tune [Store.Rebuild].
type RebuildOptions struct {
	// BatchSize is the most commits per bulk request (default the
	// runner's).
	BatchSize int
	// Rounds bounds how many catch-up rounds run before the swap while
	// the live index stays ahead (default 5).
	Rounds int
}

// Rebuild builds the next version's index from the whole log and swaps
// the alias to it in one atomic alias update, without stopping search or
// the live projector: it deletes indices older than the live one, creates
// orders_vN+1 (the current template), replays the log into it until each
// of its checkpoints has reached the live index's, then swaps, closes the
// previous index to writes and catches the new one up once more (what a
// live sink wrote to the previous index meanwhile). The live
// [Sink] notices the swap on its next batch (its checkpoint read through
// the alias no longer matches) and continues in the new index from the
// new index's checkpoints. The previous index stays until the next
// rebuild. It returns the new index's name.
func (s *Store) Rebuild(ctx context.Context, src projections.Source, opts RebuildOptions) (string, error) {
	if opts.Rounds <= 0 {
		opts.Rounds = 5
	}
	if err := s.EnsureIndex(ctx); err != nil {
		return "", err
	}
	live, err := s.liveIndex(ctx)
	if err != nil {
		return "", err
	}
	vs, err := s.versions(ctx)
	if err != nil {
		return "", err
	}
	next := 1
	if len(vs) > 0 {
		next = vs[len(vs)-1] + 1
	}
	for _, v := range vs {
		if name := s.indexName(v); name != live {
			if err := s.do(ctx, "DELETE", "/"+name, nil, nil); err != nil && statusOf(err) != http.StatusNotFound {
				return "", fmt.Errorf("search: drop retired %s: %w", name, err)
			}
		}
	}
	// The template may have changed since the live index was made.
	s.mu.Lock()
	s.ready = false
	s.mu.Unlock()
	if err := s.EnsureIndex(ctx); err != nil {
		return "", err
	}
	index := s.indexName(next)
	if err := s.do(ctx, "PUT", "/"+index, map[string]any{}, nil); err != nil {
		return "", fmt.Errorf("search: create %s: %w", index, err)
	}
	runner, err := projections.New(src, s.sinkFor(index), nil, projections.Options{BatchSize: opts.BatchSize, Logger: s.log})
	if err != nil {
		return "", err
	}
	for round := 1; ; round++ {
		if err := runner.CatchUp(ctx, 0); err != nil {
			return "", fmt.Errorf("search: rebuild %s: %w", index, err)
		}
		newCps, _, err := s.checkpoints(ctx, index)
		if err != nil {
			return "", err
		}
		liveCps, _, err := s.checkpoints(ctx, live)
		if err != nil {
			return "", err
		}
		ahead := true
		for p := range newCps {
			if newCps[p] < liveCps[p] {
				ahead = false
			}
		}
		if ahead || round >= opts.Rounds {
			break
		}
	}
	actions := []any{
		map[string]any{"remove": map[string]any{"index": live, "alias": s.alias}},
		map[string]any{"add": map[string]any{"index": index, "alias": s.alias}},
	}
	if err := s.do(ctx, "POST", "/_aliases", map[string]any{"actions": actions}, nil); err != nil {
		return "", fmt.Errorf("search: swap alias %s from %s to %s: %w", s.alias, live, index, err)
	}
	// A live sink may have written the old index after the checkpoints
	// were compared, and keeps writing there until it notices the swap
	// (it trusts its cached checkpoint for up to aliasRecheck): close the
	// old index to writes (the live sink's next write there fails, and it
	// reads its checkpoint through the alias again) and catch the new
	// index up once more, to the log's end, which is past anything the old
	// index holds.
	if err := s.do(ctx, "PUT", "/"+live+"/_settings", map[string]any{"index.blocks.write": true}, nil); err != nil {
		return "", fmt.Errorf("search: close retired %s to writes: %w", live, err)
	}
	if err := runner.CatchUp(ctx, 0); err != nil {
		return "", fmt.Errorf("search: rebuild %s after the swap: %w", index, err)
	}
	s.log.Info("search: rebuilt", slog.String("index", index), slog.String("previous", live))
	return index, nil
}

// Indices returns the names of this store's versioned indices.
func (s *Store) Indices(ctx context.Context) ([]string, error) {
	vs, err := s.versions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, s.indexName(v))
	}
	return slices.Clip(out), nil
}
