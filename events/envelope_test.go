package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var recordedAt = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// newCommit returns an unsealed commit of aggregate order o-1 holding one
// event per data document.
func newCommit(version uint64, data ...string) *Commit {
	c := &Commit{
		CommitID:      fmt.Sprintf("cmd-%d", version),
		AggregateType: "order",
		AggregateID:   "o-1",
		Version:       version,
		Metadata: Metadata{
			CorrelationID: "corr-1",
			CausationID:   "cause-1",
			Actor:         "customer:c-1",
			RecordedAt:    recordedAt,
		},
	}
	for _, d := range data {
		c.Events = append(c.Events, Event{Type: "order.placed", SchemaVersion: 1, Data: json.RawMessage(d)})
	}
	return c
}

func mustSeal(tb testing.TB, c *Commit, prev string) *Commit {
	tb.Helper()
	if err := c.Seal(prev); err != nil {
		tb.Fatalf("seal: %v", err)
	}
	return c
}

func mustHash(tb testing.TB, c *Commit) string {
	tb.Helper()
	h, err := c.ComputeHash()
	if err != nil {
		tb.Fatalf("hash: %v", err)
	}
	return h
}

func TestHashIsStableAcrossReencoding(t *testing.T) {
	const compact = `{"order_id":"o-1","total":{"amount":1999,"currency":"CNY"},"lines":[{"sku":"TEA-250","qty":1}],"note":"<b>tea & cake</b> é"}`
	base := mustHash(t, newCommit(1, compact))

	tests := []struct {
		name string
		data string
	}{
		{"re-indented", "{\n  \"order_id\": \"o-1\",\n  \"total\": {\n    \"amount\": 1999,\n    \"currency\": \"CNY\"\n  },\n  \"lines\": [ { \"sku\": \"TEA-250\", \"qty\": 1 } ],\n  \"note\": \"<b>tea & cake</b> é\"\n}"},
		{"keys reordered", `{"note":"<b>tea & cake</b> é","lines":[{"qty":1,"sku":"TEA-250"}],"total":{"currency":"CNY","amount":1999},"order_id":"o-1"}`},
		{"escaped differently", `{"order_id":"o-1","total":{"amount":1999,"currency":"CNY"},"lines":[{"sku":"TEA-250","qty":1}],"note":"\u003cb\u003etea \u0026 cake\u003c/b\u003e \u00e9"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustHash(t, newCommit(1, tt.data)); got != base {
				t.Errorf("hash %s, want %s", got, base)
			}
		})
	}

	t.Run("recorded_at in another zone", func(t *testing.T) {
		c := newCommit(1, compact)
		c.Metadata.RecordedAt = recordedAt.In(time.FixedZone("CST", 8*3600))
		if got := mustHash(t, c); got != base {
			t.Errorf("hash %s, want %s", got, base)
		}
	})

	sealed := mustSeal(t, newCommit(1, compact), "")
	stored, err := Marshal(sealed)
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, stored, "", "\t"); err != nil {
		t.Fatal(err)
	}
	var generic map[string]any // re-encoding a map sorts the keys
	if err := json.Unmarshal(stored, &generic); err != nil {
		t.Fatal(err)
	}
	sorted, err := json.Marshal(generic)
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string][]byte{"stored": stored, "indented": indented.Bytes(), "keys sorted": sorted} {
		t.Run("whole commit "+name, func(t *testing.T) {
			c, err := Unmarshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.VerifyHash(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestHashCoversEveryField(t *testing.T) {
	const data = `{"order_id":"o-1","amount":1999}`
	base := mustHash(t, newCommit(1, data))
	tests := []struct {
		name   string
		change func(c *Commit)
	}{
		{"event data value", func(c *Commit) { c.Events[0].Data = json.RawMessage(`{"order_id":"o-1","amount":1998}`) }},
		{"number spelling", func(c *Commit) { c.Events[0].Data = json.RawMessage(`{"order_id":"o-1","amount":1999.0}`) }},
		{"event type", func(c *Commit) { c.Events[0].Type = "order.paid" }},
		{"schema version", func(c *Commit) { c.Events[0].SchemaVersion = 2 }},
		{"extra event", func(c *Commit) { c.Events = append(c.Events, c.Events[0]) }},
		{"commit id", func(c *Commit) { c.CommitID = "cmd-x" }},
		{"aggregate type", func(c *Commit) { c.AggregateType = "payment" }},
		{"aggregate id", func(c *Commit) { c.AggregateID = "o-2" }},
		{"version", func(c *Commit) { c.Version = 2 }},
		{"prev hash", func(c *Commit) { c.PrevHash = "abc" }},
		{"actor", func(c *Commit) { c.Metadata.Actor = "admin" }},
		{"correlation id", func(c *Commit) { c.Metadata.CorrelationID = "corr-2" }},
		{"recorded at", func(c *Commit) { c.Metadata.RecordedAt = recordedAt.Add(time.Nanosecond) }},
		{"traceparent", func(c *Commit) { c.Metadata.Traceparent = "00-abc-def-01" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCommit(1, data)
			tt.change(c)
			if mustHash(t, c) == base {
				t.Error("hash did not change")
			}
		})
	}
	t.Run("hash field ignored", func(t *testing.T) {
		c := newCommit(1, data)
		c.Hash = "anything"
		if mustHash(t, c) != base {
			t.Error("ComputeHash depends on the Hash field")
		}
	})
}

func TestCanonicalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"b":1,"a":{"d":[3,{"z":1,"y":2}],"c":null}}`, `{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}`},
		{"{ \"price\" : 1.50 ,\n \"big\": 1e2, \"exact\": 12345678901234567890 }", `{"big":1e2,"exact":12345678901234567890,"price":1.50}`},
		{`{"html":"<a href=\"x\">&</a>","u":"\u00e9"}`, `{"html":"<a href=\"x\">&</a>","u":"é"}`},
		{`[true,false,"s"]`, `[true,false,"s"]`},
	}
	for _, tt := range tests {
		got, err := Canonicalize([]byte(tt.in))
		if err != nil {
			t.Errorf("Canonicalize(%s): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("Canonicalize(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
	if _, err := Canonicalize([]byte(`{"a":`)); err == nil {
		t.Error("Canonicalize accepted truncated JSON")
	}
}

func TestSealAndVerifyHash(t *testing.T) {
	c := mustSeal(t, newCommit(1, `{"a":1}`), "")
	if len(c.Hash) != 64 || strings.Trim(c.Hash, "0123456789abcdef") != "" {
		t.Fatalf("hash %q is not hex SHA-256", c.Hash)
	}
	if c.PrevHash != "" {
		t.Errorf("prev hash %q, want empty", c.PrevHash)
	}
	if err := c.VerifyHash(); err != nil {
		t.Fatalf("VerifyHash of a sealed commit: %v", err)
	}

	next := mustSeal(t, newCommit(2, `{"a":2}`), c.Hash)
	if next.PrevHash != c.Hash {
		t.Errorf("prev hash %q, want %q", next.PrevHash, c.Hash)
	}
	if err := next.VerifyHash(); err != nil {
		t.Fatal(err)
	}
	other := mustSeal(t, newCommit(2, `{"a":2}`), strings.Repeat("0", 64))
	if other.Hash == next.Hash {
		t.Error("the hash does not depend on prev hash")
	}

	tamper := map[string]func(c *Commit){
		"event data": func(c *Commit) { c.Events[0].Data = json.RawMessage(`{"a":3}`) },
		"prev hash":  func(c *Commit) { c.PrevHash = strings.Repeat("f", 64) },
		"hash":       func(c *Commit) { c.Hash = strings.Repeat("0", 64) },
		"no hash":    func(c *Commit) { c.Hash = "" },
		"metadata":   func(c *Commit) { c.Metadata.Actor = "mallory" },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			c := mustSeal(t, newCommit(2, `{"a":2}`), next.PrevHash)
			f(c)
			if err := c.VerifyHash(); !errors.Is(err, ErrHashMismatch) {
				t.Errorf("VerifyHash = %v, want ErrHashMismatch", err)
			}
		})
	}
}

// chain returns four sealed commits of one aggregate covering event
// versions 1, 2-3, 4 and 5.
func chain(tb testing.TB) []*Commit {
	tb.Helper()
	cs := []*Commit{
		newCommit(1, `{"n":1}`),
		newCommit(2, `{"n":2}`, `{"n":3}`),
		newCommit(4, `{"n":4}`),
		newCommit(5, `{"n":5}`),
	}
	prev := ""
	for _, c := range cs {
		mustSeal(tb, c, prev)
		prev = c.Hash
	}
	return cs
}

// problems lists the breaks as "v<version> <problem>".
func problems(breaks []ChainBreak) []string {
	var out []string
	for _, b := range breaks {
		out = append(out, fmt.Sprintf("v%d %s", b.Version, b.Problem))
	}
	return out
}

const (
	gap     = "version gap"
	badLink = "prev_hash does not link to the previous commit"
	badHash = "hash does not match content"
)

func TestVerifyChain(t *testing.T) {
	tests := []struct {
		name   string
		change func(tb testing.TB, cs []*Commit) []*Commit
		want   []string
	}{
		{
			name:   "intact",
			change: func(_ testing.TB, cs []*Commit) []*Commit { return cs },
		},
		{
			name:   "empty",
			change: func(testing.TB, []*Commit) []*Commit { return nil },
		},
		{
			name: "gap",
			change: func(tb testing.TB, cs []*Commit) []*Commit {
				cs[3].Version = 6
				mustSeal(tb, cs[3], cs[2].Hash)
				return cs
			},
			want: []string{"v6 " + gap},
		},
		{
			name: "first version is not 1",
			change: func(tb testing.TB, cs []*Commit) []*Commit {
				return []*Commit{mustSeal(tb, newCommit(2, `{"n":2}`), "")}
			},
			want: []string{"v2 " + gap},
		},
		{
			name: "altered event",
			change: func(_ testing.TB, cs []*Commit) []*Commit {
				cs[1].Events[1].Data = json.RawMessage(`{"n":33}`)
				return cs
			},
			want: []string{"v2 " + badHash},
		},
		{
			name: "altered and resealed event",
			change: func(tb testing.TB, cs []*Commit) []*Commit {
				cs[1].Events[1].Data = json.RawMessage(`{"n":33}`)
				mustSeal(tb, cs[1], cs[1].PrevHash)
				return cs
			},
			want: []string{"v4 " + badLink},
		},
		{
			name: "reordered pair",
			change: func(_ testing.TB, cs []*Commit) []*Commit {
				cs[2], cs[3] = cs[3], cs[2]
				return cs
			},
			want: []string{"v5 " + gap, "v5 " + badLink, "v4 " + gap, "v4 " + badLink},
		},
		{
			name: "removed commit",
			change: func(_ testing.TB, cs []*Commit) []*Commit {
				return slices.Delete(cs, 1, 2)
			},
			want: []string{"v4 " + gap, "v4 " + badLink},
		},
		{
			name: "removed first commit",
			change: func(_ testing.TB, cs []*Commit) []*Commit {
				return cs[1:]
			},
			want: []string{"v2 " + gap, "v2 " + badLink},
		},
		{
			name: "wrong prev_hash, sealed over it",
			change: func(tb testing.TB, cs []*Commit) []*Commit {
				mustSeal(tb, cs[3], strings.Repeat("0", 64))
				return cs
			},
			want: []string{"v5 " + badLink},
		},
		{
			name: "wrong prev_hash on first commit",
			change: func(tb testing.TB, cs []*Commit) []*Commit {
				return []*Commit{mustSeal(tb, newCommit(1, `{"n":1}`), strings.Repeat("0", 64))}
			},
			want: []string{"v1 " + badLink},
		},
		{
			name: "prev_hash edited after sealing",
			change: func(_ testing.TB, cs []*Commit) []*Commit {
				cs[2].PrevHash = cs[0].Hash
				return cs
			},
			want: []string{"v4 " + badLink, "v4 " + badHash},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			breaks := VerifyChain(tt.change(t, chain(t)))
			if got := problems(breaks); !slices.Equal(got, tt.want) {
				t.Errorf("breaks:\n got %q\nwant %q", got, tt.want)
			}
			for _, b := range breaks {
				if b.AggregateType != "order" || b.AggregateID != "o-1" || b.String() == "" {
					t.Errorf("break %+v does not name its aggregate", b)
				}
			}
		})
	}
}

func TestMarshalUnmarshalRoundTrip(t *testing.T) {
	c := mustSeal(t, newCommit(7, `{"a":1}`, `{"b":[1,2]}`), strings.Repeat("a", 64))
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, again) {
		t.Errorf("round trip changed the commit:\n%s\n%s", b, again)
	}
	if err := got.VerifyHash(); err != nil {
		t.Error(err)
	}
	if got.LastVersion() != 8 {
		t.Errorf("LastVersion = %d, want 8", got.LastVersion())
	}
}

