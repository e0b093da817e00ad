package datadir

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// ErrNotPrivate means a file that holds a secret or a key may be read or
// written by its group or others.
var ErrNotPrivate = errors.New("holds a secret but is not private to its owner")

// CheckPrivate is the one check of a key file's mode: nil when the file
// at path (a secret, a key, an nkey seed) gives its group and others no
// permission at all (mode 0600 or stricter), else an error wrapping
// [ErrNotPrivate] that names the mode and the chmod that fixes it. An
// error of os.Stat (a missing file: fs.ErrNotExist) is returned as it is.
// On Windows, where the mode bits do not say who may read a file, only
// the Stat is checked.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 && runtime.GOOS != "windows" {
		return fmt.Errorf("%s: %w: its mode is %04o, make it readable by its owner only (chmod 600 %s)", path, ErrNotPrivate, m, path)
	}
	return nil
}

// ReadPrivate reads the file at path, refusing with [CheckPrivate]'s
// error one that is not private to its owner.
func ReadPrivate(path string) ([]byte, error) {
	if err := CheckPrivate(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}
