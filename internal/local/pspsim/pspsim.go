// Package sim is a payment provider simulator: a real HTTP server that
// speaks the API [psp.HTTPClient] calls, with a hosted pay page and
// signed, asynchronous webhooks. orderd runs it in process in the local
// default; cmd/pspsim runs it alone.
//
// By default ([ModeAuto]) it approves every payment as soon as the intent
// exists; [ModeManual] waits for a click on the pay page (or a call to
// [Sim.Approve] or [Sim.Decline]). Failure injection ([psp.Faults]) is
// opt-in: declines, latency, and duplicate, out-of-order and lost
// webhooks.
//
// Its API (/v1/intents...) is the merchant's: every call needs the
// simulator's API key as "Authorization: Bearer <key>" (401 without it).
// The hosted pay page and its approve and decline buttons are the
// shopper's: they answer only through the signed, expiring link the
// intent's CheckoutURL carries (/pay/{id}?exp=<unix>&sig=<HMAC>; 403
// otherwise), so knowing or guessing an intent id is not enough to pay,
// decline or look at it.
//
// Webhooks are POSTed as JSON [psp.Event] values with the
// [psp.SignatureHeader] header, re-signed on each attempt. A delivery that
// gets 2xx is done; 401 and 422 are final refusals; anything else (or no
// answer) is retried with exponential backoff, like real providers do.
package pspsim

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/metrics"
	"github.com/ordo-shop/ordo/internal/pause"
	"github.com/ordo-shop/ordo/internal/psp"
)

// Mode is how the simulator decides payments.
type Mode string

// The modes.
const (
	// ModeAuto approves (or, with a decline rate, declines) every payment
	// as soon as its intent is created.
	ModeAuto Mode = "auto"
	// ModeManual waits for the shopper's click on the pay page.
	ModeManual Mode = "manual"
)

// Config configures a [Sim]. The zero value is an auto-approving
// simulator without faults that sends no webhooks until
// [Sim.SetWebhookURL] is called.
type Config struct {
	// Mode is ModeAuto (default) or ModeManual.
	Mode Mode
	// WebhookURL receives the webhooks; empty sends none until
	// SetWebhookURL.
	WebhookURL string
	// Secret signs the webhooks.
	Secret []byte
	// APIKey is what callers of the API (/v1/intents...) must send as
	// "Authorization: Bearer <key>". Empty: a random key, see
	// [Sim.APIKey].
	APIKey string
	// LinkSecret signs the pay links (checkout URLs). Empty: a random
	// secret, so links do not survive a restart of the simulator; give
	// the same secret to a simulator restarted on the same StateFile.
	LinkSecret []byte
	// LinkTTL is how long a pay link works after its intent was created
	// (default [DefaultLinkTTL]).
	LinkTTL time.Duration
	// Faults to inject; the zero value injects none.
	Faults psp.Faults
	// Seed seeds the fault dice; 0 picks a random seed.
	Seed uint64
	// WebhookAttempts bounds the deliveries of one webhook (default 10)
	// and WebhookBackoff is the wait before the first retry, doubling up
	// to 2 s (default 20 ms).
	WebhookAttempts int
	WebhookBackoff  time.Duration
	// HTTPClient sends the webhooks (default: 10 s timeout).
	HTTPClient *http.Client
	// Logger (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// StateFile, when set, keeps the intents in this file, a journal of
	// one line per change (journal.go): they are read by New and each
	// change is appended and synced before it is answered, so a simulator
	// restarted on the same file (orderd's local default restarting)
	// still knows the intents of pending payments and can void, refund
	// and report them. Empty keeps them in memory only.
	StateFile string
}

// DefaultLinkTTL is how long a pay link works by default.
const DefaultLinkTTL = time.Hour

