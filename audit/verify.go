package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// Finding is one thing a check found wrong with the log: where (stream,
// sequence, aggregate, version) and what was expected there.
type Finding struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq,omitempty"`
	events.ChainBreak
}

func (f Finding) String() string {
	if f.AggregateID == "" {
		return fmt.Sprintf("%s seq %d: %s (expected %s, found %s)", f.Stream, f.Seq, f.Problem, f.Expected, f.Found)
	}
	return fmt.Sprintf("%s (%s seq %d)", f.ChainBreak, f.Stream, f.Seq)
}

// Options say what [Verify] checks and against what.
type Options struct {
	// Types are the aggregate types whose streams are checked, in this
	// order (default [Types]).
	Types []string
	// ID, if set, checks only this aggregate (of the one type in Types)
	// instead of whole streams.
	ID string
	// Registry decodes events (required).
	Registry *events.Registry
	// Keys are the public keys commits are signed with; nil or empty:
	// every signed commit is signed by an unknown key.
	Keys *events.Keyring
	// Heads, if set, are heads an earlier check saved ([Report.Heads]):
	// each must be found again, unchanged.
	Heads Heads
	// Found, if set, is called with each finding as it is made (before
	// Verify returns it in the report), from one goroutine at a time.
	Found func(Finding)
}

// Progress says how far a whole-stream check has come: Done of Total
// messages of Type's stream; Finished on its last report for the stream.
type Progress struct {
	Type        string
	Done, Total uint64
	Finished    bool
}

// Report is what [Verify] found.
type Report struct {
	Findings []Finding
	// Commits is how many commits were checked.
	Commits uint64
	// Aggregates counts the aggregates seen, by type.
	Aggregates map[string]int
	// Signatures counts the commits by signature status.
	Signatures map[SignatureStatus]uint64
	// SigningBegan is, per stream name, the sequence from which on every
	// commit must be signed (absent: signing has not begun).
	SigningBegan map[string]uint64
	// Heads are where every aggregate seen ended, for a later check.
	Heads []Head
}

// ErrNoCommits is Verify's error for an aggregate ([Options.ID]) that
// has no commits.
var ErrNoCommits = errors.New("no commits")

