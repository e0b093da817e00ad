package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

func TestNATSUserMakesASeedFileAndPrintsItsKey(t *testing.T) {
	seed := filepath.Join(t.TempDir(), "service.nk")
	code, out, errOut := orderctl(t, nil, "nats-user", "--role", "service", "--seed-file", seed)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	pub := strings.SplitN(out, "\n", 2)[0]
	if !nkeys.IsValidPublicUserKey(pub) || !strings.Contains(out, "ORDO_NATS_SERVICE_NKEY="+pub) {
		t.Fatalf("output %q", out)
	}
	fi, err := os.Stat(seed)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(seed)
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := kp.PublicKey(); got != pub {
		t.Fatalf("seed's key %s, printed %s", got, pub)
	}
	if code, _, errOut := orderctl(t, nil, "nats-user", "--role", "auditor", "--seed-file", seed); code != exitError || !strings.Contains(errOut, "exists") {
		t.Fatalf("over an existing file: exit %d %q", code, errOut)
	}
	if code, _, _ := orderctl(t, nil, "nats-user", "--role", "root", "--seed-file", seed+"2"); code != exitUsage {
		t.Fatalf("unknown role: exit %d", code)
	}
}