// Stats counts what the simulator did: its intents, its webhooks and
// the faults it injected.
type Stats struct {
	Intents    int64 // intents it knows
	Events     int64 // events raised
	Delivered  int64 // deliveries answered 2xx
	Retried    int64 // delivery attempts that were retried
	Refused    int64 // deliveries answered 401 or 422
	Abandoned  int64 // events given up on after every attempt
	Lost       int64 // events dropped by the loss fault
	Duplicated int64 // events sent twice by the duplicate fault
	Reordered  int64 // events held back by the reorder fault
	Declined   int64 // payments declined, by the fault or on the pay page
	// DeclineFaults counts the declines the decline fault injected (part
	// of Declined).
	DeclineFaults int64
	Unpaid        int64 // intents the abandon fault left unpaid
}

// Sim is the simulator. It is safe for concurrent use.
type Sim struct {
	cfg     Config
	log     *slog.Logger
	mu      sync.Mutex
	intents map[string]*psp.Intent
	byKey   map[string]string // create idempotency key -> intent id
	manual  map[string]bool   // intents created with manual capture
	journal *journal          // the state file, nil without one
	closed  bool              // Close was called: the journal is closed
	dice    *mrand.Rand
	diceMu  sync.Mutex

	base    atomic.Pointer[string]
	webhook atomic.Pointer[string]

	srv      *http.Server
	ctx      context.Context
	cancel   context.CancelFunc
	inflight sync.WaitGroup

	stats struct {
		events, delivered, retried, refused, abandoned, lost, duplicated, reordered, declined, declineFaults, abandonedByShopper atomic.Int64
	}
}

// New returns a simulator; serve it with [Sim.Start] or mount
// [Sim.Handler] and call [Sim.SetBaseURL].
func New(cfg Config) (*Sim, error) {
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeAuto
	case ModeAuto, ModeManual:
	default:
		return nil, fmt.Errorf("psp sim: mode %q: want auto or manual", cfg.Mode)
	}
	if cfg.WebhookAttempts <= 0 {
		cfg.WebhookAttempts = 10
	}
	if cfg.WebhookBackoff <= 0 {
		cfg.WebhookBackoff = 20 * time.Millisecond
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.APIKey == "" {
		cfg.APIKey = randomID("sk_sim_") + randomID("")
	}
	if len(cfg.LinkSecret) == 0 {
		cfg.LinkSecret = make([]byte, 32)
		if _, err := rand.Read(cfg.LinkSecret); err != nil {
			return nil, fmt.Errorf("psp sim: link secret: %w", err)
		}
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = DefaultLinkTTL
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	s := &Sim{
		cfg:     cfg,
		log:     cfg.Logger,
		intents: map[string]*psp.Intent{},
		byKey:   map[string]string{},
		manual:  map[string]bool{},
		dice:    mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	if cfg.StateFile != "" {
		l, err := readJournal(cfg.StateFile)
		if err != nil {
			return nil, err
		}
		s.intents, s.byKey, s.manual = l.intents, l.byKey, l.manual
		lines := l.lines
		// Start from one line per intent when lines were superseded, a
		// crash tore the tail (appending after it would bury it) or the
		// file is in the old format.
		if l.torn || l.legacy || l.lines > len(l.intents) {
			if l.torn {
				s.log.Warn("psp sim: the state file's last line was torn (a crash while writing); it is ignored", "file", cfg.StateFile)
			}
			if err := writeCompact(cfg.StateFile, s.intents, s.byKey, s.manual); err != nil {
				return nil, fmt.Errorf("psp sim: compact state: %w", err)
			}
			lines = len(s.intents)
		}
		if s.journal, err = openJournal(cfg.StateFile, lines); err != nil {
			return nil, err
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.SetWebhookURL(cfg.WebhookURL)
	s.SetBaseURL("http://psp.invalid")
	return s, nil
}

// Start serves the simulator on addr (such as "127.0.0.1:0") and returns
// its base URL.
func (s *Sim) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("psp sim: listen on %s: %w", addr, err)
	}
	base := "http://" + ln.Addr().String()
	s.SetBaseURL(base)
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("psp sim stopped", "err", err)
		}
	}()
	return base, nil
}

