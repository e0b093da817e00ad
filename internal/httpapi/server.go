package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/postgres"
)

// Catalog lists the SKUs that exist.
type Catalog interface {
	ListIDs(ctx context.Context, aggType string) ([]string, error)
}

// Deps is what the API is built from.
type Deps struct {
	Orders    *command.Handler[order.State, order.Command]
	Inventory *command.Handler[inventory.State, inventory.Command]
	Catalog   Catalog
	Signer    *auth.Signer
	Logger    *slog.Logger
	// MaxBodyBytes caps request bodies (default 1 MiB).
	MaxBodyBytes int64
	// RequestTimeout bounds each request (default 10s).
	RequestTimeout time.Duration
	// Now is the clock for token expiry (default time.Now).
	Now func() time.Time
	// Ready reports whether the instance can serve commands; nil means
	// always.
	Ready func() bool
	// Unavailable, if set, returns what keeps the instance from serving
	// commands and queries now (a stream of the log missing, the NATS
	// connection down); /readyz answers 503 naming each.
	Unavailable func() []Problem
	// Outage, if set, reports whether an error that has no status of its
	// own says a server the request needed cannot be reached (orderd
	// sets outage.Is, which knows the NATS and PostgreSQL clients'
	// errors): such an error answers 503 unavailable, and any other 500
	// internal, logged with the request's id.
	Outage func(error) bool
	// Payments and PSPWebhookSecret serve POST /v1/psp/webhook; without
	// them the endpoint answers 503.
	Payments         PaymentWebhooks
	PSPWebhookSecret []byte
	// Queries serves the order queries and GET /v1/projections (see
	// queries.go); without it those routes answer 503
	// "queries_unavailable". Log, if set, gives the stream's end for
	// projection lag and to refuse positions beyond it.
	Queries Queries
	Log     LogPosition
	// ReadYourWritesWait bounds how long a query with ?position= waits
	// for the read model before answering 503 "projection_behind"
	// (default 2s).
	ReadYourWritesWait time.Duration
	// Search serves GET /v1/search/orders (search.go); without it the
	// route answers 503 "search_unavailable".
	Search Search
	// Storage, if set, returns a context that ends, with the failure as
	// its cause (wrapping syscall.ENOSPC for a full disk), while the event
	// store's storage cannot write. Requests that write then answer 503
	// storage_full (or storage_failed) at once, those in flight as soon as
	// it fails, and /readyz says so (storage.go).
	Storage func() context.Context
	// Observer, if set, is told about every request.
	Observer RequestObserver
	// MaxUnpaidOrders caps the orders one customer may have waiting for
	// payment through this instance; another POST /v1/orders is 429
	// too_many_unpaid_orders (unpaid.go). 0: no limit.
	MaxUnpaidOrders int
	// PaymentTimeout is how long an order waits for its payment (for the
	// limit's Retry-After; default 15 min).
	PaymentTimeout time.Duration
	// Admission refuses new orders with 429 checkout_busy while the
	// checkout is too far behind (admission.go). Zero: no check.
	Admission Admission
}

// RequestObserver is told how each request went, by route pattern. It must
// be safe for concurrent use.
type RequestObserver interface {
	Request(route, method string, code int, d time.Duration)
}

// Server is the HTTP API. It is safe for concurrent use.
type Server struct {
	Deps
	unpaid    *unpaidLimit // nil: no limit
	admission *admission   // nil: no check
	log       *slog.Logger
	mux       *http.ServeMux
	routes    []route
}

// route is one operation of the API; the table drives both the mux and
// the test that keeps openapi.json true.
type route struct {
	method  string
	pattern string
	roles   []auth.Role // nil: no token needed
	handle  func(w http.ResponseWriter, r *http.Request, c auth.Claims) error
	// request and response are the wire types, for the OpenAPI check.
	request, response any
	status            int
	// also are other success statuses, answered with the same response
	// type (200 for a command whose outcome was already there).
	also []int
}

