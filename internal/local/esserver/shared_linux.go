//go:build linux

package esserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/pause"
)

// state is what the shared server's state file records.
type state struct {
	URL     string `json:"url"`
	Pid     int    `json:"pid"`
	Version string `json:"version"`
}

const stateFile = "state.json"

// Shared returns the URL of the shared, detached server of
// opts.CacheDir, starting it if no healthy one runs. It lives in
// [SharedDir] unless opts.Dir names another directory (tests keep theirs
// apart); opts.Detach is ignored. A server that ran there before and
// died is started again on the port it had, unless opts.Port says
// otherwise, so the URL its users hold stays valid. Concurrent callers,
// in this process or others, wait for one another and share one server.
// It keeps running after the caller exits; [StopShared] stops it.
func Shared(ctx context.Context, opts Options) (string, error) {
	if opts.CacheDir == "" {
		return "", errors.New("esserver: CacheDir is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dir := sharedDir(opts)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("esserver: %w", err)
	}
	if st, ok := readState(dir); ok && Healthy(ctx, st.URL) == nil {
		return st.URL, nil
	}
	unlock, err := datadir.FlockWait(ctx, sharedLock(dir))
	if err != nil {
		return "", err
	}
	defer unlock()
	st, ok := readState(dir)
	if ok && Healthy(ctx, st.URL) == nil {
		return st.URL, nil
	}
	if ok && st.Pid > 0 && alive(st.Pid) {
		// Started but not healthy yet (or wedged): give it a moment.
		for end := time.Now().Add(90 * time.Second); time.Now().Before(end) && alive(st.Pid); {
			if Healthy(ctx, st.URL) == nil {
				return st.URL, nil
			}
			if err := pause.For(ctx, 500*time.Millisecond); err != nil {
				return "", fmt.Errorf("esserver: waiting for the shared server to become healthy: %w", err)
			}
		}
		stopLauncher(st.Pid)
	}
	_ = os.Remove(filepath.Join(dir, stateFile))
	if ok && opts.Port == 0 {
		opts.Port = portOf(st.URL)
	}
	opts.Dir, opts.Detach = dir, true
	s, err := Start(ctx, opts)
	if err != nil && opts.Port != 0 && ok {
		opts.Logger.Warn("elasticsearch: cannot start again on its former port; taking another", slog.Int("port", opts.Port), slog.Any("err", err))
		opts.Port = 0
		s, err = Start(ctx, opts)
	}
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(state{URL: s.URL(), Pid: s.Pid(), Version: Version})
	// Atomically: orderd instances read it without the lock to follow
	// the server (KeepShared).
	if err := datadir.Write(filepath.Join(dir, stateFile), datadir.FileOptions{Perm: 0o644}, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		_ = s.Stop()
		return "", fmt.Errorf("esserver: %w", err)
	}
	return s.URL(), nil
}

// sharedDir is where opts's shared server lives.
func sharedDir(opts Options) string {
	if opts.Dir != "" {
		return opts.Dir
	}
	return SharedDir(opts.CacheDir)
}

// sharedLock is the lock that serialises starting and stopping the
// shared server in dir (for the default dir: <cache dir>/shared.lock).
func sharedLock(dir string) string { return filepath.Join(filepath.Dir(dir), "shared.lock") }

// portOf is the port of a server URL, 0 if it has none.
func portOf(u string) int {
	p, err := url.Parse(u)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p.Port())
	return n
}

// KeepShared watches the shared server of opts every interval until ctx
// ends, starting from addr (what [Shared] returned for opts). It follows
// the server when it moves: when the URL the server publishes in its
// state file is no longer addr and answers (it was stopped and started
// again, by anyone, on another port, or could not have its former port
// back), addr becomes that URL and moved is called with it. When the
// server is down and its node is gone (a node that runs but does not
// answer yet is left to come up), it starts it again through [Shared],
// on the same port if it can, else on another, which moved is told. It
// is for a process that relies on the local server, such as orderd's
// local default; moved may be nil.
func KeepShared(ctx context.Context, opts Options, addr string, interval time.Duration, moved func(url string)) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	follow := func(now, why string) {
		opts.Logger.Warn("elasticsearch: the local server moved; following it", slog.String("was", addr), slog.String("now", now), slog.String("why", why))
		addr = now
		if moved != nil {
			moved(now)
		}
	}
	dir := sharedDir(opts)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, published := readState(dir)
		if published && st.URL != addr && healthy(ctx, st.URL) == nil {
			follow(st.URL, "it publishes another URL")
			continue
		}
		err := healthy(ctx, addr)
		if err == nil || ctx.Err() != nil {
			continue
		}
		if published && st.Pid > 0 && alive(st.Pid) {
			continue
		}
		opts.Logger.Warn("elasticsearch: the local server is down; starting it again", slog.String("url", addr), slog.Any("err", err))
		got, err := Shared(ctx, opts)
		switch {
		case err != nil:
			opts.Logger.Error("elasticsearch: could not start the local server again; trying on", slog.Any("err", err))
		case got != addr:
			follow(got, "started again on another port")
		default:
			opts.Logger.Info("elasticsearch: the local server runs again", slog.String("url", addr))
		}
	}
}

// healthy is [Healthy] bounded by 5 s.
func healthy(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return Healthy(ctx, url)
}

// SharedURL returns the URL of the shared server of cacheDir if it runs
// and is healthy.
func SharedURL(ctx context.Context, cacheDir string) (string, bool) {
	st, ok := readState(SharedDir(cacheDir))
	if !ok || Healthy(ctx, st.URL) != nil {
		return "", false
	}
	return st.URL, true
}

// StopShared stops the shared server of opts (of opts.CacheDir, or in
// opts.Dir), if one runs.
func StopShared(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := sharedDir(opts)
	unlock, err := datadir.FlockWait(ctx, sharedLock(dir))
	if err != nil {
		return err
	}
	defer unlock()
	if st, ok := readState(dir); ok && st.Pid > 0 {
		stopLauncher(st.Pid)
	}
	stopPidFile(filepath.Join(dir, "es.pid"), log)
	_ = os.Remove(filepath.Join(dir, stateFile))
	return nil
}

func readState(dir string) (state, bool) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return state{}, false
	}
	var st state
	if json.Unmarshal(b, &st) != nil || st.URL == "" || st.Version != Version {
		return state{}, false
	}
	return st, true
}

// alive reports whether pid is a live Elasticsearch process (never a
// recycled pid of something else).
func alive(pid int) bool { return isNode(pid) }

// stopLauncher stops a detached launcher (and so its node) by pid.
func stopLauncher(pid int) {
	if !alive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if pause.Within(45*time.Second, 100*time.Millisecond, func() bool { return !alive(pid) }) {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
