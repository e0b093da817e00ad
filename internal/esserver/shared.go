package esserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// state is what the shared server's state file records.
type state struct {
	URL     string `json:"url"`
	Pid     int    `json:"pid"`
	Version string `json:"version"`
}

// SharedDir returns the directory of the shared server for cacheDir.
func SharedDir(cacheDir string) string {
	return filepath.Join(cacheDir, "shared-"+Version)
}

const stateFile = "state.json"

// Shared returns the URL of the shared, detached server of
// opts.CacheDir, starting it if no healthy one runs. opts.Dir and
// opts.Detach are ignored. Concurrent callers, in this process or
// others, wait for one another and share one server. It keeps running
// after the caller exits; [StopShared] stops it.
func Shared(ctx context.Context, opts Options) (string, error) {
	if opts.CacheDir == "" {
		return "", errors.New("esserver: CacheDir is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dir := SharedDir(opts.CacheDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("esserver: %w", err)
	}
	if st, ok := readState(dir); ok && Healthy(ctx, st.URL) == nil {
		return st.URL, nil
	}
	unlock, err := lockWait(ctx, filepath.Join(opts.CacheDir, "shared.lock"))
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
		for end := time.Now().Add(90 * time.Second); time.Now().Before(end) && alive(st.Pid); time.Sleep(500 * time.Millisecond) {
			if Healthy(ctx, st.URL) == nil {
				return st.URL, nil
			}
		}
		stopLauncher(st.Pid)
	}
	_ = os.Remove(filepath.Join(dir, stateFile))
	opts.Dir, opts.Detach = dir, true
	s, err := Start(ctx, opts)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(state{URL: s.URL(), Pid: s.Pid(), Version: Version})
	if err := os.WriteFile(filepath.Join(dir, stateFile), b, 0o644); err != nil {
		_ = s.Stop()
		return "", fmt.Errorf("esserver: %w", err)
	}
	return s.URL(), nil
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

// StopShared stops the shared server of cacheDir, if one runs.
func StopShared(ctx context.Context, cacheDir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := SharedDir(cacheDir)
	unlock, err := lockWait(ctx, filepath.Join(cacheDir, "shared.lock"))
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
	for end := time.Now().Add(45 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
