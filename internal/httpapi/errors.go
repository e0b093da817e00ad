package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
)

// apiError is an error with its HTTP status and stable code, and the
// request field it is about, if one.
type apiError struct {
	Status  int
	Code    string
	Field   string
	Message string
	// RetryAfter, if positive, is sent as the Retry-After header
	// (seconds).
	RetryAfter int
}

func (e *apiError) Error() string { return e.Message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// fieldErrorf is a 400 about one field of the request, named by its JSON
// path (such as "customer.name") or, for a header, by the header's name.
// The message should name the field too.
func fieldErrorf(code, field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// checkText checks the value of a request field against its rule (see
// [events.CheckText]); a failure is 400 invalid_field naming the field.
func checkText(field, value string, rule events.TextRule) error {
	return textFieldError(events.CheckText(field, value, rule))
}

// textFieldError turns an *events.TextError into a 400 invalid_field
// naming the field; nil stays nil.
func textFieldError(err error) error {
	var te *events.TextError
	if errors.As(err, &te) {
		return fieldErrorf("invalid_field", te.Field, "%s", te.Error())
	}
	return err
}

// kindStatus is the one table from domain error kinds to HTTP statuses.
var kindStatus = map[aggregates.Kind]int{
	aggregates.KindRule:     http.StatusUnprocessableEntity,
	aggregates.KindInvalid:  http.StatusBadRequest,
	aggregates.KindNotFound: http.StatusNotFound,
	aggregates.KindConflict: http.StatusConflict,
}

// errInternal is what the client is told of an error nothing recognises:
// a fault in Ordo, logged at ERROR under the request's id, which the
// answer names so that an operator can find it.
var errInternal = errorf(http.StatusInternalServerError, "internal", "internal error")

// errUnreachable is what the client is told when the event store (or
// another server the request needs) cannot be reached.
var errUnreachable = errorf(http.StatusServiceUnavailable, "unavailable", "the event store is unavailable; retry later")

// classify maps an error to what the client is told: the errors this
// package, the deciders, the command handler and the event store name,
// each to its status and code; an outage that [Deps.Outage] recognises,
// or any error while [Deps.Unavailable] reports the instance cannot
// serve, to 503 unavailable; anything else to 500 internal.
func (s *Server) classify(err error) *apiError {
	if ae := known(err); ae != nil {
		return ae
	}
	if s.Outage != nil && s.Outage(err) {
		return errUnreachable
	}
	if s.Unavailable != nil {
		if ps := s.Unavailable(); len(ps) > 0 {
			return errorf(http.StatusServiceUnavailable, "unavailable", "the event store is unavailable (%s); retry later", ps[0].Message)
		}
	}
	return errInternal
}

// known maps the errors that have a status and code of their own; nil
// for any other.
func known(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var de *aggregates.DomainError
	if errors.As(err, &de) {
		status, ok := kindStatus[de.Kind]
		if !ok {
			status = http.StatusUnprocessableEntity
		}
		return &apiError{Status: status, Code: de.Code, Message: de.Message}
	}
	switch {
	case errors.Is(err, eventlog.ErrStreamMissing), errors.Is(err, eventlog.ErrNoLog), errors.Is(err, eventlog.ErrLogMismatch):
		return errorf(http.StatusServiceUnavailable, "log_unavailable", "the event log is not whole (a stream of it is missing); nothing was stored and an operator has been alerted (GET /readyz names what is missing)")
	case errors.Is(err, eventlog.ErrInvalidID):
		return errorf(http.StatusBadRequest, "invalid_id", "%v", err)
	case errors.Is(err, command.ErrCorruptHistory):
		return errorf(http.StatusInternalServerError, "history_corrupt", "the history of this resource fails its integrity check; an operator has been alerted (orderctl history names the break)")
	case errors.Is(err, command.ErrRetriesExhausted):
		return errorf(http.StatusConflict, "concurrent_modification", "the resource is changing too fast; retry the request")
	case errors.Is(err, eventlog.ErrOutcomeUnknown):
		// Checked before the deadline: an append cut short by it was sent.
		return errorf(http.StatusServiceUnavailable, "outcome_unknown", "the command was sent to the event store but not acknowledged (its leader is changing); it may have taken effect: retry it with the same Idempotency-Key to learn its outcome")
	case errors.Is(err, eventlog.ErrLeaderUnavailable):
		return errorf(http.StatusServiceUnavailable, "leader_unavailable", "the event store is electing a leader and nothing was stored; retry shortly")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return errorf(http.StatusServiceUnavailable, "timeout", "the request did not complete in time; retry it with the same Idempotency-Key")
	}
	return nil
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code string `json:"code"`
	// Field names the request field the error is about, if one.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// RequestID, on a 500, is the id under which the error was logged
	// (the X-Request-Id of the answer).
	RequestID string `json:"request_id,omitempty"`
}

// writeJSON answers v as JSON. Text is written as it is (no \u0026 for
// "&" in a checkout_url): the answer is application/json, which browsers
// do not sniff as HTML when told nosniff.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := s.classify(err)
	var rid string
	if ae.Status >= 500 {
		rid = r.Header.Get("X-Request-Id")
		if ae.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		s.log.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("request_id", rid), slog.String("code", ae.Code), slog.Any("err", err))
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ordo"`)
	}
	if ae.Status == http.StatusConflict {
		w.Header().Set("Retry-After", "1")
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	d := errorDetail{Code: ae.Code, Field: ae.Field, Message: ae.Message}
	if ae.Status == http.StatusInternalServerError {
		d.RequestID = rid
	}
	writeJSON(w, ae.Status, errorBody{d})
}
