package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/projections/search"
)

// Search is the customer-service lookup GET /v1/search/orders serves;
// *search.Store (projections/search) implements it.
type Search interface {
	Search(ctx context.Context, q search.Query) (search.Result, error)
	// WaitFor waits until the index has applied a stream sequence on
	// every partition and is refreshed, and reports false if ctx ends
	// first.
	WaitFor(ctx context.Context, seq uint64) (bool, error)
}

// maxSearchParam caps every query parameter of the search route before
// it is parsed (q itself is capped at search.MaxQueryRunes characters).
const maxSearchParam = 1024

type searchResult struct {
	Hits       []searchHit `json:"hits"`
	Total      int64       `json:"total"`
	TotalExact bool        `json:"total_exact"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

type searchHit struct {
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
	// Degraded: the order's document may be out of date (some of its
	// commits could not be indexed; an operator is told).
	Degraded bool `json:"degraded,omitempty"`
}

var errNoSearch = errorf(http.StatusServiceUnavailable, "search_unavailable", "this instance serves no search (no Elasticsearch configured)")

// searchFailed maps a search error: the caller's fault is a 400,
// Elasticsearch unreachable (or the index refused) a 503
// search_unavailable (logged); anything else goes on to
// [Server.classify] (a fault is 500 internal).
func (s *Server) searchFailed(r *http.Request, err error) error {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return err
	case search.IsBadQuery(err):
		return errorf(http.StatusBadRequest, "invalid_query", "%s", trimPrefix(err.Error()))
	case r.Context().Err() != nil:
		return r.Context().Err()
	case !search.IsUnavailable(err) && (s.Outage == nil || !s.Outage(err)):
		return err
	}
	s.log.ErrorContext(r.Context(), "search failed", slog.String("path", r.URL.Path), slog.Any("err", err))
	return errorf(http.StatusServiceUnavailable, "search_unavailable", "search is unavailable; retry later (orders and their status are still served by the other endpoints)")
}

func trimPrefix(msg string) string {
	const p = "search: bad query: "
	if len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}

// parseTime reads since/until: RFC 3339 or a date (YYYY-MM-DD, UTC).
func parseTime(name, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	return time.Time{}, errorf(http.StatusBadRequest, "invalid_"+name, "%s must be an RFC 3339 time or a date (2006-01-02), not %q", name, truncateText(v))
}

func (s *Server) searchOrders(w http.ResponseWriter, r *http.Request, _ auth.Claims) error {
	if s.Search == nil {
		return errNoSearch
	}
	params := r.URL.Query()
	for name, vs := range params {
		if len(vs) > 1 {
			return errorf(http.StatusBadRequest, "invalid_query", "parameter %q given %d times", truncateText(name), len(vs))
		}
		if len(vs[0]) > maxSearchParam {
			return errorf(http.StatusBadRequest, "invalid_query", "parameter %q is longer than %d bytes", truncateText(name), maxSearchParam)
		}
		if !utf8.ValidString(vs[0]) {
			return fieldErrorf("invalid_query", truncateText(name), "parameter %q is not valid UTF-8", truncateText(name))
		}
	}
	q := search.Query{Text: params.Get("q"), Cursor: params.Get("cursor")}
	if v := params.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > search.MaxLimit {
			return errorf(http.StatusBadRequest, "invalid_limit", "limit must be an integer from 1 to %d", search.MaxLimit)
		}
		q.Limit = n
	}
	if v := params.Get("status"); v != "" {
		if !isOrderStatus(v) {
			return errorf(http.StatusBadRequest, "invalid_status", "status %q is not an order status", truncateText(v))
		}
		q.Status = v
	}
	var err error
	if v := params.Get("since"); v != "" {
		if q.Since, err = parseTime("since", v); err != nil {
			return err
		}
	}
	if v := params.Get("until"); v != "" {
		if q.Until, err = parseTime("until", v); err != nil {
			return err
		}
	}
	if err := s.awaitSearchPosition(r); err != nil {
		return err
	}
	res, err := s.Search.Search(r.Context(), q)
	if err != nil {
		return s.searchFailed(r, err)
	}
	out := searchResult{Hits: make([]searchHit, 0, len(res.Hits)), Total: res.Total, TotalExact: res.TotalExact, NextCursor: res.NextCursor}
	for _, h := range res.Hits {
		skus := h.SKUs
		if skus == nil {
			skus = []string{}
		}
		out.Hits = append(out.Hits, searchHit{
			OrderID: h.OrderID, CustomerID: h.CustomerID, Status: h.Status, Customer: h.Customer, Total: h.Total,
			SKUs: skus, TrackingNumber: h.TrackingNumber, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt, Score: h.Score,
			Degraded: h.Degraded,
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// awaitSearchPosition implements ?position= for search: it waits,
// bounded, until the index has applied the position on every partition.
func (s *Server) awaitSearchPosition(r *http.Request) error {
	return s.awaitRead(r, "the search index", s.Search.WaitFor, s.searchFailed)
}
