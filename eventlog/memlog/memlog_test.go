package memlog_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/eventlog/memlog"
	"github.com/ordo-shop/ordo/events"
)

func TestAcceptance(t *testing.T) {
	logtest.Run(t, func(t *testing.T) eventlog.Log {
		l, err := memlog.New(memlog.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

// TestAcceptanceShared runs the suite on one log for every case, as the
// JetStream cluster run does.
func TestAcceptanceShared(t *testing.T) {
	l, err := memlog.New(memlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logtest.Run(t, func(*testing.T) eventlog.Log { return l })
}

func sealed(t *testing.T, id, commitID string, version uint64, prev string) *events.Commit {
	t.Helper()
	c := &events.Commit{
		CommitID: commitID, AggregateType: eventlog.TypeOrder, AggregateID: id, Version: version,
		Events:   []events.Event{{Type: "test.happened", SchemaVersion: 1, Data: json.RawMessage(`{}`)}},
		Metadata: events.Metadata{Actor: "memlog-test", RecordedAt: time.Unix(1, 0).UTC()},
	}
	if err := c.Seal(prev); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDuplicateWindow: a commit id is a duplicate within the window, and
// after it the append is checked like any other.
func TestDuplicateWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	l, err := memlog.New(memlog.Options{DuplicateWindow: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c1 := sealed(t, "o-1", "c1", 1, "")
	r1, err := l.Append(ctx, c1, 0)
	if err != nil {
		t.Fatal(err)
	}
	c2 := sealed(t, "o-1", "c2", 2, c1.Hash)
	if _, err := l.Append(ctx, c2, r1.Seq); err != nil {
		t.Fatal(err)
	}
	now = now.Add(59 * time.Second)
	if res, err := l.Append(ctx, c1, 0); err != nil || !res.Duplicate || res.Seq != r1.Seq {
		t.Fatalf("retry within the window: %+v, %v; want a duplicate of seq %d", res, err, r1.Seq)
	}
	now = now.Add(2 * time.Second)
	if _, err := l.Append(ctx, c1, 0); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("retry after the window: %v, want ErrConflict", err)
	}
}

func TestTimersAndRefusedReports(t *testing.T) {
	l, err := memlog.New(memlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	at := time.Unix(2000, 0).UTC()
	for _, tm := range []eventlog.Timer{
		{Owner: "checkout", Kind: "payment_timeout", Key: "o-1", At: at.Add(time.Hour), Data: []byte("a")},
		{Owner: "checkout", Kind: "payment_reconcile", Key: "p-1", At: at, Data: []byte("b")},
		{Owner: "checkout", Kind: "payment_timeout", Key: "o-1", At: at.Add(2 * time.Hour), Data: []byte("c")}, // replaces the first
	} {
		if err := l.ScheduleTimer(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.ScheduleTimer(ctx, eventlog.Timer{Owner: "checkout", Kind: "x.y", Key: "k"}); !errors.Is(err, eventlog.ErrInvalidID) {
		t.Fatalf("timer kind x.y: %v, want ErrInvalidID", err)
	}
	ts := l.Timers()
	if len(ts) != 2 || ts[0].Key != "p-1" || ts[1].Key != "o-1" || string(ts[1].Data) != "c" {
		t.Fatalf("timers: %+v", ts)
	}

	r := eventlog.RefusedReport{Source: "psp", Cause: "psp-event:1", Report: json.RawMessage(`{"id":"in_1"}`), Reason: "mismatch"}
	id1, err := l.AddRefusedReport(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := l.AddRefusedReport(ctx, r); err != nil || id != id1 {
		t.Fatalf("the same report again: id %d, %v; want %d", id, err, id1)
	}
	r.Cause = "psp-event:2"
	if id, err := l.AddRefusedReport(ctx, r); err != nil || id == id1 {
		t.Fatalf("another report: id %d, %v", id, err)
	}
	if got := l.RefusedReports(); len(got) != 2 || got[0].ID != id1 || got[1].Cause != "psp-event:2" {
		t.Fatalf("refused reports: %+v", got)
	}
}