// SetBaseURL sets the URL the simulator is reachable at, used in
// checkout URLs.
func (s *Sim) SetBaseURL(u string) { u = strings.TrimRight(u, "/"); s.base.Store(&u) }

// BaseURL returns the URL set by Start or SetBaseURL.
func (s *Sim) BaseURL() string { return *s.base.Load() }

// APIKey returns the key the API requires (Config.APIKey or the one
// generated).
func (s *Sim) APIKey() string { return s.cfg.APIKey }

// SetWebhookURL sets where webhooks go; empty stops sending them.
func (s *Sim) SetWebhookURL(u string) { s.webhook.Store(&u) }

// Close stops the server, abandons webhooks not yet delivered and closes
// the state file; changes after Close are kept in memory only.
func (s *Sim) Close() error {
	s.cancel()
	var err error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
	}
	s.inflight.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal != nil && !s.closed {
		s.closed = true
		err = errors.Join(err, s.journal.close())
	}
	return err
}

// Stats returns the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	n := int64(len(s.intents))
	s.mu.Unlock()
	return Stats{
		Intents: n, DeclineFaults: s.stats.declineFaults.Load(),
		Events: s.stats.events.Load(), Delivered: s.stats.delivered.Load(), Retried: s.stats.retried.Load(),
		Refused: s.stats.refused.Load(), Abandoned: s.stats.abandoned.Load(), Lost: s.stats.lost.Load(),
		Duplicated: s.stats.duplicated.Load(), Reordered: s.stats.reordered.Load(), Declined: s.stats.declined.Load(), Unpaid: s.stats.abandonedByShopper.Load(),
	}
}

// Intents returns a copy of every intent, oldest first.
func (s *Sim) Intents() []psp.Intent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedIntents(s.intents)
}

// sortedIntents copies intents, oldest first.
func sortedIntents(intents map[string]*psp.Intent) []psp.Intent {
	out := make([]psp.Intent, 0, len(intents))
	for _, in := range intents {
		out = append(out, *in)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Created.Before(out[j].Created) || (out[i].Created.Equal(out[j].Created) && out[i].ID < out[j].ID)
	})
	return out
}

// Errors of the simulator's operations.
var (
	errNotFound     = fmt.Errorf("%w", psp.ErrNotFound)
	errInvalidState = fmt.Errorf("%w", psp.ErrInvalidState)
)

func (s *Sim) roll(rate float64) bool {
	if rate <= 0 {
		return false
	}
	s.diceMu.Lock()
	defer s.diceMu.Unlock()
	return s.dice.Float64() < rate
}

func (s *Sim) jitter(max time.Duration) time.Duration {
	s.diceMu.Lock()
	defer s.diceMu.Unlock()
	return time.Duration(s.dice.Int64N(int64(max)))
}

func randomID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// persist records in's new state in the state file (no-op without
// one): one line, or a compaction when the journal is due for one. The
// caller holds s.mu and then, without it, calls durable with the result.
// A failed write is logged: the simulator keeps serving from memory, and
// rewrites the whole file at the next change.
func (s *Sim) persist(in *psp.Intent, key string, manual bool) int64 {
	if s.journal == nil || s.closed {
		return 0
	}
	if s.journal.due(len(s.intents)) {
		err := s.journal.compact(s.intents, s.byKey, s.manual)
		if err == nil {
			return 0 // the new file has this change and is synced
		}
		s.log.Error("psp sim: cannot compact its state file", "file", s.cfg.StateFile, "err", err)
	}
	end, err := s.journal.append(record{Intent: in, Key: key, Manual: manual})
	if err != nil {
		s.log.Error("psp sim: cannot save its state", "file", s.cfg.StateFile, "err", err)
	}
	return end
}

// durable waits until the state file has what persist returned end for.
func (s *Sim) durable(end int64) {
	if end == 0 {
		return
	}
	if err := s.journal.sync(end); err != nil {
		s.log.Error("psp sim: cannot sync its state file", "file", s.cfg.StateFile, "err", err)
	}
}

