package main

import (
	"bytes"
	"os"
	"path/filepath"
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

// isTerminal answers for terminals only: not for /dev/null (a character
// device too), a file or a pipe, and yes for a pseudo-terminal.
func TestIsTerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Error("/dev/null is taken for a terminal")
	}
	file, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if isTerminal(file) {
		t.Error("a regular file is taken for a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe is taken for a terminal")
	}
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to check the positive case: %v", err)
	}
	defer ptmx.Close()
	if !isTerminal(ptmx) {
		t.Error("a pseudo-terminal is not taken for a terminal")
	}
}
