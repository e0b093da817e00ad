package main

import (
	"math/bits"
	"sync"
	"time"
)

// histogram records durations in a log-linear layout, the layout of an
// HDR histogram with two significant digits: values below 256 µs each
// have their own bucket, and every power of two above that is cut into
// 128 equal buckets, so a bucket is at most 1/128 (0.8%) of the values in
// it wide. A quantile is the highest value of its bucket (capped at the
// largest value recorded), so it is never below the true quantile and at
// most 0.8% above it. Memory grows with the largest value only (about
// 3,300 counters for an hour), and recording is one mutex and an index
// computation.
//
// Negative durations (a timer that fired before its due time, by the
// server's clock) are counted as early and recorded as zero.
type histogram struct {
	mu       sync.Mutex
	counts   []int64
	n, early int64
	min, max time.Duration
	sum      time.Duration
}

// subBuckets is how many buckets each power of two is cut into.
const (
	subBits    = 7
	subBuckets = 1 << subBits // 128
)

// maxMicros bounds what a histogram holds (larger values are recorded as
// this): about 12.7 days.
const maxMicros = 1<<40 - 1

// bucketOf returns the bucket of v (µs, 0 <= v <= maxMicros).
func bucketOf(v int64) int {
	e := bits.Len64(uint64(v)) - (subBits + 1)
	if e <= 0 {
		return int(v)
	}
	return e*subBuckets + int(v>>e)
}

// bucketHigh returns the highest value (µs) of bucket i.
func bucketHigh(i int) int64 {
	if i < 2*subBuckets {
		return int64(i)
	}
	e := i/subBuckets - 1
	sub := int64(i - e*subBuckets)
	return (sub+1)<<e - 1
}

func newHistogram() *histogram { return &histogram{} }

// Record adds one duration.
func (h *histogram) Record(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d < 0 {
		h.early++
		d = 0
	}
	us := d.Microseconds()
	if us > maxMicros {
		us = maxMicros
	}
	i := bucketOf(us)
	if i >= len(h.counts) {
		grown := make([]int64, i+1+subBuckets)
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// stats is a histogram's summary at one moment.
type stats struct {
	Count int64         `json:"count"`
	Early int64         `json:"early,omitempty"`
	Min   time.Duration `json:"min_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p99_9_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Stats returns the count, mean, min, max and the quantiles the summary
// prints.
func (h *histogram) Stats() stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := stats{Count: h.n, Early: h.early, Min: h.min, Max: h.max}
	if h.n == 0 {
		return s
	}
	s.Mean = h.sum / time.Duration(h.n)
	s.P50, s.P90, s.P99, s.P999 = h.quantile(0.5), h.quantile(0.9), h.quantile(0.99), h.quantile(0.999)
	return s
}

// Quantile returns the value at or below which a fraction q of the
// recorded values lie (0 for an empty histogram).
func (h *histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.quantile(q)
}

func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	// The rank of the quantile, 1-based: the smallest value with at
	// least q·n values at or below it.
	rank := int64(q*float64(h.n) + 0.5)
	rank = max(1, min(rank, h.n))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(bucketHigh(i)) * time.Microsecond
			// The bucket's top is an upper bound; nothing recorded is
			// above max, and the first bucket holding anything is not
			// below min.
			return max(min(v, h.max), h.min)
		}
	}
	return h.max
}
