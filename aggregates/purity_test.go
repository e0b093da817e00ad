package aggregates_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ordo-shop/ordo"

// TestDomainImportsOnlyStandardLibrary keeps the domain packages and the
// log's port pure: events and everything under aggregates may import the
// standard library and each other; eventlog (the port, its in-memory log
// and its acceptance suite) the standard library, events and itself.
// Nothing else: no NATS, database or HTTP client reaches them.
func TestDomainImportsOnlyStandardLibrary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	for _, c := range []struct {
		patterns []string
		roots    []string
	}{
		{[]string{"./events/...", "./aggregates/..."}, []string{"events", "aggregates"}},
		{[]string{"./eventlog/..."}, []string{"events", "eventlog"}},
	} {
		args := append([]string{"list", "-deps", "-test", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, c.patterns...)
		cmd := exec.Command(goTool, args...)
		cmd.Dir = ".." // the module root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		allowed := func(p string) bool {
			// -test lists test variants as "p [p.test]" and "p.test".
			p = strings.TrimSuffix(p, ".test")
			for _, root := range c.roots {
				root = module + "/" + root
				if p == root || strings.HasPrefix(p, root+"/") || strings.HasPrefix(p, root+"_test") {
					return true
				}
			}
			return false
		}
		var seen int
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			p, _, _ := strings.Cut(line, " ")
			if p == "" {
				continue
			}
			seen++
			if !allowed(p) {
				t.Errorf("%v depend on %s, outside the standard library", c.patterns, line)
			}
		}
		if seen == 0 {
			t.Fatalf("go list listed no packages for %v; the patterns match nothing", c.patterns)
		}
	}
}
