package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.NATSSync != "always" || c.Partitions != 16 || c.Replicas != 1 || c.NATSURL != "" {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestEnvThenFlags(t *testing.T) {
	c, err := Load([]string{"--http-addr", "127.0.0.1:0"}, env(map[string]string{
		"ORDO_HTTP_ADDR":       "127.0.0.1:9999",
		"ORDO_DATA_DIR":        "/tmp/x",
		"ORDO_REQUEST_TIMEOUT": "3s",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:0" || c.DataDir != "/tmp/x" || c.RequestTimeout != 3*time.Second {
		t.Fatalf("config = %+v", c)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	_, err := Load(nil, env(map[string]string{
		"ORDO_NATS_SYNC":   "sometimes",
		"ORDO_REPLICAS":    "2",
		"ORDO_AUTH_SECRET": "short",
		"ORDO_ROLES":       "api,bogus",
	}), io.Discard)
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"sometimes", "replicas 2", "32", "bogus"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := Load(nil, env(map[string]string{"ORDO_REPLICAS": "three"}), io.Discard); err == nil {
		t.Fatal("non-integer replicas accepted")
	}
}

func TestStartTimeout(t *testing.T) {
	c, err := Load([]string{"--start-timeout", "45s"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.StartTimeout != 45*time.Second {
		t.Fatalf("start timeout %s, want 45s", c.StartTimeout)
	}
	if d := Default().StartTimeout; d != 3*time.Minute {
		t.Fatalf("default start timeout %s", d)
	}
	for _, bad := range []string{"0s", "-1m", "500ms", "soon"} {
		if _, err := Load(nil, env(map[string]string{"ORDO_START_TIMEOUT": bad}), io.Discard); err == nil {
			t.Errorf("ORDO_START_TIMEOUT=%s accepted", bad)
		}
	}
}

func TestSigningKey(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"ORDO_SIGNING_KEY": "/etc/ordo/signing.key"}), io.Discard)
	if err != nil || c.SigningKey != "/etc/ordo/signing.key" {
		t.Fatalf("ORDO_SIGNING_KEY: %q %v", c.SigningKey, err)
	}
	c, err = Load([]string{"--signing-key", "k.pem"}, env(nil), io.Discard)
	if err != nil || c.SigningKey != "k.pem" {
		t.Fatalf("--signing-key: %q %v", c.SigningKey, err)
	}
	if Default().SigningKey != "" {
		t.Fatal("the default is a key in the data dir, named by no setting")
	}
}

func TestNATSCredentials(t *testing.T) {
	c, err := Load([]string{"--nats-creds", "/etc/ordo/service.nk", "--nats-ca", "/etc/ordo/ca.pem"}, env(map[string]string{"ORDO_NATS_URL": "tls://nats:4222"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if e := c.NATSExternal(); e.CredsFile != "/etc/ordo/service.nk" || e.CAFile != "/etc/ordo/ca.pem" || e.User != "" {
		t.Fatalf("external NATS = %+v", e)
	}
	c, err = Load(nil, env(map[string]string{"ORDO_NATS_URL": "nats://nats:4222", "ORDO_NATS_USER": "orderd", "ORDO_NATS_PASSWORD": "pw"}), io.Discard)
	if err != nil || c.NATSUser != "orderd" || c.NATSPassword != "pw" {
		t.Fatalf("user and password: %+v %v", c.NATSExternal(), err)
	}
	for _, bad := range []map[string]string{
		{"ORDO_NATS_CREDS": "/x.nk"}, // the local default makes its own
		{"ORDO_NATS_URL": "nats://n:4222", "ORDO_NATS_CREDS": "/x.nk", "ORDO_NATS_USER": "u", "ORDO_NATS_PASSWORD": "p"},
		{"ORDO_NATS_URL": "nats://n:4222", "ORDO_NATS_USER": "u"},
		{"ORDO_NATS_URL": "nats://n:4222", "ORDO_NATS_PASSWORD": "p"},
	} {
		if _, err := Load(nil, env(bad), io.Discard); err == nil || !strings.Contains(err.Error(), "ORDO_NATS_") {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
