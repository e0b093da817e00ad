package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

const (
	secret = "psp-secret-psp-secret-psp-secret-psp!"
	apiKey = "sk_test_pspsim_0123456789abcdef0123456789"
)

// TestRunRefusesBadConfiguration: a missing or short secret, an unknown
// mode, bad faults and unknown flags are one error each, and nothing is
// served.
func TestRunRefusesBadConfiguration(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no secret", []string{"--listen", "127.0.0.1:0"}, nil, "ORDO_PSP_WEBHOOK_SECRET"},
		{"short secret", []string{"--listen", "127.0.0.1:0"}, map[string]string{"ORDO_PSP_WEBHOOK_SECRET": "short"}, "ORDO_PSP_WEBHOOK_SECRET"},
		{"unknown mode", []string{"--listen", "127.0.0.1:0", "--mode", "eager"}, map[string]string{"ORDO_PSP_WEBHOOK_SECRET": secret, "ORDO_PSP_API_KEY": apiKey}, "mode"},
		{"bad faults", []string{"--listen", "127.0.0.1:0", "--faults", "decline=2"}, map[string]string{"ORDO_PSP_WEBHOOK_SECRET": secret, "ORDO_PSP_API_KEY": apiKey}, "decline"},
		{"unknown flag", []string{"--bogus"}, map[string]string{"ORDO_PSP_WEBHOOK_SECRET": secret, "ORDO_PSP_API_KEY": apiKey}, "bogus"},
		{"no API key", []string{"--listen", "127.0.0.1:0"}, map[string]string{"ORDO_PSP_WEBHOOK_SECRET": secret}, "ORDO_PSP_API_KEY"},
		{"short API key", []string{"--listen", "127.0.0.1:0"}, map[string]string{"ORDO_PSP_WEBHOOK_SECRET": secret, "ORDO_PSP_API_KEY": "short"}, "ORDO_PSP_API_KEY"},
		{"short link secret", []string{"--listen", "127.0.0.1:0"}, map[string]string{"ORDO_PSP_WEBHOOK_SECRET": secret, "ORDO_PSP_API_KEY": apiKey, "ORDO_PSP_LINK_SECRET": "short"}, "ORDO_PSP_LINK_SECRET"},
		{"bad link TTL", []string{"--listen", "127.0.0.1:0", "--link-ttl", "-1s"}, map[string]string{"ORDO_PSP_WEBHOOK_SECRET": secret, "ORDO_PSP_API_KEY": apiKey}, "TTL"},
		{"bad listen address", []string{"--listen", "nowhere:-1"}, map[string]string{"ORDO_PSP_WEBHOOK_SECRET": secret, "ORDO_PSP_API_KEY": apiKey}, "listen"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), c.args, env(c.env), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || out.Len() != 0 || errOut.Len() != 0 {
			t.Errorf("%s: err %v, stdout %q, stderr %q; want an error about %q", c.name, err, out.String(), errOut.String(), c.want)
		}
	}
}

func TestHelpPrintsTheFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, env(nil), &out, &bytes.Buffer{}); err != nil || !strings.Contains(out.String(), "-webhook-url") {
		t.Fatalf("-h: %v %q", err, out.String())
	}
}

// TestRunServesUntilCancelled starts the simulator on a free port, reads
// its health endpoint, and stops it with the context.
func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out safeBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--mode", "manual"}, env(map[string]string{"ORDO_PSP_WEBHOOK_SECRET": secret, "ORDO_PSP_API_KEY": apiKey}), &out, &bytes.Buffer{})
	}()
	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" {
		if time.Now().After(deadline) {
			t.Fatalf("pspsim did not report its address: %q", out.String())
		}
		if s := out.String(); strings.Contains(s, "serving ") {
			base = strings.Fields(strings.SplitN(s, "serving ", 2)[1])[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	// The API answers only with ORDO_PSP_API_KEY.
	for key, want := range map[string]int{"": 401, "sk_test_other_0123456789abcdef0123456789": 401, apiKey: 404} {
		req, err := http.NewRequest("GET", base+"/v1/intents/pi_nope", nil)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET /v1/intents/pi_nope with key %q: %d, want %d", key, resp.StatusCode, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}

type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
