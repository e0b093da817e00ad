package testkit_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/testkit"
)

func TestEventually(t *testing.T) {
	n := 0
	testkit.Eventually(t, "the third call", time.Minute, func() (bool, error) {
		n++
		if n < 3 {
			return false, errors.New("not yet")
		}
		return true, nil
	})
	if n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
	testkit.Eventually(t, "a condition that holds", time.Minute, testkit.Holds(func() bool { return true }))
}

// A wait that never ends fails the test, naming what it waited for and
// the last reason it was not done.
func TestEventuallyFailsNamingTheLastReason(t *testing.T) {
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testkit.Eventually(rec, "the impossible", 50*time.Millisecond, func() (bool, error) { return false, errors.New("still no") })
	}()
	<-done
	if !rec.failed || !strings.Contains(rec.msg, "the impossible") || !strings.Contains(rec.msg, "still no") {
		t.Fatalf("failed %v with %q", rec.failed, rec.msg)
	}
}

// recorder keeps what a helper reports instead of failing the test.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