// create makes an intent or returns the one made with the same key.
func (s *Sim) create(req psp.CreateIntentRequest, key string) (psp.Intent, bool, error) {
	if req.Reference == "" || !events.ValidCurrency(req.Amount.Currency) || req.Amount.Amount < 0 {
		return psp.Intent{}, false, fmt.Errorf("%w: reference, amount and a valid currency are required", psp.ErrInvalidRequest)
	}
	if req.CaptureMethod != "" && req.CaptureMethod != "automatic" && req.CaptureMethod != "manual" {
		return psp.Intent{}, false, fmt.Errorf("%w: capture_method %q", psp.ErrInvalidRequest, req.CaptureMethod)
	}
	s.mu.Lock()
	if key != "" {
		if id, ok := s.byKey[key]; ok {
			in := *s.intents[id]
			s.mu.Unlock()
			if in.Reference != req.Reference || in.Amount != req.Amount {
				return psp.Intent{}, false, fmt.Errorf("%w: idempotency key %q was used for another request", psp.ErrInvalidRequest, key)
			}
			return in, false, nil
		}
	}
	now := s.cfg.Now().UTC()
	id := randomID("pi_")
	in := &psp.Intent{
		ID: id, Reference: req.Reference, OrderID: req.OrderID, Amount: req.Amount,
		Status: psp.StatusRequiresPayment, CheckoutURL: s.BaseURL() + "/pay/" + id + "?" + s.linkQuery(id, now.Add(s.cfg.LinkTTL)),
		Version: 1, Created: now, Updated: now,
	}
	s.intents[id] = in
	if key != "" {
		s.byKey[key] = id
	}
	if req.CaptureMethod == "manual" {
		s.manual[id] = true
	}
	end := s.persist(in, key, s.manual[id])
	snap := *in
	s.mu.Unlock()
	s.durable(end)
	return snap, true, nil
}

// transition changes an intent under the lock and raises its event.
func (s *Sim) transition(id string, f func(in *psp.Intent) (changed bool, err error)) (psp.Intent, error) {
	s.mu.Lock()
	in, ok := s.intents[id]
	if !ok {
		s.mu.Unlock()
		return psp.Intent{}, fmt.Errorf("%w: %s", errNotFound, id)
	}
	changed, err := f(in)
	if err != nil {
		snap := *in
		s.mu.Unlock()
		return snap, err
	}
	var end int64
	if changed {
		in.Version++
		in.Updated = s.cfg.Now().UTC()
		end = s.persist(in, "", false)
	}
	snap := *in
	s.mu.Unlock()
	if changed {
		s.durable(end)
		s.emit(snap)
	}
	return snap, nil
}

// Approve pays an intent as the shopper would on the pay page: captured,
// or authorized when it was created with manual capture.
func (s *Sim) Approve(id string) (psp.Intent, error) {
	return s.transition(id, func(in *psp.Intent) (bool, error) {
		if !in.Status.Pending() || in.Status == psp.StatusAuthorized {
			if in.Status == psp.StatusCaptured || in.Status == psp.StatusAuthorized {
				return false, nil
			}
			return false, fmt.Errorf("%w: intent %s is %s", errInvalidState, in.ID, in.Status)
		}
		if s.manual[in.ID] { // transition holds s.mu
			in.Status = psp.StatusAuthorized
			return true, nil
		}
		in.Status = psp.StatusCaptured
		in.CaptureRef = randomID("ch_")
		return true, nil
	})
}

// Decline refuses an intent's payment, as a card issuer would.
func (s *Sim) Decline(id, reason string) (psp.Intent, error) {
	if reason == "" {
		reason = "card_declined"
	}
	return s.transition(id, func(in *psp.Intent) (bool, error) {
		switch in.Status {
		case psp.StatusFailed:
			return false, nil
		case psp.StatusRequiresPayment, psp.StatusAuthorized:
			in.Status = psp.StatusFailed
			in.FailureReason = reason
			s.stats.declined.Add(1)
			return true, nil
		default:
			return false, fmt.Errorf("%w: intent %s is %s", errInvalidState, in.ID, in.Status)
		}
	})
}

