package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/outage"
	"github.com/ordo-shop/ordo/projections/search"
)

// answer is what writeError told the client, and what it logged.
type answer struct {
	status     int
	retryAfter string
	body       errorDetail
	logged     []map[string]any
}

// testServer returns a Server as orderd wires it for errors (outage.Is
// as its Outage), logging JSON into a buffer.
func testServer() (*Server, *bytes.Buffer) {
	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, nil))
	return &Server{Deps: Deps{Outage: outage.Is}, log: log}, &logBuf
}

func (s *Server) answer(t *testing.T, logBuf *bytes.Buffer, err error) answer {
	t.Helper()
	logBuf.Reset()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/v1/orders", nil)
	r.Header.Set("X-Request-Id", "req_test")
	s.writeError(w, r, err)
	return decodeAnswer(t, w, logBuf)
}

func decodeAnswer(t *testing.T, w *httptest.ResponseRecorder, logBuf *bytes.Buffer) answer {
	t.Helper()
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	a := answer{status: w.Code, retryAfter: w.Header().Get("Retry-After"), body: body.Error}
	for _, line := range strings.Split(strings.TrimSpace(logBuf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		a.logged = append(a.logged, rec)
	}
	return a
}

// An error nothing recognises is a fault in Ordo: 500 internal, with the
// request id in the answer and in an ERROR log record that holds the
// error; never 503, which would make a bug look like an outage.
func TestUnknownErrorIsInternal(t *testing.T) {
	s, logBuf := testServer()
	for _, err := range []error{
		errors.New("index out of range"),
		fmt.Errorf("order status: %w", &pgconn.PgError{Code: "42601", Message: "syntax error at or near \"SELEC\""}),
		fmt.Errorf("append: %w", nats.ErrBadSubject),
	} {
		a := s.answer(t, logBuf, err)
		if a.status != http.StatusInternalServerError || a.body.Code != "internal" || a.body.Message != "internal error" ||
			a.body.RequestID != "req_test" || a.retryAfter != "" {
			t.Errorf("%v: %d %+v (Retry-After %q); want 500 internal naming req_test", err, a.status, a.body, a.retryAfter)
		}
		if strings.Contains(a.body.Message, err.Error()) {
			t.Errorf("%v: the answer tells the client the internal error", err)
		}
		if len(a.logged) != 1 || a.logged[0]["level"] != "ERROR" || a.logged[0]["request_id"] != "req_test" ||
			a.logged[0]["err"] != err.Error() || a.logged[0]["code"] != "internal" {
			t.Errorf("%v: logged %v; want one ERROR record with the request id and the error", err, a.logged)
		}
	}
}

// Each known kind of unavailability answers its own 503, with
// Retry-After, whatever else the error wraps.
func TestEveryKnownUnavailabilityIsItsOwn503(t *testing.T) {
	s, logBuf := testServer()
	for _, c := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("append order x: %w: no leader answered within 2s (last attempt: %v)", eventlog.ErrLeaderUnavailable, context.DeadlineExceeded), "leader_unavailable"},
		{fmt.Errorf("load order x: %w", fmt.Errorf("%w: stream ORDERS", eventlog.ErrLeaderUnavailable)), "leader_unavailable"},
		// The append was cut short by the request's deadline: it was sent.
		{fmt.Errorf("append order x: %w: %w", eventlog.ErrOutcomeUnknown, context.DeadlineExceeded), "outcome_unknown"},
		{fmt.Errorf("append: %w", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("load: %w", eventlog.ErrStreamMissing), "log_unavailable"},
		{fmt.Errorf("open: %w", eventlog.ErrLogMismatch), "log_unavailable"},
		{storageError(syscall.ENOSPC), "storage_full"},
		{storageError(syscall.EIO), "storage_failed"},
		// NATS unreachable, by the client's own errors (Deps.Outage).
		{fmt.Errorf("load order x: %w", nats.ErrConnectionClosed), "unavailable"},
		{fmt.Errorf("direct get: %w", nats.ErrTimeout), "unavailable"},
		{nats.ErrNoServers, "unavailable"},
	} {
		a := s.answer(t, logBuf, c.err)
		if a.status != http.StatusServiceUnavailable || a.body.Code != c.code || a.retryAfter == "" {
			t.Errorf("%v: %d %q (Retry-After %q); want 503 %s with Retry-After", c.err, a.status, a.body.Code, a.retryAfter, c.code)
		}
		if a.body.RequestID != "" {
			t.Errorf("%v: a 503 names request %q", c.err, a.body.RequestID)
		}
		if len(a.logged) != 1 || a.logged[0]["request_id"] != "req_test" {
			t.Errorf("%v: logged %v", c.err, a.logged)
		}
	}
}

