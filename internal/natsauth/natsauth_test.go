package natsauth_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/natsauth"
)

// The shipped server configurations give Ordo's users exactly the
// permissions the code defines and the embedded server enforces.
func TestDeployConfigsMatchTheCode(t *testing.T) {
	keys, err := natsauth.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range natsauth.Roles {
		t.Setenv(r.NkeyVariable(), keys.PublicKey(r))
	}
	t.Setenv("ORDO_NATS_SERVER_NAME", "ordo-a")
	t.Setenv("ORDO_NATS_ROUTE_PASSWORD", "route-secret")
	t.Setenv("ORDO_NATS_ROUTES", `["nats://ordo-route:route-secret@ordo-b:6222", "nats://ordo-route:route-secret@ordo-c:6222"]`)
	for _, file := range []string{"single.conf", "cluster-node.conf"} {
		t.Run(file, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "nats", file))
			if err != nil {
				t.Fatal(err)
			}
			if len(opts.Nkeys) != len(natsauth.Roles) || len(opts.Users) != 0 || opts.NoAuthUser != "" {
				t.Fatalf("%d nkey users, %d other users, no-auth user %q; want exactly Ordo's %d", len(opts.Nkeys), len(opts.Users), opts.NoAuthUser, len(natsauth.Roles))
			}
			for i, r := range natsauth.Roles {
				u := opts.Nkeys[i]
				if u.Nkey != keys.PublicKey(r) {
					t.Errorf("user %d is %s, want the %s key", i, u.Nkey, r)
				}
				if want := r.Permissions().Server(); !samePermissions(u.Permissions, want) {
					t.Errorf("%s permissions differ from the code; the code's, to paste:\n%s", r, natsauth.ConfigPermissions())
				}
			}
			if file == "cluster-node.conf" {
				if opts.Cluster.Username != "ordo-route" || opts.Cluster.Password != "route-secret" || len(opts.Routes) != 2 || opts.Routes[0].User.Username() != "ordo-route" {
					t.Errorf("cluster authorization %q/%q, routes %v", opts.Cluster.Username, opts.Cluster.Password, opts.Routes)
				}
				if opts.ServerName != "ordo-a" || opts.Host != "0.0.0.0" {
					t.Errorf("server name %q, host %q", opts.ServerName, opts.Host)
				}
			}
			if !opts.JetStream || !opts.SyncAlways {
				t.Errorf("JetStream %v, sync always %v", opts.JetStream, opts.SyncAlways)
			}
		})
	}
	// Without the keys in the environment the server does not start.
	os.Unsetenv(natsauth.Service.NkeyVariable())
	if _, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "nats", "single.conf")); err == nil || !strings.Contains(err.Error(), natsauth.Service.NkeyVariable()) {
		t.Errorf("config without %s: %v", natsauth.Service.NkeyVariable(), err)
	}
}

func samePermissions(a, b *server.Permissions) bool {
	norm := func(p *server.SubjectPermission) server.SubjectPermission {
		if p == nil {
			return server.SubjectPermission{}
		}
		return server.SubjectPermission{Allow: append([]string{}, p.Allow...), Deny: append([]string{}, p.Deny...)}
	}
	return a != nil && b != nil && reflect.DeepEqual(norm(a.Publish), norm(b.Publish)) && reflect.DeepEqual(norm(a.Subscribe), norm(b.Subscribe))
}

// ServerConfig renders the users as a server configuration admits them.
func TestServerConfigAdmitsTheUsers(t *testing.T) {
	keys, err := natsauth.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:4222\n"+keys.ServerConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range natsauth.Roles {
		if opts.Nkeys[i].Nkey != keys.PublicKey(r) || !samePermissions(opts.Nkeys[i].Permissions, r.Permissions().Server()) {
			t.Errorf("user %s: %+v", r, opts.Nkeys[i])
		}
	}
}

func TestLocalKeys(t *testing.T) {
	dir := t.TempDir()
	if _, err := natsauth.LoadLocal(dir, false); err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "start orderd once") {
		t.Fatalf("load from an empty data dir: %v", err)
	}
	keys, err := natsauth.LoadLocal(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{datadir.NATSServiceSeed, datadir.NATSAuditorSeed, datadir.NATSAdminSeed} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v", name, err, fi.Mode())
		}
	}
	seen := map[string]bool{}
	for _, r := range natsauth.Roles {
		pub := keys.PublicKey(r)
		if !nkeys.IsValidPublicUserKey(pub) || seen[pub] {
			t.Fatalf("%s key %q", r, pub)
		}
		seen[pub] = true
	}
	again, err := natsauth.LoadLocal(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range natsauth.Roles {
		if again.PublicKey(r) != keys.PublicKey(r) {
			t.Fatalf("%s key changed on reload", r)
		}
	}
	seed := natsauth.SeedFile(dir, natsauth.Auditor)
	if err := os.Chmod(seed, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := natsauth.LoadLocal(dir, true); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a seed others may read: %v", err)
	}
	if err := os.Chmod(seed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seed, []byte("not a seed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := natsauth.LoadLocal(dir, true); err == nil || !strings.Contains(err.Error(), "not an nkey user seed") {
		t.Fatalf("garbage seed: %v", err)
	}
}

func TestExternalCredentials(t *testing.T) {
	dir := t.TempDir()
	keys, err := natsauth.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	seedFile, err := keys.WriteSeed(dir, natsauth.Service)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := nkeys.CreateUser()
	seed, _ := kp.Seed()
	creds := filepath.Join(dir, "ordo.creds")
	if err := os.WriteFile(creds, []byte("-----BEGIN NATS USER JWT-----\neyJhbGciOiJlZDI1NTE5LW5rZXkiLCJ0eXAiOiJKV1QifQ.e30.c2ln\n------END NATS USER JWT------\n\n"+
		"-----BEGIN USER NKEY SEED-----\n"+string(seed)+"\n------END USER NKEY SEED------\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	account, _ := nkeys.CreateAccount()
	aseed, _ := account.Seed()
	accountFile := filepath.Join(dir, "account.nk")
	garbage := filepath.Join(dir, "garbage")
	for path, b := range map[string][]byte{accountFile: aseed, garbage: []byte("hello\n")} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		ext  natsauth.External
		opts int
		err  string
	}{
		{natsauth.External{}, 0, ""},
		{natsauth.External{CredsFile: seedFile}, 1, ""},
		{natsauth.External{CredsFile: creds}, 1, ""},
		{natsauth.External{User: "u", Password: "p"}, 1, ""},
		{natsauth.External{CredsFile: seedFile, CAFile: seedFile}, 2, ""},
		{natsauth.External{CredsFile: filepath.Join(dir, "missing")}, 0, "no such file"},
		{natsauth.External{CredsFile: garbage}, 0, "neither a .creds file"},
		{natsauth.External{CredsFile: accountFile}, 0, "not a user's"},
		{natsauth.External{CredsFile: seedFile, User: "u", Password: "p"}, 0, "use one"},
		{natsauth.External{User: "u"}, 0, "go together"},
		{natsauth.External{CAFile: filepath.Join(dir, "no-ca.pem")}, 0, "ORDO_NATS_CA"},
	} {
		opts, err := c.ext.Options()
		switch {
		case c.err == "" && (err != nil || len(opts) != c.opts):
			t.Errorf("%+v: %d options, %v; want %d", c.ext, len(opts), err, c.opts)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%+v: %v, want an error saying %q", c.ext, err, c.err)
		}
	}
}
