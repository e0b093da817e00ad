package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestReadModelSettings(t *testing.T) {
	c, err := Load([]string{"--postgres-url", "postgres://flag/db"}, env(map[string]string{
		"ORDO_POSTGRES_URL":          "postgres://env/db",
		"ORDO_READ_YOUR_WRITES_WAIT": "500ms",
		"ORDO_PROJECTION_LEASE_TTL":  "3s",
		"ORDO_ROLES":                 "projections",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.PostgresURL != "postgres://flag/db" || c.ReadYourWritesWait != 500*time.Millisecond || c.ProjectionLeaseTTL != 3*time.Second || !c.HasRole("projections") {
		t.Fatalf("config %+v", c)
	}
	d := Default()
	if d.PostgresURL != "" || d.ReadYourWritesWait != 2*time.Second || !d.HasRole("projections") {
		t.Fatalf("defaults %+v", d)
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"ORDO_READ_YOUR_WRITES_WAIT": "0s"}, "read-your-writes wait"},
		{map[string]string{"ORDO_READ_YOUR_WRITES_WAIT": "30s"}, "read-your-writes wait"}, // not below the request timeout
		{map[string]string{"ORDO_PROJECTION_LEASE_TTL": "10ms"}, "projection lease TTL"},
	} {
		if _, err := Load(nil, env(c.env), io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error about %s", c.env, err, c.want)
		}
	}
}
