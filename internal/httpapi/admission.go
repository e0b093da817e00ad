package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Admission is the checkout's admission control (decision 024): while the
// checkout has more than Max messages of the order stream it has not
// handled, POST /v1/orders is refused with 429 checkout_busy and a
// Retry-After, so that a load the checkout cannot absorb turns into quick
// refusals instead of orders that wait minutes for their stock. Reads,
// cancels and every other request are not affected.
type Admission struct {
	// Max is the largest backlog at which orders are still admitted;
	// 0 (or less) admits everything.
	Max int
	// Backlog returns the checkout's backlog: the messages of the order
	// stream its consumer has not delivered or not acknowledged yet. It
	// is asked at most once per Every (default 250ms) on this instance;
	// in between, places use the last answer. An error admits (the place
	// itself fails if the log is down) and is logged.
	Backlog func(ctx context.Context) (int, error)
	Every   time.Duration
	// Refused, if set, is called for every refused place (a metric).
	Refused func()
}

// admission is the state of [Admission] on one server.
type admission struct {
	Admission
	now func() time.Time

	mu       sync.Mutex
	sampling bool
	at       time.Time // when value was sampled
	value    int
	// prevAt and prev are the sample before, for the drain rate that
	// Retry-After is estimated from.
	prevAt time.Time
	prev   int
}

func newAdmission(a Admission, now func() time.Time) *admission {
	if a.Max <= 0 || a.Backlog == nil {
		return nil
	}
	if a.Every <= 0 {
		a.Every = 250 * time.Millisecond
	}
	return &admission{Admission: a, now: now}
}

// check returns nil if a new order may be placed now, else 429
// checkout_busy with Retry-After.
func (s *Server) checkAdmission(ctx context.Context) error {
	a := s.admission
	if a == nil {
		return nil
	}
	backlog, rate := a.sample(ctx, s)
	if backlog <= a.Max {
		return nil
	}
	if a.Refused != nil {
		a.Refused()
	}
	// Retry once the backlog should be back under the bound at the rate
	// it drained between the last two samples; 5 s while it is not
	// draining; between 1 and 30 s.
	wait := 5
	if rate > 0 {
		wait = int(float64(backlog-a.Max)/rate) + 1
	}
	e := errorf(http.StatusTooManyRequests, "checkout_busy",
		"the checkout is %d messages behind (at most %d admit new orders); place the order again later", backlog, a.Max)
	e.RetryAfter = min(max(wait, 1), 30)
	return e
}

// sample returns the last backlog and its drain rate (messages per
// second, 0 if it is not shrinking), asking Backlog again if the last
// answer is older than Every. One request asks at a time; the others use
// the last answer meanwhile.
func (a *admission) sample(ctx context.Context, s *Server) (int, float64) {
	a.mu.Lock()
	now := a.now()
	if a.sampling || (!a.at.IsZero() && now.Sub(a.at) < a.Every) {
		v, r := a.value, a.rateLocked()
		a.mu.Unlock()
		return v, r
	}
	a.sampling = true
	a.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	v, err := a.Backlog(ctx)
	cancel()

	a.mu.Lock()
	defer a.mu.Unlock()
	a.sampling = false
	if err != nil {
		s.log.Warn("checkout backlog unknown; admitting orders", "err", err)
		return a.value, a.rateLocked()
	}
	a.prevAt, a.prev = a.at, a.value
	a.at, a.value = a.now(), v
	return v, a.rateLocked()
}

func (a *admission) rateLocked() float64 {
	if a.prevAt.IsZero() || a.value >= a.prev {
		return 0
	}
	d := a.at.Sub(a.prevAt).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(a.prev-a.value) / d
}