// New returns the API server.
func New(d Deps) (*Server, error) {
	if d.Orders == nil || d.Inventory == nil || d.Catalog == nil || d.Signer == nil {
		return nil, errors.New("httpapi: orders, inventory, catalog and signer are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 20
	}
	if d.RequestTimeout <= 0 {
		d.RequestTimeout = 10 * time.Second
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.ReadYourWritesWait <= 0 {
		d.ReadYourWritesWait = DefaultReadYourWritesWait
	}
	if d.PaymentTimeout <= 0 {
		d.PaymentTimeout = 15 * time.Minute
	}
	s := &Server{Deps: d, log: d.Logger, mux: http.NewServeMux()}
	s.unpaid = newUnpaidLimit(d.MaxUnpaidOrders, d.PaymentTimeout, d.Now)
	s.admission = newAdmission(d.Admission, d.Now)
	s.routes = s.table()
	byPattern := map[string]map[string]route{}
	var patterns []string
	for _, rt := range s.routes {
		if byPattern[rt.pattern] == nil {
			byPattern[rt.pattern] = map[string]route{}
			patterns = append(patterns, rt.pattern)
		}
		byPattern[rt.pattern][rt.method] = rt
	}
	for _, p := range patterns {
		s.mux.Handle(p, s.observe(p, s.dispatch(byPattern[p])))
	}
	s.mux.Handle("/metrics", s.observe("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(http.StatusNotFound, "not_found", "no such endpoint: metrics are served on a listener of their own (ORDO_METRICS_ADDR), not with the API"))
	})))
	s.mux.Handle("/", s.observe("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(http.StatusNotFound, "not_found", "no such endpoint: %s", r.URL.Path))
	})))
	return s, nil
}

func (s *Server) table() []route {
	admin := []auth.Role{auth.RoleAdmin}
	staff := []auth.Role{auth.RoleAdmin, auth.RoleAgent}
	anyone := []auth.Role{auth.RoleCustomer, auth.RoleAgent, auth.RoleAdmin}
	return []route{
		{method: "GET", pattern: "/healthz", handle: s.healthz, response: statusBody{}, status: 200},
		{method: "GET", pattern: "/readyz", handle: s.readyz, response: readiness{}, status: 200},
		{method: "GET", pattern: "/v1/openapi.json", handle: s.openapi, status: 200},
		{method: "PUT", pattern: "/v1/skus/{sku}", roles: admin, handle: s.putSKU, request: skuRequest{}, response: skuView{}, status: 200},
		{method: "GET", pattern: "/v1/skus/{sku}", roles: staff, handle: s.getSKU, response: skuView{}, status: 200},
		{method: "GET", pattern: "/v1/skus", roles: staff, handle: s.listSKUs, response: skuList{}, status: 200},
		{method: "POST", pattern: "/v1/orders", roles: []auth.Role{auth.RoleCustomer}, handle: s.placeOrder, request: placeRequest{}, response: orderAccepted{}, status: 202},
		{method: "POST", pattern: "/v1/orders/{id}/cancel", roles: anyone, handle: s.cancelOrder, request: cancelRequest{}, response: orderAccepted{}, status: 202, also: []int{200}},
		{method: "POST", pattern: "/v1/orders/{id}/ship", roles: admin, handle: s.shipOrder, request: shipRequest{}, response: orderAccepted{}, status: 202, also: []int{200}},
		{method: "POST", pattern: "/v1/orders/{id}/deliver", roles: admin, handle: s.deliverOrder, request: deliverRequest{}, response: orderAccepted{}, status: 202, also: []int{200}},
		{method: "POST", pattern: "/v1/psp/webhook", handle: s.pspWebhook, request: psp.Event{}, response: webhookAck{}, status: 200},
		{method: "GET", pattern: "/v1/orders/{id}", roles: anyone, handle: s.getOrder, response: orderView{}, status: 200},
		{method: "GET", pattern: "/v1/orders/{id}/timeline", roles: anyone, handle: s.getTimeline, response: timelineView{}, status: 200},
		{method: "GET", pattern: "/v1/customers/{id}/orders", roles: anyone, handle: s.listCustomerOrders, response: orderList{}, status: 200},
		{method: "GET", pattern: "/v1/projections", roles: admin, handle: s.listProjections, response: projectionList{}, status: 200},
		{method: "GET", pattern: "/v1/search/orders", roles: []auth.Role{auth.RoleAgent}, handle: s.searchOrders, response: searchResult{}, status: 200},
	}
}

// ServeHTTP serves the API with panic recovery and the request timeout.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic in handler", slog.Any("panic", p), slog.String("path", r.URL.Path), slog.String("stack", string(debug.Stack())))
			writeJSON(w, http.StatusInternalServerError, errorBody{errorDetail{Code: "internal", Message: "internal error"}})
		}
	}()
	ctx, cancel := context.WithTimeout(r.Context(), s.RequestTimeout)
	defer cancel()
	s.mux.ServeHTTP(w, r.WithContext(ctx))
}

