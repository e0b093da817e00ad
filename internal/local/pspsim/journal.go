package pspsim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/psp"
)

// The state file is a journal (decision 025): one JSON line per change,
// the whole intent as it became (with, on its first line, the create
// idempotency key and the capture method). A change costs one write of
// one line and one fsync, whatever the number of intents; replaying
// keeps the last line of each intent.
//
//   - Durability: a change is on disk (fsynced) before the API answers it
//     and before its webhook is raised. Changes that arrive while an
//     fsync runs share the next one.
//   - A crash can leave a torn last line (or a tail of them): it is
//     ignored and cut off when the journal is opened again. A line that
//     does not parse followed by lines that do is damage, not a crash,
//     and New refuses the file.
//   - Compaction rewrites the file with one line per intent (atomically,
//     through datadir.Write): when the journal is opened with more lines
//     than intents, a torn tail or the old one-document format, and while
//     serving when it holds more than compactRatio lines per intent (and
//     at least compactMin).
//   - The state file of earlier versions, one JSON document with every
//     intent, is read as a journal of one line and compacted.

// Compaction thresholds while serving (variables for the tests).
var (
	compactRatio = 4
	compactMin   = 1024
)

// record is one journal line.
type record struct {
	Intent *psp.Intent `json:"intent"`
	// Key is the create idempotency key, on the intent's first line.
	Key string `json:"key,omitempty"`
	// Manual: created with manual capture, on its first line.
	Manual bool `json:"manual,omitempty"`
}

// loaded is what a journal held.
type loaded struct {
	intents map[string]*psp.Intent
	byKey   map[string]string
	manual  map[string]bool
	lines   int  // lines that parsed
	torn    bool // a torn tail was ignored
	legacy  bool // the old one-document format
}

// readJournal replays the journal at path; a missing file is empty.
func readJournal(path string) (loaded, error) {
	l := loaded{intents: map[string]*psp.Intent{}, byKey: map[string]string{}, manual: map[string]bool{}}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, fmt.Errorf("psp sim: read state: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	badLine := 0 // the first line that did not parse, 0 if none
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if perr := l.apply(line); perr != nil {
				if badLine == 0 {
					badLine = n
				}
			} else if badLine != 0 {
				return l, fmt.Errorf("psp sim: state file %s: line %d is damaged but later lines are not (not a crash's torn tail; move the file away to start empty)", path, badLine)
			} else {
				l.lines++
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return l, fmt.Errorf("psp sim: read state: %w", err)
		}
	}
	l.torn = badLine != 0
	return l, nil
}

// ReadIntents returns the intents a simulator's state file holds, oldest
// first, as [Sim.Intents] would after [New] read the file; a missing file
// holds none. It only reads: a reader beside a live simulator (orderctl
// check on a running local default) sees the changes synced so far, and
// a line being written is a torn tail, ignored.
func ReadIntents(path string) ([]psp.Intent, error) {
	l, err := readJournal(path)
	if err != nil {
		return nil, err
	}
	return sortedIntents(l.intents), nil
}

// apply replays one line.
func (l *loaded) apply(line []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(line), []byte(`{"intents"`)) {
		var st savedState
		if err := json.Unmarshal(line, &st); err != nil {
			return err
		}
		for id, in := range st.Intents {
			if in != nil {
				l.intents[id] = in
			}
		}
		for k, v := range st.ByKey {
			l.byKey[k] = v
		}
		for k, v := range st.Manual {
			l.manual[k] = v
		}
		l.legacy = true
		return nil
	}
	var rec record
	if err := json.Unmarshal(line, &rec); err != nil {
		return err
	}
	if rec.Intent == nil || rec.Intent.ID == "" {
		return errors.New("a line without an intent")
	}
	l.intents[rec.Intent.ID] = rec.Intent
	if rec.Key != "" {
		l.byKey[rec.Key] = rec.Intent.ID
	}
	if rec.Manual {
		l.manual[rec.Intent.ID] = true
	}
	return nil
}

// savedState is the state file of earlier versions: one JSON document.
type savedState struct {
	Intents map[string]*psp.Intent `json:"intents"`
	ByKey   map[string]string      `json:"by_key"`
	Manual  map[string]bool        `json:"manual"`
}

// journal appends to the state file. append and compact run under the
// simulator's lock; sync runs outside it.
type journal struct {
	path  string
	lines int // lines in the file (under the simulator's lock)

	syncMu  sync.Mutex // serialises fsyncs and the swap of f
	f       *os.File   // guarded by syncMu; written under the simulator's lock
	written atomic.Int64
	synced  atomic.Int64 // written, as of the last fsync that ended
	broken  bool         // a write failed: compact before the next append
}

// openJournal opens path for appending after a replay found lines lines.
func openJournal(path string, lines int) (*journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("psp sim: open state: %w", err)
	}
	return &journal{path: path, f: f, lines: lines}, nil
}

// append writes one line; the caller holds the simulator's lock. It
// returns how far sync must reach for the line to be on disk.
func (j *journal) append(rec record) (int64, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	b = append(b, '\n')
	n, err := j.f.Write(b)
	j.written.Add(int64(n))
	if err != nil {
		j.broken = true // perhaps a part of the line: rewrite the file next time
		return 0, err
	}
	j.lines++
	return j.written.Load(), nil
}

// sync makes everything written up to upto durable, with one fsync for
// every change that waits meanwhile.
func (j *journal) sync(upto int64) error {
	if j.synced.Load() >= upto {
		return nil
	}
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if j.synced.Load() >= upto {
		return nil
	}
	end := j.written.Load()
	if err := j.f.Sync(); err != nil {
		return err
	}
	j.synced.Store(end)
	return nil
}

// compact rewrites the file with one line per intent; the caller holds
// the simulator's lock. On failure the old file (and handle) stay.
func (j *journal) compact(intents map[string]*psp.Intent, byKey map[string]string, manual map[string]bool) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if err := writeCompact(j.path, intents, byKey, manual); err != nil {
		return err
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("psp sim: reopen state: %w", err)
	}
	_ = j.f.Close()
	j.f, j.lines, j.broken = f, len(intents), false
	// The new file was synced before its rename: everything written so
	// far is in it.
	j.synced.Store(j.written.Load())
	return nil
}

// writeCompact writes path anew, atomically, with one line per intent.
func writeCompact(path string, intents map[string]*psp.Intent, byKey map[string]string, manual map[string]bool) error {
	keyOf := make(map[string]string, len(byKey))
	for k, id := range byKey {
		keyOf[id] = k
	}
	return datadir.Write(path, datadir.FileOptions{}, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 256<<10)
		enc := json.NewEncoder(bw)
		for id, in := range intents {
			if err := enc.Encode(record{Intent: in, Key: keyOf[id], Manual: manual[id]}); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
}

// due reports whether the journal should be compacted while serving.
func (j *journal) due(live int) bool {
	return j.broken || (j.lines >= compactMin && j.lines > compactRatio*live)
}

func (j *journal) close() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	return j.f.Close()
}
