//go:build unix

package command_test

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// BenchmarkHandlerAppend measures the whole command path (decide, seal,
// append, fold) with and without a commit signer, side by side in the
// same run, with 1 and 16 writers, under fsync-always (orderd's default)
// and lazy fsync. Every writer restocks its own four SKUs in turn, so
// there are no conflicts; each run gets a fresh in-process server, and
// the SKUs are defined before the timer starts.
//
//	go test ./internal/command -run '^$' -bench HandlerAppend -benchtime 3s -count 3
func BenchmarkHandlerAppend(b *testing.B) {
	for _, sync := range []struct {
		name   string
		always bool
	}{{"fsync", true}, {"lazy", false}} {
		for _, writers := range []int{1, 16} {
			for _, signed := range []bool{false, true} {
				name := fmt.Sprintf("%s/writers=%d/unsigned", sync.name, writers)
				if signed {
					name = fmt.Sprintf("%s/writers=%d/signed", sync.name, writers)
				}
				b.Run(name, func(b *testing.B) { benchHandler(b, sync.always, writers, signed) })
			}
		}
	}
}

func benchHandler(b *testing.B, syncAlways bool, writers int, signed bool) {
	store, reg := benchLog(b, syncAlways)
	sku := func(w, k int) string { return fmt.Sprintf("w%d-s%d", w, k) }
	h := stockHandler(b, store, reg, signed, writers, sku)
	cpu0 := processCPU(b)
	b.ResetTimer()
	err := restockAll(h, writers, b.N, sku)
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	if err != nil {
		b.Error(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	// The CPU this process (client and in-process server) spent per
	// commit: what other programs on a shared machine disturb least.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/commit")
}

// skusPerWriter is how many SKUs each writer of a benchmark restocks in
// turn: its own, so writers never conflict.
const skusPerWriter = 4

// benchLog opens a log on a fresh in-process server, with fsync on every
// write when syncAlways, and returns it with the standard registry.
func benchLog(b *testing.B, syncAlways bool) (*streams.Store, *events.Registry) {
	b.Helper()
	_, nc := testkit.NATS(b, func(o *natsembed.Options) { o.SyncAlways = syncAlways })
	store, err := testkit.OpenLog(context.Background(), nc, streams.Config{})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := events.Standard()
	if err != nil {
		b.Fatal(err)
	}
	return store, reg
}

// stockHandler makes an inventory handler on store, signing when signed,
// and defines the skusPerWriter SKUs of each of writers, named by sku.
func stockHandler(b *testing.B, store *streams.Store, reg *events.Registry, signed bool, writers int, sku func(w, k int) string) *command.Handler[inventory.State, inventory.Command] {
	b.Helper()
	var opts command.Options
	if signed {
		opts.Signer = testSigner(b)
	}
	h, err := command.NewHandler(inventory.Decider(), store, reg, opts)
	if err != nil {
		b.Fatal(err)
	}
	for w := range writers {
		for k := range skusPerWriter {
			if _, err := h.Handle(context.Background(), command.Request[inventory.Command]{AggregateID: sku(w, k),
				Command: inventory.Define{Name: "Tea", Price: events.Money{Amount: 100, Currency: "CNY"}, OnHand: 1}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return h
}

// restockAll restocks n times, from writers goroutines at once, each on
// its own SKUs in turn, and returns the first error.
func restockAll(h *command.Handler[inventory.State, inventory.Command], writers, n int, sku func(w, k int) string) error {
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		mine := n / writers
		if w < n%writers {
			mine++
		}
		wg.Go(func() {
			for i := range mine {
				if err := restock(h, sku(w, i%skusPerWriter)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSigningPaired measures what signing costs the fsync-always
// append rate on a shared machine, where other programs' disk and CPU use
// make two runs minutes apart incomparable: one server, one signing and
// one non-signing handler on separate SKUs, taking turns in short blocks
// of commits (each block with the same number of writers), so that
// whatever disturbs the machine falls on both alike. It reports each
// variant's rate over all its blocks and their ratio.
//
//	go test ./internal/command -run '^$' -bench SigningPaired -benchtime 40x -count 3
//
// b.N is the number of block pairs.
func BenchmarkSigningPaired(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("fsync/writers=%d", writers), func(b *testing.B) { benchPaired(b, writers) })
	}
}

func benchPaired(b *testing.B, writers int) {
	const block = 200 // commits per block
	store, reg := benchLog(b, true)
	var handlers [2]*command.Handler[inventory.State, inventory.Command]
	var skus [2]func(w, k int) string
	for v := range handlers {
		skus[v] = func(w, k int) string { return fmt.Sprintf("v%d-w%d-s%d", v, w, k) }
		handlers[v] = stockHandler(b, store, reg, v == 1, writers, skus[v])
	}
	var elapsed [2]time.Duration
	var cpu [2]time.Duration
	run := func(v int) {
		c0, start := processCPU(b), time.Now()
		err := restockAll(handlers[v], writers, block, skus[v])
		elapsed[v] += time.Since(start)
		cpu[v] += processCPU(b) - c0
		if err != nil {
			b.Fatal(err)
		}
	}
	for i := range b.N {
		// Alternate which goes first, so neither always follows the other.
		first := i % 2
		run(first)
		run(1 - first)
	}
	commits := float64(b.N * block)
	unsigned, signed := commits/elapsed[0].Seconds(), commits/elapsed[1].Seconds()
	b.ReportMetric(unsigned, "unsigned-commits/s")
	b.ReportMetric(signed, "signed-commits/s")
	b.ReportMetric(signed/unsigned, "signed/unsigned")
	b.ReportMetric(float64((cpu[1]-cpu[0]).Microseconds())/commits, "extra-cpu-µs/commit")
}
