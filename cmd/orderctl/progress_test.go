package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressDrawsOnlyOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	if p := newProgress(env{stderr: &buf}, "verify", 10); p != nil {
		t.Fatal("a progress bar without a terminal")
	}
	var none *progress
	none.add(3) // a nil bar is a no-op
	none.finish()

	p := newProgress(env{stderr: &buf, tty: true}, "export", 4)
	p.add(1)
	p.add(3)
	p.finish()
	out := buf.String()
	if !strings.Contains(out, "export [") || !strings.Contains(out, "4/4") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("bar %q", out)
	}
}
