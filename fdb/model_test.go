package fdb

import (
	"net/netip"
	"slices"
	"time"
)

// model is the obviously-correct FDB that FuzzTable checks the Table
// against: a map and linear scans, no lists, no slab, no interning.
type model struct {
	size      int
	aging     int64
	m         map[Key]*modelEntry
	limit     map[PortID]int
	seq       uint64 // order of writes, to break lastSeen ties like the LRU lists do
	stats     Stats
	portMoves map[PortID]uint64
}

type modelEntry struct {
	d        Dest
	static   bool
	lastSeen int64
	seq      uint64
}

func newModel(size int, aging time.Duration) *model {
	return &model{size: size, aging: int64(aging), m: map[Key]*modelEntry{},
		limit: map[PortID]int{}, portMoves: map[PortID]uint64{}}
}

// touch records a write of learned entry e at now. No entry is stamped
// older than the newest other learned entry on its port (see pushLRU).
func (m *model) touch(e *modelEntry, now int64) {
	m.seq++
	e.seq, e.lastSeen = m.seq, now
	for _, o := range m.m {
		if o != e && !o.static && o.d.Port == e.d.Port {
			e.lastSeen = max(e.lastSeen, o.lastSeen)
		}
	}
}

// learnedOn lists the learned entries on p, least recently seen first.
func (m *model) learnedOn(p PortID) []Key {
	var ks []Key
	for k, e := range m.m {
		if !e.static && e.d.Port == p {
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, func(a, b Key) int {
		ea, eb := m.m[a], m.m[b]
		if ea.lastSeen != eb.lastSeen {
			return cmpInt(ea.lastSeen, eb.lastSeen)
		}
		return cmpInt(ea.seq, eb.seq)
	})
	return ks
}

func cmpInt[T int64 | uint64 | int](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (m *model) evict(k Key) { delete(m.m, k); m.stats.Evictions++ }

// victim: the oldest learned entry of the port with the most; ties go to
// the port with the older oldest entry, then to the lower PortID.
func (m *model) victim() (Key, bool) {
	var ports []PortID
	for _, e := range m.m {
		ports = append(ports, e.d.Port)
	}
	slices.Sort(ports)
	var best []Key
	for _, p := range slices.Compact(ports) {
		ks := m.learnedOn(p)
		if len(ks) == 0 {
			continue
		}
		if best == nil || len(ks) > len(best) ||
			len(ks) == len(best) && m.m[ks[0]].lastSeen < m.m[best[0]].lastSeen {
			best = ks
		}
	}
	if best == nil {
		return Key{}, false
	}
	return best[0], true
}

func (m *model) atLimit(p PortID) bool {
	return m.limit[p] > 0 && len(m.learnedOn(p)) >= m.limit[p]
}

func (m *model) needsLearn(k Key, d Dest, now int64) bool {
	if k.MAC.IsMulticast() || d.Port == NoPort {
		return false
	}
	e, ok := m.m[k]
	return !ok || !e.static && (e.d != d || now/1e9 > e.lastSeen/1e9)
}

func (m *model) learn(k Key, d Dest, now int64) {
	if !m.needsLearn(k, d, now) {
		return
	}
	e, ok := m.m[k]
	switch {
	case !ok:
		if m.atLimit(d.Port) {
			m.evict(m.learnedOn(d.Port)[0])
		} else if len(m.m) >= m.size {
			v, ok := m.victim()
			if !ok {
				m.stats.Refused++
				return
			}
			m.evict(v)
		}
		e = &modelEntry{d: d}
		m.m[k] = e
		m.stats.Learned++
	case e.d == d: // refresh
	default: // move
		if e.d.Port != d.Port && m.atLimit(d.Port) {
			m.evict(m.learnedOn(d.Port)[0])
		}
		e.d = d
		m.stats.Moves++
		m.portMoves[d.Port]++
	}
	m.touch(e, now)
}

func (m *model) addStatic(k Key, d Dest) error {
	switch {
	case k.MAC.IsMulticast():
		return ErrMulticast
	case d.Port == NoPort:
		return ErrNoPort
	}
	if _, ok := m.m[k]; !ok && len(m.m) >= m.size {
		v, ok := m.victim()
		if !ok {
			return ErrTableFull
		}
		m.evict(v)
	}
	m.m[k] = &modelEntry{d: d, static: true}
	return nil
}

func (m *model) removeIf(match func(Key, *modelEntry) bool) int {
	n := 0
	for k, e := range m.m {
		if match(k, e) {
			delete(m.m, k)
			n++
		}
	}
	return n
}

func (m *model) flush(f Filter) int {
	return m.removeIf(func(k Key, e *modelEntry) bool {
		return (f.Static || !e.static) && (!f.HasVLAN || k.VLAN == f.VLAN) &&
			(f.Port == NoPort || e.d.Port == f.Port) && (!f.VTEP.IsValid() || e.d.VTEP == f.VTEP)
	})
}

func (m *model) age(now int64) int {
	n := m.removeIf(func(_ Key, e *modelEntry) bool { return !e.static && now-e.lastSeen >= m.aging })
	m.stats.Aged += uint64(n)
	return n
}

func (m *model) setLimit(p PortID, n int) {
	m.limit[p] = n
	for ks := m.learnedOn(p); n > 0 && len(ks) > n; ks = ks[1:] {
		m.evict(ks[0])
	}
}

// fuzzReader hands out the fuzz input a byte at a time, then zeros.
type fuzzReader []byte

func (r *fuzzReader) byte() byte {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return b
}

var fuzzVTEPs = []netip.Addr{
	netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
	netip.MustParseAddr("2001:db8::3"), netip.MustParseAddr("198.51.100.9"), // never learned
}

// 30 unicast keys in VLANs 0 and 7, and a multicast one.
func (r *fuzzReader) key() Key {
	b := r.byte()
	k := key(uint16(b>>4&1)*7, int(b&0x0f))
	if b&0x0f == 0x0f {
		k.MAC[0] = 0x01
	}
	return k
}

// Local ports 0-3, the tunnel (port 9) behind three VTEPs, NoPort.
func (r *fuzzReader) dest() Dest {
	switch b := r.byte() % 8; {
	case b < 4:
		return port(PortID(b))
	case b < 7:
		return Dest{Port: 9, VTEP: fuzzVTEPs[b-4]}
	}
	return port(NoPort)
}

func (r *fuzzReader) port() PortID {
	if b := r.byte() % 7; b < 6 {
		return []PortID{0, 1, 2, 3, 9, 42}[b]
	}
	return NoPort
}
