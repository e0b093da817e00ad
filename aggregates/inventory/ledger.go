package inventory

import (
	"encoding/json"
	"iter"
	"math/bits"
)

// Ledger is an immutable map from order id to a quantity. Set and Delete
// return a new Ledger and leave the receiver as it was, sharing all but
// O(log n) of its memory with the result, so [Evolve] stays pure without
// copying a busy SKU's whole history on every event.
//
// The zero Ledger is empty and ready to use. Two Ledgers holding the same
// entries have the same structure, so reflect.DeepEqual compares them by
// content. A Ledger is safe for concurrent reads.
type Ledger struct {
	root *ledgerNode
	n    int
}

// ledgerNode is a node of a hash array mapped trie: 5 bits of the key's
// 64-bit hash per level; below the last full level a node is a plain list
// of the keys whose hashes collide.
type ledgerNode struct {
	bitmap uint32
	slots  []ledgerSlot
}

// ledgerSlot holds either an entry or a child node.
type ledgerSlot struct {
	hash  uint64
	key   string
	qty   int64
	child *ledgerNode
}

const (
	ledgerBits     = 5
	ledgerMask     = 1<<ledgerBits - 1
	ledgerMaxShift = 60 // 12 levels of 5 bits; deeper nodes are collision lists
)

// NewLedger returns a Ledger holding the entries of m.
func NewLedger(m map[string]int64) Ledger {
	var l Ledger
	for k, v := range m {
		l = l.Set(k, v)
	}
	return l
}

// Len is the number of entries.
func (l Ledger) Len() int { return l.n }

// Get returns the quantity recorded for key.
func (l Ledger) Get(key string) (int64, bool) {
	h := ledgerHash(key)
	n := l.root
	for shift := uint(0); n != nil; shift += ledgerBits {
		if shift >= ledgerMaxShift {
			for _, s := range n.slots {
				if s.key == key {
					return s.qty, true
				}
			}
			return 0, false
		}
		bit := uint32(1) << ((h >> shift) & ledgerMask)
		if n.bitmap&bit == 0 {
			return 0, false
		}
		s := n.slots[bits.OnesCount32(n.bitmap&(bit-1))]
		if s.child == nil {
			if s.key == key {
				return s.qty, true
			}
			return 0, false
		}
		n = s.child
	}
	return 0, false
}

// Has reports whether key has an entry.
func (l Ledger) Has(key string) bool {
	_, ok := l.Get(key)
	return ok
}

// Set returns a Ledger with key set to qty.
func (l Ledger) Set(key string, qty int64) Ledger {
	root, added := l.root.set(0, ledgerHash(key), key, qty)
	if added {
		l.n++
	}
	l.root = root
	return l
}

// Delete returns a Ledger without key.
func (l Ledger) Delete(key string) Ledger {
	root, removed := l.root.del(0, ledgerHash(key), key)
	if removed {
		l.n--
		l.root = root
	}
	return l
}

// All yields every entry, in an order fixed by the keys' hashes.
func (l Ledger) All() iter.Seq2[string, int64] {
	return func(yield func(string, int64) bool) {
		l.root.each(yield)
	}
}

// Map returns the entries as a new map.
func (l Ledger) Map() map[string]int64 {
	m := make(map[string]int64, l.n)
	for k, v := range l.All() {
		m[k] = v
	}
	return m
}

func (n *ledgerNode) each(yield func(string, int64) bool) bool {
	if n == nil {
		return true
	}
	for _, s := range n.slots {
		if s.child != nil {
			if !s.child.each(yield) {
				return false
			}
		} else if !yield(s.key, s.qty) {
			return false
		}
	}
	return true
}

