//go:build !linux

package testkit

import "syscall"

// dieWithParent has no parent-death signal to ask for on this system: a
// test binary that is killed may leave its child servers running.
func dieWithParent() *syscall.SysProcAttr { return nil }
