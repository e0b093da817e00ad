//go:build linux || darwin || freebsd

package main

import "syscall"

// diskFree returns the bytes an unprivileged writer may still use on the
// file system holding dir, and whether it has inodes left (true where it
// does not count them). Statfs_t's field types differ between systems
// (FreeBSD's Bavail is signed, and negative while the reserve is in use),
// hence the conversions.
func diskFree(dir string) (free uint64, inodes bool, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false, err
	}
	avail := int64(st.Bavail)
	if avail < 0 {
		avail = 0
	}
	return uint64(avail) * uint64(st.Bsize), st.Files == 0 || st.Ffree > 0, nil
}
