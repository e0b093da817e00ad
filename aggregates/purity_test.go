package aggregates_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ordo-shop/ordo"

// TestDomainImportsOnlyStandardLibrary keeps the domain packages pure:
// events and everything under aggregates may import the standard library
// and each other, nothing else.
func TestDomainImportsOnlyStandardLibrary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./events/...", "./aggregates/...")
	cmd.Dir = ".." // the module root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := func(p string) bool {
		for _, root := range []string{module + "/events", module + "/aggregates"} {
			if p == root || strings.HasPrefix(p, root+"/") {
				return true
			}
		}
		return false
	}
	var seen int
	for p := range strings.FieldsSeq(string(out)) {
		seen++
		if !allowed(p) {
			t.Errorf("domain packages depend on %s, outside the standard library", p)
		}
	}
	if seen == 0 {
		t.Fatal("go list listed no packages; the patterns match nothing")
	}
}
