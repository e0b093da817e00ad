package psp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/psp"
)

func TestVerify(t *testing.T) {
	secret := []byte("whsec-0123456789abcdef0123456789ab")
	body := []byte(`{"id":"evt_1","type":"intent.captured"}`)
	now := time.Unix(1_800_000_000, 0)
	good := psp.Sign(secret, now, body)
	cases := []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		ok     bool
	}{
		{"valid", good, body, now, true},
		{"valid within tolerance", good, body, now.Add(4 * time.Minute), true},
		{"secret rotation: second v1 matches", good + ",v1=" + strings.Repeat("0", 64), body, now, true},
		{"rotation: first of two matches", strings.Replace(good, "v1=", "v1="+strings.Repeat("a", 64)+",v1=", 1), body, now, true},
		{"body altered", good, []byte(`{"id":"evt_1","type":"intent.refunded"}`), now, false},
		{"other secret", psp.Sign([]byte("another-secret-another-secret-!!"), now, body), body, now, false},
		{"stale", good, body, now.Add(6 * time.Minute), false},
		{"from the future", good, body, now.Add(-6 * time.Minute), false},
		{"timestamp altered", strings.Replace(good, "t=1800000000", "t=1800000001", 1), body, now, false},
		{"empty", "", body, now, false},
		{"no timestamp", "v1=" + strings.Repeat("a", 64), body, now, false},
		{"no signature", "t=1800000000", body, now, false},
		{"garbage", "hello", body, now, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := psp.Verify(secret, c.header, c.body, c.now, psp.DefaultTolerance)
			if c.ok && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !c.ok && !errors.Is(err, psp.ErrSignature) {
				t.Fatalf("Verify = %v, want ErrSignature", err)
			}
		})
	}
	if err := psp.Verify(nil, good, body, now, psp.DefaultTolerance); !errors.Is(err, psp.ErrSignature) {
		t.Fatalf("no secret: %v", err)
	}
}

func TestParseFaults(t *testing.T) {
	f, err := psp.ParseFaults("decline=0.1, latency=20ms,duplicate=0.2,reorder=0.3,loss=0.05,abandon=0.5")
	if err != nil {
		t.Fatal(err)
	}
	want := psp.Faults{Decline: 0.1, Latency: 20 * time.Millisecond, Duplicate: 0.2, Reorder: 0.3, Loss: 0.05, Abandon: 0.5}
	if f != want {
		t.Fatalf("%+v, want %+v", f, want)
	}
	if back, err := psp.ParseFaults(f.String()); err != nil || back != f {
		t.Fatalf("round trip %q: %+v %v", f.String(), back, err)
	}
	for _, bad := range []string{"decline=2", "loss=-0.1", "latency=fast", "jitter=0.1", "decline"} {
		if _, err := psp.ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) accepted", bad)
		}
	}
	if f, err := psp.ParseFaults(""); err != nil || f != (psp.Faults{}) {
		t.Fatalf("empty: %+v %v", f, err)
	}
}