func (s *Sim) capture(id string) (psp.Intent, error) {
	return s.transition(id, func(in *psp.Intent) (bool, error) {
		switch in.Status {
		case psp.StatusCaptured:
			return false, nil
		case psp.StatusAuthorized:
			in.Status = psp.StatusCaptured
			in.CaptureRef = randomID("ch_")
			return true, nil
		default:
			return false, fmt.Errorf("%w: cannot capture an intent that is %s", errInvalidState, in.Status)
		}
	})
}

func (s *Sim) void(id string) (psp.Intent, error) {
	return s.transition(id, func(in *psp.Intent) (bool, error) {
		if in.Status.Pending() {
			in.Status = psp.StatusVoided
			return true, nil
		}
		return false, nil // too late or already final: the caller reads the status
	})
}

func (s *Sim) refund(id string, amount events.Money) (psp.Intent, error) {
	return s.transition(id, func(in *psp.Intent) (bool, error) {
		if amount != in.Amount {
			return false, fmt.Errorf("%w: only the full amount %s can be refunded, not %s", psp.ErrInvalidRequest, in.Amount, amount)
		}
		switch in.Status {
		case psp.StatusRefunded:
			return false, nil
		case psp.StatusCaptured:
			in.Status = psp.StatusRefunded
			in.Refunded = in.Amount.Amount
			return true, nil
		default:
			return false, fmt.Errorf("%w: cannot refund an intent that is %s", errInvalidState, in.Status)
		}
	})
}

func (s *Sim) get(id string) (psp.Intent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.intents[id]
	if !ok {
		return psp.Intent{}, fmt.Errorf("%w: %s", errNotFound, id)
	}
	return *in, nil
}

// decide settles a new intent in auto mode: approve, or decline with the
// configured rate.
func (s *Sim) decide(id string) {
	if s.cfg.Faults.Latency > 0 && pause.For(s.ctx, s.cfg.Faults.Latency) != nil {
		return
	}
	if s.roll(s.cfg.Faults.Abandon) {
		s.stats.abandonedByShopper.Add(1)
		return // the shopper never pays
	}
	var err error
	if s.roll(s.cfg.Faults.Decline) {
		s.stats.declineFaults.Add(1)
		_, err = s.Decline(id, "card_declined")
	} else {
		_, err = s.Approve(id)
	}
	if err != nil {
		s.log.Debug("psp sim: auto decision", "intent", id, "err", err)
	}
}

// emit raises the event of an intent's new state and delivers it
// asynchronously, with the configured faults.
func (s *Sim) emit(in psp.Intent) {
	s.stats.events.Add(1)
	ev := psp.Event{ID: randomID("evt_"), Type: psp.EventType(in.Status), Created: in.Updated, Intent: in}
	if *s.webhook.Load() == "" {
		return
	}
	if s.roll(s.cfg.Faults.Loss) {
		s.stats.lost.Add(1)
		s.log.Debug("psp sim: webhook lost (fault)", "event", ev.ID, "type", ev.Type, "intent", in.ID)
		return
	}
	copies := 1
	if s.roll(s.cfg.Faults.Duplicate) {
		copies = 2
		s.stats.duplicated.Add(1)
	}
	var hold time.Duration
	if s.roll(s.cfg.Faults.Reorder) {
		hold = 100*time.Millisecond + s.jitter(500*time.Millisecond)
		s.stats.reordered.Add(1)
	}
	for range copies {
		s.inflight.Add(1)
		go func() {
			defer s.inflight.Done()
			s.deliver(ev, hold)
		}()
	}
}

