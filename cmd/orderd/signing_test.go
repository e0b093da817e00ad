package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// checkSigned checks every commit of the log: each chain intact and
// each commit signed by a key of keys, as orderctl verify does, and
// returns how many commits each key signed.
func checkSigned(t *testing.T, store *streams.Store, keys *events.Keyring) map[string]int {
	t.Helper()
	byKey := map[string]int{}
	for _, typ := range []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment} {
		links := map[string]*events.ChainLink{}
		err := logtest.Replay(context.Background(), store, typ, 1, func(r eventlog.Record) error {
			c := r.Commit
			link := links[c.AggregateID]
			if link == nil {
				link = &events.ChainLink{}
				links[c.AggregateID] = link
			}
			if breaks := link.Check(c); len(breaks) > 0 {
				t.Errorf("%s seq %d: %v", r.Stream, r.Seq, breaks)
			}
			h, err := c.ComputeHash()
			if err != nil {
				return err
			}
			if err := c.VerifySignature(h, keys); err != nil {
				t.Errorf("%s seq %d (%s %s v%d): %v", r.Stream, r.Seq, c.AggregateType, c.AggregateID, c.Version, err)
			}
			byKey[c.KeyID]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return byKey
}

// The local default signs every commit it appends (orders and stock
// through the API, the checkout's order, stock and payment commits) with
// the key it generated into its data dir, whose public key is in the
// data dir's keyring; both files are 0600.
func TestLocalDefaultSignsEveryCommit(t *testing.T) {
	ta := mustStart(t, withSagas("auto"))
	ta.putSKU("TEA-250", 1999, 100)
	r := ta.place(ta.alice, "k-signed", orderBody(line("TEA-250", 2)))
	if r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	id := r.body["order_id"].(string)
	ta.waitEvent(id, "order.paid")
	if c := ta.do("POST", "/v1/orders/"+id+"/cancel", ta.alice, map[string]any{"reason": "changed my mind"}); c.status != 202 {
		t.Fatalf("cancel: %d %s", c.status, c.raw)
	}
	ta.waitEvent(id, "order.refunded")

	dir := ta.cfg.DataDir
	for _, name := range []string{datadir.SigningKey, datadir.SigningKeys} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, st, err)
		}
	}
	keys, err := datadir.ReadKeyring(filepath.Join(dir, datadir.SigningKeys))
	if err != nil || keys.Len() != 1 {
		t.Fatalf("keyring: %v %v", keys.Keys(), err)
	}
	byKey := checkSigned(t, ta.store, keys)
	seqs := ta.seqs()
	if want := int(seqs["order"] + seqs["inventory"] + seqs["payment"]); byKey[keys.Keys()[0].ID] != want || seqs["payment"] == 0 {
		t.Fatalf("signed by key %v, want all %d commits (%v) by %s", byKey, want, seqs, keys.Keys()[0].ID)
	}
}

// ORDO_SIGNING_KEY names the key of a deployment: commits carry its id
// and nothing is generated into the data dir; a key that cannot be read
// stops orderd at start with a message naming the setting.
func TestSigningKeyFromTheConfiguration(t *testing.T) {
	priv, err := events.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "orderd.key")
	if err := datadir.WriteSigningKey(path, priv); err != nil {
		t.Fatal(err)
	}
	s, _ := events.NewEd25519Signer(priv)
	ta := mustStart(t, func(c *config.Config) { c.SigningKey = path })
	ta.putSKU("TEA-250", 1999, 100)
	if r := ta.place(ta.alice, "k", orderBody(line("TEA-250", 1))); r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	keys := &events.Keyring{}
	if _, err := keys.Add(s.Public()); err != nil {
		t.Fatal(err)
	}
	if byKey := checkSigned(t, ta.store, keys); byKey[s.KeyID()] != 2 || len(byKey) != 1 {
		t.Fatalf("commits by key %v, want the SKU and the order by %s", byKey, s.KeyID())
	}
	if _, err := os.Stat(filepath.Join(ta.cfg.DataDir, datadir.SigningKey)); !os.IsNotExist(err) {
		t.Fatalf("a key was generated into the data dir: %v", err)
	}

	for name, content := range map[string]string{"missing": "", "not a key": "garbage"} {
		bad := filepath.Join(t.TempDir(), "bad.key")
		if content != "" {
			if err := os.WriteFile(bad, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, err := start(context.Background(), testConfig(t, func(c *config.Config) { c.SigningKey = bad }), slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "ORDO_SIGNING_KEY") || !strings.Contains(err.Error(), bad) {
			t.Fatalf("%s: start error %v", name, err)
		}
	}
}

// Two instances on a three-node cluster sharing one key (ORDO_SIGNING_KEY):
// every commit either appends verifies with its one public key.
func TestInstancesOnAClusterShareASigningKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	servers, nc := testkit.Cluster(t, 3)
	li := testkit.InitLog(t, servers[0].ClientURL(), streams.Config{Replicas: 3}) // orderctl init
	priv, err := events.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "shared.key")
	if err := datadir.WriteSigningKey(path, priv); err != nil {
		t.Fatal(err)
	}
	var instances []*testApp
	for i := range 2 {
		instances = append(instances, mustStart(t, func(c *config.Config) {
			c.NATSURL, c.Replicas, c.SigningKey, c.LogID = servers[i].ClientURL(), 3, path, li.ID
		}))
	}
	instances[0].putSKU("TEA-250", 1999, 100)
	for i, ta := range instances {
		if r := ta.place(ta.alice, "k"+string(rune('a'+i)), orderBody(line("TEA-250", 1))); r.status != 202 {
			t.Fatalf("place through %d: %d %s", i, r.status, r.raw)
		}
	}
	store, err := streams.Open(context.Background(), nc, streams.Config{LogID: li.ID})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := events.NewEd25519Signer(priv)
	keys := &events.Keyring{}
	if _, err := keys.Add(s.Public()); err != nil {
		t.Fatal(err)
	}
	if byKey := checkSigned(t, store, keys); byKey[s.KeyID()] != 3 || len(byKey) != 1 {
		t.Fatalf("commits by key %v, want 3 by %s", byKey, s.KeyID())
	}
}
