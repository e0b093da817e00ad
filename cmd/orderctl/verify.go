package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/streams"
)

// finding is one thing verify found wrong with the log: where (stream
// sequence, aggregate, version) and what was expected there.
type finding struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq,omitempty"`
	events.ChainBreak
}

func (f finding) String() string {
	if f.AggregateID == "" {
		return fmt.Sprintf("%s seq %d: %s (expected %s, found %s)", f.Stream, f.Seq, f.Problem, f.Expected, f.Found)
	}
	return fmt.Sprintf("%s (%s seq %d)", f.ChainBreak, f.Stream, f.Seq)
}

// verifier checks a log message by message, holding one chain link per
// aggregate: memory grows with the number of aggregates, not commits.
type verifier struct {
	store    *streams.Store
	reg      *events.Registry
	keys     *events.Keyring
	findings []finding
	links    map[string]*events.ChainLink
	// lastSeq is the previous message's sequence in a whole-stream run,
	// to name sequences missing from the stream.
	lastSeq uint64
	commits uint64
	found   func(finding)
	// anchors are heads an earlier verify saved (--check-heads), by
	// aggregate id, for the type being checked; a matched one is removed.
	anchors map[string]chainHead
	// signing says which commits of the stream being checked must be
	// signed; sigs counts the commits of every stream by signature
	// status.
	signing signingRule
	sigs    map[string]uint64
}

// chainHead is where one aggregate's history ended when verify saved it
// (--save-heads): the version and hash of its last commit. A later
// verify (--check-heads) finds that commit again, unchanged, or names
// the aggregate: its history was cut short or rewritten since, which no
// check of the chain alone can see.
type chainHead struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	Hash    string `json:"hash"`
}

func newVerifier(store *streams.Store, reg *events.Registry, keys *events.Keyring, found func(finding)) *verifier {
	return &verifier{store: store, reg: reg, keys: keys, links: map[string]*events.ChainLink{}, found: found, sigs: map[string]uint64{}}
}

func (v *verifier) add(f finding) {
	v.findings = append(v.findings, f)
	if v.found != nil {
		v.found(f)
	}
}

// decoded is one stored message with the work that needs no other
// message done: the commit decoded, its hash computed, its signature
// checked against that hash and its events decoded by the registry.
// Workers make these in parallel.
type decoded struct {
	msg       eventlog.StoredMsg
	commit    *events.Commit
	decodeErr error
	hash      string
	hashErr   error
	sigErr    error   // VerifySignature's answer when the hash was computed
	eventErrs []error // one per event, nil when it decodes
}

func decodeMsg(reg *events.Registry, keys *events.Keyring, m eventlog.StoredMsg) decoded {
	d := decoded{msg: m}
	d.commit, d.decodeErr = events.Unmarshal(m.Data)
	if d.decodeErr != nil {
		return d
	}
	d.hash, d.hashErr = d.commit.ComputeHash()
	if d.hashErr == nil {
		d.sigErr = d.commit.VerifySignature(d.hash, keys)
	}
	for i, ev := range d.commit.Events {
		if _, err := reg.Decode(ev); err != nil {
			if d.eventErrs == nil {
				d.eventErrs = make([]error, len(d.commit.Events))
			}
			d.eventErrs[i] = err
		}
	}
	return d
}

// check verifies one stored message of aggType's stream.
func (v *verifier) check(aggType string, m eventlog.StoredMsg, wholeStream bool) {
	v.checkDecoded(aggType, decodeMsg(v.reg, v.keys, m), wholeStream)
}

