package fdb

import "net/netip"

// This file holds the slab, the per-port state, the per-port LRU lists and
// the interned VTEP addresses. Every function here expects the caller to
// hold t.mu for writing, except dest, sameDest and portOf, which only read.

// nilIdx ends a list and marks an empty free list.
const nilIdx int32 = -1

const (
	flagUsed uint8 = 1 << iota
	flagStatic
)

// node is one slot of the slab. It holds no pointers, so the garbage
// collector never scans the slab, and it takes 32 bytes: two to a cache
// line.
type node struct {
	lastSeen int64 // Now() units; for static entries, when added
	key      Key
	// prev and next link a learned entry into its port's LRU list; next
	// also links free slots. Static entries are in no list.
	prev, next int32
	vtep       uint32 // index into Table.vteps; 0 = no VTEP
	port       PortID
	flags      uint8
}

// portState is what the table keeps per port.
type portState struct {
	// head and tail bound the port's learned entries, ordered by lastSeen
	// with the most recently seen at head; nilIdx when there are none.
	head, tail int32
	learned    int32 // entries in the list
	static     int32 // static entries on the port
	limit      int32 // mac-limit on learned entries; 0 = unlimited
	id         PortID
	moves      uint64 // MACs that moved onto this port
}

// dest returns the Dest of node n.
func (t *Table) dest(n *node) Dest {
	return Dest{Port: n.port, VTEP: t.vteps[n.vtep].addr}
}

// sameDest reports whether n points at d, without a map look-up.
func (t *Table) sameDest(n *node, d Dest) bool {
	return n.port == d.Port && t.vteps[n.vtep].addr == d.VTEP
}

// portOf returns p's index in t.ports, or 0 if p has no state yet.
func (t *Table) portOf(p PortID) int {
	if int(p) < len(t.portIdx) {
		return int(t.portIdx[p])
	}
	return 0
}

// portFor returns p's index in t.ports, creating its state on first use;
// only then does it allocate. p must not be NoPort. It may move t.ports, so
// callers take *portState pointers only after it.
func (t *Table) portFor(p PortID) int {
	if pi := t.portOf(p); pi != 0 {
		return pi
	}
	if int(p) >= len(t.portIdx) {
		n := min(max(int(p)+1, 2*len(t.portIdx), 16), int(NoPort))
		idx := make([]uint16, n)
		copy(idx, t.portIdx)
		t.portIdx = idx
	}
	t.ports = append(t.ports, portState{id: p, head: nilIdx, tail: nilIdx})
	pi := len(t.ports) - 1
	t.portIdx[p] = uint16(pi)
	return pi
}

// alloc takes a slot off the free list. The caller has checked that the
// table is not full.
func (t *Table) alloc() int32 {
	i := t.free
	t.free = t.nodes[i].next
	return i
}

// insert fills a free slot with a new entry and indexes it: learned entries
// go into port pi's LRU list, static ones are only counted. The caller has
// made room.
func (t *Table) insert(k Key, d Dest, pi int, static bool, now int64) {
	i := t.alloc()
	n := &t.nodes[i]
	*n = node{lastSeen: now, key: k, vtep: t.acquireVTEP(d.VTEP), port: d.Port, flags: flagUsed}
	t.index[k] = i
	t.count++
	if static {
		n.flags |= flagStatic
		t.ports[pi].static++
		t.static++
		return
	}
	t.pushLRU(pi, i)
}

// remove deletes entry i from the index, its port's list or static count
// and the VTEP table, and returns the slot to the free list.
func (t *Table) remove(i int32) {
	n := &t.nodes[i]
	pi := t.portOf(n.port)
	if n.flags&flagStatic != 0 {
		t.ports[pi].static--
		t.static--
	} else {
		t.unlinkLRU(pi, i)
	}
	t.releaseVTEP(n.vtep)
	delete(t.index, n.key)
	t.count--
	*n = node{next: t.free}
	t.free = i
}

