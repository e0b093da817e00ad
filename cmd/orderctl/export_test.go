package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/audit"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// seedLog writes the lives of n orders and skus SKU definitions into a
// new local default's data dir and leaves it stopped. It returns the
// data dir and the clock time between the first and second half of the
// orders.
func seedLog(t testing.TB, n, skus int) (dir string, middle time.Time) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	_, nc, stop := testkit.LocalNATS(t, dir, natsauth.Admin, false)
	defer stop()
	store, err := testkit.OpenLog(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	orders, inv := newHandler(t, order.Decider(), store), newHandler(t, inventory.Decider(), store)
	for i := range skus {
		if _, err := inv.Handle(ctx, command.Request[inventory.Command]{AggregateID: fmt.Sprintf("SKU-%d", i),
			Command: inventory.Define{Name: "tea", Price: events.Money{Amount: 1999, Currency: "CNY"}, OnHand: 10}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := testkit.RunOrders(ctx, orders, "a", n/2, 5, 8); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	middle = time.Now()
	time.Sleep(2 * time.Millisecond)
	if err := testkit.RunOrders(ctx, orders, "b", n-n/2, 5, 8); err != nil {
		t.Fatal(err)
	}
	return dir, middle
}

// exportLine is the part of an exported line the tests read.
type exportLine struct {
	Stream   string `json:"stream"`
	Seq      uint64 `json:"seq"`
	Metadata struct {
		RecordedAt time.Time `json:"recorded_at"`
	} `json:"metadata"`
}

func exportedLines(t *testing.T, out string) []exportLine {
	t.Helper()
	var lines []exportLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l exportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

var resumeRE = regexp.MustCompile(`--after (\S+)`)

func TestExportIsTheLogInOrderAndResumes(t *testing.T) {
	dir, middle := seedLog(t, 40, 3)
	env := map[string]string{"ORDO_DATA_DIR": dir}
	code, out, errOut := orderctl(t, env, "export")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	all := exportedLines(t, out)
	// Every commit once, ORDERS then INVENTORY, each in sequence order.
	var orders, skus int
	for i, l := range all {
		switch l.Stream {
		case "ORDERS":
			orders++
			if inv := all[max(i-1, 0)]; i > 0 && (inv.Stream != "ORDERS" || inv.Seq != l.Seq-1) {
				t.Fatalf("line %d: ORDERS:%d after %s:%d", i, l.Seq, inv.Stream, inv.Seq)
			}
		case "INVENTORY":
			skus++
			if l.Seq != uint64(skus) {
				t.Fatalf("line %d: INVENTORY:%d, want %d", i, l.Seq, skus)
			}
		default:
			t.Fatalf("line %d from %s", i, l.Stream)
		}
	}
	if skus != 3 || orders < 80 || all[0].Seq != 1 {
		t.Fatalf("%d order and %d inventory commits", orders, skus)
	}
	wantResume := fmt.Sprintf("ORDERS:%d,INVENTORY:3,PAYMENTS:0", orders)
	if m := resumeRE.FindStringSubmatch(errOut); m == nil || m[1] != wantResume {
		t.Fatalf("stderr %q, want --after %s", errOut, wantResume)
	}

	// Each line is the stored commit as it stands: its hash checks.
	first := strings.SplitN(out, "\n", 2)[0]
	c, err := events.Unmarshal([]byte(first))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyHash(); err != nil {
		t.Fatalf("an exported commit does not verify: %v", err)
	}

	// Resuming from the middle gives exactly the rest; from the end, nothing.
	code, out2, _ := orderctl(t, env, "export", "--after", "ORDERS:17")
	rest := exportedLines(t, out2)
	if code != exitOK || len(rest) != len(all)-17 || rest[0].Seq != 18 || rest[0].Stream != "ORDERS" {
		t.Fatalf("--after ORDERS:17: exit %d, %d lines (want %d) from %+v", code, len(rest), len(all)-17, rest[0])
	}
	code, out3, errOut := orderctl(t, env, "export", "--after", wantResume)
	if code != exitOK || out3 != "" || !strings.Contains(errOut, "exported 0 commit(s)") {
		t.Fatalf("resume at the end: exit %d, %q %q", code, out3, errOut)
	}
	// Interrupted within INVENTORY: its finished ORDERS is not written again.
	code, out4, _ := orderctl(t, env, "export", "--after", fmt.Sprintf("ORDERS:%d,INVENTORY:1", orders))
	if got := exportedLines(t, out4); code != exitOK || len(got) != 2 || got[0].Stream != "INVENTORY" || got[0].Seq != 2 {
		t.Fatalf("resume in INVENTORY: exit %d %+v", code, got)
	}

	// --since/--until split at the middle, by recorded_at.
	at := middle.Format(time.RFC3339Nano)
	_, early, _ := orderctl(t, env, "export", "--type", "order", "--until", at)
	_, late, _ := orderctl(t, env, "export", "--type", "order", "--since", at)
	e, l := exportedLines(t, early), exportedLines(t, late)
	if len(e)+len(l) != orders || len(e) == 0 || len(l) == 0 {
		t.Fatalf("split at %s: %d + %d lines, want %d in all", at, len(e), len(l), orders)
	}
	for _, x := range e {
		if !x.Metadata.RecordedAt.Before(middle) {
			t.Fatalf("--until kept %+v", x)
		}
	}
	for _, x := range l {
		if x.Metadata.RecordedAt.Before(middle) {
			t.Fatalf("--since kept %+v", x)
		}
	}
}

func TestExportBadArguments(t *testing.T) {
	dir, _ := seedDataDir(t, false)
	env := map[string]string{"ORDO_DATA_DIR": dir}
	for _, args := range [][]string{
		{"export", "order"},
		{"export", "--type", "basket"},
		{"export", "--since", "last week"},
		{"export", "--until", "2026-13-01T00:00:00Z"},
		{"export", "--since", "2026-11-26T10:00:00Z", "--until", "2026-11-26T09:00:00Z"},
		{"export", "--after", "ORDERS"},
		{"export", "--after", "ORDERS:-1"},
		{"export", "--after", "BASKETS:4"},
		{"export", "--after", "ORDERS:1,ORDERS:2"},
		{"export", "--type", "order", "--after", "PAYMENTS:3"},
		{"export", "--frobnicate"},
	} {
		code, out, errOut := orderctl(t, env, args...)
		if code != exitUsage || out != "" || errOut == "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// TestExportWritesDamageAsRaw: a message that is not a commit is written
// as its raw bytes, named, and the export exits with the check code.
func TestExportWritesDamageAsRaw(t *testing.T) {
	msgs := orderMessages(t, 3)
	msgs[1].Data = []byte("not\na commit")
	dir := copyLog(t, msgs)
	code, out, errOut := orderctl(t, map[string]string{"ORDO_DATA_DIR": dir}, "export", "--type", "order")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitCheck || len(lines) != len(msgs) || !strings.Contains(errOut, "1 message(s) are not commits") {
		t.Fatalf("exit %d, %d lines: %s", code, len(lines), errOut)
	}
	var raw struct {
		Seq     uint64 `json:"seq"`
		Subject string `json:"subject"`
		Raw     string `json:"raw"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &raw); err != nil || raw.Seq != 2 || raw.Raw != "not\na commit" || raw.Subject != msgs[1].Subject {
		t.Fatalf("raw line %q: %+v %v", lines[1], raw, err)
	}
}

// BenchmarkExport compares orderctl export of a 100k-commit log with the
// raw replay it is built on, measured in the same run: an ordered
// consumer over the same stream that only touches each message. Both
// read from an in-process server; export writes its JSON Lines through
// the same buffered writer it uses for stdout, into io.Discard.
//
//	go test ./cmd/orderctl -run '^$' -bench Export -benchtime 3x -count 3
func BenchmarkExport(b *testing.B) {
	ctx := context.Background()
	log, js, last := benchOrderLog(b, nil)
	var rawTotal, exportTotal time.Duration
	for b.Loop() {
		start := time.Now()
		bytesRead := rawReplay(b, js, last)
		rawTotal += time.Since(start)

		start = time.Now()
		var sink countingWriter
		w := bufio.NewWriterSize(&sink, 256<<10)
		n, err := exportStream(ctx, log, eventlog.TypeOrder, 0, exportFilter{}, w, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		exportTotal += time.Since(start)
		if n.commits != last || n.invalid != 0 || sink.n < int64(bytesRead) {
			b.Fatalf("exported %d of %d commits (%d invalid), %d bytes of %d", n.commits, last, n.invalid, sink.n, bytesRead)
		}
	}
	reportAgainstRaw(b, "export", last, rawTotal, exportTotal)
}

// BenchmarkVerify is BenchmarkExport for orderctl verify: every commit
// decoded, hash-checked against its predecessor's, its signature checked
// and its events decoded by the registry, against the same raw replay; on
// a log of unsigned commits and on one of signed commits.
//
//	go test ./cmd/orderctl -run '^$' -bench Verify -benchtime 3x -count 3
func BenchmarkVerify(b *testing.B) {
	for _, signed := range []bool{false, true} {
		name := "unsigned"
		if signed {
			name = "signed"
		}
		b.Run(name, func(b *testing.B) { benchVerify(b, signed) })
	}
}

func benchVerify(b *testing.B, signed bool) {
	ctx := context.Background()
	var signer *events.Ed25519Signer
	keys := &events.Keyring{}
	if signed {
		signer = newTestSigner(b)
		if _, err := keys.Add(signer.Public()); err != nil {
			b.Fatal(err)
		}
	}
	log, js, last := benchOrderLog(b, signer)
	reg, err := events.Standard()
	if err != nil {
		b.Fatal(err)
	}
	var rawTotal, verifyTotal time.Duration
	for b.Loop() {
		start := time.Now()
		rawReplay(b, js, last)
		rawTotal += time.Since(start)

		start = time.Now()
		rep, err := audit.Verify(ctx, log, audit.Options{Types: []string{eventlog.TypeOrder}, Registry: reg, Keys: keys}, nil)
		if err != nil {
			b.Fatal(err)
		}
		verifyTotal += time.Since(start)
		if rep.Commits != last || len(rep.Findings) != 0 || signed && rep.Signatures[audit.SigVerified] != last {
			b.Fatalf("verified %d of %d commits (%v), %d findings", rep.Commits, last, rep.Signatures, len(rep.Findings))
		}
	}
	reportAgainstRaw(b, "verify", last, rawTotal, verifyTotal)
}

// benchOrderLog writes about 100k commits of order lives into a fresh
// in-process server, signed when signer is not nil (into a new log), else
// unsigned into a log from before signing (testkit.LegacyLog), and
// returns the store, a JetStream handle on the same connection and the
// stream's last sequence.
func benchOrderLog(b *testing.B, signer *events.Ed25519Signer) (*streams.Store, jetstream.JetStream, uint64) {
	b.Helper()
	const commits = 100_000
	ctx := context.Background()
	_, nc := testkit.NATS(b)
	open := testkit.LegacyLog
	if signer != nil {
		open = testkit.OpenLog
	}
	log, err := open(ctx, nc, streams.Config{})
	if err != nil {
		b.Fatal(err)
	}
	h := newHandler(b, order.Decider(), log)
	if signer != nil {
		h = signedHandler(b, log, signer)
	}
	// 26,100 order lives hold about 100k commits (3.83 per life).
	if err := testkit.RunOrders(ctx, h, "o", commits*100/383, 1000, 16); err != nil {
		b.Fatal(err)
	}
	last, err := log.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil {
		b.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	return log, js, last
}

// rawReplay is the baseline: an ordered consumer, as streams.ReplayRaw
// makes it, over the whole ORDERS stream, touching each message's data.
// It returns the bytes read.
func rawReplay(b *testing.B, js jetstream.JetStream, last uint64) int {
	b.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, "ORDERS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	n := 0
	for range last {
		m, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		n += len(m.Data())
	}
	return n
}

func reportAgainstRaw(b *testing.B, name string, commits uint64, raw, took time.Duration) {
	rawRate := float64(commits) * float64(b.N) / raw.Seconds()
	rate := float64(commits) * float64(b.N) / took.Seconds()
	b.ReportMetric(float64(commits), "commits")
	b.ReportMetric(rawRate, "raw_commits/s")
	b.ReportMetric(rate, name+"_commits/s")
	b.ReportMetric(rate/rawRate, name+"/raw")
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return io.Discard.Write(p)
}

// TestAuditCommandsAgainstARunningDeployment runs verify, state and
// export against a live server: through ORDO_NATS_URL and through the
// nats.url of the live local default holding the data dir.
func TestAuditCommandsAgainstARunningDeployment(t *testing.T) {
	dir, id := seedDataDir(t, true)
	url := datadir.ReadURL(dir)
	for _, env := range []map[string]string{
		{"ORDO_NATS_URL": url, "ORDO_DATA_DIR": t.TempDir(), "ORDO_NATS_CREDS": natsauth.SeedFile(dir, natsauth.Auditor),
			"ORDO_SIGNING_KEYS": filepath.Join(dir, datadir.SigningKeys)},
		{"ORDO_DATA_DIR": dir},
	} {
		if code, out, errOut := orderctl(t, env, "verify"); code != exitOK || !strings.Contains(out, "verified 3 commit(s)") || !strings.Contains(out, "signatures: 3 verified, 0 unsigned") {
			t.Fatalf("verify %v: exit %d %s%s", env, code, out, errOut)
		}
		if code, out, errOut := orderctl(t, env, "state", "order", id, "--version", "1"); code != exitOK || !strings.Contains(out, `"status": "placed"`) {
			t.Fatalf("state %v: exit %d %s%s", env, code, out, errOut)
		}
		if code, out, errOut := orderctl(t, env, "export"); code != exitOK || len(exportedLines(t, out)) != 3 {
			t.Fatalf("export %v: exit %d %s%s", env, code, out, errOut)
		}
	}
}
