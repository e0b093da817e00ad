package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/audit"
)

// progress draws a one-line progress bar on stderr for long runs
// (verify, reconcile, export). It draws only when stderr is a terminal,
// so pipes, files and tests see nothing of it; the zero or nil progress
// draws nothing.
type progress struct {
	w           io.Writer
	label       string
	total, done uint64
	start, last time.Time
	drawn       bool
}

// redrawEvery keeps the bar from costing more than the work it reports.
const redrawEvery = 150 * time.Millisecond

// newProgress returns a bar for total units of work named label, or nil
// when e's stderr is not a terminal.
func newProgress(e env, label string, total uint64) *progress {
	if !e.tty {
		return nil
	}
	now := time.Now()
	return &progress{w: e.stderr, label: label, total: total, start: now}
}

// add counts n more units done and redraws when it is time to.
func (p *progress) add(n uint64) {
	if p == nil {
		return
	}
	p.done += n
	if now := time.Now(); now.Sub(p.last) >= redrawEvery {
		p.last = now
		p.draw(now)
	}
}

// finish draws the final state and ends the line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.draw(time.Now())
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) draw(now time.Time) {
	const width = 30
	rate := ""
	if secs := now.Sub(p.start).Seconds(); secs > 0 {
		rate = fmt.Sprintf(" %.0f/s", float64(p.done)/secs)
	}
	if p.total == 0 {
		fmt.Fprintf(p.w, "\r%s: %d%s ", p.label, p.done, rate)
		p.drawn = true
		return
	}
	done := min(p.done, p.total)
	fill := int(done * width / p.total)
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d%s ", p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, p.total, rate)
	p.drawn = true
}

// progressBars returns a callback for an audit's progress that draws one
// bar per stream, labelled prefix and the aggregate type; it draws
// nothing when e's stderr is not a terminal.
func progressBars(e env, prefix string) func(audit.Progress) {
	if !e.tty {
		return nil
	}
	var bar *progress
	return func(p audit.Progress) {
		if bar == nil || bar.label != prefix+p.Type {
			bar = newProgress(e, prefix+p.Type, p.Total)
		}
		bar.add(p.Done - bar.done)
		if p.Finished {
			bar.finish()
			bar = nil
		}
	}
}
