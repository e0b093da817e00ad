package datadir

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLockIsExclusive(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: err = %v, want ErrLocked", err)
	}
	unlock()
	again, err := Lock(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again()
}

func TestSecretIsGeneratedOnce(t *testing.T) {
	dir := t.TempDir()
	if _, err := Secret(dir, false); err == nil {
		t.Fatal("missing secret without create: no error")
	}
	a, err := Secret(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Secret(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || len(a) < 32 {
		t.Fatalf("secret %q then %q", a, b)
	}
}

func TestWriteReplacesOrRefusesWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	write := func(o FileOptions, content string) error {
		return Write(path, o, func(w io.Writer) error {
			_, err := io.WriteString(w, content)
			return err
		})
	}
	if err := write(FileOptions{}, "one"); err != nil {
		t.Fatal(err)
	}
	if err := write(FileOptions{Perm: 0o644}, "two"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Fatalf("content %q, want the replacement", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", fi.Mode())
	}
	if err := write(FileOptions{Exclusive: true}, "three"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("exclusive write over a file: %v, want fs.ErrExist", err)
	}
	// A fill that fails leaves the file as it was, and no temporary file.
	boom := errors.New("boom")
	if err := Write(path, FileOptions{}, func(w io.Writer) error {
		_, _ = io.WriteString(w, "half")
		return boom
	}); err != boom {
		t.Fatalf("failed fill: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Fatalf("content %q after a failed write", b)
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Fatalf("files left in the directory: %v", names)
	}
	if err := WriteFile(dir, "g", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "g")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("WriteFile: %v %v, want mode 0600", fi, err)
	}
}

func TestStoredSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	if _, err := StoredSecret(dir, "s", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no secret, no create: %v", err)
	}
	a, err := StoredSecret(dir, "s", true)
	if err != nil || len(a) != 43 || strings.Trim(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Fatalf("generated %q, %v: want 43 characters of base64url", a, err)
	}
	if b, err := StoredSecret(dir, "s", true); err != nil || b != a {
		t.Fatalf("second read %q %v, want %q", b, err, a)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory %v %v, want 0700", fi, err)
	}
}

func TestFlockWaitWaitsForTheHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := Flock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Flock(path); !errors.Is(err, ErrHeld) {
		t.Fatalf("second Flock: %v, want ErrHeld", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := FlockWait(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("FlockWait on a held lock: %v, want the context's end", err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		unlock()
	}()
	again, err := FlockWait(t.Context(), path)
	if err != nil {
		t.Fatalf("FlockWait after the holder let go: %v", err)
	}
	again()
}

func TestUnprivileged(t *testing.T) {
	cred, err := Unprivileged("nobody")
	if os.Geteuid() != 0 {
		if cred != nil || err != nil {
			t.Fatalf("not root: %v %v, want the calling user (nil)", cred, err)
		}
		return
	}
	if err != nil || cred == nil || cred.Uid == 0 {
		t.Fatalf("root, nobody: %+v %v", cred, err)
	}
	var unknown user.UnknownUserError
	if _, err := Unprivileged("ordo-no-such-user"); !errors.As(err, &unknown) {
		t.Fatalf("root, unknown user: %v, want user.UnknownUserError", err)
	}
	if _, err := Unprivileged("root"); err == nil {
		t.Fatal("root may run a server as root")
	}
	if cred, err := Unprivileged("ordo-no-such-user", "nobody"); err != nil || cred == nil {
		t.Fatalf("fallback to nobody: %v %v", cred, err)
	}
}