// checkDecoded is check for a message decoded already; messages must
// come in log order.
func (v *verifier) checkDecoded(aggType string, d decoded, wholeStream bool) {
	m := d.msg
	v.commits++
	if wholeStream && m.Seq != v.lastSeq+1 {
		v.add(finding{Stream: m.Stream, Seq: m.Seq, ChainBreak: events.ChainBreak{
			Problem: "stream sequences missing (messages deleted)", Expected: fmt.Sprint(v.lastSeq + 1), Found: fmt.Sprint(m.Seq)}})
	}
	v.lastSeq = m.Seq
	id, subjectOK := v.store.SubjectID(aggType, m.Subject)
	at := func(version uint64, problem, expected, found string) finding {
		return finding{Stream: m.Stream, Seq: m.Seq, ChainBreak: events.ChainBreak{
			AggregateType: aggType, AggregateID: id, Version: version, Problem: problem, Expected: expected, Found: found}}
	}
	link := v.links[id]
	if link == nil {
		link = &events.ChainLink{}
		v.links[id] = link
	}
	c := d.commit
	if d.decodeErr != nil {
		v.add(at(link.Next(), "commit does not decode", "a valid commit", d.decodeErr.Error()))
		return
	}
	if !subjectOK {
		want, _ := v.store.Subject(aggType, c.AggregateID)
		v.add(at(c.Version, "stored under a subject that is not its aggregate's", want, m.Subject))
	}
	if c.AggregateType != aggType || c.AggregateID != id {
		// Not part of either aggregate's chain: the subject's history
		// holds an alien commit, and the named aggregate lacks one.
		v.add(at(c.Version, "commit names another aggregate", aggType+" "+id, c.AggregateType+" "+c.AggregateID))
		return
	}
	for _, b := range link.CheckHashed(c, d.hash, d.hashErr) {
		v.add(finding{Stream: m.Stream, Seq: m.Seq, ChainBreak: b})
	}
	status := v.signing.judge(c, m.Seq, d.sigErr, d.hashErr)
	v.sigs[status]++
	if problem, expected, found, ok := v.signing.sigProblem(status, c, d.sigErr); ok {
		v.add(at(c.Version, problem, expected, found))
	}
	if a, ok := v.anchors[id]; ok && c.LastVersion() >= a.Version {
		delete(v.anchors, id)
		if c.LastVersion() != a.Version || c.Hash != a.Hash {
			v.add(at(c.Version, "history differs from the head an earlier verify saved",
				fmt.Sprintf("v%d %s", a.Version, shortHash(a.Hash)), fmt.Sprintf("v%d-%d %s", c.Version, c.LastVersion(), shortHash(c.Hash))))
		}
	}
	for i, err := range d.eventErrs {
		if err != nil {
			ev := c.Events[i]
			v.add(at(c.Version+uint64(i), "event does not decode by its registered type and schema version",
				fmt.Sprintf("%s schema v%d", ev.Type, ev.SchemaVersion), err.Error()))
		}
	}
}

// verifyBatch is how many messages a worker of verifyStream decodes at
// a time.
const verifyBatch = 256

// verifyStream checks all of aggType's stream. Decoding and hashing each
// commit is most of verify's work and needs no other commit, so the
// reader hands batches of messages to one worker per core, and the
// checker takes the batches back in log order to check the links.
func (v *verifier) verifyStream(ctx context.Context, aggType string, bar *progress) error {
	type batch struct {
		msgs []eventlog.StoredMsg
		out  []decoded
		done chan struct{}
	}
	workers := runtime.GOMAXPROCS(0)
	work := make(chan *batch, workers)
	ordered := make(chan *batch, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for b := range work {
				for i, m := range b.msgs {
					b.out[i] = decodeMsg(v.reg, v.keys, m)
				}
				close(b.done)
			}
		})
	}
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		for b := range ordered {
			<-b.done
			for _, d := range b.out {
				v.checkDecoded(aggType, d, true)
			}
			bar.add(uint64(len(b.out)))
		}
	}()
	cur := &batch{}
	send := func() {
		if len(cur.msgs) == 0 {
			return
		}
		cur.out, cur.done = make([]decoded, len(cur.msgs)), make(chan struct{})
		ordered <- cur // first: the checker waits for it in this order
		work <- cur
		cur = &batch{}
	}
	err := v.store.ReplayRaw(ctx, aggType, 1, func(m eventlog.StoredMsg) error {
		m.Data = slices.Clone(m.Data)
		cur.msgs = append(cur.msgs, m)
		if len(cur.msgs) == verifyBatch {
			send()
		}
		return nil
	})
	send()
	close(work)
	close(ordered)
	wg.Wait()
	<-checked
	return err
}

