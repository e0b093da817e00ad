package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/pause"
)

// tally counts by key (an error code, a request kind); safe for
// concurrent use.
type tally struct {
	mu sync.Mutex
	m  map[string]int64
}

func (t *tally) add(key string, n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]int64{}
	}
	t.m[key] += n
}

func (t *tally) snapshot() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int64, len(t.m))
	for k, v := range t.m {
		out[k] = v
	}
	return out
}

func (t *tally) total() int64 {
	var n int64
	for _, v := range t.snapshot() {
		n += v
	}
	return n
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// apiError is an answer other than the one a call wanted: its status and
// Ordo's error code (or, for a plain-text answer, the status text).
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // from the Retry-After header; 0 if none
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// key names the error in the summary's counts: status and code.
func (e *apiError) key() string { return fmt.Sprintf("%d %s", e.Status, e.Code) }

// errorKey names any error of a call in the summary's counts.
func errorKey(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.key()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "cancelled at the end of the run"
	}
	return "transport error"
}

// Retries of one request: an answer with Retry-After (429, and the 409
// and 503 answers Ordo sends with one) is retried after the time it
// says. 429 is retried for as long as the run lasts (it is admission
// control asking the client to slow down); 409 and 503 at most
// maxRetries times, then counted as an error.
const maxRetries = 10

// Retries of a request the server did not answer (refused, reset or
// closed the connection: orderd killed, or restarting) start after
// unreachableFirst and wait twice as long each time, up to
// unreachableMax, for as long as client.unreachableFor allows.
const (
	unreachableFirst = 50 * time.Millisecond
	unreachableMax   = time.Second
)

// client sends the storefront's requests: customers' and the admin's
// with tokens signed as `orderctl token` signs them, the shopper's
// clicks on the payment simulator's signed pay links without one.
type client struct {
	base   string
	http   *http.Client
	signer *auth.Signer
	// giveBack lists codes a call returns to its caller at once instead
	// of waiting out their Retry-After (too_many_unpaid_orders: the
	// shopper lets that customer rest and serves another).
	giveBack map[string]bool
	// unreachableFor is how long a request that is safe to send again
	// ([call.retryable]) is retried while the server does not answer it
	// (or answers 503 starting, after a restart); 0: not retried.
	unreachableFor time.Duration

	requests    tally // by kind of request, retries included
	errors      tally // answers no flow wanted, by status and code
	retries     tally // answers with Retry-After that were waited out, by status and code
	unreachable tally // requests sent again because the server did not answer, by kind

	waitMu          sync.Mutex
	retryWait       time.Duration // summed over all waits
	unreachableWait time.Duration // summed over the waits for an unreachable server
}

func newClient(base string, signer *auth.Signer, conns int) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	return &client{
		base:   strings.TrimRight(base, "/"),
		signer: signer,
		http: &http.Client{
			Transport: tr,
			Timeout:   30 * time.Second,
			// The pay page answers its buttons with 303 to itself; the
			// shopper does not need the page again.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		giveBack: map[string]bool{"too_many_unpaid_orders": true},
	}
}

// token mints a token for sub with role, valid for a few minutes (a
// fresh one per request costs an HMAC, and no token outlives the role's
// shortest allowed maximum).
func (c *client) token(role auth.Role, sub string) (string, error) {
	return c.signer.Mint(sub, role, time.Now(), min(5*time.Minute, c.signer.MaxLifetime(role)))
}

// call is one API request: kind names it in the counts; role and sub
// sign it (role "" sends no token: the pay links); key is the
// Idempotency-Key, if any; a 2xx answer's JSON goes into out.
type call struct {
	kind, method, url string
	role              auth.Role
	sub, key          string
	body              any
	want              int // the status wanted; any 2xx or 3xx when 0
	// idempotent marks a command whose repeat, once it took effect,
	// changes nothing and answers 200 (cancel, ship): safe to send again
	// when the server did not answer, and a 200 then means done.
	idempotent bool
}

// retryable reports whether c may be sent again when the server did not
// answer it: a read, a PUT (the catalog's absolute values), a place with
// its Idempotency-Key (the repeat gets the first answer) or an
// idempotent command. A pay-page click is not: the simulator's answer to
// a repeat is not the first one.
func (c call) retryable() bool {
	return c.method == http.MethodGet || c.method == http.MethodPut || c.key != "" || c.idempotent
}

