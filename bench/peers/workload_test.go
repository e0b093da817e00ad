package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Every event carries the same amount of data, whatever its store.
func TestLineIsPayloadBytes(t *testing.T) {
	for _, n := range []int{1, 9, 10, 999, 123456} {
		b, err := json.Marshal(newLine(uuid.NewString(), n))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != payloadBytes {
			t.Fatalf("line %d: %d bytes of JSON, want %d", n, len(b), payloadBytes)
		}
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("median = %v, want 2", m)
	}
	if m := median([]time.Duration{5, 1, 9, 7}); m != 7 {
		t.Fatalf("median of four = %v, want the upper middle 7", m)
	}
}

func TestPositiveInts(t *testing.T) {
	got, err := positiveInts("1, 16")
	if err != nil || len(got) != 2 || got[0] != 1 || got[1] != 16 {
		t.Fatalf("positiveInts = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "1,x", "-3"} {
		if _, err := positiveInts(bad); err == nil {
			t.Fatalf("positiveInts(%q) accepted", bad)
		}
	}
}