// An unrecognised error while the instance knows it cannot serve (its
// NATS connection is down, say) is that outage, not a fault.
func TestUnknownErrorDuringAnOutageIsUnavailable(t *testing.T) {
	s, logBuf := testServer()
	s.Unavailable = func() []Problem {
		return []Problem{{Code: "nats_disconnected", Component: "nats", Message: "the connection to NATS is down"}}
	}
	a := s.answer(t, logBuf, errors.New("something nats.go said"))
	if a.status != http.StatusServiceUnavailable || a.body.Code != "unavailable" || !strings.Contains(a.body.Message, "the connection to NATS is down") {
		t.Errorf("%d %+v; want 503 unavailable naming the problem", a.status, a.body)
	}
}

// The read model's errors: PostgreSQL unreachable is 503
// queries_unavailable, a fault in a query 500 internal.
func TestReadModelErrors(t *testing.T) {
	s, logBuf := testServer()
	r := httptest.NewRequest("GET", "/v1/orders/x", nil)
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, 503, "queries_unavailable"},
		{fmt.Errorf("order status: %w", pgconn.ErrConnClosed), 503, "queries_unavailable"},
		{fmt.Errorf("order status: %w", &pgconn.PgError{Code: "42703", Message: "column \"x\" does not exist"}), 500, "internal"},
		{fmt.Errorf("order status: %w", context.DeadlineExceeded), 503, "timeout"},
	} {
		a := s.answer(t, logBuf, s.readFailed(r, c.err))
		if a.status != c.status || a.body.Code != c.code {
			t.Errorf("%v: %d %s, want %d %s", c.err, a.status, a.body.Code, c.status, c.code)
		}
	}
}

// Search's errors: Elasticsearch unreachable is 503 search_unavailable,
// a bad query 400, a fault 500 internal.
func TestSearchErrors(t *testing.T) {
	s, logBuf := testServer()
	r := httptest.NewRequest("GET", "/v1/search/orders", nil)
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("%w: POST /x/_search: connection refused", search.ErrUnavailable), 503, "search_unavailable"},
		{fmt.Errorf("%w: limit must be from 1 to 100", search.ErrBadQuery), 400, "invalid_query"},
		{errors.New("elasticsearch 400 parsing_exception: unknown query [mach]"), 500, "internal"},
	} {
		a := s.answer(t, logBuf, s.searchFailed(r, c.err))
		if a.status != c.status || a.body.Code != c.code {
			t.Errorf("%v: %d %s, want %d %s", c.err, a.status, a.body.Code, c.status, c.code)
		}
	}
}

// A handler that panics answers 500 internal with the request id, and
// the panic is logged with it.
func TestPanicIsInternal(t *testing.T) {
	s, logBuf := testServer()
	h := s.dispatch(map[string]route{"GET": {method: "GET", pattern: "/boom", handle: func(http.ResponseWriter, *http.Request, auth.Claims) error {
		var m map[string]int
		m["x"]++ // a nil map: a fault
		return nil
	}}})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/boom", nil)
	r.Header.Set("X-Request-Id", "req_boom")
	h.ServeHTTP(w, r)
	a := decodeAnswer(t, w, logBuf)
	if a.status != 500 || a.body.Code != "internal" || a.body.RequestID != "req_boom" {
		t.Fatalf("%d %+v", a.status, a.body)
	}
	if len(a.logged) != 1 || a.logged[0]["request_id"] != "req_boom" || !strings.Contains(fmt.Sprint(a.logged[0]["err"]), "assignment to entry in nil map") {
		t.Errorf("logged %v", a.logged)
	}
}
