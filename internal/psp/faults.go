package psp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Faults is the failure injection of the simulator (package internal/local/pspsim).
// The zero value injects nothing. Rates are probabilities in [0, 1].
type Faults struct {
	// Decline is the share of payments the provider declines.
	Decline float64
	// Latency delays every API answer and every webhook delivery.
	Latency time.Duration
	// Duplicate is the share of webhooks delivered twice.
	Duplicate float64
	// Reorder is the share of webhooks held back for a while, so that
	// later ones overtake them.
	Reorder float64
	// Loss is the share of webhooks never delivered.
	Loss float64
	// Abandon is the share of shoppers who never pay (auto mode): their
	// intents stay pending until Ordo's payment timeout voids them.
	Abandon float64
}

// ParseFaults reads faults written as comma-separated key=value pairs,
// such as "decline=0.1,latency=20ms,duplicate=0.2,reorder=0.2,loss=0.1,abandon=0.05".
// The empty string is no faults.
func ParseFaults(s string) (Faults, error) {
	var f Faults
	var errs []error
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("%q is not key=value", part))
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "latency" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				errs = append(errs, fmt.Errorf("latency %q is not a non-negative duration", v))
			}
			f.Latency = d
			continue
		}
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("%s %q is not a rate in 0..1", k, v))
			continue
		}
		switch k {
		case "decline":
			f.Decline = r
		case "duplicate":
			f.Duplicate = r
		case "reorder":
			f.Reorder = r
		case "loss":
			f.Loss = r
		case "abandon":
			f.Abandon = r
		default:
			errs = append(errs, fmt.Errorf("unknown fault %q (want decline, latency, duplicate, reorder, loss or abandon)", k))
		}
	}
	if len(errs) > 0 {
		return Faults{}, fmt.Errorf("psp faults: %w", errors.Join(errs...))
	}
	return f, nil
}

// String writes f in the form [ParseFaults] reads.
func (f Faults) String() string {
	var parts []string
	add := func(k string, r float64) {
		if r > 0 {
			parts = append(parts, k+"="+strconv.FormatFloat(r, 'g', -1, 64))
		}
	}
	add("decline", f.Decline)
	if f.Latency > 0 {
		parts = append(parts, "latency="+f.Latency.String())
	}
	add("duplicate", f.Duplicate)
	add("reorder", f.Reorder)
	add("loss", f.Loss)
	add("abandon", f.Abandon)
	return strings.Join(parts, ",")
}
