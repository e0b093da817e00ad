package command_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
)

func testSigner(tb testing.TB) *events.Ed25519Signer {
	tb.Helper()
	priv, err := events.GenerateSigningKey()
	if err != nil {
		tb.Fatal(err)
	}
	s, err := events.NewEd25519Signer(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// With a Signer every commit the handler appends is signed, also the
// ones decided again after losing a race to another instance; without
// one, commits stay unsigned, and a handler reads both kinds.
func TestHandlerSignsEveryCommit(t *testing.T) {
	each(t, func(t *testing.T, f fixture) {
		one, two := testSigner(t), testSigner(t)
		keys := &events.Keyring{}
		for _, s := range []*events.Ed25519Signer{one, two} {
			if _, err := keys.Add(s.Public()); err != nil {
				t.Fatal(err)
			}
		}
		signed := func(s events.CommitSigner) *command.Handler[inventory.State, inventory.Command] {
			h, err := command.NewHandler(inventory.Decider(), f.store, f.reg, command.Options{MaxAttempts: 50, Signer: s})
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		unsigned := f.handler(t, f.store)
		define(t, unsigned, "SKU-S", 0) // written before signing began
		ha, hb := signed(one), signed(two)
		var wg sync.WaitGroup
		for i := range 20 {
			h := ha
			if i%2 == 1 {
				h = hb
			}
			wg.Go(func() {
				if err := restock(h, "SKU-S"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		checkLog(t, f.store, "SKU-S", 1+20)

		recs, err := f.store.Load(context.Background(), eventlog.TypeInventory, "SKU-S", 0)
		if err != nil {
			t.Fatal(err)
		}
		byKey := map[string]int{}
		for _, r := range recs {
			c := r.Commit
			h, err := c.ComputeHash()
			if err != nil {
				t.Fatal(err)
			}
			if c.Version == 1 {
				if c.Signed() {
					t.Fatalf("v1 was written without a signer but is signed: %+v", c)
				}
				continue
			}
			if err := c.VerifySignature(h, keys); err != nil {
				t.Fatalf("v%d: %v", c.Version, err)
			}
			byKey[c.KeyID]++
		}
		if byKey[one.KeyID()] != 10 || byKey[two.KeyID()] != 10 {
			t.Fatalf("commits by key %v, want 10 each", byKey)
		}
	})
}