// observe reports each request's route, status and duration.
func (s *Server) observe(route string, next http.Handler) http.Handler {
	if s.Observer == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.Observer.Request(route, r.Method, sw.code, time.Since(start))
	})
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) dispatch(methods map[string]route) http.Handler {
	allowed := make([]string, 0, len(methods))
	for m := range methods {
		allowed = append(allowed, m)
	}
	sort.Strings(allowed)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, ok := methods[r.Method]
		if !ok && r.Method == http.MethodHead {
			rt, ok = methods[http.MethodGet]
		}
		if !ok {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed here; use %s", r.Method, strings.Join(allowed, ", ")))
			return
		}
		// Every request gets a correlation id that is stored with the
		// commits it causes and echoed to the client (requestid.go).
		requestContext(w, r)
		defer func() {
			// A panic is a fault like any other unrecognised error: 500
			// internal, logged with the request id and the stack.
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			}
		}()
		var claims auth.Claims
		if rt.roles != nil {
			c, err := s.authenticate(r, rt.roles)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			claims = c
		}
		r, release, err := s.guardStorage(r)
		defer release()
		if err == nil {
			err = rt.handle(w, r, claims)
		}
		if err != nil {
			s.writeError(w, r, storageCause(r, err))
		}
	})
}

func (s *Server) authenticate(r *http.Request, roles []auth.Role) (auth.Claims, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return auth.Claims{}, errorf(http.StatusUnauthorized, "unauthorized", "a bearer token is required (Authorization: Bearer <token>)")
	}
	c, err := s.Signer.Verify(strings.TrimSpace(token), s.Now())
	switch {
	case errors.Is(err, auth.ErrExpired):
		return auth.Claims{}, errorf(http.StatusUnauthorized, "token_expired", "the token has expired (exp); mint a new one")
	case errors.Is(err, auth.ErrNotYetValid):
		return auth.Claims{}, errorf(http.StatusUnauthorized, "token_not_yet_valid",
			"the token is not valid yet: its nbf or iat is more than %s ahead of this server's clock", auth.ClockSkew)
	case errors.Is(err, auth.ErrLifetime):
		return auth.Claims{}, errorf(http.StatusUnauthorized, "token_lifetime_too_long",
			"the token's lifetime (exp - iat) is more than its role may have (customer %s, agent %s, admin %s)",
			s.Signer.MaxLifetime(auth.RoleCustomer), s.Signer.MaxLifetime(auth.RoleAgent), s.Signer.MaxLifetime(auth.RoleAdmin))
	case err != nil:
		return auth.Claims{}, errorf(http.StatusUnauthorized, "unauthorized", "invalid token: %v", err)
	}
	for _, role := range roles {
		if c.Role == role {
			return c, nil
		}
	}
	return auth.Claims{}, errorf(http.StatusForbidden, "forbidden", "role %s may not do this", c.Role)
}

// decode reads one JSON object from the size-limited body into v. The
// Content-Type is not checked: the body must be JSON whatever it says.
// The body must be UTF-8: encoding/json would quietly turn invalid bytes
// into U+FFFD, storing something else than the client sent.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	raw, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	err = dec.Decode(v)
	if errors.Is(err, io.EOF) && optional {
		return nil
	}
	if err == nil {
		if err = dec.Decode(&struct{}{}); errors.Is(err, io.EOF) {
			return nil
		} else if err == nil {
			err = errors.New("more than one JSON value in the body")
		}
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return fieldErrorf("invalid_field", field, "%s must be %s, not %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, "malformed_json", "the body is empty; a JSON object is required")
	default:
		return errorf(http.StatusBadRequest, "malformed_json", "the body is not valid JSON: %v", err)
	}
}

// readBody reads the whole body, at most MaxBodyBytes of it, and checks
// that it is UTF-8.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", tooBig.Limit)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, "malformed_body", "cannot read the body: %v", err)
	}
	if i := invalidUTF8(raw); i >= 0 {
		return nil, errorf(http.StatusBadRequest, "invalid_utf8", "the body is not valid UTF-8 (byte %d)", i+1)
	}
	return raw, nil
}

