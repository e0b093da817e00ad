package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/config"
)

const module = "github.com/ordo-shop/ordo"

// localOnly are the packages a production orderd must not link: the code
// that runs initdb and useradd (pgserver), mvn and useradd
// (esserver), the payment simulator (pspsim), and test infrastructure.
var localOnly = []string{
	module + "/internal/local/pgserver",
	module + "/internal/local/esserver",
	module + "/internal/local/pspsim",
	module + "/internal/testkit",
}

// goTool runs the go command in this package's directory and returns its
// standard output.
func goTool(t *testing.T, args ...string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to ask: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// The production build of orderd links none of the local servers nor the
// test infrastructure; the default build (the local default) has the
// servers. Only embedded NATS and the data dir's protocol stay in both.
func TestProductionBuildLeavesTheLocalServersOut(t *testing.T) {
	prod := strings.Fields(goTool(t, "list", "-deps", "-tags", productionTag, "."))
	dflt := strings.Fields(goTool(t, "list", "-deps", "."))
	for _, p := range localOnly {
		if slices.Contains(prod, p) {
			t.Errorf("orderd built with -tags %s links %s", productionTag, p)
		}
	}
	for _, p := range localOnly[:3] {
		if !slices.Contains(dflt, p) {
			t.Errorf("the default orderd does not link %s: the local default would not start it", p)
		}
	}
	if slices.Contains(dflt, module+"/internal/testkit") {
		t.Errorf("the default orderd links internal/testkit")
	}
	for _, p := range []string{module + "/internal/local/natsembed", module + "/internal/local/datadir"} {
		if !slices.Contains(prod, p) {
			t.Errorf("orderd built with -tags %s does not link %s", productionTag, p)
		}
	}
}

// No package outside internal/testkit imports it except from its tests.
func TestOnlyTestsImportTestkit(t *testing.T) {
	out := goTool(t, "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...")
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], module+"/internal/testkit") {
			continue
		}
		if slices.Contains(f[1:], module+"/internal/testkit") {
			t.Errorf("%s imports internal/testkit outside its tests", f[0])
		}
	}
}

// localServers names each local server a configuration needs with the
// variable to set instead; a configuration with servers of its own
// needs none.
func TestLocalServersNameTheVariableToSet(t *testing.T) {
	cfg := config.Default()
	cfg.Elasticsearch = "local"
	need := strings.Join(localServers(cfg), "; ")
	for _, v := range []string{"ORDO_POSTGRES_URL", "ORDO_ELASTICSEARCH_URL", "ORDO_PSP_URL"} {
		if !strings.Contains(need, v) {
			t.Errorf("the local default's needs %q do not name %s", need, v)
		}
	}
	cfg.PostgresURL = "postgres://db.example/ordo"
	cfg.PSPURL = "https://psp.example"
	cfg.ElasticsearchURL = "http://es.example:9200"
	if need := localServers(cfg); len(need) != 0 {
		t.Errorf("a configuration with its own servers needs %v", need)
	}
}

// The production binary refuses, before it starts anything, a
// configuration that would need a local server, and names the variables
// to set.
func TestProductionBinaryRefusesTheLocalDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("builds orderd with -tags production")
	}
	bin := filepath.Join(t.TempDir(), "orderd")
	goTool(t, "build", "-tags", productionTag, "-o", bin, ".")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-http-addr", "127.0.0.1:0")
	cmd.Env = []string{"ORDO_DATA_DIR=" + dir, "ORDO_ELASTICSEARCH=local"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("production orderd on the local default: %v, want exit status 1\n%s", err, out)
	}
	for _, v := range []string{"-tags production", "ORDO_POSTGRES_URL", "ORDO_ELASTICSEARCH_URL", "ORDO_PSP_URL"} {
		if !bytes.Contains(out, []byte(v)) {
			t.Errorf("its message does not name %s:\n%s", v, out)
		}
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*")); len(names) != 0 {
		t.Errorf("it made files before refusing: %v", names)
	}
}
