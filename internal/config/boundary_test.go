package config

import (
	"io"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/auth"
)

func TestTokenMaxLifetimes(t *testing.T) {
	if d := Default().TokenMaxLifetimes; d != auth.DefaultMaxLifetimes() || d.Customer != 24*time.Hour {
		t.Fatalf("default maxima %+v", d)
	}
	vars := map[string]string{"ORDO_TOKEN_MAX_LIFETIME_CUSTOMER": "2h", "ORDO_TOKEN_MAX_LIFETIME_ADMIN": "30m"}
	c, err := Load(nil, env(vars), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := auth.MaxLifetimes{Customer: 2 * time.Hour, Agent: auth.DefaultMaxAgent, Admin: 30 * time.Minute}
	if c.TokenMaxLifetimes != want {
		t.Fatalf("maxima %+v, want %+v", c.TokenMaxLifetimes, want)
	}
	// orderctl token reads the same variables and nothing else.
	vars["ORDO_PARTITIONS"] = "many"
	if m, err := TokenMaxLifetimes(env(vars)); err != nil || m != want {
		t.Fatalf("TokenMaxLifetimes = %+v, %v", m, err)
	}
	for _, bad := range []string{"0s", "-1h", "10s", "721h", "a while"} {
		if _, err := Load(nil, env(map[string]string{"ORDO_TOKEN_MAX_LIFETIME_AGENT": bad}), io.Discard); err == nil {
			t.Errorf("ORDO_TOKEN_MAX_LIFETIME_AGENT=%s accepted", bad)
		}
		if _, err := TokenMaxLifetimes(env(map[string]string{"ORDO_TOKEN_MAX_LIFETIME_AGENT": bad})); err == nil {
			t.Errorf("TokenMaxLifetimes accepted ORDO_TOKEN_MAX_LIFETIME_AGENT=%s", bad)
		}
	}
}

func TestMetricsAddr(t *testing.T) {
	if d := Default().MetricsAddr; d != "127.0.0.1:0" {
		t.Fatalf("default metrics addr %q", d)
	}
	c, err := Load([]string{"--metrics-addr", "10.0.0.5:9464"}, env(nil), io.Discard)
	if err != nil || c.MetricsAddr != "10.0.0.5:9464" {
		t.Fatalf("--metrics-addr: %q %v", c.MetricsAddr, err)
	}
	if c, err := Load(nil, env(map[string]string{"ORDO_METRICS_ADDR": "off"}), io.Discard); err != nil || c.MetricsAddr != MetricsOff {
		t.Fatalf("ORDO_METRICS_ADDR=off: %q %v", c.MetricsAddr, err)
	}
	for _, bad := range []map[string]string{
		{"ORDO_METRICS_ADDR": "9464"},
		{"ORDO_METRICS_ADDR": "127.0.0.1:8080"}, // the API's
	} {
		if _, err := Load(nil, env(bad), io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
