package audit_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/audit"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// The log orderctl audits is JetStream's.
var _ audit.Log = (*streams.Store)(nil)

func registry(t *testing.T) *events.Registry {
	t.Helper()
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// keyring returns a commit signer and the keyring that holds its key.
func keyring(t *testing.T) (*events.Ed25519Signer, *events.Keyring) {
	t.Helper()
	priv, err := events.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := events.NewEd25519Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	keys := &events.Keyring{}
	if _, err := keys.Add(signer.Public()); err != nil {
		t.Fatal(err)
	}
	return signer, keys
}

// liveLog returns a log on an in-process JetStream holding the lives of
// n orders (o-0 to o-(n-1)), signed by signer as orderd signs them (a
// new log requires every commit to be signed).
func liveLog(t *testing.T, n int, signer *events.Ed25519Signer) *streams.Store {
	t.Helper()
	_, nc := testkit.NATS(t)
	log, err := testkit.OpenLog(t.Context(), nc, streams.Config{Partitions: 8})
	if err != nil {
		t.Fatal(err)
	}
	h, err := command.NewHandler(order.Decider(), log, registry(t), command.Options{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if err := testkit.RunOrders(t.Context(), h, "o", n, 3, 4); err != nil {
		t.Fatal(err)
	}
	return log
}

// messages returns the ORDERS stream of log as stored.
func messages(t *testing.T, log *streams.Store) []eventlog.StoredMsg {
	t.Helper()
	var msgs []eventlog.StoredMsg
	if err := log.ReplayRaw(t.Context(), eventlog.TypeOrder, 1, func(m eventlog.StoredMsg) error {
		m.Data = slices.Clone(m.Data)
		msgs = append(msgs, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// copyOf writes msgs, in the order given, into a new log's ORDERS stream
// through JetStream itself, as someone with NATS credentials could: a
// copy of a log that a test may have doctored.
func copyOf(t *testing.T, msgs []eventlog.StoredMsg) *streams.Store {
	t.Helper()
	_, nc := testkit.NATS(t)
	log, err := testkit.OpenLog(t.Context(), nc, streams.Config{Partitions: 8})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := js.Publish(t.Context(), m.Subject, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	return log
}

// at finds the message of order id at version v.
func at(t *testing.T, msgs []eventlog.StoredMsg, id string, v uint64) int {
	t.Helper()
	for i, m := range msgs {
		if c, err := events.Unmarshal(m.Data); err == nil && c.AggregateID == id && c.Version == v {
			return i
		}
	}
	t.Fatalf("no commit of %s at v%d", id, v)
	return -1
}

func TestAnIntactLogHasNoFindings(t *testing.T) {
	signer, keys := keyring(t)
	log := liveLog(t, 12, signer)
	last, err := log.LastSeq(t.Context(), eventlog.TypeOrder)
	if err != nil {
		t.Fatal(err)
	}
	var seen []audit.Progress
	var found []audit.Finding
	rep, err := audit.Verify(t.Context(), log, audit.Options{Registry: registry(t), Keys: keys, Found: func(f audit.Finding) { found = append(found, f) }},
		func(p audit.Progress) { seen = append(seen, p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || len(found) != 0 || rep.Commits != last || rep.Aggregates["order"] != 12 || rep.Signatures[audit.SigVerified] != last {
		t.Fatalf("report %+v, found %v; want %d verified commits of 12 orders and no finding", rep, found, last)
	}
	if len(rep.Heads) != 12 || rep.SigningBegan["ORDERS"] != 1 {
		t.Fatalf("heads %v, signing began %v", rep.Heads, rep.SigningBegan)
	}
	// Progress: per stream, from 0 to the end, never backwards, the last
	// report finished.
	var orders []audit.Progress
	for _, p := range seen {
		if p.Type == "order" {
			orders = append(orders, p)
		}
	}
	if len(orders) < 2 || orders[0].Done != 0 || orders[0].Total != last {
		t.Fatalf("order progress %v", orders)
	}
	for i := 1; i < len(orders); i++ {
		if orders[i].Done < orders[i-1].Done || orders[i-1].Finished {
			t.Fatalf("order progress goes back or goes on after finishing: %v", orders)
		}
	}
	if end := orders[len(orders)-1]; !end.Finished || end.Done != last {
		t.Fatalf("last order progress %+v, want finished at %d", end, last)
	}

	// Saved heads, read back, are found again.
	path := filepath.Join(t.TempDir(), "heads.jsonl")
	if err := audit.WriteHeads(path, rep.Heads); err != nil {
		t.Fatal(err)
	}
	heads, err := audit.ReadHeads(path)
	if err != nil || len(heads["order"]) != 12 {
		t.Fatalf("heads read back: %v %v", heads, err)
	}
	if again, err := audit.Verify(t.Context(), log, audit.Options{Registry: registry(t), Keys: keys, Heads: heads}, nil); err != nil || len(again.Findings) != 0 {
		t.Fatalf("with its own heads: %v %v", again.Findings, err)
	}
}

// Each kind of doctoring is named at the aggregate and version it
// touched, and nowhere else.
func TestDoctoredLogsAreNamed(t *testing.T) {
	signer, keys := keyring(t)
	orig := messages(t, liveLog(t, 6, signer))
	heads, err := audit.Verify(t.Context(), copyOf(t, orig), audit.Options{Registry: registry(t), Keys: keys}, nil)
	if err != nil || len(heads.Findings) != 0 {
		t.Fatalf("faithful copy: %v %v", heads.Findings, err)
	}
	saved := audit.Heads{}
	for _, h := range heads.Heads {
		if saved[h.Type] == nil {
			saved[h.Type] = map[string]audit.Head{}
		}
		saved[h.Type][h.ID] = h
	}
	clone := func() []eventlog.StoredMsg {
		out := slices.Clone(orig)
		for i := range out {
			out[i].Data = slices.Clone(out[i].Data)
		}
		return out
	}
	rewrite := func(m *eventlog.StoredMsg, change func(*events.Commit)) {
		c, err := events.Unmarshal(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		change(c)
		if m.Data, err = events.Marshal(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		doctor func([]eventlog.StoredMsg) []eventlog.StoredMsg
		want   []string
	}{
		{"altered", func(ms []eventlog.StoredMsg) []eventlog.StoredMsg {
			rewrite(&ms[at(t, ms, "o-1", 2)], func(c *events.Commit) { c.Metadata.Actor = "mallory" })
			return ms
		}, []string{"order o-1 v2: hash does not match content", "order o-1 v2: signature does not verify (forged or altered)"}},
		{"a commit taken out", func(ms []eventlog.StoredMsg) []eventlog.StoredMsg {
			i := at(t, ms, "o-1", 3)
			return slices.Delete(ms, i, i+1)
		}, []string{"order o-1 v4: version gap (expected 3, found 4)", "order o-1 v4: prev_hash does not link"}},
		{"cut short", func(ms []eventlog.StoredMsg) []eventlog.StoredMsg {
			i := at(t, ms, "o-1", 6)
			return slices.Delete(ms, i, i+1)
		}, []string{"order o-1 v6: history ends before the head an earlier verify saved"}},
		{"garbage", func(ms []eventlog.StoredMsg) []eventlog.StoredMsg {
			ms[at(t, ms, "o-1", 1)].Data = []byte("not a commit")
			return ms
		}, []string{"order o-1 v1: commit does not decode"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := copyOf(t, tc.doctor(clone()))
			rep, err := audit.Verify(t.Context(), log, audit.Options{Types: []string{"order"}, Registry: registry(t), Keys: keys, Heads: saved}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, f := range rep.Findings {
				lines = append(lines, f.String())
				if f.AggregateID != "o-1" {
					t.Errorf("a finding about another aggregate: %s", f)
				}
			}
			all := strings.Join(lines, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("no finding %q in\n%s", w, all)
				}
			}
			// One aggregate checked alone says the same of it.
			one, err := audit.Verify(t.Context(), log, audit.Options{Types: []string{"order"}, ID: "o-1", Registry: registry(t), Keys: keys, Heads: saved}, nil)
			if err != nil || len(one.Findings) == 0 || one.Aggregates["order"] != 1 {
				t.Fatalf("o-1 alone: %v %+v", err, one)
			}
			check, err := audit.CheckAggregate(t.Context(), log, "order", "o-3", keys)
			if err != nil || !check.OK() || len(check.Records) != 6 {
				t.Fatalf("o-3, untouched: %+v %v", check, err)
			}
		})
	}
	if _, err := audit.Verify(t.Context(), copyOf(t, orig), audit.Options{Types: []string{"order"}, ID: "o-nobody", Registry: registry(t)}, nil); !errors.Is(err, audit.ErrNoCommits) {
		t.Fatalf("an aggregate without commits: %v", err)
	}
}

// Signed commits verify against the keyring; without the key each is
// named, and once signing has begun an unsigned commit is a finding.
func TestSignatures(t *testing.T) {
	signer, keys := keyring(t)
	log := liveLog(t, 4, signer)
	last, _ := log.LastSeq(t.Context(), eventlog.TypeOrder)
	rep, err := audit.Verify(t.Context(), log, audit.Options{Types: []string{"order"}, Registry: registry(t), Keys: keys}, nil)
	if err != nil || len(rep.Findings) != 0 || rep.Signatures[audit.SigVerified] != last || rep.SigningBegan["ORDERS"] != 1 {
		t.Fatalf("signed log with its key: %+v %v", rep, err)
	}
	rep, err = audit.Verify(t.Context(), log, audit.Options{Types: []string{"order"}, Registry: registry(t)}, nil)
	if err != nil || uint64(len(rep.Findings)) != last || rep.Signatures[audit.SigUnknownKey] != last ||
		!strings.Contains(rep.Findings[0].String(), "signed by a key not in the keyring") {
		t.Fatalf("signed log without its key: %+v %v", rep, err)
	}

	// An unsigned commit appended after signing began.
	msgs := messages(t, log)
	c, err := events.Unmarshal(msgs[at(t, msgs, "o-1", 2)].Data)
	if err != nil {
		t.Fatal(err)
	}
	c.Sig, c.KeyID = "", ""
	if msgs[at(t, msgs, "o-1", 2)].Data, err = events.Marshal(c); err != nil {
		t.Fatal(err)
	}
	check, err := audit.CheckAggregate(t.Context(), copyOf(t, msgs), "order", "o-1", keys)
	if err != nil || len(check.Issues) != 1 || check.Issues[0].Status != audit.SigMissing || check.Issues[0].Version != 2 {
		t.Fatalf("an unsigned commit in signed history: %+v %v", check, err)
	}
}
