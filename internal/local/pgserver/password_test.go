//go:build linux

package pgserver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordo-shop/ordo/internal/local/datadir"
)

// connectWithout connects with connURL's user and database but no
// password (none from the environment or a .pgpass either) and returns
// the error.
func connectWithout(t *testing.T, connURL string) error {
	t.Helper()
	cfg, err := pgx.ParseConfig(connURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = ""
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		_ = c.Close(ctx)
	}
	return err
}

// refused fails the test unless err is PostgreSQL refusing the password
// (28P01 invalid_password).
func refused(t *testing.T, what string, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("%s: err = %v, want SQLSTATE 28P01 (password authentication failed)", what, err)
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestConnectionsNeedThePassword(t *testing.T) {
	needServer(t)
	dir := t.TempDir()
	s := start(t, dir)
	refused(t, "no password", connectWithout(t, s.URL()))
	if got := exec1(t, s.URL(), "SELECT current_user"); got != Superuser {
		t.Fatalf("current_user %q", got)
	}
	if got := exec1(t, s.URL(), "SELECT count(*)::text FROM pg_hba_file_rules WHERE auth_method <> 'scram-sha-256'"); got != "0" {
		t.Fatalf("%s rules that are not scram-sha-256", got)
	}
	if got := exec1(t, s.URL(), "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'ordo'"); got != "SCRAM-SHA-256$" {
		t.Fatalf("stored password %q..., want a SCRAM verifier", got)
	}
	pwPath := filepath.Join(dir, PasswordFile)
	if m := fileMode(t, pwPath); m != 0o600 {
		t.Fatalf("%s mode %o, want 600", pwPath, m)
	}
	b, err := os.ReadFile(pwPath)
	if err != nil {
		t.Fatal(err)
	}
	if pw := strings.TrimSpace(string(b)); len(pw) != 43 || !strings.Contains(s.URL(), ":"+pw+"@") {
		t.Fatalf("password file %q does not hold the URL's password", pw)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".pwfile-*")); len(leftovers) > 0 {
		t.Fatalf("initdb's password copy left behind: %v", leftovers)
	}

	// A restart finds the password again.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s2 := start(t, dir)
	if s2.URL() != s.URL() {
		t.Fatalf("URL changed across a restart")
	}
	exec1(t, s2.URL(), "SELECT 'ok'")
}