// verifySummary is the last line of `verify --json`.
type verifySummary struct {
	Summary    bool           `json:"summary"`
	Commits    uint64         `json:"commits"`
	Aggregates map[string]int `json:"aggregates"`
	Findings   int            `json:"findings"`
	// Signatures counts the commits by signature status: verified,
	// unsigned (from before signing began), missing, unknown_key, bad,
	// not_checkable.
	Signatures map[string]uint64 `json:"signatures"`
	// SigningBegan is, per stream, the sequence from which on every
	// commit must be signed (absent: signing has not begun).
	SigningBegan map[string]uint64 `json:"signing_began,omitempty"`
	// Keyring is where the public keys came from, Keys how many it held.
	Keyring string `json:"keyring"`
	Keys    int    `json:"keys"`
}

func cmdVerify(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	typ := fs.String("type", "", "check only this aggregate type: order, inventory or payment")
	id := fs.String("id", "", "check only this aggregate (needs --type)")
	asJSON := fs.Bool("json", false, "print JSON Lines: one finding per line, then a summary")
	saveHeads := fs.String("save-heads", "", "write every aggregate's head (last version and hash) to this file")
	checkHeads := fs.String("check-heads", "", "check that the heads a previous --save-heads wrote are still in the log")
	var kf keyFlags
	kf.register(fs, e)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	types, err := typesArg(*typ)
	if err != nil {
		return err
	}
	if *id != "" {
		if *typ == "" {
			return usagef("--id needs --type")
		}
		if !streams.ValidID(*id) {
			return usagef("invalid id %q", *id)
		}
	}
	var anchors map[string]map[string]chainHead
	if *checkHeads != "" {
		if anchors, err = readHeads(*checkHeads); err != nil {
			return err
		}
	}
	reg, err := events.Standard()
	if err != nil {
		return err
	}
	keys, keySource, err := kf.load(&lf)
	if err != nil {
		return err
	}
	store, closeStore, err := lf.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()

	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	v := newVerifier(store, reg, keys, func(f finding) {
		if *asJSON {
			_ = enc.Encode(f)
		}
	})
	summary := verifySummary{Summary: true, Aggregates: map[string]int{}, SigningBegan: map[string]uint64{},
		Keyring: keySource, Keys: keys.Len()}
	var heads []chainHead
	for _, t := range types {
		v.links, v.lastSeq, v.anchors = map[string]*events.ChainLink{}, 0, anchors[t]
		stream, _ := streams.StreamOf(t)
		var problem string
		if *id != "" {
			// One aggregate's commits say nothing of where signing
			// began in its stream: read that from the stream.
			v.signing, problem, err = streamSigningRule(ctx, store, t)
		} else {
			v.signing = signingRule{}
			v.signing.signedFrom, problem, err = loadSignedFrom(ctx, store, t)
		}
		if err != nil {
			return err
		}
		if problem != "" {
			v.add(finding{Stream: stream, ChainBreak: events.ChainBreak{Problem: problem, Expected: "a stream sequence", Found: "signing taken to begin at seq 1"}})
		}
		if *id != "" {
			v.anchors = map[string]chainHead{}
			if a, ok := anchors[t][*id]; ok {
				v.anchors[*id] = a
			}
			if err := store.LoadRaw(ctx, t, *id, 0, func(m eventlog.StoredMsg) error {
				v.check(t, m, false)
				return nil
			}); err != nil {
				return err
			}
			if len(v.links) == 0 {
				return fmt.Errorf("no commits for %s %s", t, *id)
			}
		} else {
			last, err := store.LastSeq(ctx, t)
			if err != nil {
				return err
			}
			bar := newProgress(e, "verify "+t, last)
			err = v.verifyStream(ctx, t, bar)
			bar.finish()
			if err != nil {
				return err
			}
			if v.lastSeq < last {
				stream, _ := store.StreamName(t)
				v.add(finding{Stream: stream, Seq: last, ChainBreak: events.ChainBreak{
					Problem: "stream sequences missing at its end (messages deleted)", Expected: fmt.Sprint(last), Found: fmt.Sprint(v.lastSeq)}})
			}
		}
		summary.Aggregates[t] = len(v.links)
		if at := v.signing.begunAt(); at != 0 {
			summary.SigningBegan[stream] = at
		}
		for id, a := range v.anchors {
			found := "no commits"
			if l := v.links[id]; l != nil {
				ver, h := l.Head()
				found = fmt.Sprintf("v%d %s", ver, shortHash(h))
			}
			v.add(finding{Stream: stream, ChainBreak: events.ChainBreak{AggregateType: t, AggregateID: id, Version: a.Version,
				Problem: "history ends before the head an earlier verify saved", Expected: fmt.Sprintf("v%d %s", a.Version, shortHash(a.Hash)), Found: found}})
		}
		for id, l := range v.links {
			ver, h := l.Head()
			heads = append(heads, chainHead{Type: t, ID: id, Version: ver, Hash: h})
		}
	}
	if *saveHeads != "" {
		if err := writeHeads(*saveHeads, heads); err != nil {
			return err
		}
	}
	summary.Commits, summary.Findings, summary.Signatures = v.commits, len(v.findings), v.sigs
	if *asJSON {
		if err := enc.Encode(summary); err != nil {
			return err
		}
	} else {
		for _, f := range v.findings {
			fmt.Fprintln(e.stdout, f)
		}
		fmt.Fprintf(e.stdout, "verified %d commit(s) of %s: %s; signatures: %s\n", summary.Commits, aggregateCounts(types, summary.Aggregates),
			verdict(len(v.findings)), signatureCounts(v.sigs, keyringName(keySource, keys)))
	}
	if len(v.findings) > 0 {
		return fmt.Errorf("%w: %d finding(s) in the log", errCheckFailed, len(v.findings))
	}
	return nil
}

