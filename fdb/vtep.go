package fdb

import "net/netip"

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
