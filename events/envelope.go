package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event is one stored event inside a commit: its stable type name, the
// schema version its data was written with, and the data as JSON.
type Event struct {
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Data          json.RawMessage `json:"data"`
}

// Metadata says who caused a commit and why. RecordedAt is set by the
// command handler from its injected clock, not by the broker.
type Metadata struct {
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	Actor         string    `json:"actor,omitempty"`
	RecordedAt    time.Time `json:"recorded_at"`
	Traceparent   string    `json:"traceparent,omitempty"`
}

// Commit is the unit of writing: the 1..N events that one command produced
// for one aggregate, stored atomically as one message.
//
// Version is the version of the commit's first event. Event versions are
// 1-based and contiguous per aggregate across commits, so a commit holding
// three events at Version 4 covers versions 4, 5 and 6.
//
// PrevHash is the Hash of the aggregate's previous commit (empty for the
// first). Hash is the hex SHA-256 over PrevHash and the canonical encoding
// of the commit without its Hash and Sig; see [Commit.ComputeHash].
//
// KeyID and Sig are the commit's signature (signature.go): KeyID names
// the signing key and is covered by Hash; Sig signs Hash. Both are left
// out of the stored JSON when empty, so the commits written before
// signing existed keep their exact bytes and hashes.
type Commit struct {
	CommitID      string   `json:"commit_id"`
	AggregateType string   `json:"aggregate_type"`
	AggregateID   string   `json:"aggregate_id"`
	Version       uint64   `json:"version"`
	Events        []Event  `json:"events"`
	Metadata      Metadata `json:"metadata"`
	PrevHash      string   `json:"prev_hash"`
	Hash          string   `json:"hash"`
	KeyID         string   `json:"key_id,omitempty"`
	Sig           string   `json:"sig,omitempty"`
}

// LastVersion is the version of the commit's last event.
func (c *Commit) LastVersion() uint64 {
	return c.Version + uint64(len(c.Events)) - 1
}

// Errors returned by [Commit.Validate] and [Unmarshal].
var (
	ErrInvalidCommit = errors.New("invalid commit")
	ErrHashMismatch  = errors.New("commit hash does not match its content")
)

// Validate checks the structural rules every stored commit obeys.
func (c *Commit) Validate() error { return c.validate(true) }

// validate checks the structure; with syntax it also checks that each
// event's data is well-formed JSON, which a commit just decoded by
// encoding/json already is.
func (c *Commit) validate(syntax bool) error {
	var errs []error
	if c.CommitID == "" {
		errs = append(errs, errors.New("commit_id is empty"))
	}
	if c.AggregateType == "" {
		errs = append(errs, errors.New("aggregate_type is empty"))
	}
	if c.AggregateID == "" {
		errs = append(errs, errors.New("aggregate_id is empty"))
	}
	if c.Version == 0 {
		errs = append(errs, errors.New("version must be 1 or more"))
	}
	if len(c.Events) == 0 {
		errs = append(errs, errors.New("a commit needs at least one event"))
	}
	for i, e := range c.Events {
		if e.Type == "" {
			errs = append(errs, fmt.Errorf("event %d has no type", i))
		}
		if e.SchemaVersion < 1 {
			errs = append(errs, fmt.Errorf("event %d (%s) has schema version %d", i, e.Type, e.SchemaVersion))
		}
		if len(e.Data) == 0 || (syntax && !json.Valid(e.Data)) {
			errs = append(errs, fmt.Errorf("event %d (%s) data is not JSON", i, e.Type))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidCommit, errors.Join(errs...))
	}
	return nil
}

// hashDomain separates Ordo's commit hashes from any other SHA-256 use.
const hashDomain = "ordo.commit.v1\n"

// ComputeHash returns the hex SHA-256 of the commit's canonical encoding,
// ignoring the current values of Hash and Sig (KeyID is covered). The canonical encoding is the commit
// as a JSON object with every object's keys sorted, no insignificant
// whitespace, no HTML escaping and numbers kept as written, so a commit
// re-encoded by another program hashes the same.
func (c *Commit) ComputeHash() (string, error) {
	body, err := c.canonical()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(hashDomain))
	h.Write([]byte(c.PrevHash))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Seal links the commit to its predecessor's hash and sets its own Hash.
func (c *Commit) Seal(prevHash string) error {
	c.PrevHash = prevHash
	h, err := c.ComputeHash()
	if err != nil {
		return fmt.Errorf("seal commit %s: %w", c.CommitID, err)
	}
	c.Hash = h
	return nil
}

