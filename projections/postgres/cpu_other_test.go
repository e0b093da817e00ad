//go:build !unix

package postgres

import "time"

// selfCPU is unknown here (no getrusage): the benchmarks report only the
// database's CPU time, and this process's as zero.
func selfCPU() time.Duration { return 0 }
