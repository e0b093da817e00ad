//go:build linux

package esserver

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/pause"
)

// Server is a running Elasticsearch.
type Server struct {
	opts   Options
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	stop   sync.Once
	err    error
}

// Install makes sure the distribution is unpacked in cacheDir and returns
// its home directory. The zip is fetched with Maven (`mvn
// dependency:copy`) if it is not there yet; concurrent callers wait for
// one another.
func Install(ctx context.Context, cacheDir string, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	home := filepath.Join(cacheDir, "elasticsearch-"+Version)
	marker := filepath.Join(home, ".ordo-installed")
	if _, err := os.Stat(marker); err == nil {
		return home, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("esserver: %w", err)
	}
	unlock, err := datadir.FlockWait(ctx, filepath.Join(cacheDir, "install.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(marker); err == nil {
		return home, nil
	}
	dl := filepath.Join(cacheDir, "download")
	zipPath := filepath.Join(dl, "elasticsearch-"+Version+".zip")
	if _, err := os.Stat(zipPath); err != nil {
		log.Info("elasticsearch: fetching the distribution with Maven", slog.String("artifact", Artifact))
		cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "dependency:copy", "-Dartifact="+Artifact, "-DoutputDirectory="+dl)
		cmd.Dir = cacheDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("esserver: mvn dependency:copy %s: %w\n%s", Artifact, err, tail(out))
		}
	}
	tmp, err := os.MkdirTemp(cacheDir, ".unpack-")
	if err != nil {
		return "", fmt.Errorf("esserver: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := unzip(zipPath, tmp); err != nil {
		return "", fmt.Errorf("esserver: unpack %s: %w", zipPath, err)
	}
	_ = os.RemoveAll(home)
	if err := os.Rename(filepath.Join(tmp, "elasticsearch-"+Version), home); err != nil {
		return "", fmt.Errorf("esserver: %w", err)
	}
	if err := os.WriteFile(marker, []byte(Version+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("esserver: %w", err)
	}
	log.Info("elasticsearch: installed", slog.String("home", home))
	return home, nil
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// unzip extracts the archive into dir, readable by everyone (the server
// runs as another user), keeping the executable bits.
func unzip(path, dir string) error {
	r, err := zip.OpenReader(path)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, f := range r.File {
		name := filepath.Clean(f.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			return fmt.Errorf("bad path %q in archive", f.Name)
		}
		dst := filepath.Join(dir, name)
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if f.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := extract(f, dst, mode); err != nil {
			return err
		}
	}
	return nil
}

func extract(f *zip.File, dst string, mode os.FileMode) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	w, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, rc); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// FindJavaHome returns a JDK Elasticsearch 8 runs on: Java 17 or 21 under
// /usr/lib/jvm, preferring 17 (the oldest the release supports, and the
// one CI has).
func FindJavaHome() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/jvm/*")
	sort.Strings(dirs)
	for _, want := range []string{"17", "21"} {
		for _, d := range dirs {
			b := filepath.Base(d)
			if (strings.Contains(b, "-"+want+"-") || strings.HasSuffix(b, "-"+want) || strings.Contains(b, "jdk-"+want)) && isExecutable(filepath.Join(d, "bin", "java")) {
				if fi, err := os.Lstat(d); err == nil && fi.Mode()&os.ModeSymlink != 0 {
					continue // prefer the real directory over its alias
				}
				return d, nil
			}
		}
	}
	return "", errors.New("esserver: no Java 17 or 21 under /usr/lib/jvm (install openjdk-17-jre-headless, or set ES_JAVA_HOME)")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// credential returns who runs Elasticsearch: nil (the caller) unless the
// caller is root, else name's user (default [DefaultUser]), created if
// missing.
func credential(name string, log *slog.Logger) (*datadir.User, error) {
	if name == "" {
		name = DefaultUser
	}
	cred, err := datadir.Unprivileged(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		out, uerr := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if uerr != nil {
			return nil, fmt.Errorf("esserver: running as root and cannot create user %s to run Elasticsearch: %v: %s", name, uerr, out)
		}
		log.Info("elasticsearch: created system user", slog.String("user", name))
		cred, err = datadir.Unprivileged(name)
	}
	if err != nil {
		return nil, fmt.Errorf("esserver: cannot run Elasticsearch: %w", err)
	}
	return cred, nil
}

// reachable gives others search permission on dir and every directory
// above it where it is missing (a listing stays private).
func reachable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode()|0o001); err != nil {
				return err
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// Start prepares opts.Dir, starts Elasticsearch and waits until the
// cluster is yellow or green. A server left running in opts.Dir by a
// dead process is stopped first.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" || opts.CacheDir == "" {
		return nil, errors.New("esserver: Dir and CacheDir are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Heap == "" {
		opts.Heap = DefaultHeap
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 3 * time.Minute
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	home, err := Install(ctx, opts.CacheDir, opts.Logger)
	if err != nil {
		return nil, err
	}
	if opts.JavaHome == "" {
		if opts.JavaHome, err = FindJavaHome(); err != nil {
			return nil, err
		}
	}
	cred, err := credential(opts.User, opts.Logger)
	if err != nil {
		return nil, err
	}
	stopPidFile(filepath.Join(dir, "es.pid"), opts.Logger)
	if opts.Port == 0 {
		if opts.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	transport, err := FreePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "config")
	if err := prepare(home, dir, conf, opts.Port, transport, cred); err != nil {
		return nil, fmt.Errorf("esserver: prepare %s: %w", dir, err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(filepath.Join(home, "bin", "elasticsearch"), "-p", filepath.Join(dir, "es.pid"))
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"LANG=C.UTF-8",
		"ES_JAVA_HOME=" + opts.JavaHome,
		"ES_PATH_CONF=" + conf,
		"ES_TMPDIR=" + filepath.Join(dir, "tmp"),
		"ES_JAVA_OPTS=-Xms" + opts.Heap + " -Xmx" + opts.Heap + " -XX:ActiveProcessorCount=2",
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred.Credential()}
	if opts.Detach {
		cmd.SysProcAttr.Setsid = true
	} else {
		cmd.SysProcAttr.Setpgid = true
		cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("esserver: start elasticsearch: %w", err)
	}
	s := &Server{opts: opts, url: fmt.Sprintf("http://127.0.0.1:%d", opts.Port), cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	opts.Logger.Info("elasticsearch: starting", slog.String("url", s.url), slog.String("dir", dir))
	deadline := time.Now().Add(opts.StartTimeout)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("esserver: elasticsearch exited during start:\n%s", readFrom(filepath.Join(dir, "stdout.log"), logStart))
		default:
		}
		if Healthy(ctx, s.url) == nil {
			opts.Logger.Info("elasticsearch: ready", slog.String("url", s.url))
			return s, nil
		}
		if time.Now().After(deadline) || pause.For(ctx, 250*time.Millisecond) != nil {
			_ = s.Stop()
			return nil, fmt.Errorf("esserver: elasticsearch not ready in %s:\n%s", opts.StartTimeout, readFrom(filepath.Join(dir, "stdout.log"), logStart))
		}
	}
}

// prepare writes the server's directories and configuration.
func prepare(home, dir, conf string, port, transport int, cred *datadir.User) error {
	for _, d := range []string{dir, filepath.Join(dir, "data"), filepath.Join(dir, "logs"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(conf, "jvm.options")); err != nil {
		if err := copyDir(filepath.Join(home, "config"), conf); err != nil {
			return err
		}
	}
	yml := fmt.Sprintf(`# Written by internal/local/esserver on every start.
cluster.name: ordo-local
node.name: ordo
network.host: 127.0.0.1
http.port: %d
transport.port: %d
discovery.type: single-node
xpack.security.enabled: false
path.data: %s
path.logs: %s
action.destructive_requires_name: false
cluster.routing.allocation.disk.threshold_enabled: false
`, port, transport, filepath.Join(dir, "data"), filepath.Join(dir, "logs"))
	if err := os.WriteFile(filepath.Join(conf, "elasticsearch.yml"), []byte(yml), 0o644); err != nil {
		return err
	}
	if cred != nil {
		if err := reachable(dir); err != nil {
			return err
		}
		if err := reachable(home); err != nil {
			return err
		}
		err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(cred.Uid), int(cred.Gid))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func copyDir(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(t, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(t, b, 0o644)
	})
}

// URL returns the server's HTTP address, such as http://127.0.0.1:9250.
func (s *Server) URL() string { return s.url }

// Pid returns the launcher's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop shuts the server down (SIGTERM to the launcher, which stops the
// node), waits up to a minute, then kills it. It is safe to call more
// than once.
func (s *Server) Stop() error {
	s.stop.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(time.Minute):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
			s.err = errors.New("esserver: elasticsearch did not stop within a minute and was killed")
		}
		stopPidFile(filepath.Join(s.opts.Dir, "es.pid"), s.opts.Logger)
	})
	return s.err
}

// Kill ends the node with SIGKILL, as a crash would (nothing is flushed
// or synced), and waits for its launcher to exit. Tests use it to show
// what survives a crash; Start on the same Dir recovers the node.
func (s *Server) Kill() error {
	b, err := os.ReadFile(filepath.Join(s.opts.Dir, "es.pid"))
	if err != nil {
		return fmt.Errorf("esserver: kill: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !isNode(pid) {
		return fmt.Errorf("esserver: kill: es.pid names no running node (%q)", strings.TrimSpace(string(b)))
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("esserver: kill: %w", err)
	}
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.stop.Do(func() {}) // nothing left for Stop to do
	return nil
}

// stopPidFile stops the node whose pid the file names, if it still runs
// a Java process (a node left behind by a dead owner).
func stopPidFile(path string, log *slog.Logger) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !isNode(pid) {
		return
	}
	log.Warn("elasticsearch: stopping a node left running", slog.Int("pid", pid))
	_ = syscall.Kill(pid, syscall.SIGTERM)
	gone := func() bool { return !isNode(pid) }
	if pause.Within(30*time.Second, 100*time.Millisecond, gone) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	pause.Within(10*time.Second, 100*time.Millisecond, gone)
}

func isNode(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || strings.Contains(string(stat), ") Z ") {
		return false
	}
	return strings.Contains(string(cmdline), "org.elasticsearch")
}

func readFrom(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return tail(b[off:])
}

// Port returns the server's HTTP port.
func (s *Server) Port() int { return s.opts.Port }