// unreachable reports whether err says the server did not answer: the
// connection refused, reset or closed before the whole answer came.
func unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// do sends c, waiting out and retrying answers with Retry-After, and
// returns the status of the answer it ends with. A status other than the
// one wanted is an *apiError.
func (cl *client) do(ctx context.Context, c call, out any) (int, error) {
	var body []byte
	if c.body != nil {
		var err error
		if body, err = json.Marshal(c.body); err != nil {
			return 0, err
		}
	}
	// down is when the server was first found not answering (or
	// starting); zero while it answers.
	var down time.Time
	resent := false // sent again after the server did not answer
	wait := unreachableFirst
	for retried := 0; ; retried++ {
		status, err := cl.once(ctx, c, body, out)
		var ae *apiError
		isAE := errors.As(err, &ae)
		switch {
		case isAE && ae.Status == http.StatusOK && c.idempotent && resent:
			// The first send took effect before the server went away.
			return status, nil
		case unreachable(err) && c.retryable() && cl.unreachableFor > 0:
			if down.IsZero() {
				down = time.Now()
			}
			if time.Since(down) > cl.unreachableFor {
				return status, err
			}
			cl.unreachable.add(c.kind, 1)
			cl.waitMu.Lock()
			cl.unreachableWait += wait
			cl.waitMu.Unlock()
			if err := pause.For(ctx, wait); err != nil {
				return 0, err
			}
			wait = min(2*wait, unreachableMax)
			resent = true
			retried-- // counts only the answers waited out
			continue
		}
		// A restarted orderd answers 503 starting until its servers are
		// up: waited out as long as an unreachable one, not maxRetries.
		starting := isAE && ae.Code == "starting" && cl.unreachableFor > 0
		if starting && down.IsZero() {
			down = time.Now()
		}
		if !isAE || ae.RetryAfter <= 0 || cl.giveBack[ae.Code] ||
			(starting && time.Since(down) > cl.unreachableFor) ||
			(!starting && ae.Status != http.StatusTooManyRequests && retried >= maxRetries) {
			return status, err
		}
		if !starting {
			down = time.Time{}
		}
		cl.retries.add(ae.key(), 1)
		cl.waitMu.Lock()
		cl.retryWait += ae.RetryAfter
		cl.waitMu.Unlock()
		if err := pause.For(ctx, ae.RetryAfter); err != nil {
			return 0, err
		}
	}
}

func (cl *client) once(ctx context.Context, c call, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := c.url
	if strings.HasPrefix(u, "/") {
		u = cl.base + u
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.role != "" {
		tok, err := cl.token(c.role, c.sub)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if c.key != "" {
		req.Header.Set("Idempotency-Key", c.key)
	}
	cl.requests.add(c.kind, 1)
	resp, err := cl.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	ok := resp.StatusCode == c.want || (c.want == 0 && resp.StatusCode < 400)
	if !ok {
		return resp.StatusCode, answerError(resp, b)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %d answer is not the JSON expected: %w", c.method, c.kind, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, nil
}

// answerError reads an answer Ordo (or the simulator) gave instead of the
// one wanted.
func answerError(resp *http.Response, b []byte) *apiError {
	ae := &apiError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
		ae.Code, ae.Message = e.Error.Code, e.Error.Message
	} else {
		ae.Code = strings.ReplaceAll(strings.ToLower(http.StatusText(resp.StatusCode)), " ", "_")
		ae.Message = strings.TrimSpace(string(b))
	}
	if resp.StatusCode == http.StatusTooManyRequests && ae.RetryAfter <= 0 {
		ae.RetryAfter = time.Second // a 429 without Retry-After still asks for a pause
	}
	return ae
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// The API's answers the generator reads.
type (
	accepted struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	orderView struct {
		OrderID      string `json:"order_id"`
		Status       string `json:"status"`
		StatusReason string `json:"status_reason"`
		Payment      struct {
			Status      string `json:"status"`
			CheckoutURL string `json:"checkout_url"`
		} `json:"payment"`
	}
	timeline struct {
		Entries []struct {
			At    time.Time `json:"at"`
			Event string    `json:"event"`
		} `json:"entries"`
	}
	skuView struct {
		SKU       string `json:"sku"`
		OnHand    int64  `json:"on_hand"`
		Reserved  int64  `json:"reserved"`
		Available int64  `json:"available"`
	}
)

// payAction returns the URL of a pay-page button (approve, decline) of
// the signed checkout link: the link's path and the action, with the
// link's signed query.
func payAction(checkout, action string) (string, error) {
	u, err := url.Parse(checkout)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("checkout_url %q is not a URL", checkout)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/" + action
	return u.String(), nil
}
