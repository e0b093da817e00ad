package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/audit"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// orderMessages writes the lives of n orders (interleaved) into a fresh
// log and returns the ORDERS stream's messages as stored.
func orderMessages(t *testing.T, n int) []eventlog.StoredMsg {
	t.Helper()
	ctx := context.Background()
	log, h := testkit.OrderLog(t, 16)
	if err := testkit.RunOrders(ctx, h, "o", n, 3, 4); err != nil {
		t.Fatal(err)
	}
	var msgs []eventlog.StoredMsg
	if err := log.ReplayRaw(ctx, eventlog.TypeOrder, 1, func(m eventlog.StoredMsg) error {
		m.Data = slices.Clone(m.Data)
		msgs = append(msgs, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// copyLog writes msgs, in the order given, into the ORDERS stream of a
// new local default's data dir and leaves it stopped: a copy of the log
// that a test may have doctored. The copy's messages at the sequences in
// deleteSeqs are then deleted from the stream, which only an operator
// who first allowed deletes could do.
func copyLog(t *testing.T, msgs []eventlog.StoredMsg, deleteSeqs ...uint64) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	_, nc, stop := testkit.LocalNATS(t, dir, natsauth.Admin, false)
	defer stop()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"order.*.*"}, Storage: jetstream.FileStorage,
		AllowDirect: true, DenyPurge: true, Metadata: map[string]string{"ordo.partitions": "16"}}
	stream, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := js.Publish(ctx, m.Subject, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	for _, seq := range deleteSeqs {
		if err := stream.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	cfg.DenyDelete = true
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// The log's other two commit streams, made as the ORDERS stream is: a
	// log from before logs had an identity, which Init then adopts (as an
	// upgraded orderd does), so that the copied unsigned commits are
	// history from before signing began.
	for name, prefix := range map[string]string{"INVENTORY": "sku", "PAYMENTS": "payment"} {
		other := cfg
		other.Name, other.Subjects = name, []string{prefix + ".*.*"}
		if _, err := js.CreateStream(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := testkit.OpenLog(ctx, nc, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// commitAt finds the message of order id at version v.
func commitAt(t *testing.T, msgs []eventlog.StoredMsg, id string, v uint64) int {
	t.Helper()
	for i, m := range msgs {
		c, err := events.Unmarshal(m.Data)
		if err == nil && c.AggregateID == id && c.Version == v {
			return i
		}
	}
	t.Fatalf("no commit of %s at v%d", id, v)
	return -1
}

func rewrite(t *testing.T, m *eventlog.StoredMsg, change func(c *events.Commit)) {
	t.Helper()
	c, err := events.Unmarshal(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	change(c)
	if m.Data, err = events.Marshal(c); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyNamesEveryDoctoredCommit(t *testing.T) {
	orig := orderMessages(t, 12)
	const victim = "o-1" // delivered: six commits
	clone := func() []eventlog.StoredMsg {
		out := make([]eventlog.StoredMsg, len(orig))
		for i, m := range orig {
			m.Data = slices.Clone(m.Data)
			out[i] = m
		}
		return out
	}

	code, out, errOut := orderctl(t, map[string]string{"ORDO_DATA_DIR": copyLog(t, clone())}, "verify")
	if code != exitOK || !strings.Contains(out, "every chain intact") {
		t.Fatalf("faithful copy: exit %d\n%s%s", code, out, errOut)
	}

	// The last message deleted from the stream: no later one shows the
	// gap, the stream's last sequence does.
	code, out, _ = orderctl(t, map[string]string{"ORDO_DATA_DIR": copyLog(t, clone(), uint64(len(orig)))}, "verify")
	if want := fmt.Sprintf("ORDERS seq %d: stream sequences missing at its end (messages deleted) (expected %d, found %d)", len(orig), len(orig), len(orig)-1); code != exitCheck || !strings.Contains(out, want) {
		t.Fatalf("last deleted: exit %d, want %q in\n%s", code, want, out)
	}

	// A commit deleted from the stream itself leaves a gap in its
	// sequences; the last commit of an order leaves no other trace. The
	// orders ran interleaved, in no fixed order: should the victim's last
	// commit be the log's last (the case above), the other delivered
	// order's is taken.
	last := commitAt(t, orig, victim, 6)
	if last == len(orig)-1 {
		last = commitAt(t, orig, "o-7", 6)
	}
	code, out, _ = orderctl(t, map[string]string{"ORDO_DATA_DIR": copyLog(t, clone(), uint64(last+1))}, "verify")
	if want := fmt.Sprintf("ORDERS seq %d: stream sequences missing (messages deleted) (expected %d, found %d)", last+2, last+1, last+2); code != exitCheck || !strings.Contains(out, want) {
		t.Fatalf("deleted from the stream: exit %d, want %q in\n%s", code, want, out)
	}

	for _, tc := range []struct {
		name   string
		doctor func([]eventlog.StoredMsg) []eventlog.StoredMsg
		// want are substrings of one finding line each.
		want []string
	}{
		{"deleted", func(ms []eventlog.StoredMsg) []eventlog.StoredMsg {
			return slices.Delete(ms, commitAt(t, ms, victim, 3), commitAt(t, ms, victim, 3)+1)
		}, []string{"order o-1 v4: version gap (expected 3, found 4)", "order o-1 v4: prev_hash does not link"}},
		{"altered", func(ms []eventlog.StoredMsg) []eventlog.StoredMsg {
			rewrite(t, &ms[commitAt(t, ms, victim, 2)], func(c *events.Commit) { c.Metadata.Actor = "mallory" })
			return ms
		}, []string{"order o-1 v2: hash does not match content"}},
		{"altered and resealed", func(ms []eventlog.StoredMsg) []eventlog.StoredMsg {
			rewrite(t, &ms[commitAt(t, ms, victim, 2)], func(c *events.Commit) {
				c.Events[0].Data = json.RawMessage(`[]`)
				if err := c.Seal(c.PrevHash); err != nil {
					t.Fatal(err)
				}
			})
			return ms
		}, []string{"order o-1 v3: prev_hash does not link", "order o-1 v2: event does not decode"}},
		{"reordered", func(ms []eventlog.StoredMsg) []eventlog.StoredMsg {
			i, j := commitAt(t, ms, victim, 4), commitAt(t, ms, victim, 5)
			ms[i], ms[j] = ms[j], ms[i]
			return ms
		}, []string{"order o-1 v5: version gap (expected 4, found 5)", "order o-1 v4: version gap (expected 6, found 4)"}},
		{"unknown schema version", func(ms []eventlog.StoredMsg) []eventlog.StoredMsg {
			rewrite(t, &ms[commitAt(t, ms, victim, 6)], func(c *events.Commit) { c.Events[0].SchemaVersion = 9 })
			return ms
		}, []string{"order o-1 v6: event does not decode", "order o-1 v6: hash does not match"}},
		{"garbage", func(ms []eventlog.StoredMsg) []eventlog.StoredMsg {
			ms[commitAt(t, ms, victim, 1)].Data = []byte("not a commit")
			return ms
		}, []string{"order o-1 v1: commit does not decode", "order o-1 v2: version gap (expected 1, found 2)"}},
		{"moved to another subject", func(ms []eventlog.StoredMsg) []eventlog.StoredMsg {
			ms[commitAt(t, ms, victim, 2)].Subject = "order.0.o-2"
			return ms
		}, []string{"order o-2 v2: stored under a subject that is not its aggregate's", "order o-2 v2: commit names another aggregate",
			"order o-1 v3: version gap (expected 2, found 3)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyLog(t, tc.doctor(clone()))
			code, out, errOut := orderctl(t, map[string]string{"ORDO_DATA_DIR": dir}, "verify", "--type", "order")
			if code != exitCheck {
				t.Fatalf("exit %d, want %d\n%s%s", code, exitCheck, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no finding %q in\n%s", w, out)
				}
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasPrefix(line, "order ") && !strings.Contains(line, victim) && !strings.Contains(line, "o-2 v2") {
					t.Errorf("a finding about another aggregate: %s", line)
				}
			}
			// --json: the same findings, one per line, then a summary.
			code, out, _ = orderctl(t, map[string]string{"ORDO_DATA_DIR": dir}, "verify", "--json")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var sum verifySummary
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || code != exitCheck || !sum.Summary || sum.Findings != len(lines)-1 || sum.Findings < len(tc.want) {
				t.Fatalf("json: exit %d, summary %+v (%v)\n%s", code, sum, err, out)
			}
			var f audit.Finding
			if err := json.Unmarshal([]byte(lines[0]), &f); err != nil || f.Stream != "ORDERS" || f.Problem == "" {
				t.Fatalf("first finding %q: %+v %v", lines[0], f, err)
			}
		})
	}
}

func TestVerifyOneAggregateAndBadArguments(t *testing.T) {
	dir, id := seedDataDir(t, false)
	env := map[string]string{"ORDO_DATA_DIR": dir}
	code, out, errOut := orderctl(t, env, "verify", "--type", "order", "--id", id)
	if code != exitOK || !strings.Contains(out, "verified 3 commit(s) of 1 order") || !strings.Contains(out, "signatures: 3 verified, 0 unsigned") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = orderctl(t, env, "verify")
	if code != exitOK || !strings.Contains(out, "verified 3 commit(s) of 1 order, 0 inventory, 0 payment") {
		t.Fatalf("whole log: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = orderctl(t, env, "verify", "--type", "order", "--id", "ord_nobody")
	if code != exitError || !strings.Contains(errOut, "no commits for order ord_nobody") {
		t.Fatalf("unknown id: exit %d %q", code, errOut)
	}
	for _, args := range [][]string{
		{"verify", "--type", "basket"},
		{"verify", "--id", id},
		{"verify", "--type", "order", "--id", "a b"},
		{"verify", "extra"},
		{"verify", "--since"},
	} {
		code, _, errOut := orderctl(t, env, args...)
		if code != exitUsage || errOut == "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestSavedHeadsRevealACutOrRewrittenHistory: the chain alone cannot see
// an aggregate's last commit removed, or its history rewritten with new
// hashes all along; heads saved by an earlier verify can.
func TestSavedHeadsRevealACutOrRewrittenHistory(t *testing.T) {
	orig := orderMessages(t, 12)
	heads := filepath.Join(t.TempDir(), "heads.jsonl")
	code, out, errOut := orderctl(t, map[string]string{"ORDO_DATA_DIR": copyLog(t, orig)}, "verify", "--save-heads", heads)
	if code != exitOK {
		t.Fatalf("save: exit %d\n%s%s", code, out, errOut)
	}
	saved, err := audit.ReadHeads(heads)
	if err != nil || len(saved["order"]) != 12 || saved["order"]["o-1"].Version != 6 {
		t.Fatalf("saved heads %v %v", saved, err)
	}

	cut := slices.Clone(orig)
	i := commitAt(t, cut, "o-1", 6)
	cut = slices.Delete(cut, i, i+1)
	rewritten := slices.Clone(orig)
	prev := ""
	for v := uint64(1); v <= 6; v++ {
		m := &rewritten[commitAt(t, rewritten, "o-1", v)]
		m.Data = slices.Clone(m.Data)
		rewrite(t, m, func(c *events.Commit) {
			if v == 2 {
				c.Metadata.Actor = "mallory"
			}
			if err := c.Seal(prev); err != nil {
				t.Fatal(err)
			}
			prev = c.Hash
		})
	}
	for _, tc := range []struct {
		name string
		msgs []eventlog.StoredMsg
		want string
	}{
		{"cut short", cut, "order o-1 v6: history ends before the head an earlier verify saved"},
		{"rewritten", rewritten, "order o-1 v6: history differs from the head an earlier verify saved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"ORDO_DATA_DIR": copyLog(t, tc.msgs)}
			if code, out, _ := orderctl(t, env, "verify"); code != exitOK {
				t.Fatalf("the chain alone should not see it: exit %d\n%s", code, out)
			}
			code, out, _ := orderctl(t, env, "verify", "--check-heads", heads)
			if code != exitCheck || !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 2 {
				t.Fatalf("exit %d, want only %q in\n%s", code, tc.want, out)
			}
			code, out, _ = orderctl(t, env, "verify", "--type", "order", "--id", "o-1", "--check-heads", heads)
			if code != exitCheck || !strings.Contains(out, tc.want) {
				t.Fatalf("one aggregate: exit %d, want %q in\n%s", code, tc.want, out)
			}
		})
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte(`{"type":"order"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = orderctl(t, map[string]string{"ORDO_DATA_DIR": copyLog(t, orig)}, "verify", "--check-heads", bad)
	if code != exitError || !strings.Contains(errOut, "entry 1 is not a head") {
		t.Fatalf("bad heads file: exit %d %q", code, errOut)
	}
}
