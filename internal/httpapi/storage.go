package httpapi

import (
	"context"
	"errors"
	"net/http"
	"syscall"
)

// storageFailed is the cause a write request's context is cancelled with
// when the event store's storage fails while it waits: the server does
// not answer such a publish at all, so without this the request would
// wait for its timeout.
type storageFailed struct{ err error }

func (e storageFailed) Error() string { return e.err.Error() }
func (e storageFailed) Unwrap() error { return e.err }

// storageError is what a client is told when the event store cannot
// write: 503 storage_full for a full disk, else storage_failed.
func storageError(cause error) *apiError {
	if errors.Is(cause, syscall.ENOSPC) {
		return errorf(http.StatusServiceUnavailable, "storage_full",
			"the event store's disk is full: nothing can be written until an operator frees space (reads go on); retry later")
	}
	return errorf(http.StatusServiceUnavailable, "storage_failed",
		"the event store cannot write (%v): nothing can be written until it is repaired (reads go on); retry later", cause)
}

// storageErr is the error for a storage context that has ended, else nil.
func storageErr(sctx context.Context) error {
	if sctx.Err() == nil {
		return nil
	}
	return storageError(context.Cause(sctx))
}

// guardStorage prepares a request that may write: it fails at once while
// the storage is failed, and otherwise returns the request with a context
// that ends, with [storageFailed] as its cause, the moment the storage
// fails. Call release when the request is done.
func (s *Server) guardStorage(r *http.Request) (_ *http.Request, release func(), err error) {
	if s.Storage == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return r, func() {}, nil
	}
	sctx := s.Storage()
	if err := storageErr(sctx); err != nil {
		return r, func() {}, err
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	stop := context.AfterFunc(sctx, func() { cancel(storageFailed{context.Cause(sctx)}) })
	return r.WithContext(ctx), func() { stop(); cancel(nil) }, nil
}

// storageCause replaces the error of a request that ended because the
// storage failed (its publish cancelled, see guardStorage) with the
// storage error.
func storageCause(r *http.Request, err error) error {
	var sf storageFailed
	if errors.As(context.Cause(r.Context()), &sf) {
		return storageError(sf.err)
	}
	return err
}
