package main

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// signedHandler is newHandler with a commit signer.
func signedHandler(t testing.TB, store command.Store, s events.CommitSigner) *command.Handler[order.State, order.Command] {
	t.Helper()
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	h, err := command.NewHandler(order.Decider(), store, reg, command.Options{Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newTestSigner(t testing.TB) *events.Ed25519Signer {
	t.Helper()
	priv, err := events.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := events.NewEd25519Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forge appends to order id a commit that continues its chain correctly
// (the next version, the last commit's hash) and marks it paid: what
// anyone holding the service's NATS credentials, but not its signing
// key, can write. sign, when set, signs it with a key of the forger's.
func forge(t testing.TB, store *streams.Store, id string, sign events.CommitSigner) uint64 {
	t.Helper()
	c, last := forgery(t, store, id, sign)
	res, err := store.Append(context.Background(), c, last.Seq)
	if err != nil {
		t.Fatal(err)
	}
	return res.Seq
}

// forgery makes forge's commit and returns it with the order's last
// record.
func forgery(t testing.TB, store *streams.Store, id string, sign events.CommitSigner) (*events.Commit, eventlog.Record) {
	t.Helper()
	last, ok, err := store.Last(context.Background(), eventlog.TypeOrder, id)
	if err != nil || !ok {
		t.Fatalf("last commit of %s: %v %v", id, ok, err)
	}
	data, _ := json.Marshal(events.OrderPaid{OrderID: id, PaymentID: "pay_forged", Amount: events.Money{Amount: 4498, Currency: "CNY"}})
	c := &events.Commit{
		CommitID: "forged-" + id, AggregateType: eventlog.TypeOrder, AggregateID: id, Version: last.Commit.LastVersion() + 1,
		Events:   []events.Event{{Type: "order.paid", SchemaVersion: 1, Data: data}},
		Metadata: events.Metadata{Actor: "psp", RecordedAt: last.Commit.Metadata.RecordedAt},
	}
	if err := c.SealSigned(last.Commit.Hash, sign); err != nil {
		t.Fatal(err)
	}
	return c, last
}

// signedLog writes into a new local default's data dir a log from before
// logs had an identity and commits a signature (testkit.LegacyLog) with
// two orders (unsigned); adopts it as an upgraded orderd's first start
// does (streams.Init: signing begins at ORDERS seq 9); then, with the data
// dir's generated key as orderd would, writes two more orders (o-2
// waiting for payment, o-3 delivered); then doctor runs on the store (a
// forger's appends). It leaves the store stopped.
func signedLog(t *testing.T, doctor func(store *streams.Store)) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	_, nc, stop := testkit.LocalNATS(t, dir, natsauth.Admin, false)
	defer stop()
	store, err := testkit.LegacyLog(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// order lives of testkit: o-0 cancelled (2 commits), o-1 delivered (6).
	if err := testkit.RunOrders(ctx, newHandler(t, order.Decider(), store), "o", 2, 2, 1); err != nil {
		t.Fatal(err)
	}
	li, err := streams.Init(ctx, nc, streams.Config{})
	if err != nil || !li.Adopted {
		t.Fatalf("adopt the log: %+v %v", li, err)
	}
	if err := datadir.WriteFile(dir, datadir.LogMarker, []byte(li.ID+"\n")); err != nil {
		t.Fatal(err)
	}
	if store, err = streams.Open(ctx, nc, streams.Config{LogID: li.ID}); err != nil {
		t.Fatal(err)
	}
	h := signedHandler(t, store, localSigner(t, dir))
	// o-2: placed, reserved, payment requested (path 5), signed.
	if err := testkit.RunOrder(ctx, h, "o-2", "cust-2", 5); err != nil {
		t.Fatal(err)
	}
	if err := testkit.RunOrder(ctx, h, "o-3", "cust-3", 1); err != nil {
		t.Fatal(err)
	}
	if doctor != nil {
		doctor(store)
	}
	return dir
}

func TestVerifyCountsUnsignedHistoryBeforeSigningBegan(t *testing.T) {
	dir := signedLog(t, nil)
	env := map[string]string{"ORDO_DATA_DIR": dir}
	code, out, errOut := orderctl(t, env, "verify")
	if code != exitOK || !strings.Contains(out, "verified 17 commit(s) of 4 order, 0 inventory, 0 payment: every chain intact") ||
		!strings.Contains(out, "signatures: 9 verified, 8 unsigned from before signing began (keyring: 1 key(s) from "+filepath.Join(dir, datadir.SigningKeys)+")") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = orderctl(t, env, "verify", "--json")
	lines := jsonLines(t, out)
	sum := lines[len(lines)-1]
	sigs, _ := sum["signatures"].(map[string]any)
	began, _ := sum["signing_began"].(map[string]any)
	if code != exitOK || len(lines) != 1 || sigs["verified"] != float64(9) || sigs["unsigned"] != float64(8) || began["ORDERS"] != float64(9) || sum["keys"] != float64(1) {
		t.Fatalf("json: exit %d\n%s", code, out)
	}

	// history shows each commit's status.
	code, out, errOut = orderctl(t, env, "history", "order", "o-1")
	if code != exitOK || strings.Count(out, "unsigned (before signing began)") != 6 || !strings.Contains(out, "signatures: 0 verified, 6 unsigned") {
		t.Fatalf("history of an unsigned order: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = orderctl(t, env, "history", "order", "o-3", "--json")
	if code != exitOK {
		t.Fatalf("history --json: exit %d %s", code, errOut)
	}
	for _, l := range jsonLines(t, out) {
		if l["signature"] != "verified" || !strings.HasPrefix(l["key_id"].(string), "ed25519:") || l["sig"] == "" {
			t.Fatalf("history line %v", l)
		}
	}

	// Without the metadata (removed by an admin), signing began at the
	// stream's first signed commit: the same sequence here.
	_, nc, stop := testkit.LocalNATS(t, dir, natsauth.Admin, false)
	setStreamMetadata(t, nc, "ORDERS", streams.SignedFromKey, "")
	stop()
	code, out, _ = orderctl(t, env, "verify", "--json")
	lines = jsonLines(t, out)
	sum = lines[len(lines)-1]
	began, _ = sum["signing_began"].(map[string]any)
	if code != exitOK || len(lines) != 1 || began["ORDERS"] != float64(9) {
		t.Fatalf("without ordo.signed_from: exit %d\n%s", code, out)
	}
	code, out, _ = orderctl(t, env, "history", "order", "o-1")
	if code != exitOK || strings.Count(out, "unsigned (before signing began)") != 6 || !strings.Contains(out, "signatures: 0 verified, 6 unsigned") {
		t.Fatalf("history of o-1 without ordo.signed_from: exit %d\n%s", code, out)
	}
}

// setStreamMetadata sets key in stream's metadata to value, or removes
// it when value is empty, over nc (an admin's connection).
func setStreamMetadata(t *testing.T, nc *nats.Conn, stream, key, value string) {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Metadata = maps.Clone(cfg.Metadata)
	if value == "" {
		delete(cfg.Metadata, key)
	} else {
		cfg.Metadata[key] = value
	}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyNamesForgedCommits(t *testing.T) {
	forger := newTestSigner(t)
	for _, tc := range []struct {
		name   string
		doctor func(t *testing.T, store *streams.Store)
		want   []string // substrings of one finding line each
	}{
		{"unsigned, after signing began", func(t *testing.T, store *streams.Store) { forge(t, store, "o-3", nil) },
			[]string{"order o-3 v7: unsigned commit in signed history (not written by orderd) (expected a signature (signing began at seq 9), found none)"}},
		{"unsigned, to an order from before signing began", func(t *testing.T, store *streams.Store) { forge(t, store, "o-0", nil) },
			[]string{"order o-0 v3: unsigned commit in signed history"}},
		{"signed by the forger's own key", func(t *testing.T, store *streams.Store) { forge(t, store, "o-2", forger) },
			[]string{"order o-2 v4: signed by a key not in the keyring (expected a key of the keyring, found " + forger.KeyID() + ")"}},
		{"a known key id with another key's signature", func(t *testing.T, store *streams.Store) {
			forge(t, store, "o-2", keyIDThief{forger, knownKeyID(t, store)})
		}, []string{"order o-2 v4: signature does not verify (forged or altered)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := signedLog(t, func(store *streams.Store) { tc.doctor(t, store) })
			env := map[string]string{"ORDO_DATA_DIR": dir}
			code, out, errOut := orderctl(t, env, "verify")
			if code != exitCheck {
				t.Fatalf("exit %d, want %d\n%s%s", code, exitCheck, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no finding %q in\n%s", w, out)
				}
			}
			if n := strings.Count(out, "\n"); n != 1+len(tc.want) {
				t.Errorf("%d lines, want the findings and a summary:\n%s", n, out)
			}
			// One aggregate, and its history, name it too.
			id := strings.Fields(tc.want[0])[1]
			code, out, _ = orderctl(t, env, "verify", "--type", "order", "--id", id)
			if code != exitCheck || !strings.Contains(out, tc.want[0][:len("order o-0 v3: ")]) {
				t.Errorf("verify --id %s: exit %d\n%s", id, code, out)
			}
			code, out, errOut = orderctl(t, env, "history", "order", id)
			if code != exitCheck || !strings.Contains(out, tc.want[0][:len("order o-0 v3: ")]) || !strings.Contains(errOut, "signature missing or wrong") {
				t.Errorf("history %s: exit %d\n%s%s", id, code, out, errOut)
			}
		})
	}
}

// keyIDThief signs with its own key but names another.
type keyIDThief struct {
	events.CommitSigner
	id string
}

func (k keyIDThief) KeyID() string { return k.id }

// knownKeyID returns the key id of o-3's signed commits.
func knownKeyID(t *testing.T, store *streams.Store) string {
	t.Helper()
	last, _, err := store.Last(context.Background(), eventlog.TypeOrder, "o-3")
	if err != nil || last.Commit.KeyID == "" {
		t.Fatalf("o-3's key: %+v %v", last.Commit, err)
	}
	return last.Commit.KeyID
}

// Without the keyring every signed commit is by an unknown key: a
// verify that cannot check signatures does not pass.
func TestVerifyWithoutTheKeyring(t *testing.T) {
	dir := signedLog(t, nil)
	if err := os.Remove(filepath.Join(dir, datadir.SigningKeys)); err != nil {
		t.Fatal(err)
	}
	code, out, _ := orderctl(t, map[string]string{"ORDO_DATA_DIR": dir}, "verify")
	if code != exitCheck || strings.Count(out, "signed by a key not in the keyring") != 9 || !strings.Contains(out, "keyring: no keyring") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	code, _, errOut := orderctl(t, map[string]string{"ORDO_DATA_DIR": dir}, "verify", "--keys", filepath.Join(dir, "nope"))
	if code != exitError || !strings.Contains(errOut, "--keys") {
		t.Fatalf("missing --keys file: exit %d %s", code, errOut)
	}
}

// A new log's commit streams record that signing began at their first
// sequence: such a log has no unsigned history, and an unsigned commit
// anywhere in it is named.
func TestSignedFromMetadata(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, nc, stop := testkit.LocalNATS(t, dir, natsauth.Admin, false)
	store, err := testkit.OpenLog(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment} {
		if from, err := store.SignedFrom(ctx, typ); err != nil || from != 1 {
			t.Fatalf("a new log's %s stream: signed from %d (%v), want 1", typ, from, err)
		}
	}
	// A forger's unsigned order, before orderd signed anything.
	if err := testkit.RunOrder(ctx, newHandler(t, order.Decider(), store), "o-9", "cust-9", 0); err != nil {
		t.Fatal(err)
	}
	stop()
	env := map[string]string{"ORDO_DATA_DIR": dir}
	code, out, _ := orderctl(t, env, "verify")
	if code != exitCheck || !strings.Contains(out, "order o-9 v1: unsigned commit in signed history (not written by orderd) (expected a signature (signing began at seq 1), found none)") ||
		!strings.Contains(out, "order o-9 v2: unsigned commit in signed history") {
		t.Fatalf("exit %d\n%s", code, out)
	}

	_, nc, stop = testkit.LocalNATS(t, dir, natsauth.Admin, false)
	setStreamMetadata(t, nc, "ORDERS", streams.SignedFromKey, "soon")
	stop()
	code, out, _ = orderctl(t, env, "verify", "--type", "order")
	if code != exitCheck || !strings.Contains(out, `ORDERS seq 0: ORDERS: stream metadata ordo.signed_from is not a stream sequence: "soon"`) || !strings.Contains(out, "order o-9 v1: unsigned commit") {
		t.Fatalf("bad metadata: exit %d\n%s", code, out)
	}
}

// The production shape: orderd instances on a three-node cluster, each
// with its own key, the auditor holding both public keys; a commit
// appended directly through NATS with a correct chain but no signature is
// named.
func TestVerifyOnAThreeNodeClusterNamesAForgedCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	ctx := context.Background()
	servers, nc := testkit.Cluster(t, 3)
	store, err := testkit.OpenLog(ctx, nc, streams.Config{Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	one, two := newTestSigner(t), newTestSigner(t)
	keyring := filepath.Join(t.TempDir(), "auditor.keys")
	for _, s := range []*events.Ed25519Signer{one, two} {
		if _, err := datadir.AddToKeyring(keyring, s.Public()); err != nil {
			t.Fatal(err)
		}
	}
	if err := testkit.RunOrders(ctx, signedHandler(t, store, one), "a", 6, 3, 4); err != nil {
		t.Fatal(err)
	}
	if err := testkit.RunOrders(ctx, signedHandler(t, store, two), "b", 6, 3, 4); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ORDO_NATS_URL": servers[1].ClientURL(), "ORDO_SIGNING_KEYS": keyring}
	code, out, errOut := orderctl(t, env, "verify")
	if code != exitOK || !strings.Contains(out, "signatures: 46 verified, 0 unsigned") {
		t.Fatalf("before the forgery: exit %d\n%s%s", code, out, errOut)
	}
	// The forger publishes the stored form of its commit with a plain
	// JetStream client, through another node of the cluster.
	c, _ := forgery(t, store, "a-5", nil)
	data, err := events.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	subject, err := store.Subject(eventlog.TypeOrder, "a-5")
	if err != nil {
		t.Fatal(err)
	}
	forger, err := nats.Connect(servers[2].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	fjs, err := jetstream.New(forger)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := fjs.Publish(ctx, subject, data)
	if err != nil {
		t.Fatal(err)
	}
	seq := ack.Sequence
	code, out, _ = orderctl(t, env, "verify", "--json")
	lines := jsonLines(t, out)
	if code != exitCheck || len(lines) != 2 || lines[0]["aggregate_id"] != "a-5" || lines[0]["version"] != float64(4) || lines[0]["seq"] != float64(seq) ||
		lines[0]["problem"] != "unsigned commit in signed history (not written by orderd)" {
		t.Fatalf("after the forgery: exit %d\n%s", code, out)
	}
	// Without the second instance's key, its commits are named too.
	partial := filepath.Join(t.TempDir(), "partial.keys")
	if _, err := datadir.AddToKeyring(partial, one.Public()); err != nil {
		t.Fatal(err)
	}
	code, out, _ = orderctl(t, env, "verify", "--keys", partial)
	if code != exitCheck || strings.Count(out, "signed by a key not in the keyring") != 23 {
		t.Fatalf("one key missing: exit %d\n%s", code, out)
	}
}

func TestKeysNewPublicList(t *testing.T) {
	dir := t.TempDir()
	ring := filepath.Join(dir, "auditors.keys")
	keyFile := filepath.Join(dir, "orderd-1.key")
	code, out, errOut := orderctl(t, nil, "keys", "new", keyFile, "--keys", ring, "--comment", "orderd-1 2026-05")
	if code != exitOK {
		t.Fatalf("keys new: exit %d %s", code, errOut)
	}
	line := strings.TrimSpace(out)
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	keys, err := datadir.ReadKeyring(ring)
	if err != nil || keys.Len() != 1 || keys.Keys()[0].String() != line || !strings.HasSuffix(line, " orderd-1 2026-05") {
		t.Fatalf("keyring %v (%v), printed %q", keys.Keys(), err, line)
	}
	code, out, _ = orderctl(t, nil, "keys", "public", keyFile, "--comment", "orderd-1 2026-05")
	if code != exitOK || strings.TrimSpace(out) != line {
		t.Fatalf("keys public: exit %d %q, want %q", code, out, line)
	}
	code, _, errOut = orderctl(t, nil, "keys", "new", keyFile)
	if code != exitError || !strings.Contains(errOut, "exists") {
		t.Fatalf("overwrite: exit %d %s", code, errOut)
	}
	code, out, _ = orderctl(t, map[string]string{"ORDO_SIGNING_KEYS": ring}, "keys", "list")
	if code != exitOK || !strings.Contains(out, keys.Keys()[0].ID+"  orderd-1 2026-05") {
		t.Fatalf("keys list: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"keys"}, {"keys", "rotate"}, {"keys", "public"}, {"keys", "new", "a", "b"}, {"keys", "list", "x"}} {
		if code, _, errOut := orderctl(t, nil, args...); code != exitUsage {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}

// Rotating the local default's key: commits signed before and after
// both verify, with both public keys in the data dir's keyring.
func TestRotatingTheLocalKeyKeepsOldCommitsVerifiable(t *testing.T) {
	dir := signedLog(t, nil)
	env := map[string]string{"ORDO_DATA_DIR": dir}
	old, err := datadir.ReadSigningKey(filepath.Join(dir, datadir.SigningKey))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := orderctl(t, env, "keys", "new")
	if code != exitOK || !strings.Contains(errOut, "next start") {
		t.Fatalf("rotate: exit %d %s%s", code, out, errOut)
	}
	next, err := datadir.LocalSigningKey(dir) // orderd's next start
	if err != nil || next.Equal(old) {
		t.Fatalf("after rotation the key is the old one (%v)", err)
	}
	ctx := context.Background()
	_, nc, stop := testkit.LocalNATS(t, dir, natsauth.Admin, false)
	store, err := streams.Open(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := events.NewEd25519Signer(next)
	if err := testkit.RunOrder(ctx, signedHandler(t, store, s), "o-4", "cust-4", 0); err != nil {
		t.Fatal(err)
	}
	stop()
	code, out, _ = orderctl(t, env, "verify")
	if code != exitOK || !strings.Contains(out, "signatures: 11 verified, 8 unsigned") || !strings.Contains(out, "2 key(s)") {
		t.Fatalf("after rotation: exit %d\n%s", code, out)
	}
	code, out, _ = orderctl(t, env, "keys", "list")
	if code != exitOK || strings.Count(out, "ed25519:") != 2 {
		t.Fatalf("keys list: exit %d\n%s", code, out)
	}
}
