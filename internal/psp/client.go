package psp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HTTPClient is the [Client] of a provider that speaks the simulator's
// HTTP API (package internal/local/pspsim):
//
//	POST /v1/intents                 CreateIntentRequest -> Intent (Idempotency-Key)
//	GET  /v1/intents/{id}            -> Intent
//	POST /v1/intents/{id}/capture    -> Intent (Idempotency-Key)
//	POST /v1/intents/{id}/void       -> Intent (Idempotency-Key)
//	POST /v1/intents/{id}/refund     RefundRequest -> Intent (Idempotency-Key)
//
// Every call carries the merchant's API key as "Authorization: Bearer
// <key>". Errors are {"error": {"code", "message"}} with 404 (not found),
// 409 (invalid state), 401 (a missing or wrong key) or 400. It is safe for
// concurrent use.
type HTTPClient struct {
	base string
	name string
	key  string
	hc   *http.Client
}

// NewHTTPClient returns a client of the provider at baseURL, named name in
// the log, calling it with apiKey. hc may be nil for a client with a 10 s
// timeout.
func NewHTTPClient(baseURL, name, apiKey string, hc *http.Client) (*HTTPClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("psp: base URL %q is not an http(s) URL", baseURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	if name == "" {
		name = "psp"
	}
	if apiKey == "" {
		return nil, errors.New("psp: the provider's API key is empty")
	}
	return &HTTPClient{base: strings.TrimRight(baseURL, "/"), name: name, key: apiKey, hc: hc}, nil
}

// Provider returns the name given to [NewHTTPClient].
func (c *HTTPClient) Provider() string { return c.name }

// CreateIntent implements [Client].
func (c *HTTPClient) CreateIntent(ctx context.Context, req CreateIntentRequest, key string) (Intent, error) {
	return c.call(ctx, http.MethodPost, "/v1/intents", req, key)
}

// Capture implements [Client].
func (c *HTTPClient) Capture(ctx context.Context, id, key string) (Intent, error) {
	return c.call(ctx, http.MethodPost, "/v1/intents/"+url.PathEscape(id)+"/capture", struct{}{}, key)
}

// Void implements [Client].
func (c *HTTPClient) Void(ctx context.Context, id, key string) (Intent, error) {
	return c.call(ctx, http.MethodPost, "/v1/intents/"+url.PathEscape(id)+"/void", struct{}{}, key)
}

// Refund implements [Client].
func (c *HTTPClient) Refund(ctx context.Context, id string, req RefundRequest, key string) (Intent, error) {
	return c.call(ctx, http.MethodPost, "/v1/intents/"+url.PathEscape(id)+"/refund", req, key)
}

// Intent implements [Client].
func (c *HTTPClient) Intent(ctx context.Context, id string) (Intent, error) {
	return c.call(ctx, http.MethodGet, "/v1/intents/"+url.PathEscape(id), nil, "")
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (c *HTTPClient) call(ctx context.Context, method, path string, body any, key string) (Intent, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Intent{}, fmt.Errorf("psp %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return Intent{}, fmt.Errorf("psp %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return Intent{}, fmt.Errorf("psp %s %s: %w: %w", method, path, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Intent{}, fmt.Errorf("psp %s %s: %w: %w", method, path, ErrUnavailable, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		_ = json.Unmarshal(raw, &eb)
		var kind error
		switch {
		case resp.StatusCode == http.StatusNotFound:
			kind = ErrNotFound
		case resp.StatusCode == http.StatusConflict:
			kind = ErrInvalidState
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			kind = ErrUnavailable
		default:
			kind = ErrInvalidRequest
		}
		return Intent{}, fmt.Errorf("psp %s %s: %w: %d %s %s", method, path, kind, resp.StatusCode, eb.Error.Code, eb.Error.Message)
	}
	var in Intent
	if err := json.Unmarshal(raw, &in); err != nil {
		return Intent{}, fmt.Errorf("psp %s %s: %w: answer is not an intent: %w", method, path, ErrUnavailable, err)
	}
	if in.ID == "" {
		return Intent{}, fmt.Errorf("psp %s %s: %w: answer has no intent id", method, path, ErrUnavailable)
	}
	return in, nil
}

// IsRetryable reports whether err from a [Client] may go away by itself.
func IsRetryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}
