//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

import "os"

// isTerminal reports false: on this system orderctl does not ask, and so
// draws no progress bar.
func isTerminal(*os.File) bool { return false }