func aggregateCounts(types []string, n map[string]int) string {
	s := ""
	for i, t := range types {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", n[t], t)
	}
	return s
}

func verdict(findings int) string {
	if findings == 0 {
		return "every chain intact, every event decodes, no signature missing or wrong"
	}
	return fmt.Sprintf("%d finding(s)", findings)
}

// signatureCounts says how many commits verify, how many are unsigned
// from before signing began and how many have a problem.
func signatureCounts(n map[string]uint64, keyring string) string {
	s := fmt.Sprintf("%d verified, %d unsigned from before signing began", n[sigVerified], n[sigUnsigned])
	if bad := n[sigMissing] + n[sigUnknownKey] + n[sigBad]; bad > 0 {
		s += fmt.Sprintf(", %d missing or wrong (%d unsigned in signed history, %d by an unknown key, %d not verifying)",
			bad, n[sigMissing], n[sigUnknownKey], n[sigBad])
	}
	return s + " (keyring: " + keyring + ")"
}

// readHeads reads a --save-heads file: JSON Lines of chainHead.
func readHeads(path string) (map[string]map[string]chainHead, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--check-heads: %w", err)
	}
	defer f.Close()
	out := map[string]map[string]chainHead{}
	dec := json.NewDecoder(bufio.NewReader(f))
	for line := 1; ; line++ {
		var h chainHead
		err := dec.Decode(&h)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil || !aggregateTypes[h.Type] || !streams.ValidID(h.ID) || h.Version == 0 || h.Hash == "" {
			return nil, fmt.Errorf("--check-heads %s: entry %d is not a head written by --save-heads", path, line)
		}
		if out[h.Type] == nil {
			out[h.Type] = map[string]chainHead{}
		}
		out[h.Type][h.ID] = h
	}
}

// writeHeads writes heads, sorted, to path through a temporary file, so
// that a crash never leaves half a file under the name.
func writeHeads(path string, heads []chainHead) error {
	slices.SortFunc(heads, func(a, b chainHead) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID))
	})
	tmp, err := os.CreateTemp(filepath.Dir(path), ".heads-*")
	if err != nil {
		return fmt.Errorf("--save-heads: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	for _, h := range heads {
		if err := enc.Encode(h); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := errors.Join(w.Flush(), tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("--save-heads: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--save-heads: %w", err)
	}
	return nil
}