// VerifyHash reports whether Hash matches the commit's content.
func (c *Commit) VerifyHash() error {
	h, err := c.ComputeHash()
	if err != nil {
		return err
	}
	if h != c.Hash {
		return fmt.Errorf("%w: %s v%d: stored %s, computed %s", ErrHashMismatch, c.AggregateID, c.Version, ShortHash(c.Hash), ShortHash(h))
	}
	return nil
}

// ShortHash is how a hash is shown to people: its first 12 hex digits
// (48 bits, enough to tell the commits of a log apart by eye), or
// "(none)" for no hash.
func ShortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(none)"
	}
	return h
}

func (c *Commit) canonical() ([]byte, error) {
	cp := *c
	cp.Hash, cp.Sig = "", ""
	cp.Metadata.RecordedAt = cp.Metadata.RecordedAt.UTC()
	raw, err := json.Marshal(&cp)
	if err != nil {
		return nil, fmt.Errorf("encode commit: %w", err)
	}
	return Canonicalize(raw)
}

// Canonicalize re-encodes a JSON document with sorted object keys, no
// insignificant whitespace, no HTML escaping and numbers as written.
func Canonicalize(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonicalize: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonicalize: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// Marshal encodes a commit as the bytes stored in the log.
func Marshal(c *Commit) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode commit %s: %w", c.CommitID, err)
	}
	return b, nil
}

// Unmarshal decodes a stored commit and checks its structure. It does not
// verify the hash; see [Commit.VerifyHash] and [VerifyChain].
func Unmarshal(b []byte) (*Commit, error) {
	var c Commit
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}
	if err := c.validate(false); err != nil {
		return nil, err
	}
	return &c, nil
}

// ChainBreak names one broken link in an aggregate's history.
type ChainBreak struct {
	AggregateType string `json:"aggregate_type"`
	AggregateID   string `json:"aggregate_id"`
	Version       uint64 `json:"version"`
	Problem       string `json:"problem"`
	Expected      string `json:"expected"`
	Found         string `json:"found"`
}

func (b ChainBreak) String() string {
	return fmt.Sprintf("%s %s v%d: %s (expected %s, found %s)", b.AggregateType, b.AggregateID, b.Version, b.Problem, b.Expected, b.Found)
}

// VerifyChain checks one aggregate's commits, in log order: versions start
// at 1 and have no gaps, every commit names the previous commit's hash and
// every hash matches its content. It returns every break it finds.
func VerifyChain(commits []*Commit) []ChainBreak {
	var link ChainLink
	var breaks []ChainBreak
	for _, c := range commits {
		breaks = append(breaks, link.Check(c)...)
	}
	return breaks
}

// ChainLink is where the verified part of one aggregate's history ends:
// the version its next commit must start at and the hash it must name.
// Its zero value stands before the first commit. It lets a reader check a
// whole log commit by commit, holding one ChainLink per aggregate instead
// of every commit.
type ChainLink struct {
	next uint64
	prev string
}

// Next returns the version the aggregate's next commit must start at.
func (l *ChainLink) Next() uint64 { return max(l.next, 1) }

// Head returns the version and hash of the last commit checked: the head
// of the history so far, which names all of it (each hash covers the
// previous one).
func (l *ChainLink) Head() (version uint64, hash string) { return l.Next() - 1, l.prev }

// Check checks c, the aggregate's next commit in log order, against the
// link, returns every break it finds and moves the link past c (to where
// c says it ends, so one bad commit is named once, not again with every
// commit after it).
func (l *ChainLink) Check(c *Commit) []ChainBreak {
	h, err := c.ComputeHash()
	return l.CheckHashed(c, h, err)
}

// CheckHashed is [ChainLink.Check] with c's hash already computed (by
// [Commit.ComputeHash], which gave hash and err), for readers that
// compute the hashes of many commits in parallel and check the links in
// log order.
func (l *ChainLink) CheckHashed(c *Commit, hash string, err error) []ChainBreak {
	var breaks []ChainBreak
	add := func(problem, expected, found string) {
		breaks = append(breaks, ChainBreak{c.AggregateType, c.AggregateID, c.Version, problem, expected, found})
	}
	if next := l.Next(); c.Version != next {
		add("version gap", fmt.Sprint(next), fmt.Sprint(c.Version))
	}
	if c.PrevHash != l.prev {
		add("prev_hash does not link to the previous commit", ShortHash(l.prev), ShortHash(c.PrevHash))
	}
	if err != nil {
		add("commit cannot be encoded", "encodable commit", err.Error())
	} else if hash != c.Hash {
		add("hash does not match content", ShortHash(hash), ShortHash(c.Hash))
	}
	l.next = c.LastVersion() + 1
	l.prev = c.Hash
	return breaks
}
