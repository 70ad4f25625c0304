package fdb

import (
	"bytes"
	"net/netip"
	"slices"
)

// AddStatic adds or replaces a static entry: k always goes to d, is never
// aged or evicted, and traffic does not move it. A learned entry for k
// becomes static. When the table is full, a learned entry is evicted as
// for a learn; ErrTableFull when there is none. ErrMulticast and ErrNoPort
// reject entries that could never be used.
func (t *Table) AddStatic(k Key, d Dest) error {
	if k.MAC.IsMulticast() {
		return ErrMulticast
	}
	if d.Port == NoPort {
		return ErrNoPort
	}
	now := Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	pi := t.portFor(d.Port)
	if i, ok := t.index[k]; ok {
		// Remove and re-insert: the slot is reused at once, and the
		// counts and VTEP references stay right without special cases.
		t.remove(i)
	} else if t.count >= t.size {
		v := t.victim()
		if v == nilIdx {
			return ErrTableFull
		}
		t.remove(v)
		t.evictions++
	}
	t.insert(k, d, pi, true, now)
	return nil
}

// Delete removes k, static or learned, and reports whether it was there.
func (t *Table) Delete(k Key) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.index[k]
	if ok {
		t.remove(i)
	}
	return ok
}

// Flush removes the learned entries that match f, and the static ones too
// if f.Static: in f.VLAN if f.HasVLAN, on f.Port unless it is NoPort,
// behind f.VTEP if it is valid. It returns how many it removed.
func (t *Table) Flush(f Filter) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	var vtep uint32
	if f.VTEP.IsValid() {
		var ok bool
		if vtep, ok = t.vtepIdx[f.VTEP]; !ok {
			return 0
		}
	}
	return t.removeIf(func(n *node) bool {
		return (f.Static || n.flags&flagStatic == 0) &&
			(!f.HasVLAN || n.key.VLAN == f.VLAN) &&
			(f.Port == NoPort || n.port == f.Port) &&
			(!f.VTEP.IsValid() || n.vtep == vtep)
	})
}

// PurgeVTEP removes every entry, static ones too, behind the remote VTEP
// vtep: it has gone away. The zero Addr matches nothing.
func (t *Table) PurgeVTEP(vtep netip.Addr) int {
	if !vtep.IsValid() {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.vtepIdx[vtep]
	if !ok {
		return 0
	}
	return t.removeIf(func(n *node) bool { return n.vtep == i })
}

// PurgePort removes every entry, static ones too, on port p, and resets
// p's mac-limit and move count: p is being deleted, and a port added later
// under the same PortID starts afresh. Table-wide Stats keep their counts.
func (t *Table) PurgePort(p PortID) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	pi := t.portOf(p)
	if pi == 0 {
		return 0
	}
	ps := &t.ports[pi]
	ps.limit, ps.moves = 0, 0
	if ps.learned+ps.static == 0 {
		return 0
	}
	return t.removeIf(func(n *node) bool { return n.port == p })
}

// removeIf removes the entries for which match is true, scanning the slab
// (control path: O(Size)). The caller holds t.mu for writing.
func (t *Table) removeIf(match func(*node) bool) int {
	removed := 0
	for i := range t.nodes {
		n := &t.nodes[i]
		if n.flags&flagUsed != 0 && match(n) {
			t.remove(int32(i))
			removed++
		}
	}
	return removed
}

// Age removes the learned entries with now-LastSeen >= the ageing time
// and returns how many. It walks each port's list from the tail and stops
// at the first entry still fresh, so it costs O(ports + removed).
func (t *Table) Age(now int64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	removed := 0
	for pi := 1; pi < len(t.ports); pi++ {
		for tail := t.ports[pi].tail; tail != nilIdx && now-t.nodes[tail].lastSeen >= t.aging; tail = t.ports[pi].tail {
			t.remove(tail)
			removed++
		}
	}
	t.aged += uint64(removed)
	return removed
}

// Entries appends a snapshot of the table to dst, sorted by VLAN then MAC,
// and returns it. It allocates when dst is too small, and sorts after
// releasing the lock.
func (t *Table) Entries(dst []Entry) []Entry {
	t.mu.RLock()
	start := len(dst)
	dst = slices.Grow(dst, int(t.count))
	for i := range t.nodes {
		n := &t.nodes[i]
		if n.flags&flagUsed == 0 {
			continue
		}
		dst = append(dst, Entry{
			Key:      n.key,
			Dest:     t.dest(n),
			Static:   n.flags&flagStatic != 0,
			LastSeen: n.lastSeen,
		})
	}
	t.mu.RUnlock()
	slices.SortFunc(dst[start:], func(a, b Entry) int {
		if a.VLAN != b.VLAN {
			return int(a.VLAN) - int(b.VLAN)
		}
		return bytes.Compare(a.MAC[:], b.MAC[:])
	})
	return dst
}