func (n *ledgerNode) set(shift uint, h uint64, key string, qty int64) (*ledgerNode, bool) {
	leaf := ledgerSlot{hash: h, key: key, qty: qty}
	if shift >= ledgerMaxShift {
		out := &ledgerNode{}
		if n != nil {
			out.slots = append(make([]ledgerSlot, 0, len(n.slots)+1), n.slots...)
		}
		for i, s := range out.slots {
			if s.key == key {
				out.slots[i].qty = qty
				return out, false
			}
		}
		out.slots = append(out.slots, leaf)
		return out, true
	}
	bit := uint32(1) << ((h >> shift) & ledgerMask)
	if n == nil {
		return &ledgerNode{bitmap: bit, slots: []ledgerSlot{leaf}}, true
	}
	pos := bits.OnesCount32(n.bitmap & (bit - 1))
	if n.bitmap&bit == 0 {
		slots := make([]ledgerSlot, 0, len(n.slots)+1)
		slots = append(append(append(slots, n.slots[:pos]...), leaf), n.slots[pos:]...)
		return &ledgerNode{bitmap: n.bitmap | bit, slots: slots}, true
	}
	s := n.slots[pos]
	var repl ledgerSlot
	added := false
	switch {
	case s.child != nil:
		child, a := s.child.set(shift+ledgerBits, h, key, qty)
		repl, added = ledgerSlot{child: child}, a
	case s.key == key:
		repl = leaf
	default:
		// Two keys share this slot: push both one level down.
		child, _ := (*ledgerNode)(nil).set(shift+ledgerBits, s.hash, s.key, s.qty)
		child, _ = child.set(shift+ledgerBits, h, key, qty)
		repl, added = ledgerSlot{child: child}, true
	}
	return n.with(pos, repl), added
}

func (n *ledgerNode) del(shift uint, h uint64, key string) (*ledgerNode, bool) {
	if n == nil {
		return nil, false
	}
	if shift >= ledgerMaxShift {
		for i, s := range n.slots {
			if s.key == key {
				if len(n.slots) == 1 {
					return nil, true
				}
				slots := append(append(make([]ledgerSlot, 0, len(n.slots)-1), n.slots[:i]...), n.slots[i+1:]...)
				return &ledgerNode{slots: slots}, true
			}
		}
		return n, false
	}
	bit := uint32(1) << ((h >> shift) & ledgerMask)
	if n.bitmap&bit == 0 {
		return n, false
	}
	pos := bits.OnesCount32(n.bitmap & (bit - 1))
	s := n.slots[pos]
	if s.child == nil {
		if s.key != key {
			return n, false
		}
		return n.without(pos, bit), true
	}
	child, removed := s.child.del(shift+ledgerBits, h, key)
	switch {
	case !removed:
		return n, false
	case child == nil:
		return n.without(pos, bit), true
	case len(child.slots) == 1 && child.slots[0].child == nil:
		// A lone entry moves up, so equal contents keep equal shapes.
		return n.with(pos, child.slots[0]), true
	default:
		return n.with(pos, ledgerSlot{child: child}), true
	}
}

// with returns a copy of n whose slot pos is s.
func (n *ledgerNode) with(pos int, s ledgerSlot) *ledgerNode {
	slots := append(make([]ledgerSlot, 0, len(n.slots)), n.slots...)
	slots[pos] = s
	return &ledgerNode{bitmap: n.bitmap, slots: slots}
}

// without returns a copy of n without slot pos, or nil if it was the last.
func (n *ledgerNode) without(pos int, bit uint32) *ledgerNode {
	if len(n.slots) == 1 {
		return nil
	}
	slots := append(append(make([]ledgerSlot, 0, len(n.slots)-1), n.slots[:pos]...), n.slots[pos+1:]...)
	return &ledgerNode{bitmap: n.bitmap &^ bit, slots: slots}
}

// ledgerHash is 64-bit FNV-1a.
func ledgerHash(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return h
}

// MarshalJSON writes the ledger as a JSON object from order id to
// quantity (keys sorted, as encoding/json writes maps), for the state
// views of orderctl.
func (l Ledger) MarshalJSON() ([]byte, error) {
	return json.Marshal(l.Map())
}
