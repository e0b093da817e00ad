package datadir

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FileOptions say how [Write] writes a file.
type FileOptions struct {
	// Perm is the file's mode (default 0600).
	Perm fs.FileMode
	// Owner, if set, is given the file before it takes its name (a
	// local server's own file, written by orderd running as root).
	Owner *User
	// Exclusive makes Write fail, with an error wrapping fs.ErrExist,
	// when the name is taken, instead of replacing that file.
	Exclusive bool
}

// Write writes the file at path so that a reader finds either the whole
// old file or the whole new one, never a part, even across a crash: fill
// writes the content into a temporary file beside it, which is synced
// to disk, given its mode and owner, and then renamed over path (linked
// to it with Exclusive).
func Write(path string, o FileOptions, fill func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = fill(tmp)
	if err == nil && o.Perm != 0 && o.Perm != 0o600 {
		err = tmp.Chmod(o.Perm)
	}
	if err == nil && o.Owner != nil {
		err = tmp.Chown(int(o.Owner.Uid), int(o.Owner.Gid))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if o.Exclusive {
		return os.Link(tmp.Name(), path)
	}
	return os.Rename(tmp.Name(), path)
}

// WriteFile writes data to name inside dir with [Write]: atomically, mode
// 0600.
func WriteFile(dir, name string, data []byte) error {
	return Write(filepath.Join(dir, name), FileOptions{}, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	})
}

// NewSecret returns 32 random bytes as 43 characters of unpadded
// base64url, which need no escaping in a URL, a connection string, an
// SQL literal or a header.
func NewSecret() (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate a secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

// StoredSecret returns the secret stored in dir/name. When there is none
// and create is set, it generates one ([NewSecret]) and stores it (mode
// 0600, dir made 0700 if missing); otherwise the error wraps
// fs.ErrNotExist.
func StoredSecret(dir, name string, create bool) (string, error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) || !create {
		return "", err
	}
	s, err := NewSecret()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := WriteFile(dir, name, []byte(s+"\n")); err != nil {
		return "", fmt.Errorf("store %s: %w", path, err)
	}
	return s, nil
}