// invalidUTF8 returns the offset of the first byte of b that is not
// valid UTF-8, or -1.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "an integer"
	case k == "string":
		return "a string"
	case k == "struct", k == "map":
		return "an object"
	case k == "slice":
		return "an array"
	case k == "bool":
		return "a boolean"
	}
	return "a " + k
}

type statusBody struct {
	Status string `json:"status"`
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ auth.Claims) error {
	writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
	return nil
}

// readiness is /readyz's body when the instance can serve: "ready", or
// "degraded" with what is wrong that does not stop commands and queries
// (a commit a projection set aside, the search down). A load balancer
// must not take every instance out over one bad message, so degraded is
// still 200.
type readiness struct {
	Status   string    `json:"status"`
	Degraded []Problem `json:"degraded,omitempty"`
}

// unready is /readyz's 503 body: the error of every 503 (the first
// problem's code and message, so clients that read only the error keep
// working), status "unavailable", and every problem.
type unready struct {
	Error    errorDetail `json:"error"`
	Status   string      `json:"status"`
	Problems []Problem   `json:"problems"`
}

// Problem is one thing that keeps an instance from serving (in /readyz's
// 503 "problems") or degrades it (in its 200 "degraded").
type Problem struct {
	// Code is stable, such as stream_missing or nats_disconnected (for
	// problems; degraded entries have none).
	Code      string `json:"code,omitempty"`
	Component string `json:"component"`
	Message   string `json:"message"`
	// Quarantine names the commits a projection set aside, open ones
	// first.
	Quarantine []projections.QuarantineView `json:"quarantine,omitempty"`
}

// asProblem turns an *apiError into the problem of a component.
func asProblem(component string, err error) Problem {
	ae := known(err)
	if ae == nil {
		ae = errInternal
	}
	return Problem{Code: ae.Code, Component: component, Message: ae.Message}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ auth.Claims) error {
	if s.Ready != nil && !s.Ready() {
		return errorf(http.StatusServiceUnavailable, "not_ready", "orderd is starting or stopping")
	}
	var problems []Problem
	if s.Unavailable != nil {
		problems = append(problems, s.Unavailable()...)
	}
	if s.Storage != nil {
		if err := storageErr(s.Storage()); err != nil {
			problems = append(problems, asProblem("storage", err))
		}
	}
	out := readiness{Status: "ready"}
	if s.Queries != nil {
		q, err := s.Queries.Quarantined(r.Context())
		if err != nil {
			s.log.WarnContext(r.Context(), "readiness: the read model does not answer", slog.Any("err", err))
			problems = append(problems, asProblem("read_model", errorf(http.StatusServiceUnavailable, "read_model_unavailable",
				"PostgreSQL does not answer: the order read model's queries cannot be served until it is back (commands go on)")))
		} else if p, ok := quarantineProblem(postgres.Name, postgres.Views(q)); ok {
			out.Degraded = append(out.Degraded, p)
		}
	}
	if len(problems) > 0 {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, unready{
			Error:  errorDetail{Code: problems[0].Code, Message: problems[0].Message},
			Status: "unavailable", Problems: problems,
		})
		return nil
	}
	if ss, ok := s.Search.(SearchStatus); ok {
		q, err := ss.Quarantined(r.Context())
		switch {
		case err != nil:
			out.Degraded = append(out.Degraded, Problem{Component: "search", Message: "Elasticsearch does not answer: search is unavailable, commands and queries go on"})
		default:
			if p, ok := quarantineProblem("search", q); ok {
				out.Degraded = append(out.Degraded, p)
			}
		}
	}
	if len(out.Degraded) > 0 {
		out.Status = "degraded"
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// quarantineProblem is the problem a projection's open quarantined
// commits make, if it has any; acknowledged ones are listed with them
// but alone degrade nothing.
func quarantineProblem(projection string, q []projections.QuarantineView) (Problem, bool) {
	open, _ := projections.CountQuarantine(q)
	if open == 0 {
		return Problem{}, false
	}
	return Problem{
		Component: "projection:" + projection,
		Message: fmt.Sprintf("%d commit(s) could not be applied and were set aside; their orders are marked degraded "+
			"(orderctl projections status; orderctl projections retry after a fix, or acknowledge)", open),
		Quarantine: q,
	}, true
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request, _ auth.Claims) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openapiDoc)
	if err != nil {
		return fmt.Errorf("write openapi: %w", err)
	}
	return nil
}
