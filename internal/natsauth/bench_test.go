package natsauth_test

import (
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/natsauth"
)

// BenchmarkPublishPermissions is what the service user's permissions cost
// the server per message: core publishes on a new commit subject each
// (order.<p>.<id>, as appends are), through the in-process connection
// orderd uses, with and without Ordo's users. No stream stores them, so
// the permission check is not hidden behind JetStream's work.
//
//	go test ./internal/natsauth -run '^$' -bench PublishPermissions -count 5
func BenchmarkPublishPermissions(b *testing.B) {
	keys, err := natsauth.NewKeys()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		users bool
	}{{"open", false}, {"service", true}} {
		b.Run(c.name, func(b *testing.B) {
			opts := natsembed.Options{StoreDir: b.TempDir()}
			var copts []nats.Option
			if c.users {
				opts.Users = keys.Users()
				copts = append(copts, keys.Option(natsauth.Service))
			}
			s, err := natsembed.Start(opts)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { s.Shutdown(); s.WaitForShutdown() }()
			nc, err := natsembed.Connect(s, copts...)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			payload := make([]byte, 1100) // an order.placed commit's size
			subjects := make([]string, b.N)
			for i := range subjects {
				subjects[i] = "order." + strconv.Itoa(i%16) + ".ord_" + strconv.Itoa(i)
			}
			b.ResetTimer()
			for _, subj := range subjects {
				if err := nc.Publish(subj, payload); err != nil {
					b.Fatal(err)
				}
			}
			if err := nc.Flush(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := nc.LastError(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
