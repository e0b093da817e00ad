//go:build !linux

package esserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// errUnsupported is what every entry point that would run Elasticsearch
// answers on a system other than Linux: the server is started with a
// parent-death signal, found again through /proc, and its user is made
// with useradd.
var errUnsupported = fmt.Errorf("esserver: the local Elasticsearch needs Linux (this is %s); set ORDO_ELASTICSEARCH_URL to a running Elasticsearch: %w",
	runtime.GOOS, errors.ErrUnsupported)

// Server is a running Elasticsearch; on this system there is none.
type Server struct{}

// Install refuses: the local Elasticsearch needs Linux.
func Install(context.Context, string, *slog.Logger) (string, error) { return "", errUnsupported }

// FindJavaHome refuses: the local Elasticsearch needs Linux.
func FindJavaHome() (string, error) { return "", errUnsupported }

// Start refuses: the local Elasticsearch needs Linux.
func Start(context.Context, Options) (*Server, error) { return nil, errUnsupported }

// Shared refuses: the local Elasticsearch needs Linux.
func Shared(context.Context, Options) (string, error) { return "", errUnsupported }

// SharedURL finds no shared server: none runs on this system.
func SharedURL(context.Context, string) (string, bool) { return "", false }

// StopShared refuses: the local Elasticsearch needs Linux.
func StopShared(context.Context, Options) error { return errUnsupported }

// KeepShared returns at once: there is no shared server to keep.
func KeepShared(context.Context, Options, string, time.Duration, func(string)) {}

// The methods below exist so that callers build; no Server is ever made
// here.

func (s *Server) URL() string { return "" }
func (s *Server) Pid() int    { return 0 }
func (s *Server) Port() int   { return 0 }
func (s *Server) Stop() error { return errUnsupported }
func (s *Server) Kill() error { return errUnsupported }
