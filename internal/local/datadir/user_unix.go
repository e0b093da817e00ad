//go:build unix

package datadir

import "syscall"

// Credential is u as the credential of a process to start
// (syscall.SysProcAttr.Credential) with no supplementary groups; nil for
// a nil u, which runs the process as the calling user.
func (u *User) Credential() *syscall.Credential {
	if u == nil {
		return nil
	}
	return &syscall.Credential{Uid: u.Uid, Gid: u.Gid, Groups: []uint32{}}
}
