package audit

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/datadir"
)

// Head is where one aggregate's history ended when a check saved it: the
// version and hash of its last commit. A later check given the head
// ([Options.Heads]) finds that commit again, unchanged, or names the
// aggregate: its history was cut short or rewritten since, which no
// check of the chain alone can see. Each hash covers the previous one,
// so one matching head vouches for the whole history up to it.
type Head struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	Hash    string `json:"hash"`
}

// Heads are saved heads by aggregate type and id.
type Heads map[string]map[string]Head

// ErrNotAHead means a heads file holds a line [WriteHeads] did not
// write.
var ErrNotAHead = errors.New("not a head written by a saved check")

// ReadHeads reads a file [WriteHeads] wrote: JSON Lines of [Head].
func ReadHeads(path string) (Heads, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := Heads{}
	dec := json.NewDecoder(bufio.NewReader(f))
	for line := 1; ; line++ {
		var h Head
		err := dec.Decode(&h)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil || !ValidType(h.Type) || !events.ValidID(h.ID) || h.Version == 0 || h.Hash == "" {
			return nil, fmt.Errorf("%s: entry %d is %w", path, line, ErrNotAHead)
		}
		if out[h.Type] == nil {
			out[h.Type] = map[string]Head{}
		}
		out[h.Type][h.ID] = h
	}
}

// WriteHeads writes heads, sorted by type and id, to path as JSON Lines,
// atomically: a crash never leaves half a file under the name.
func WriteHeads(path string, heads []Head) error {
	heads = slices.Clone(heads)
	slices.SortFunc(heads, func(a, b Head) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID))
	})
	return datadir.Write(path, datadir.FileOptions{}, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		for _, h := range heads {
			if err := enc.Encode(h); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
}