func (s *Sim) deliver(ev psp.Event, hold time.Duration) {
	if pause.For(s.ctx, hold+s.cfg.Faults.Latency) != nil {
		return
	}
	body, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("psp sim: encode webhook", "err", err)
		return
	}
	wait := s.cfg.WebhookBackoff
	for attempt := 1; ; attempt++ {
		status, err := s.post(body)
		switch {
		case err == nil && status/100 == 2:
			s.stats.delivered.Add(1)
			return
		case err == nil && (status == http.StatusUnauthorized || status == http.StatusUnprocessableEntity):
			s.stats.refused.Add(1)
			s.log.Warn("psp sim: webhook refused", "event", ev.ID, "type", ev.Type, "status", status)
			return
		}
		if attempt >= s.cfg.WebhookAttempts {
			s.stats.abandoned.Add(1)
			s.log.Warn("psp sim: webhook abandoned", "event", ev.ID, "type", ev.Type, "attempts", attempt, "status", status, "err", err)
			return
		}
		s.stats.retried.Add(1)
		if pause.For(s.ctx, wait) != nil {
			return
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (s *Sim) post(body []byte) (int, error) {
	url := *s.webhook.Load()
	if url == "" {
		return 0, errors.New("no webhook URL")
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(psp.SignatureHeader, psp.Sign(s.cfg.Secret, s.cfg.Now(), body))
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Handler returns the simulator's HTTP API and pay page.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /v1/intents", s.api(func(r *http.Request) (psp.Intent, int, error) {
		var req psp.CreateIntentRequest
		if err := decode(r, &req); err != nil {
			return psp.Intent{}, 0, err
		}
		in, created, err := s.create(req, r.Header.Get("Idempotency-Key"))
		if err != nil {
			return psp.Intent{}, 0, err
		}
		if !created {
			return in, http.StatusOK, nil
		}
		if s.cfg.Mode == ModeAuto {
			s.inflight.Add(1)
			go func() {
				defer s.inflight.Done()
				s.decide(in.ID)
			}()
		}
		return in, http.StatusCreated, nil
	}))
	mux.HandleFunc("GET /v1/intents/{id}", s.api(func(r *http.Request) (psp.Intent, int, error) {
		in, err := s.get(r.PathValue("id"))
		return in, http.StatusOK, err
	}))
	mux.HandleFunc("POST /v1/intents/{id}/capture", s.api(func(r *http.Request) (psp.Intent, int, error) {
		in, err := s.capture(r.PathValue("id"))
		return in, http.StatusOK, err
	}))
	mux.HandleFunc("POST /v1/intents/{id}/void", s.api(func(r *http.Request) (psp.Intent, int, error) {
		in, err := s.void(r.PathValue("id"))
		return in, http.StatusOK, err
	}))
	mux.HandleFunc("POST /v1/intents/{id}/refund", s.api(func(r *http.Request) (psp.Intent, int, error) {
		var req psp.RefundRequest
		if err := decode(r, &req); err != nil {
			return psp.Intent{}, 0, err
		}
		in, err := s.refund(r.PathValue("id"), req.Amount)
		return in, http.StatusOK, err
	}))
	mux.HandleFunc("GET /pay/{id}", s.link(s.payPage))
	mux.HandleFunc("POST /pay/{id}/approve", s.link(s.payAction(func(id string) error { _, err := s.Approve(id); return err })))
	mux.HandleFunc("POST /pay/{id}/decline", s.link(s.payAction(func(id string) error { _, err := s.Decline(id, "declined_by_shopper"); return err })))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path)
	})
	return mux
}

func (s *Sim) api(f func(r *http.Request) (psp.Intent, int, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="psp-sim"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "the API needs the simulator's key as Authorization: Bearer <key>")
			return
		}
		if s.cfg.Faults.Latency > 0 && pause.For(r.Context(), s.cfg.Faults.Latency) != nil {
			return
		}
		in, status, err := f(r)
		switch {
		case err == nil:
			writeJSON(w, status, in)
		case errors.Is(err, psp.ErrNotFound):
			writeError(w, http.StatusNotFound, "not_found", err.Error())
		case errors.Is(err, psp.ErrInvalidState):
			writeError(w, http.StatusConflict, "invalid_state", err.Error())
		default:
			writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		}
	}
}

