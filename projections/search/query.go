package search

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ordo-shop/ordo/events"
)

// Query is one search: a free text and filters. The zero Query lists
// every order, newest first.
type Query struct {
	// Text is the search box: an order id or its prefix, an email, a
	// phone number or its last four digits, a name (Chinese too, or part
	// of it), a SKU or a tracking number. At most [MaxQueryRunes].
	Text string
	// Status keeps only orders in this status.
	Status string
	// Since and Until keep orders created at or after Since and before
	// Until (zero: no bound).
	Since, Until time.Time
	// Limit is the page size (default 20, at most [MaxLimit]).
	Limit int
	// Cursor continues a previous result (its [Result.NextCursor]).
	Cursor string
}

// Paging limits.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Hit is one order found.
type Hit struct {
	OrderID        string          `json:"order_id"`
	CustomerID     string          `json:"customer_id"`
	Status         string          `json:"status"`
	Customer       events.Customer `json:"customer"`
	Total          events.Money    `json:"total"`
	SKUs           []string        `json:"skus"`
	TrackingNumber string          `json:"tracking_number,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	Score          float64         `json:"score"`
	// Degraded: some of the order's commits could not be indexed and were
	// set aside, so the document may be out of date.
	Degraded bool `json:"degraded,omitempty"`
}

// Result is one page of hits.
type Result struct {
	Hits []Hit
	// Total counts every match (exact up to 10,000; TotalExact false
	// beyond).
	Total      int64
	TotalExact bool
	// NextCursor continues after the last hit; empty on the last page.
	NextCursor string
}

// cursorVersion tags the cursor format.
const cursorVersion = "s1"

// encodeCursor makes an opaque, URL-safe cursor of the last hit's sort
// values; ranked says whether they start with a score.
func encodeCursor(ranked bool, sort json.RawMessage) string {
	mode := "t"
	if ranked {
		mode = "r"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + "." + mode + "." + string(sort)))
}

// decodeCursor checks a cursor against the query's mode and returns the
// search_after values.
func decodeCursor(c string, ranked bool) ([]any, error) {
	bad := fmt.Errorf("%w: cursor is not one this API returned for this query", ErrBadQuery)
	if len(c) > 1024 {
		return nil, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, bad
	}
	parts := strings.SplitN(string(raw), ".", 3)
	want := "t"
	if ranked {
		want = "r"
	}
	if len(parts) != 3 || parts[0] != cursorVersion || parts[1] != want {
		return nil, bad
	}
	dec := json.NewDecoder(strings.NewReader(parts[2]))
	dec.UseNumber()
	var vals []any
	if err := dec.Decode(&vals); err != nil {
		return nil, bad
	}
	n := 2
	if ranked {
		n = 3
	}
	if len(vals) != n {
		return nil, bad
	}
	for i, v := range vals {
		switch v.(type) {
		case json.Number:
			if i == n-1 {
				return nil, bad
			}
		case string:
			if i != n-1 {
				return nil, bad
			}
		default:
			return nil, bad
		}
	}
	return vals, nil
}

// buildQuery returns the Elasticsearch query of q: structured queries
// only (term, prefix, match, match_phrase, match_bool_prefix), so query
// syntax in the text is just text.
func buildQuery(text string, q Query) map[string]any {
	filter := []any{
		map[string]any{"term": map[string]any{"doc_type": docTypeOrder}},
	}
	if q.Status != "" {
		filter = append(filter, map[string]any{"term": map[string]any{"status": q.Status}})
	}
	if !q.Since.IsZero() || !q.Until.IsZero() {
		r := map[string]any{"format": "strict_date_optional_time"}
		if !q.Since.IsZero() {
			r["gte"] = q.Since.UTC().Format(time.RFC3339Nano)
		}
		if !q.Until.IsZero() {
			r["lt"] = q.Until.UTC().Format(time.RFC3339Nano)
		}
		filter = append(filter, map[string]any{"range": map[string]any{"created_at": r}})
	}
	b := map[string]any{
		"filter":   filter,
		"must_not": []any{map[string]any{"term": map[string]any{"deleted": true}}},
	}
	if text != "" {
		b["should"] = shouldClauses(text)
		b["minimum_should_match"] = 1
	}
	return map[string]any{"bool": b}
}

func term(field, v string, boost float64) map[string]any {
	return map[string]any{"term": map[string]any{field: map[string]any{"value": v, "boost": boost}}}
}

func prefix(field, v string, boost float64) map[string]any {
	return map[string]any{"prefix": map[string]any{field: map[string]any{"value": v, "boost": boost}}}
}

// shouldClauses are the ways the search box can match, best first: an
// exact identifier (order id, email, full phone number, SKU, tracking
// number) ranks above a name, which ranks above a prefix.
func shouldClauses(text string) []any {
	lower := strings.ToLower(text)
	long := utf8.RuneCountInString(text) >= 3
	var out []any
	out = append(out,
		term("order_id", text, 100),
		term("email", NormalizeEmail(text), 80),
		term("skus", lower, 60),
		term("tracking_number", lower, 60),
		map[string]any{"match_phrase": map[string]any{"name": map[string]any{"query": text, "boost": 20}}},
		map[string]any{"match": map[string]any{"name": map[string]any{"query": text, "operator": "and", "boost": 8}}},
		map[string]any{"match_bool_prefix": map[string]any{"name": map[string]any{"query": text, "operator": "and", "boost": 4}}},
		map[string]any{"match": map[string]any{"email.text": map[string]any{"query": text, "operator": "and", "boost": 4}}},
	)
	if long {
		out = append(out,
			prefix("order_id", text, 30),
			prefix("email", NormalizeEmail(text), 10),
			prefix("skus", lower, 10),
		)
	}
	if looksLikePhone(text) {
		d := PhoneDigits(text)
		boost := 40.0
		if len(d) < 7 {
			boost = 15 // the last four (or so) digits: many orders share them
		}
		out = append(out, term("phone_tails", d, boost))
	}
	return out
}

// Search runs q against the live index.
func (s *Store) Search(ctx context.Context, q Query) (Result, error) {
	text, err := cleanText(q.Text)
	if err != nil {
		return Result{}, err
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		return Result{}, fmt.Errorf("%w: limit must be from 1 to %d", ErrBadQuery, MaxLimit)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return Result{}, fmt.Errorf("%w: since must be before until", ErrBadQuery)
	}
	ranked := text != ""
	var after []any
	if q.Cursor != "" {
		if after, err = decodeCursor(q.Cursor, ranked); err != nil {
			return Result{}, err
		}
	}
	if err := s.EnsureIndex(ctx); err != nil {
		return Result{}, err
	}
	sort := []any{map[string]any{"created_at": "desc"}, map[string]any{"order_id": "asc"}}
	if ranked {
		sort = append([]any{map[string]any{"_score": "desc"}}, sort...)
	}
	body := map[string]any{
		"query":            buildQuery(text, q),
		"sort":             sort,
		"size":             q.Limit,
		"track_total_hits": 10000,
		"track_scores":     true,
		"_source":          []string{"order_id", "customer_id", "status", "customer", "total_amount", "currency", "skus", "tracking_number", "created_at", "updated_at"},
	}
	if after != nil {
		body["search_after"] = after
	}
	var out struct {
		Hits struct {
			Total struct {
				Value    int64  `json:"value"`
				Relation string `json:"relation"`
			} `json:"total"`
			Hits []struct {
				Score  json.RawMessage `json:"_score"`
				Sort   json.RawMessage `json:"sort"`
				Source struct {
					OrderID        string          `json:"order_id"`
					CustomerID     string          `json:"customer_id"`
					Status         string          `json:"status"`
					Customer       events.Customer `json:"customer"`
					TotalAmount    int64           `json:"total_amount"`
					Currency       string          `json:"currency"`
					SKUs           []string        `json:"skus"`
					TrackingNumber string          `json:"tracking_number"`
					CreatedAt      time.Time       `json:"created_at"`
					UpdatedAt      time.Time       `json:"updated_at"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	err = s.do(ctx, "POST", "/"+s.alias+"/_search", body, &out)
	if err != nil {
		if statusOf(err) == http.StatusBadRequest && after != nil {
			return Result{}, fmt.Errorf("%w: cursor is not one this API returned for this query", ErrBadQuery)
		}
		if statusOf(err) != 0 {
			// Any other refusal is this package's fault, not the
			// caller's, and not a reason to call search down either.
			return Result{}, fmt.Errorf("search: elasticsearch refused the query: %w", err)
		}
		return Result{}, err
	}
	res := Result{Total: out.Hits.Total.Value, TotalExact: out.Hits.Total.Relation == "eq", Hits: make([]Hit, 0, len(out.Hits.Hits))}
	for _, h := range out.Hits.Hits {
		src := h.Source
		var score float64
		_ = json.Unmarshal(h.Score, &score)
		res.Hits = append(res.Hits, Hit{
			OrderID: src.OrderID, CustomerID: src.CustomerID, Status: src.Status, Customer: src.Customer,
			Total: events.Money{Amount: src.TotalAmount, Currency: src.Currency}, SKUs: src.SKUs,
			TrackingNumber: src.TrackingNumber, CreatedAt: src.CreatedAt, UpdatedAt: src.UpdatedAt, Score: score,
		})
	}
	if n := len(out.Hits.Hits); n == q.Limit {
		res.NextCursor = encodeCursor(ranked, bytes.TrimSpace(out.Hits.Hits[n-1].Sort))
	}
	s.markDegraded(ctx, res.Hits)
	return res, nil
}

// IsBadQuery reports whether err is the caller's fault (the API's 400).
func IsBadQuery(err error) bool { return errors.Is(err, ErrBadQuery) }

// IsUnavailable reports whether err means Elasticsearch is down or
// failing (the API's 503).
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