// legacyDataDir makes a base directory as the earlier version did (initdb
// --auth=trust, no password) holding a table kept(v) with 'yes'.
func legacyDataDir(t *testing.T, dir string) {
	t.Helper()
	bin, err := FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := credential("")
	if err != nil {
		t.Fatal(err)
	}
	old := &Server{opts: Options{Dir: dir, BinDir: bin}, cred: cred, dataDir: filepath.Join(dir, dataDirName)}
	if err := os.MkdirAll(old.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		if err := reachable(dir, cred, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(old.dataDir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	// The earlier version's initdb arguments.
	cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", old.dataDir, "-U", Superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions", "--no-sync")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred.Credential()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if err := old.single(t.Context(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')", ""); err != nil {
		t.Fatal(err)
	}
	hba, err := os.ReadFile(filepath.Join(old.dataDir, hbaName))
	if err != nil {
		t.Fatal(err)
	}
	if _, trusted := withoutTrust(hba); !trusted {
		t.Fatalf("the legacy pg_hba.conf trusts nobody:\n%s", hba)
	}
}

// needServer skips a test that starts PostgreSQL in the fast lane, as
// testkit.SkipShort does (which this package's tests cannot import).
func needServer(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the fast lane starts no server, and this test starts PostgreSQL")
	}
}

// logTo returns a logger writing text lines to buf.
func logTo(buf *bytes.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(buf, nil)) }

func TestTrustDataDirIsUpgraded(t *testing.T) {
	needServer(t)
	dir := t.TempDir()
	legacyDataDir(t, dir)

	var log bytes.Buffer
	s, err := Start(t.Context(), Options{Dir: dir, NoSync: true, Settings: testSettings, Logger: logTo(&log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if !strings.Contains(log.String(), "upgraded a data directory that trusted local connections") {
		t.Fatalf("the upgrade was not logged:\n%s", log.String())
	}
	if strings.Contains(log.String(), s.password) {
		t.Fatalf("the log holds the password:\n%s", log.String())
	}
	if got := exec1(t, s.URL(), "SELECT v FROM kept"); got != "yes" {
		t.Fatalf("data after the upgrade: %q", got)
	}
	refused(t, "no password after the upgrade", connectWithout(t, s.URL()))
	if got := exec1(t, s.URL(), "SELECT count(*)::text FROM pg_hba_file_rules WHERE auth_method <> 'scram-sha-256'"); got != "0" {
		t.Fatalf("%s rules that are not scram-sha-256 after the upgrade", got)
	}
	if m := fileMode(t, filepath.Join(dir, PasswordFile)); m != 0o600 {
		t.Fatalf("password file mode %o", m)
	}
	if m := fileMode(t, filepath.Join(dir, dataDirName, hbaName)); m != 0o600 {
		t.Fatalf("pg_hba.conf mode %o", m)
	}

	// The next start has nothing to upgrade.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	s2, err := Start(t.Context(), Options{Dir: dir, NoSync: true, Settings: testSettings, Logger: logTo(&log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Stop() })
	if strings.Contains(log.String(), "upgraded") || strings.Contains(log.String(), "missing") {
		t.Fatalf("second start changed the password again:\n%s", log.String())
	}
	if got := exec1(t, s2.URL(), "SELECT v FROM kept"); got != "yes" {
		t.Fatalf("data after the restart: %q", got)
	}
}

// An upgrade interrupted after the password file was written (pg_hba.conf
// still trusts) completes with the password in the file.
func TestInterruptedUpgradeUsesTheStoredPassword(t *testing.T) {
	needServer(t)
	dir := t.TempDir()
	legacyDataDir(t, dir)
	pw, err := datadir.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PasswordFile), []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, dir)
	if s.password != pw {
		t.Fatal("the stored password was replaced")
	}
	refused(t, "no password", connectWithout(t, s.URL()))
	if got := exec1(t, s.URL(), "SELECT v FROM kept"); got != "yes" {
		t.Fatalf("data: %q", got)
	}
}

// Deleting the password file while no server runs rotates the password:
// the next start sets a new one and the old one is refused.
func TestDeletedPasswordFileRotatesThePassword(t *testing.T) {
	needServer(t)
	dir := t.TempDir()
	s := start(t, dir)
	exec1(t, s.URL(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
	oldURL := s.URL()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, PasswordFile)); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	s2, err := Start(t.Context(), Options{Dir: dir, NoSync: true, Settings: testSettings, Logger: logTo(&log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Stop() })
	if !strings.Contains(log.String(), "set a new generated password") {
		t.Fatalf("the new password was not logged:\n%s", log.String())
	}
	if s2.URL() == oldURL {
		t.Fatal("same password after the file was deleted")
	}
	ctx := t.Context()
	if c, err := pgx.Connect(ctx, oldURL); err == nil {
		_ = c.Close(ctx)
		t.Fatal("the old password still works")
	} else {
		refused(t, "old password", err)
	}
	if got := exec1(t, s2.URL(), "SELECT v FROM kept"); got != "yes" {
		t.Fatalf("data after the rotation: %q", got)
	}
}

// A password file that does not match fails Start at once with what to
// do, rather than after StartTimeout.
func TestWrongPasswordFileFailsStart(t *testing.T) {
	needServer(t)
	dir := t.TempDir()
	s := start(t, dir)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	other, err := datadir.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PasswordFile), []byte(other+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Start(t.Context(), Options{Dir: dir, NoSync: true, Settings: testSettings, StartTimeout: 5 * time.Minute})
	if err == nil {
		_ = s2.Stop()
		t.Fatal("started with a password the server does not know")
	}
	if !strings.Contains(err.Error(), "refused the password") || strings.Contains(err.Error(), other) {
		t.Fatalf("err = %v", err)
	}
	// The directory is free again, and deleting the file recovers.
	if err := os.Remove(filepath.Join(dir, PasswordFile)); err != nil {
		t.Fatal(err)
	}
	exec1(t, start(t, dir).URL(), "SELECT 'ok'")

	if err := os.WriteFile(filepath.Join(dir, PasswordFile), []byte("it's me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readPassword(filepath.Join(dir, PasswordFile)); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged password file: %v", err)
	}
}

// URL percent-encodes the password, and pgx decodes it back whatever it
// holds; Redacted hides it.
func TestURLCarriesThePassword(t *testing.T) {
	for _, pw := range []string{"plain", "p@ss:w/rd?#&=%20 ü'\"\\", "-_09AZaz"} {
		s := &Server{sockDir: "/tmp/ordo-pg-x", password: pw}
		cfg, err := pgx.ParseConfig(s.URLFor("db"))
		if err != nil {
			t.Fatalf("%q: %v", pw, err)
		}
		if cfg.Password != pw || cfg.User != Superuser || cfg.Database != "db" || cfg.Host != "/tmp/ordo-pg-x" {
			t.Fatalf("%q: parsed password %q user %q database %q host %q", pw, cfg.Password, cfg.User, cfg.Database, cfg.Host)
		}
		if r := Redacted(s.URL()); strings.Contains(r, "p@ss") || strings.Contains(r, "plain") || !strings.Contains(r, "ordo:xxxxx@") {
			t.Fatalf("Redacted(%q) = %s", pw, r)
		}
	}
	for range 100 {
		pw, err := datadir.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readPassword(writeTemp(t, pw)); err != nil {
			t.Fatalf("generated password %q rejected: %v", pw, err)
		}
	}
}

func writeTemp(t *testing.T, pw string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), PasswordFile)
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPasswordFileIsNamedInLocaldir(t *testing.T) {
	if got := filepath.Join(datadir.PostgresDir, PasswordFile); got != datadir.PostgresPassword {
		t.Fatalf("the local default's password file is %s; datadir names %s", got, datadir.PostgresPassword)
	}
}

func TestWithoutTrust(t *testing.T) {
	in := "# comment with trust\n" +
		"local   all             all                                     trust\n" +
		"host    all             all             127.0.0.1/32            trust # keep\n" +
		"host    all             all             10.0.0.1 255.0.0.0      trust\n" +
		"host    trust           trust           ::1/128                 md5\n" +
		"local   replication     all                                     trust"
	want := "# comment with trust\n" +
		"local all all scram-sha-256\n" +
		"host all all 127.0.0.1/32 scram-sha-256 # keep\n" +
		"host all all 10.0.0.1 255.0.0.0 scram-sha-256\n" +
		"host    trust           trust           ::1/128                 md5\n" +
		"local replication all scram-sha-256"
	got, found := withoutTrust([]byte(in))
	if !found || string(got) != want {
		t.Fatalf("withoutTrust: found %v\n%s\nwant\n%s", found, got, want)
	}
	if _, found := withoutTrust([]byte(want)); found {
		t.Fatal("trust found in the rewritten file")
	}
}

// A statement that fails in the single-user postgres is an error, and
// what the error quotes holds neither the statement nor the secret.
func TestSingleUserFailureIsAnError(t *testing.T) {
	needServer(t)
	s := start(t, t.TempDir())
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	err := s.single(t.Context(), "ALTER ROLE nosuchrole PASSWORD 'not-a-real-secret'", "not-a-real-secret")
	if err == nil || !strings.Contains(err.Error(), `role "nosuchrole" does not exist`) || strings.Contains(err.Error(), "not-a-real-secret") {
		t.Fatalf("err = %v", err)
	}
	if err := s.single(t.Context(), "SELECT 1", ""); err != nil {
		t.Fatal(err)
	}
}