// authorized reports whether r carries the API key. Both sides are
// hashed first, so the comparison takes as long whatever the length of
// what was sent.
func (s *Sim) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s.cfg.APIKey))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// linkQuery returns the query that makes a pay link of intent id valid
// until exp: "exp=<unix seconds>&sig=<hex HMAC-SHA256 of id and exp>".
func (s *Sim) linkQuery(id string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return "exp=" + e + "&sig=" + s.linkSig(id, e)
}

func (s *Sim) linkSig(id, exp string) string {
	m := hmac.New(sha256.New, s.cfg.LinkSecret)
	m.Write([]byte("ordo.psp-sim.pay\x00" + id + "\x00" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// link serves next only for a request whose query carries a valid,
// unexpired signature of the intent named in the path; anything else is
// 403 with a JSON error, before the intent is even looked up.
func (s *Sim) link(next func(w http.ResponseWriter, r *http.Request, query string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		q := r.URL.Query()
		exp, sig := q.Get("exp"), q.Get("sig")
		if exp == "" || sig == "" {
			writeError(w, http.StatusForbidden, "link_required", "this page opens only through the payment's signed checkout link")
			return
		}
		want := s.linkSig(id, exp)
		if !hmac.Equal([]byte(sig), []byte(want)) {
			writeError(w, http.StatusForbidden, "link_invalid", "the checkout link's signature is not valid")
			return
		}
		unix, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || !s.cfg.Now().Before(time.Unix(unix, 0)) {
			writeError(w, http.StatusForbidden, "link_expired", "the checkout link has expired")
			return
		}
		next(w, r, url.Values{"exp": {exp}, "sig": {sig}}.Encode())
	}
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body is not valid JSON: %v", psp.ErrInvalidRequest, err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

var payTemplate = template.Must(template.New("pay").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Pay {{.Amount}}</title>
<style>body{font-family:sans-serif;max-width:28em;margin:3em auto}button{font-size:1.2em;margin:.5em}</style></head>
<body>
<h1>Ordo test payment</h1>
<p>Order <code>{{.OrderID}}</code>, payment <code>{{.Reference}}</code></p>
<p>Amount: <strong>{{.Amount}}</strong></p>
<p>Status: <strong id="status">{{.Status}}</strong></p>
{{if .Pending}}
<form method="post" action="/pay/{{.ID}}/approve?{{.Query}}"><button type="submit">Approve</button></form>
<form method="post" action="/pay/{{.ID}}/decline?{{.Query}}"><button type="submit">Decline</button></form>
{{end}}
</body></html>
`))

func (s *Sim) payPage(w http.ResponseWriter, r *http.Request, query string) {
	in, err := s.get(r.PathValue("id"))
	if err != nil {
		http.Error(w, "no such payment", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = payTemplate.Execute(w, struct {
		psp.Intent
		Amount  string
		Pending bool
		Query   template.URL
	}{in, in.Amount.String(), in.Status == psp.StatusRequiresPayment, template.URL(query)})
}

func (s *Sim) payAction(f func(id string) error) func(w http.ResponseWriter, r *http.Request, query string) {
	return func(w http.ResponseWriter, r *http.Request, query string) {
		id := r.PathValue("id")
		if err := f(id); err != nil {
			status := http.StatusConflict
			if errors.Is(err, psp.ErrNotFound) {
				status = http.StatusNotFound
			}
			http.Error(w, err.Error(), status)
			return
		}
		http.Redirect(w, r, "/pay/"+url.PathEscape(id)+"?"+query, http.StatusSeeOther)
	}
}

// Counts returns the counters as the metrics package exposes them
// (ordo_psp_sim_*).
func (st Stats) Counts() metrics.PSPSimCounts {
	return metrics.PSPSimCounts{
		Intents: st.Intents, Events: st.Events,
		Delivered: st.Delivered, Refused: st.Refused, Failed: st.Retried + st.Abandoned, Abandoned: st.Abandoned,
		Declined: st.Declined, Duplicated: st.Duplicated, Reordered: st.Reordered, Lost: st.Lost,
		DeclineFaults: st.DeclineFaults, Unpaid: st.Unpaid,
	}
}