func TestValidate(t *testing.T) {
	if err := newCommit(1, `{}`).Validate(); err != nil {
		t.Fatalf("valid commit: %v", err)
	}
	tests := map[string]func(c *Commit){
		"no commit id":      func(c *Commit) { c.CommitID = "" },
		"no aggregate type": func(c *Commit) { c.AggregateType = "" },
		"no aggregate id":   func(c *Commit) { c.AggregateID = "" },
		"version 0":         func(c *Commit) { c.Version = 0 },
		"no events":         func(c *Commit) { c.Events = nil },
		"event without type": func(c *Commit) {
			c.Events[0].Type = ""
		},
		"schema version 0": func(c *Commit) { c.Events[0].SchemaVersion = 0 },
		"data not JSON":    func(c *Commit) { c.Events[0].Data = json.RawMessage(`{"a":`) },
		"data missing":     func(c *Commit) { c.Events[0].Data = nil },
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			c := newCommit(1, `{}`)
			f(c)
			if err := c.Validate(); !errors.Is(err, ErrInvalidCommit) {
				t.Errorf("Validate = %v, want ErrInvalidCommit", err)
			}
		})
	}
	for _, doc := range []string{``, `not json`, `[]`, `{}`, `{"commit_id":"c","aggregate_type":"order","aggregate_id":"o","version":1,"events":[]}`} {
		if _, err := Unmarshal([]byte(doc)); !errors.Is(err, ErrInvalidCommit) {
			t.Errorf("Unmarshal(%q) = %v, want ErrInvalidCommit", doc, err)
		}
	}
}
