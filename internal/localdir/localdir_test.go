package localdir

import (
	"errors"
	"testing"
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
