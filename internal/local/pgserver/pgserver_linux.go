//go:build linux

package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/pause"
)

// port is only part of the socket file's name (.s.PGSQL.5432): the server
// listens on no TCP port, and each server has its own socket directory.
const port = 5432

// socketName is the socket file PostgreSQL creates in its socket directory.
const socketName = ".s.PGSQL.5432"

// maxSocketPath is the longest Unix socket path Linux accepts (108 bytes
// with the terminating NUL).
const maxSocketPath = 107

// Names inside the base directory.
const (
	dataDirName = "data"
	sockDirName = "sock"
	logName     = "postgres.log"
)

// hbaName is PostgreSQL's client authentication file in the data
// directory.
const hbaName = "pg_hba.conf"

// authMethod is how every connection authenticates, local or not.
const authMethod = "scram-sha-256"

// Server is a running private PostgreSQL.
type Server struct {
	opts    Options
	cred    *datadir.User
	dataDir string
	sockDir string
	tmpSock bool
	// password is the Superuser's (URL-safe, from PasswordFile).
	password string
	unlock   func()
	stop     sync.Once
	stopErr  error

	mu sync.Mutex // guards the running postmaster, replaced by Restart
	// cmd is the postmaster; exited is closed when it has exited, after
	// waitErr is set.
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// Start initialises the data directory if needed, takes over or stops a
// postmaster left behind in it, starts postgres and waits until it
// accepts connections. The server is sent SIGINT (a fast, clean shutdown)
// if the calling process dies; call [Server.Stop] to stop it earlier.
func Start(ctx context.Context, opts Options) (s *Server, err error) {
	if opts.Dir == "" {
		return nil, errors.New("pgserver: no directory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	base, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	opts.Dir = base
	if opts.BinDir == "" {
		if opts.BinDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	cred, err := credential(opts.User)
	if err != nil {
		return nil, err
	}
	unlock, err := datadir.Lock(base)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	srv := &Server{opts: opts, cred: cred, dataDir: filepath.Join(base, dataDirName), unlock: unlock}
	s = srv
	defer func() {
		if err != nil {
			// Each return below sets s to nil: release what srv holds.
			srv.cleanup()
		}
	}()
	if cred != nil {
		if err := reachable(base, cred, opts.Logger); err != nil {
			return nil, err
		}
	}
	if err := s.initdb(ctx); err != nil {
		return nil, err
	}
	if err := stopStale(s.dataDir, opts.Logger); err != nil {
		return nil, err
	}
	if err := s.ensurePassword(ctx); err != nil {
		return nil, err
	}
	if err := s.makeSocketDir(); err != nil {
		return nil, err
	}
	if err := s.launch(ctx); err != nil {
		return nil, err
	}
	opts.Logger.Info("postgres ready", slog.String("dir", base), slog.String("socket", s.sockDir))
	return s, nil
}

// launch starts postgres in the prepared directories and waits, at most
// StartTimeout, until it accepts connections.
func (s *Server) launch(ctx context.Context) error {
	deadline := time.Now().Add(s.opts.StartTimeout)
	for attempt := 1; ; attempt++ {
		err := s.run(ctx, deadline)
		if err == nil {
			return nil
		}
		// Backends of a killed postmaster may still hold its shared
		// memory for a moment; postgres refuses to start until they exit.
		if !errors.Is(err, errShmemInUse) || time.Now().After(deadline) {
			return err
		}
		s.opts.Logger.Info("postgres: shared memory of a previous server still in use; retrying", slog.Int("attempt", attempt))
		if err := pause.For(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// Restart starts postgres again after it exited (it crashed, or was
// killed), in the same directories and on the same socket, so the URL
// stays valid: PostgreSQL's crash recovery replays its WAL first. It
// returns an error if the postmaster still runs.
func (s *Server) Restart(ctx context.Context) error {
	select {
	case <-s.Exited():
	default:
		return errors.New("pgserver: restart: postgres is still running")
	}
	return s.launch(ctx)
}

// Supervise restarts postgres whenever it exits, until ctx ends: it logs
// the exit as an error, restarts with backoff (250 ms doubling to 10 s)
// and logs how long the server was down. The server's owner runs it in a
// goroutine and lets it return (cancels ctx and waits) before
// [Server.Stop], so a stop is never mistaken for a crash.
func (s *Server) Supervise(ctx context.Context) {
	log := s.opts.Logger
	for {
		_, exited, waitErr := s.current()
		select {
		case <-ctx.Done():
			return
		case <-exited:
		}
		down := time.Now()
		log.Error("postgres: the server exited; restarting it", slog.Any("exit", waitErr()), slog.String("dir", s.opts.Dir))
		for backoff := 250 * time.Millisecond; ; backoff = min(2*backoff, 10*time.Second) {
			err := s.Restart(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			log.Error("postgres: restart failed; retrying", slog.Duration("retry_in", backoff), slog.Any("err", err))
			if pause.For(ctx, backoff) != nil {
				return
			}
		}
		log.Info("postgres: restarted", slog.Duration("down", time.Since(down).Round(time.Millisecond)), slog.Int("pid", s.Pid()))
	}
}

// URL returns the connection URL of the "postgres" database.
func (s *Server) URL() string { return s.URLFor("postgres") }

// URLFor returns the connection URL of database db. It holds the
// Superuser's password: log it only through [Redacted].
func (s *Server) URLFor(db string) string {
	q := url.Values{}
	q.Set("host", s.sockDir)
	q.Set("port", strconv.Itoa(port))
	q.Set("sslmode", "disable")
	return (&url.URL{Scheme: "postgres", User: url.UserPassword(Superuser, s.password), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// Dir returns the base directory.
func (s *Server) Dir() string { return s.opts.Dir }

// Pid returns the postmaster's process id.
func (s *Server) Pid() int {
	cmd, _, _ := s.current()
	return cmd.Process.Pid
}

// Exited is closed when the postmaster has exited (the current one: after
// [Server.Restart], the restarted one's).
func (s *Server) Exited() <-chan struct{} {
	_, exited, _ := s.current()
	return exited
}

// current returns the running postmaster, the channel closed when it has
// exited, and (once it is closed) how it exited.
func (s *Server) current() (*exec.Cmd, chan struct{}, func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd, s.exited, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.waitErr
	}
}

// Stop shuts the server down (fast shutdown: clients are disconnected,
// the data is checkpointed), waits for it and releases the directory. It
// escalates to SIGKILL if the server has not stopped after 30 seconds.
// Stop is safe to call more than once.
func (s *Server) Stop() error {
	s.stop.Do(func() {
		s.stopErr = s.shutdown(30 * time.Second)
		s.cleanup()
	})
	return s.stopErr
}

func (s *Server) shutdown(grace time.Duration) error {
	cmd, exited, _ := s.current()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("pgserver: postgres did not stop within %s and was killed", grace)
}

func (s *Server) cleanup() {
	if s.tmpSock && s.sockDir != "" {
		_ = os.RemoveAll(s.sockDir)
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

// FindBinDir returns the directory of the newest installed PostgreSQL's
// binaries: /usr/lib/postgresql/<version>/bin (Debian, Ubuntu), else the
// directory of postgres on PATH.
func FindBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "postgres")) && isExecutable(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		d := filepath.Dir(p)
		if isExecutable(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", errors.New("pgserver: no PostgreSQL binaries found (install postgresql, or set ORDO_POSTGRES_URL to a running server)")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// credential returns who runs PostgreSQL: nil (the calling user) unless
// the caller is root; then the user name names, by default postgres or
// else nobody.
func credential(name string) (*datadir.User, error) {
	names := []string{"postgres", "nobody"}
	if name != "" {
		names = []string{name}
	}
	cred, err := datadir.Unprivileged(names...)
	if err != nil {
		return nil, fmt.Errorf("pgserver: cannot run PostgreSQL: %w", err)
	}
	return cred, nil
}

// reachable gives the PostgreSQL user search permission on the base
// directory and every directory above it, adding only the execute bit for
// others where it is missing (a directory listing stays private).
func reachable(base string, cred *datadir.User, log *slog.Logger) error {
	for dir := base; ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		ok := mode&0o001 != 0 ||
			(st.Uid == cred.Uid && mode&0o100 != 0) ||
			(st.Gid == cred.Gid && mode&0o010 != 0)
		if !ok {
			if err := os.Chmod(dir, fi.Mode()|0o001); err != nil {
				return fmt.Errorf("pgserver: let uid %d reach %s: %w", cred.Uid, dir, err)
			}
			if dir != base {
				log.Info("postgres: granted search permission on a parent directory so the unprivileged postgres user can reach its data", slog.String("dir", dir))
			}
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// initdb creates the data directory unless it holds a cluster already. A
// half-made one (no PG_VERSION: initdb was interrupted) is made again.
// Every connection authenticates with SCRAM; the Superuser's password is
// the one in PasswordFile, generated first if there is none.
func (s *Server) initdb(ctx context.Context) error {
	cred := s.cred
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	pw, err := readPassword(s.passwordPath())
	if errors.Is(err, os.ErrNotExist) {
		if pw, err = datadir.NewSecret(); err == nil {
			err = datadir.WriteFile(s.opts.Dir, PasswordFile, []byte(pw+"\n"))
		}
	}
	if err != nil {
		return err
	}
	if err := os.RemoveAll(s.dataDir); err != nil {
		return fmt.Errorf("pgserver: clear half-made data dir: %w", err)
	}
	if err := os.Mkdir(s.dataDir, 0o700); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if cred != nil {
		if err := os.Chown(s.dataDir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
	}
	// initdb reads the password from a file; when it runs as another user
	// (we are root) PasswordFile is not readable to it, so it gets a copy of
	// its own, removed when it is done.
	pwfile, err := s.privateCopy(pw)
	if err != nil {
		return err
	}
	defer os.Remove(pwfile)
	args := []string{"-D", s.dataDir, "-U", Superuser, "--auth=" + authMethod, "--pwfile=" + pwfile,
		"--encoding=UTF8", "--locale=C", "--no-instructions"}
	if s.opts.NoSync {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.opts.BinDir, "initdb"), args...)
	cmd.Dir = "/"
	cmd.Env = []string{"LANG=C", "LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred.Credential(), Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(s.dataDir)
		return fmt.Errorf("pgserver: initdb: %w\n%s", err, out)
	}
	s.opts.Logger.Info("postgres: initialised data directory", slog.String("dir", s.dataDir), slog.String("auth", authMethod))
	return nil
}

// privateCopy writes pw to a new file in the base directory that only
// the server's user can read, and returns its path.
func (s *Server) privateCopy(pw string) (string, error) {
	f, err := os.CreateTemp(s.opts.Dir, ".pwfile-*")
	if err != nil {
		return "", fmt.Errorf("pgserver: password file for initdb: %w", err)
	}
	_, err = f.WriteString(pw + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && s.cred != nil {
		err = os.Chown(f.Name(), int(s.cred.Uid), int(s.cred.Gid))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("pgserver: password file for initdb: %w", err)
	}
	return f.Name(), nil
}

func (s *Server) passwordPath() string { return filepath.Join(s.opts.Dir, PasswordFile) }

// readPassword reads a PasswordFile. An error wraps os.ErrNotExist when
// there is none.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("pgserver: %w", err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" || strings.TrimLeft(pw, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return "", fmt.Errorf("pgserver: %s is damaged (want one line of letters, digits, - and _); with no server running, delete it to set a new password", path)
	}
	return pw, nil
}

// ensurePassword makes sure that the Superuser has the password in
// PasswordFile and that pg_hba.conf accepts only it, before the server
// starts. With the file present and no "trust" left in pg_hba.conf
// (every data directory this version made) it only reads the file.
// Otherwise, in this order, each step safe to repeat should the process
// die before the next:
//
//   - the file is missing: a new password is generated (a data directory
//     of an earlier version, which trusted every local connection, or a
//     deleted file: that is how the password is rotated);
//   - the password is set by a single-user postgres (no server runs, and
//     none is needed: that works whatever pg_hba.conf says);
//   - the file is written;
//   - "trust" in pg_hba.conf becomes scram-sha-256.
func (s *Server) ensurePassword(ctx context.Context) error {
	hbaPath := filepath.Join(s.dataDir, hbaName)
	hba, err := os.ReadFile(hbaPath)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	scram, trusted := withoutTrust(hba)
	pw, err := readPassword(s.passwordPath())
	missing := errors.Is(err, os.ErrNotExist)
	if err != nil && !missing {
		return err
	}
	if !missing && !trusted {
		s.password = pw
		return nil
	}
	if missing {
		if pw, err = datadir.NewSecret(); err != nil {
			return err
		}
	}
	if err := s.single(ctx, "ALTER ROLE "+Superuser+" PASSWORD '"+pw+"'", pw); err != nil {
		return fmt.Errorf("pgserver: set the password of %s: %w", Superuser, err)
	}
	if missing {
		if err := datadir.WriteFile(s.opts.Dir, PasswordFile, []byte(pw+"\n")); err != nil {
			return fmt.Errorf("pgserver: store the password: %w", err)
		}
	}
	if trusted {
		if err := s.writeDataFile(hbaName, scram); err != nil {
			return fmt.Errorf("pgserver: rewrite %s: %w", hbaName, err)
		}
	}
	switch {
	case trusted:
		s.opts.Logger.Warn("postgres: upgraded a data directory that trusted local connections: the "+Superuser+" role now authenticates with a generated password",
			slog.String("dir", s.dataDir), slog.String("auth", authMethod), slog.String("password_file", s.passwordPath()))
	default:
		s.opts.Logger.Warn("postgres: "+PasswordFile+" was missing: set a new generated password for the "+Superuser+" role",
			slog.String("dir", s.dataDir), slog.String("password_file", s.passwordPath()))
	}
	s.password = pw
	return nil
}

// withoutTrust returns pg_hba.conf with the method of every rule that
// says "trust" replaced by scram-sha-256, and whether there was any.
// Rules it changes are rewritten with single spaces between fields.
func withoutTrust(hba []byte) ([]byte, bool) {
	lines := strings.SplitAfter(string(hba), "\n")
	found := false
	for i, line := range lines {
		body, nl := strings.CutSuffix(line, "\n")
		rule, comment, commented := strings.Cut(body, "#")
		f := strings.Fields(rule)
		// TYPE DATABASE USER [ADDRESS [MASK]] METHOD [OPTIONS]
		m := 3
		if len(f) > 0 && f[0] != "local" {
			m = 4
			if len(f) > 4 && !strings.Contains(f[3], "/") && net.ParseIP(f[3]) != nil && net.ParseIP(f[4]) != nil {
				m = 5
			}
		}
		if m >= len(f) || f[m] != "trust" {
			continue
		}
		found = true
		f[m] = authMethod
		line = strings.Join(f, " ")
		if commented {
			line += " #" + comment
		}
		if nl {
			line += "\n"
		}
		lines[i] = line
	}
	return []byte(strings.Join(lines, "")), found
}

// writeDataFile replaces a file in the data directory atomically, owned
// by the server's user with mode 0600.
func (s *Server) writeDataFile(name string, data []byte) error {
	return datadir.Write(filepath.Join(s.dataDir, name), datadir.FileOptions{Owner: s.cred}, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// single runs sql in a single-user postgres on the data directory (no
// server may run on it) and returns an error if it failed. secret, when
// not empty, is masked in what the error quotes.
func (s *Server) single(ctx context.Context, sql, secret string) error {
	args := []string{"--single", "-D", s.dataDir,
		"-c", "exit_on_error=on", // an ERROR ends the backend with a failure status
		"-c", "log_min_error_statement=panic", // never echo the statement (a password) to the log
		"-c", "log_statement=none",
		"-c", "password_encryption=" + authMethod,
		"postgres"}
	cmd := exec.CommandContext(ctx, filepath.Join(s.opts.BinDir, "postgres"), args...)
	cmd.Dir = "/"
	cmd.Env = []string{"LANG=C", "LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(sql + "\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred.Credential(), Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := string(out)
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "xxxxx")
		}
		return fmt.Errorf("single-user postgres: %w\n%s", err, msg)
	}
	return nil
}

// makeSocketDir picks the socket directory: <base>/sock, or a fresh one
// under /tmp when that path would be too long for a Unix socket.
func (s *Server) makeSocketDir() error {
	cred := s.cred
	dir := filepath.Join(s.opts.Dir, sockDirName)
	if len(dir)+1+len(socketName) > maxSocketPath {
		d, err := os.MkdirTemp("/tmp", "ordo-pg-")
		if err != nil {
			return fmt.Errorf("pgserver: socket dir: %w", err)
		}
		dir, s.tmpSock = d, true
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pgserver: socket dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("pgserver: socket dir: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("pgserver: socket dir: %w", err)
		}
	}
	s.sockDir = dir
	return nil
}

var errShmemInUse = errors.New("shared memory of a previous server is still in use")

// run starts postgres once and waits until it accepts connections.
func (s *Server) run(ctx context.Context, deadline time.Time) error {
	cred := s.cred
	logPath := filepath.Join(s.opts.Dir, logName)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgserver: log: %w", err)
	}
	defer logf.Close() // the child keeps its own copy
	logStart, _ := logf.Seek(0, 2)

	args := []string{"-D", s.dataDir, "-k", s.sockDir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=", "-c", "unix_socket_permissions=0700"}
	names := make([]string, 0, len(s.opts.Settings))
	for k := range s.opts.Settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		args = append(args, "-c", k+"="+s.opts.Settings[k])
	}
	cmd := exec.Command(filepath.Join(s.opts.BinDir, "postgres"), args...)
	cmd.Dir = "/"
	cmd.Env = []string{"LANG=C", "LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred.Credential(),
		// Die with the parent: a fast, clean shutdown.
		Pdeathsig: syscall.SIGINT,
		// Keep terminal signals (Ctrl-C) away: the parent stops the
		// server itself, after the requests that use it.
		Setpgid: true,
	}
	// Linux sends the parent-death signal when the *thread* that forked
	// the child exits, not the process (golang/go#27505), and the Go
	// runtime may end threads. So fork from a goroutine locked to its
	// thread that lives exactly as long as the server: it waits for it.
	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("pgserver: start postgres: %w", err)
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	for {
		select {
		case <-exited:
			tail := readFrom(logPath, logStart)
			if strings.Contains(tail, "pre-existing shared memory block") {
				return errShmemInUse
			}
			_, _, waitErr := s.current()
			return fmt.Errorf("pgserver: postgres exited (%v):\n%s", waitErr(), tail)
		default:
		}
		err := ping(ctx, s.URL())
		if err == nil {
			return nil
		}
		// A refused password does not change by waiting.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code[:2] == "28" {
			_ = s.shutdown(5 * time.Second)
			return fmt.Errorf("pgserver: postgres refused the password in %s (%s %s); with no server running, delete the file and start again to set a new one",
				s.passwordPath(), pgErr.Code, pgErr.Message)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = s.shutdown(5 * time.Second)
			return fmt.Errorf("pgserver: postgres did not accept connections in time:\n%s", readFrom(logPath, logStart))
		}
		if err := pause.For(ctx, 50*time.Millisecond); err != nil {
			_ = s.shutdown(5 * time.Second)
			return err
		}
	}
}

func ping(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

func readFrom(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	b = b[off:]
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stopStale stops a postmaster still running in dataDir. The caller holds
// the base directory's lock, so that postmaster's owner is gone.
func stopStale(dataDir string, log *slog.Logger) error {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return nil // none: a clean shutdown removes the file
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(first)))
	if err != nil || pid <= 0 || !runsIn(pid, dataDir) {
		return nil // postgres itself discards a stale pid file
	}
	log.Warn("postgres: stopping a server left running by a previous process", slog.Int("pid", pid), slog.String("dir", dataDir))
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, 15 * time.Second}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
		_ = syscall.Kill(pid, step.sig)
		if pause.Within(step.wait, 50*time.Millisecond, func() bool { return !runsIn(pid, dataDir) }) {
			return nil
		}
	}
	return fmt.Errorf("pgserver: a postgres (pid %d) still runs in %s and does not stop", pid, dataDir)
}

// runsIn reports whether process pid is alive and a postgres working in
// dataDir (a postmaster's working directory is its data directory).
func runsIn(pid int, dataDir string) bool {
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || bytes.Contains(stat, []byte(") Z ")) {
		return false // gone or a zombie
	}
	return filepath.Clean(cwd) == filepath.Clean(dataDir)
}

// Remove deletes a base directory that no live process uses, stopping a
// postmaster left running in it first. It returns [ErrLocked] if a live
// process holds the directory.
func Remove(dir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	unlock, err := datadir.Lock(dir)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	defer unlock()
	if err := stopStale(filepath.Join(dir, dataDirName), log); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
