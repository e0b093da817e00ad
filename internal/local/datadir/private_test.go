package datadir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPrivateRefusesAFileOthersMayRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := CheckPrivate(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
	if err := WriteFile(filepath.Dir(path), filepath.Base(path), []byte("secret\n")); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadPrivate(path); err != nil || string(b) != "secret\n" {
		t.Fatalf("mode 0600: %q %v", b, err)
	}
	for _, mode := range []os.FileMode{0o400, 0o700} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if err := CheckPrivate(path); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		err := CheckPrivate(path)
		if !errors.Is(err, ErrNotPrivate) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: %v, want ErrNotPrivate naming the chmod", mode, err)
		}
		if _, err := ReadPrivate(path); !errors.Is(err, ErrNotPrivate) {
			t.Errorf("ReadPrivate, mode %04o: %v", mode, err)
		}
	}
}
