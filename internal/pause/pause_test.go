package pause

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestForEndsWithItsContext(t *testing.T) {
	if err := For(t.Context(), time.Millisecond); err != nil {
		t.Fatalf("a pause that ran out: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := For(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("a pause of a cancelled context: %v", err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if err := For(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("a pause cancelled while it waits: %v", err)
	}
}

func TestUntil(t *testing.T) {
	n := 0
	err := Until(t.Context(), time.Microsecond, time.Millisecond, func() (bool, error) { n++; return n == 5, nil })
	if err != nil || n != 5 {
		t.Fatalf("until the 5th call: %d calls, %v", n, err)
	}
	boom := errors.New("boom")
	n = 0
	if err := Until(t.Context(), time.Microsecond, time.Millisecond, func() (bool, error) { n++; return false, boom }); err != boom || n != 1 {
		t.Fatalf("a failing condition: %d calls, %v", n, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	n = 0
	err = Until(ctx, time.Microsecond, time.Millisecond, func() (bool, error) {
		n++
		if n == 3 {
			cancel()
		}
		return false, nil
	})
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Fatalf("a cancelled wait: %d calls, %v", n, err)
	}
}

func TestWithin(t *testing.T) {
	n := 0
	if !Within(time.Minute, time.Microsecond, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("a condition that comes true: %d calls", n)
	}
	if Within(20*time.Millisecond, time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never holds held")
	}
}
