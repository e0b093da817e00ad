//go:build !linux

package pgserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
)

// errUnsupported is what every entry point answers on a system other
// than Linux: the private PostgreSQL is started with a parent-death
// signal and finds a stale postmaster through /proc, both Linux's.
var errUnsupported = fmt.Errorf("pgserver: the private PostgreSQL needs Linux (this is %s); set ORDO_POSTGRES_URL to a running PostgreSQL: %w",
	runtime.GOOS, errors.ErrUnsupported)

// Server is a running private PostgreSQL; on this system there is none.
type Server struct{}

// Start refuses: the private PostgreSQL needs Linux.
func Start(context.Context, Options) (*Server, error) { return nil, errUnsupported }

// Remove refuses: the private PostgreSQL needs Linux.
func Remove(string, *slog.Logger) error { return errUnsupported }

// FindBinDir refuses: the private PostgreSQL needs Linux.
func FindBinDir() (string, error) { return "", errUnsupported }

// The methods below exist so that callers build; no Server is ever made
// here.

func (s *Server) URL() string                   { return "" }
func (s *Server) URLFor(string) string          { return "" }
func (s *Server) Dir() string                   { return "" }
func (s *Server) Pid() int                      { return 0 }
func (s *Server) Exited() <-chan struct{}       { return nil }
func (s *Server) Stop() error                   { return errUnsupported }
func (s *Server) Restart(context.Context) error { return errUnsupported }
func (s *Server) Supervise(context.Context)     {}
