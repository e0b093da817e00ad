package streams

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
)

// TimersStream holds durable timers: JetStream message schedules and the
// messages they fire.
//
//	timer.sched.<owner>.<kind>.<key>   a schedule ("Nats-Schedule: @at <time>")
//	timer.fire.<owner>.<kind>.<key>    what the server publishes when it is due
//
// A schedule is one message per subject: scheduling the same owner, kind
// and key again replaces the pending schedule (the server rolls the
// subject up). When it fires, the server publishes the schedule's body on
// the fire subject and purges the schedule. Both live in the stream, so
// timers survive restarts of the process that set them and of the server.
const TimersStream = "TIMERS"

// Headers of JetStream message schedules (nats-server 2.12+).
const (
	hdrSchedule       = "Nats-Schedule"
	hdrScheduleTarget = "Nats-Schedule-Target"
	hdrScheduler      = "Nats-Scheduler"
)

// OpenTimers checks that the log has its TIMERS stream, as it should:
// [Init] creates it with the log. It creates nothing: a missing TIMERS
// is [eventlog.ErrStreamMissing], since pending timers were lost with it.
func (s *Store) OpenTimers(ctx context.Context) error {
	return s.checkAux(ctx, TimersStream, checkTimers)
}

func timerSubjects(t eventlog.Timer) (sched, fire string, err error) {
	for _, p := range []string{t.Owner, t.Kind, t.Key} {
		if !ValidID(p) {
			return "", "", fmt.Errorf("%w: timer part %q", eventlog.ErrInvalidID, truncate(p))
		}
	}
	tail := t.Owner + "." + t.Kind + "." + t.Key
	return "timer.sched." + tail, "timer.fire." + tail, nil
}

// ScheduleTimer stores a schedule that makes the server publish t.Data for
// t.Owner at t.At. Scheduling the same owner, kind and key again replaces
// a pending schedule. The schedule is a message in the TIMERS stream, so
// it is as durable as the log; call [Store.OpenTimers] first.
func (s *Store) ScheduleTimer(ctx context.Context, t eventlog.Timer) error {
	sched, fire, err := timerSubjects(t)
	if err != nil {
		return fmt.Errorf("schedule timer: %w", err)
	}
	msg := &nats.Msg{
		Subject: sched,
		Data:    t.Data,
		Header: nats.Header{
			hdrSchedule:       []string{"@at " + t.At.UTC().Format(time.RFC3339Nano)},
			hdrScheduleTarget: []string{fire},
			// The same timer set twice within the duplicate window (a
			// redelivered cause) is stored once.
			hdrMsgID: []string{sched + "@" + t.At.UTC().Format(time.RFC3339Nano)},
		},
	}
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("schedule timer %s: %w", sched, err)
	}
	return nil
}

// TimerConsumer creates (or updates) a durable consumer of the timers
// fired for owner. Decode its messages with [ParseFiredTimer].
func (s *Store) TimerConsumer(ctx context.Context, owner string, opts ConsumerOptions) (jetstream.Consumer, error) {
	if !ValidID(owner) {
		return nil, fmt.Errorf("timer consumer: %w: owner %q", eventlog.ErrInvalidID, truncate(owner))
	}
	cfg, err := opts.config("timer.fire." + owner + ".>")
	if err != nil {
		return nil, fmt.Errorf("timer consumer: %w", err)
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, TimersStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("timer consumer %s: %w", opts.Durable, err)
	}
	return cons, nil
}

// ParseFiredTimer decodes a message from a [Store.TimerConsumer].
func ParseFiredTimer(subject string, data []byte) (eventlog.FiredTimer, error) {
	var parts [5]string
	n := 0
	start := 0
	for i := 0; i <= len(subject); i++ {
		if i == len(subject) || subject[i] == '.' {
			if n == len(parts) {
				return eventlog.FiredTimer{}, fmt.Errorf("fired timer subject %q has too many tokens", subject)
			}
			parts[n] = subject[start:i]
			n++
			start = i + 1
		}
	}
	if n != 5 || parts[0] != "timer" || parts[1] != "fire" {
		return eventlog.FiredTimer{}, fmt.Errorf("%q is not a fired timer subject", subject)
	}
	return eventlog.FiredTimer{Owner: parts[2], Kind: parts[3], Key: parts[4], Data: data}, nil
}
