package esserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Version is the Elasticsearch release this package runs. See
// docs/decisions/008-elasticsearch.md for why.
const Version = "8.19.7"

// Artifact is the Maven coordinate of the distribution.
const Artifact = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:" + Version + ":zip"

// DefaultUser runs Elasticsearch when the calling process is root.
const DefaultUser = "ordo-es"

// DefaultHeap is the JVM heap of a server unless [Options.Heap] says
// otherwise: small, the machine is shared.
const DefaultHeap = "512m"

// Options configure [Start].
type Options struct {
	// Dir holds the server's config, data, logs and temp files. Required.
	Dir string
	// CacheDir holds the unpacked distribution (see [DefaultCacheDir]).
	// Required.
	CacheDir string
	// Port is the HTTP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Heap is the JVM heap, such as "512m" (default [DefaultHeap]).
	Heap string
	// JavaHome is the JDK to run (ES_JAVA_HOME). Default: the newest of
	// Java 17 or 21 under /usr/lib/jvm.
	JavaHome string
	// User runs Elasticsearch when the caller is root (default
	// [DefaultUser], created if missing).
	User string
	// Detach lets the server outlive the calling process (its own
	// session, no parent-death signal, stdio to a log file).
	Detach bool
	// StartTimeout bounds the wait for the cluster to turn yellow
	// (default 3 minutes).
	StartTimeout time.Duration
	// Logger receives progress (default: discard).
	Logger *slog.Logger
}

// DefaultCacheDir returns where the distribution is cached: for root
// /var/cache/ordo (reachable by the unprivileged user that runs the
// server), else $XDG_CACHE_HOME/ordo or ~/.cache/ordo.
func DefaultCacheDir(getenv func(string) string) string {
	if d := getenv("ORDO_CACHE_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/ordo"
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "ordo")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "ordo")
	}
	return filepath.Join(os.TempDir(), "ordo-cache")
}

// SharedDir returns the directory of the shared server for cacheDir.
func SharedDir(cacheDir string) string {
	return filepath.Join(cacheDir, "shared-"+Version)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Healthy reports nil when the cluster at url answers and is yellow or
// green.
func Healthy(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/_cluster/health?wait_for_status=yellow&timeout=1s", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Status   string `json:"status"`
		TimedOut bool   `json:"timed_out"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return err
	}
	if resp.StatusCode != 200 || h.TimedOut || (h.Status != "green" && h.Status != "yellow") {
		return fmt.Errorf("cluster health %s (http %d)", h.Status, resp.StatusCode)
	}
	return nil
}
