package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBucketsCoverEveryValueOnce: consecutive buckets meet without a gap
// or an overlap, each value's bucket holds it, and no bucket is wider
// than 1/128 of its lowest value (below 128 µs every value has its own).
func TestBucketsCoverEveryValueOnce(t *testing.T) {
	low := int64(0)
	for i := 0; bucketHigh(i) < maxMicros; i++ {
		high := bucketHigh(i)
		if high < low {
			t.Fatalf("bucket %d: high %d below its low %d", i, high, low)
		}
		if got := bucketOf(low); got != i {
			t.Fatalf("value %d (low of bucket %d) is put in bucket %d", low, i, got)
		}
		if got := bucketOf(high); got != i {
			t.Fatalf("value %d (high of bucket %d) is put in bucket %d", high, i, got)
		}
		if width := high - low + 1; low >= subBuckets && float64(width)/float64(low) > 1.0/128 {
			t.Fatalf("bucket %d [%d, %d] is %.4f of its low value wide", i, low, high, float64(width)/float64(low))
		}
		low = high + 1
	}
}

// TestQuantilesWithinOnePercent compares the histogram's quantiles with
// the exact ones of the same values, over several shapes of data.
func TestQuantilesWithinOnePercent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := map[string]func() time.Duration{
		"uniform 0-10ms": func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Millisecond))) },
		"exponential 5ms": func() time.Duration {
			return time.Duration(rng.ExpFloat64() * float64(5*time.Millisecond))
		},
		"bimodal 1ms 2s": func() time.Duration {
			if rng.IntN(100) < 3 {
				return 2*time.Second + time.Duration(rng.Int64N(int64(time.Second)))
			}
			return time.Millisecond + time.Duration(rng.Int64N(int64(time.Millisecond)))
		},
		"microseconds": func() time.Duration { return time.Duration(rng.Int64N(300)) * time.Microsecond },
	}
	for name, next := range shapes {
		t.Run(name, func(t *testing.T) {
			h := newHistogram()
			var exact []time.Duration
			for range 20000 {
				d := next().Truncate(time.Microsecond)
				h.Record(d)
				exact = append(exact, d)
			}
			slices.Sort(exact)
			s := h.Stats()
			if s.Count != int64(len(exact)) || s.Min != exact[0] || s.Max != exact[len(exact)-1] {
				t.Fatalf("count %d min %s max %s, want %d %s %s", s.Count, s.Min, s.Max, len(exact), exact[0], exact[len(exact)-1])
			}
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				want := exact[max(0, int(q*float64(len(exact))+0.5)-1)]
				got := h.Quantile(q)
				if got < want || float64(got-want) > float64(want)/100+float64(time.Microsecond) {
					t.Errorf("q%.3f: %s, exact %s (more than 1%% apart, or below)", q, got, want)
				}
			}
		})
	}
}

func TestEmptyEarlyAndLarge(t *testing.T) {
	h := newHistogram()
	if s := h.Stats(); s.Count != 0 || s.P99 != 0 || s.Max != 0 {
		t.Fatalf("empty: %+v", s)
	}
	h.Record(-3 * time.Millisecond)
	h.Record(5 * time.Millisecond)
	s := h.Stats()
	if s.Count != 2 || s.Early != 1 || s.Min != 0 || s.Max != 5*time.Millisecond {
		t.Fatalf("early: %+v", s)
	}
	h.Record(time.Hour)
	if s := h.Stats(); s.Count != 3 || s.Max != time.Hour || s.Early != 1 || h.Quantile(1) != time.Hour {
		t.Fatalf("an hour: %+v", s)
	}
	h.Record(100 * 24 * time.Hour) // beyond maxMicros: kept as the largest bucket
	if s := h.Stats(); s.Count != 4 || s.Max != 100*24*time.Hour {
		t.Fatalf("huge: %+v", s)
	}
}
