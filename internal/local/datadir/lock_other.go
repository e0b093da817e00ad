//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package datadir

import (
	"errors"
	"fmt"
	"runtime"
)

// Flock would take an exclusive lock on the file at path; here, without
// flock(2), it refuses: the data directory's lock (and with it the
// embedded NATS of the local default) needs Linux or another system with
// flock. The error wraps errors.ErrUnsupported.
func Flock(path string) (unlock func(), err error) {
	return nil, fmt.Errorf("lock %s: file locks need flock(2), which %s lacks; run orderd against an external NATS (ORDO_NATS_URL): %w",
		path, runtime.GOOS, errors.ErrUnsupported)
}