// pushLRU links learned entry i at the head of port pi's list. The list
// must stay ordered by lastSeen, so that eviction takes the least recently
// seen entry and Age can stop at the first tail entry still fresh. Batches
// read the clock before they wait for the write lock, so a batch may write
// a slightly older now than one applied before it; such an entry is
// stamped with the head's lastSeen instead. It then looks seen a little
// later than it was (by the time a batch waited for the lock, normally
// microseconds), which costs nothing, where sorting it into place would
// walk past every entry the other batch wrote: O(1) instead of O(batch) per
// learn during a flood, and O(n) if a caller's clock ever jumped back.
func (t *Table) pushLRU(pi int, i int32) {
	ps := &t.ports[pi]
	n := &t.nodes[i]
	n.prev, n.next = nilIdx, ps.head
	if ps.head == nilIdx {
		ps.tail = i
	} else {
		h := &t.nodes[ps.head]
		n.lastSeen = max(n.lastSeen, h.lastSeen)
		h.prev = i
	}
	ps.head = i
	ps.learned++
}

// unlinkLRU takes learned entry i out of port pi's list.
func (t *Table) unlinkLRU(pi int, i int32) {
	ps := &t.ports[pi]
	n := &t.nodes[i]
	if n.prev == nilIdx {
		ps.head = n.next
	} else {
		t.nodes[n.prev].next = n.next
	}
	if n.next == nilIdx {
		ps.tail = n.prev
	} else {
		t.nodes[n.next].prev = n.prev
	}
	n.prev, n.next = nilIdx, nilIdx
	ps.learned--
}

// victim returns the entry to evict when the table is full: the least
// recently seen learned entry of the port holding the most learned entries
// (as Open vSwitch does), or nilIdx when no port holds any. Ties between
// ports go to the older tail, then to the lower PortID, so the choice is
// deterministic. It costs O(ports).
func (t *Table) victim() int32 {
	best := 0
	for pi := 1; pi < len(t.ports); pi++ {
		ps := &t.ports[pi]
		if ps.learned == 0 {
			continue
		}
		if best == 0 {
			best = pi
			continue
		}
		b := &t.ports[best]
		switch {
		case ps.learned != b.learned:
			if ps.learned > b.learned {
				best = pi
			}
		case t.nodes[ps.tail].lastSeen != t.nodes[b.tail].lastSeen:
			if t.nodes[ps.tail].lastSeen < t.nodes[b.tail].lastSeen {
				best = pi
			}
		case ps.id < b.id:
			best = pi
		}
	}
	if best == 0 {
		return nilIdx
	}
	return t.ports[best].tail
}

// vtepSlot is one interned remote VTEP address with the number of entries
// that point at it. A slot with no references is on the free list.
type vtepSlot struct {
	addr     netip.Addr
	refs     int32
	nextFree uint32 // next free slot; 0 ends the list (slot 0 is never free)
}

// acquireVTEP returns a's index in t.vteps and takes a reference on it,
// adding a slot when a is new; only then can it allocate. The zero Addr
// (a local port) is index 0 and is not counted. The caller holds t.mu for
// writing.
func (t *Table) acquireVTEP(a netip.Addr) uint32 {
	if !a.IsValid() {
		return 0
	}
	if i, ok := t.vtepIdx[a]; ok {
		t.vteps[i].refs++
		return i
	}
	i := t.vtepFree
	if i != 0 {
		t.vtepFree = t.vteps[i].nextFree
		t.vteps[i] = vtepSlot{addr: a, refs: 1}
	} else {
		i = uint32(len(t.vteps))
		t.vteps = append(t.vteps, vtepSlot{addr: a, refs: 1})
	}
	t.vtepIdx[a] = i
	return i
}

// releaseVTEP drops a reference taken by acquireVTEP and frees the slot
// with the last one, so VTEPs that come and go do not pile up. It never
// allocates. The caller holds t.mu for writing.
func (t *Table) releaseVTEP(i uint32) {
	if i == 0 {
		return
	}
	s := &t.vteps[i]
	s.refs--
	if s.refs == 0 {
		delete(t.vtepIdx, s.addr)
		*s = vtepSlot{nextFree: t.vtepFree}
		t.vtepFree = i
	}
}
