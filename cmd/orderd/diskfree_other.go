//go:build !(linux || darwin || freebsd)

package main

import (
	"errors"
	"fmt"
)

// diskFree cannot read a file system's free space on this system: its
// error wraps errors.ErrUnsupported.
func diskFree(dir string) (uint64, bool, error) {
	return 0, false, fmt.Errorf("free space of %s: %w", dir, errors.ErrUnsupported)
}