// Verify checks the log: for a whole stream, that its sequences have no
// holes (a message deleted, which needs an operator who first allowed
// deletes), that every message decodes as a commit of the aggregate its
// subject names, that every aggregate's hash chain holds (versions
// follow on, prev_hash links, hash matches content), that every event
// decodes by its registered type and schema version, that every commit
// is signed as the stream's [SigningRule] requires and its signature
// verifies, and that the saved heads ([Options.Heads]) are found again.
// Memory grows with the number of aggregates, not of commits.
//
// A finding is no error: Verify returns an error only when it could not
// check (the log did not answer, the aggregate has no commits).
// progress, if set, is called as each stream is read, never
// concurrently.
func Verify(ctx context.Context, log Log, opts Options, progress func(Progress)) (Report, error) {
	if opts.Registry == nil {
		return Report{}, errors.New("audit: a registry is required")
	}
	if opts.Keys == nil {
		opts.Keys = &events.Keyring{}
	}
	types := opts.Types
	if len(types) == 0 {
		types = Types
	}
	for _, t := range types {
		if !ValidType(t) {
			return Report{}, fmt.Errorf("audit: unknown aggregate type %q", t)
		}
	}
	if opts.ID != "" && (len(types) != 1 || !events.ValidID(opts.ID)) {
		return Report{}, fmt.Errorf("audit: checking aggregate %q needs it to be a valid id and exactly one type", opts.ID)
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	v := &verifier{log: log, reg: opts.Registry, keys: opts.Keys, found: opts.Found, sigs: map[SignatureStatus]uint64{}}
	rep := Report{Aggregates: map[string]int{}, SigningBegan: map[string]uint64{}}
	for _, t := range types {
		if err := v.verifyType(ctx, t, opts, progress); err != nil {
			return Report{}, err
		}
		stream, _ := log.StreamName(t)
		rep.Aggregates[t] = len(v.links)
		if at := v.signing.BegunAt(); at != 0 {
			rep.SigningBegan[stream] = at
		}
		for id, a := range v.anchors {
			found := "no commits"
			if l := v.links[id]; l != nil {
				ver, h := l.Head()
				found = fmt.Sprintf("v%d %s", ver, events.ShortHash(h))
			}
			v.add(Finding{Stream: stream, ChainBreak: events.ChainBreak{AggregateType: t, AggregateID: id, Version: a.Version,
				Problem: "history ends before the head an earlier verify saved", Expected: fmt.Sprintf("v%d %s", a.Version, events.ShortHash(a.Hash)), Found: found}})
		}
		for id, l := range v.links {
			ver, h := l.Head()
			rep.Heads = append(rep.Heads, Head{Type: t, ID: id, Version: ver, Hash: h})
		}
	}
	rep.Findings, rep.Commits, rep.Signatures = v.findings, v.commits, v.sigs
	return rep, nil
}

// verifier checks a log message by message, holding one chain link per
// aggregate.
type verifier struct {
	log      Log
	reg      *events.Registry
	keys     *events.Keyring
	found    func(Finding)
	findings []Finding
	commits  uint64
	sigs     map[SignatureStatus]uint64

	// Per stream:
	links map[string]*events.ChainLink
	// lastSeq is the previous message's sequence in a whole-stream run,
	// to name sequences missing from the stream.
	lastSeq uint64
	// anchors are the saved heads of the type being checked, by
	// aggregate id; a matched one is removed.
	anchors map[string]Head
	// signing says which commits of the stream must be signed.
	signing SigningRule
}

func (v *verifier) add(f Finding) {
	v.findings = append(v.findings, f)
	if v.found != nil {
		v.found(f)
	}
}

// verifyType checks aggType's stream, or the one aggregate opts names.
func (v *verifier) verifyType(ctx context.Context, aggType string, opts Options, progress func(Progress)) error {
	v.links, v.lastSeq, v.anchors = map[string]*events.ChainLink{}, 0, map[string]Head{}
	stream, err := v.log.StreamName(aggType)
	if err != nil {
		return err
	}
	var problem string
	if opts.ID != "" {
		// One aggregate's commits say nothing of where signing began
		// in its stream: read that from the stream.
		v.signing, problem, err = StreamSigningRule(ctx, v.log, aggType)
	} else {
		v.signing = SigningRule{}
		v.signing.signedFrom, problem, err = loadSignedFrom(ctx, v.log, aggType)
	}
	if err != nil {
		return err
	}
	if problem != "" {
		v.add(Finding{Stream: stream, ChainBreak: events.ChainBreak{Problem: problem, Expected: "a stream sequence", Found: "signing taken to begin at seq 1"}})
	}
	if opts.ID != "" {
		if a, ok := opts.Heads[aggType][opts.ID]; ok {
			v.anchors[opts.ID] = a
		}
		if err := v.log.LoadRaw(ctx, aggType, opts.ID, 0, func(m eventlog.StoredMsg) error {
			v.check(aggType, decodeMsg(v.reg, v.keys, m), false)
			return nil
		}); err != nil {
			return err
		}
		if len(v.links) == 0 {
			return fmt.Errorf("%w for %s %s", ErrNoCommits, aggType, opts.ID)
		}
		return nil
	}
	for id, a := range opts.Heads[aggType] {
		v.anchors[id] = a
	}
	last, err := v.log.LastSeq(ctx, aggType)
	if err != nil {
		return err
	}
	progress(Progress{Type: aggType, Total: last})
	var checked uint64
	err = v.verifyStream(ctx, aggType, func(n uint64) {
		checked = n
		progress(Progress{Type: aggType, Done: n, Total: last})
	})
	progress(Progress{Type: aggType, Done: checked, Total: last, Finished: true})
	if err != nil {
		return err
	}
	if v.lastSeq < last {
		v.add(Finding{Stream: stream, Seq: last, ChainBreak: events.ChainBreak{
			Problem: "stream sequences missing at its end (messages deleted)", Expected: fmt.Sprint(last), Found: fmt.Sprint(v.lastSeq)}})
	}
	return nil
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

// check checks one decoded message of aggType's stream; messages must
// come in log order.
func (v *verifier) check(aggType string, d decoded, wholeStream bool) {
	m := d.msg
	v.commits++
	if wholeStream && m.Seq != v.lastSeq+1 {
		v.add(Finding{Stream: m.Stream, Seq: m.Seq, ChainBreak: events.ChainBreak{
			Problem: "stream sequences missing (messages deleted)", Expected: fmt.Sprint(v.lastSeq + 1), Found: fmt.Sprint(m.Seq)}})
	}
	v.lastSeq = m.Seq
	id, subjectOK := v.log.SubjectID(aggType, m.Subject)
	at := func(version uint64, problem, expected, found string) Finding {
		return Finding{Stream: m.Stream, Seq: m.Seq, ChainBreak: events.ChainBreak{
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
		want, _ := v.log.Subject(aggType, c.AggregateID)
		v.add(at(c.Version, "stored under a subject that is not its aggregate's", want, m.Subject))
	}
	if c.AggregateType != aggType || c.AggregateID != id {
		// Not part of either aggregate's chain: the subject's history
		// holds an alien commit, and the named aggregate lacks one.
		v.add(at(c.Version, "commit names another aggregate", aggType+" "+id, c.AggregateType+" "+c.AggregateID))
		return
	}
	for _, b := range link.CheckHashed(c, d.hash, d.hashErr) {
		v.add(Finding{Stream: m.Stream, Seq: m.Seq, ChainBreak: b})
	}
	status := v.signing.Judge(c, m.Seq, d.sigErr, d.hashErr)
	v.sigs[status]++
	if problem, expected, found, ok := v.signing.Problem(status, c, d.sigErr); ok {
		v.add(at(c.Version, problem, expected, found))
	}
	if a, ok := v.anchors[id]; ok && c.LastVersion() >= a.Version {
		delete(v.anchors, id)
		if c.LastVersion() != a.Version || c.Hash != a.Hash {
			v.add(at(c.Version, "history differs from the head an earlier verify saved",
				fmt.Sprintf("v%d %s", a.Version, events.ShortHash(a.Hash)), fmt.Sprintf("v%d-%d %s", c.Version, c.LastVersion(), events.ShortHash(c.Hash))))
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
// commit is most of the work and needs no other commit, so the reader
// hands batches of messages to one worker per core, and the checker
// takes the batches back in log order to check the links. done is told
// how many messages were checked after each batch.
func (v *verifier) verifyStream(ctx context.Context, aggType string, done func(uint64)) error {
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
		var n uint64
		for b := range ordered {
			<-b.done
			for _, d := range b.out {
				v.check(aggType, d, true)
			}
			n += uint64(len(b.out))
			done(n)
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
	err := v.log.ReplayRaw(ctx, aggType, 1, func(m eventlog.StoredMsg) error {
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
