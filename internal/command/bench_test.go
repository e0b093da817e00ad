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
	_, nc := testkit.NATS(b, func(o *natsembed.Options) { o.SyncAlways = syncAlways })
	ctx := context.Background()
	store, err := testkit.OpenLog(ctx, nc, streams.Config{})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := events.Standard()
	if err != nil {
		b.Fatal(err)
	}
	var opts command.Options
	if signed {
		opts.Signer = testSigner(b)
	}
	h, err := command.NewHandler(inventory.Decider(), store, reg, opts)
	if err != nil {
		b.Fatal(err)
	}
	const skusPerWriter = 4
	sku := func(w, k int) string { return fmt.Sprintf("w%d-s%d", w, k) }
	for w := range writers {
		for k := range skusPerWriter {
			if _, err := h.Handle(ctx, command.Request[inventory.Command]{AggregateID: sku(w, k),
				Command: inventory.Define{Name: "Tea", Price: events.Money{Amount: 100, Currency: "CNY"}, OnHand: 1}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	cpu0 := processCPU(b)
	b.ResetTimer()
	for w := range writers {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		wg.Go(func() {
			for i := range n {
				if err := restock(h, sku(w, i%skusPerWriter)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	close(errs)
	for err := range errs {
		b.Error(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	// The CPU this process (client and in-process server) spent per
	// commit: what other programs on a shared machine disturb least.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/commit")
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
	_, nc := testkit.NATS(b, func(o *natsembed.Options) { o.SyncAlways = true })
	ctx := context.Background()
	store, err := testkit.OpenLog(ctx, nc, streams.Config{})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := events.Standard()
	if err != nil {
		b.Fatal(err)
	}
	handlers := make([]*command.Handler[inventory.State, inventory.Command], 2)
	for i := range handlers {
		var opts command.Options
		if i == 1 {
			opts.Signer = testSigner(b)
		}
		if handlers[i], err = command.NewHandler(inventory.Decider(), store, reg, opts); err != nil {
			b.Fatal(err)
		}
	}
	const skusPerWriter = 4
	sku := func(v, w, k int) string { return fmt.Sprintf("v%d-w%d-s%d", v, w, k) }
	for v, h := range handlers {
		for w := range writers {
			for k := range skusPerWriter {
				if _, err := h.Handle(ctx, command.Request[inventory.Command]{AggregateID: sku(v, w, k),
					Command: inventory.Define{Name: "Tea", Price: events.Money{Amount: 100, Currency: "CNY"}, OnHand: 1}}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	var elapsed [2]time.Duration
	var cpu [2]time.Duration
	run := func(v int) {
		h := handlers[v]
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		c0, start := processCPU(b), time.Now()
		for w := range writers {
			n := block / writers
			if w < block%writers {
				n++
			}
			wg.Go(func() {
				for i := range n {
					if err := restock(h, sku(v, w, i%skusPerWriter)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed[v] += time.Since(start)
		cpu[v] += processCPU(b) - c0
		close(errs)
		for err := range errs {
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
