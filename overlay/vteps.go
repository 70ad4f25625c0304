package overlay

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Sources of a VTEP. A VTEP may be known from several sources at once
// (configured and announced by gossip); removing it from one source keeps
// it while another still names it.
const (
	SourceStatic = "static" // configured remote: serves every VNI of the bridge
	SourceGossip = "gossip" // gossip member: serves the VNIs it announces
)

// VTEPInfo describes one remote VTEP.
type VTEPInfo struct {
	Addr netip.Addr
	Port uint16
	// Source is "static" or "gossip", or both joined by a comma
	// ("static,gossip") when both name the address.
	Source string
	// VNIs are the VNIs of this bridge whose flood lists hold the VTEP,
	// ascending.
	VNIs []uint32
	// Transmit counters: copies sent to this VTEP, their inner bytes, and
	// copies dropped (any tx_ reason).
	TxPackets, TxBytes, TxDrops uint64
}

// vtepStats outlives snapshots: it belongs to the address for as long as
// any source names it.
type vtepStats struct {
	txPackets, txBytes, txDrops atomic.Uint64
}

// vtep is a remote VTEP as the data path sees it. Immutable once in a
// snapshot, except for the counters behind stats.
type vtep struct {
	dst    netip.AddrPort
	idx    int32 // position in address order, 0..len(byAddr)-1: a sort key for WriteBatch
	source string
	vnis   []uint32
	stats  *vtepStats
}

// vtepSnapshot is read by the data path without locks and never modified
// after it is published; the control plane builds a new one on every change.
type vtepSnapshot struct {
	vnis   map[uint32]struct{} // VNIs this bridge carries
	byAddr map[netip.Addr]*vtep
	flood  map[uint32][]*vtep // per VNI, sorted by address, no duplicates
}

type regKey struct {
	addr   netip.Addr
	source string
}

type registration struct {
	port uint16
	vnis []uint32 // for SourceStatic, empty means every VNI of the bridge
}

// vtepTable holds the remotes and VNIs and publishes snapshots of them.
type vtepTable struct {
	defPort uint16
	snap    atomic.Pointer[vtepSnapshot]

	mu    sync.Mutex // guards regs, vnis and stats, and serialises rebuilds
	regs  map[regKey]registration
	vnis  []uint32
	stats map[netip.Addr]*vtepStats
}

func newVTEPTable(defPort uint16) *vtepTable {
	t := &vtepTable{
		defPort: defPort,
		regs:    make(map[regKey]registration),
		stats:   make(map[netip.Addr]*vtepStats),
	}
	t.rebuildLocked()
	return t
}

func (t *vtepTable) load() *vtepSnapshot { return t.snap.Load() }

// add registers addr from source. port 0 means the default port. For
// SourceStatic an empty vnis means every VNI of the bridge, now and after
// later SetVNIs; for any other source vnis is exact. Adding an address
// again from the same source replaces its port and VNIs.
func (t *vtepTable) add(addr netip.Addr, port uint16, vnis []uint32, source string) {
	addr = addr.Unmap()
	if port == 0 {
		port = t.defPort
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.regs[regKey{addr, source}] = registration{port: port, vnis: sortedUnique(vnis)}
	if t.stats[addr] == nil {
		t.stats[addr] = new(vtepStats)
	}
	t.rebuildLocked()
}

// remove forgets addr as named by source; the VTEP leaves every flood
// list at once unless another source still names it.
func (t *vtepTable) remove(addr netip.Addr, source string) {
	addr = addr.Unmap()
	t.mu.Lock()
	defer t.mu.Unlock()
	k := regKey{addr, source}
	if _, ok := t.regs[k]; !ok {
		return
	}
	delete(t.regs, k)
	still := false
	for k := range t.regs {
		if k.addr == addr {
			still = true
			break
		}
	}
	if !still {
		delete(t.stats, addr)
	}
	t.rebuildLocked()
}

// setVNIs sets the VNIs this bridge carries.
func (t *vtepTable) setVNIs(vnis []uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.vnis = sortedUnique(vnis)
	t.rebuildLocked()
}

func (t *vtepTable) rebuildLocked() {
	s := &vtepSnapshot{
		vnis:   make(map[uint32]struct{}, len(t.vnis)),
		byAddr: make(map[netip.Addr]*vtep),
		flood:  make(map[uint32][]*vtep, len(t.vnis)),
	}
	for _, v := range t.vnis {
		s.vnis[v] = struct{}{}
	}
	// Merge the registrations of each address, in a stable order so the
	// port and source string do not depend on map iteration.
	keys := make([]regKey, 0, len(t.regs))
	for k := range t.regs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c := keys[i].addr.Compare(keys[j].addr); c != 0 {
			return c < 0
		}
		return sourceLess(keys[i].source, keys[j].source)
	})
	for i := 0; i < len(keys); {
		addr := keys[i].addr
		var sources []string
		var served []uint32
		port := t.regs[keys[i]].port // the first source in sourceLess order wins
		for ; i < len(keys) && keys[i].addr == addr; i++ {
			r := t.regs[keys[i]]
			sources = append(sources, keys[i].source)
			if keys[i].source == SourceStatic && len(r.vnis) == 0 {
				served = append(served, t.vnis...)
				continue
			}
			for _, v := range r.vnis {
				if _, ok := s.vnis[v]; ok {
					served = append(served, v)
				}
			}
		}
		v := &vtep{
			dst:    netip.AddrPortFrom(addr, port),
			idx:    int32(len(s.byAddr)),
			source: strings.Join(sources, ","),
			vnis:   sortedUnique(served),
			stats:  t.stats[addr],
		}
		s.byAddr[addr] = v
		for _, vni := range v.vnis {
			s.flood[vni] = append(s.flood[vni], v) // keys are sorted by address
		}
	}
	t.snap.Store(s)
}

// sourceLess orders "static" first, then the rest by name.
func sourceLess(a, b string) bool {
	if a == SourceStatic || b == SourceStatic {
		return a == SourceStatic && b != SourceStatic
	}
	return a < b
}

func (t *vtepTable) vteps() []VTEPInfo {
	s := t.load()
	out := make([]VTEPInfo, 0, len(s.byAddr))
	for _, v := range s.byAddr {
		out = append(out, VTEPInfo{
			Addr:      v.dst.Addr(),
			Port:      v.dst.Port(),
			Source:    v.source,
			VNIs:      slices.Clone(v.vnis),
			TxPackets: v.stats.txPackets.Load(),
			TxBytes:   v.stats.txBytes.Load(),
			TxDrops:   v.stats.txDrops.Load(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

func (t *vtepTable) isMember(addr netip.Addr) bool {
	_, ok := t.load().byAddr[addr.Unmap()]
	return ok
}

func sortedUnique(v []uint32) []uint32 {
	if len(v) == 0 {
		return nil
	}
	out := slices.Clone(v)
	slices.Sort(out)
	return slices.Compact(out)
}
