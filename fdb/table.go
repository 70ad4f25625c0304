package fdb

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Defaults for a zero Config.
const (
	DefaultSize  = 8192
	DefaultAging = 300 * time.Second
	// MaxSize bounds Config.Size: slab indices are int32 and each entry
	// costs about 32 bytes of slab plus its index slot, so 64M entries is
	// already several gigabytes.
	MaxSize = 1 << 26
)

var (
	// ErrTableFull is returned by AddStatic when every entry is static,
	// so there is no learned entry left to evict.
	ErrTableFull = errors.New("fdb: table full of static entries")
	// ErrMulticast is returned by AddStatic for a group MAC: multicast and
	// broadcast frames are always flooded, so such an entry would never
	// be used.
	ErrMulticast = errors.New("fdb: multicast MAC cannot be an entry")
	// ErrNoPort is returned by AddStatic for a Dest on NoPort.
	ErrNoPort = errors.New("fdb: entry needs a port")
)

// Config configures a Table.
type Config struct {
	Size   int           // mac-table-size; 0 -> DefaultSize; at most MaxSize
	Aging  time.Duration // mac-aging; 0 -> DefaultAging
	Logger *slog.Logger  // MAC moves, at most 10 lines a second; nil = discard
}

// Table is the forwarding database. Create it with New. All methods are
// safe for concurrent use.
//
// Storage is allocated once in New: a slab of Size nodes with a free list,
// a map from Key to slab index sized for Size keys, and per-port LRU lists
// threaded through the slab by int32 index. Look-ups, refreshes, learns and
// evictions therefore allocate nothing, except the first time a port or a
// remote VTEP is seen.
//
// A learned entry's LastSeen is the now of its last write, raised when
// needed to the newest LastSeen on its port, so that each port's entries
// stay in LastSeen order in O(1) even when concurrent batches apply their
// learns out of clock order (see pushLRU).
type Table struct {
	log *slog.Logger // immutable after New

	// mu guards every field below. The hot path holds it for reading
	// across a whole batch (BeginRead/EndRead) and for writing across a
	// whole LearnBatch; control calls take it once per call.
	mu sync.RWMutex

	size  int32 // capacity in entries; len(nodes)
	aging int64 // learned entries expire when now-lastSeen >= aging (ns)

	index  map[Key]int32 // key -> slot in nodes, for every entry
	nodes  []node        // slab; a slot is in use iff flagUsed
	free   int32         // head of the free list through node.next
	count  int32         // entries in use
	static int32         // of which static

	// ports is dense, in order of first use; ports[0] is a sentinel so
	// that portIdx can use 0 for "no state yet". portIdx is indexed by
	// PortID and grown on first use of a port: 2 bytes a PortID.
	ports   []portState
	portIdx []uint16

	// vteps interns remote VTEP addresses so that nodes hold a 4-byte
	// index instead of a netip.Addr (which holds a pointer and would make
	// the garbage collector scan the slab). vteps[0] is the zero Addr.
	vteps    []vtepSlot
	vtepIdx  map[netip.Addr]uint32
	vtepFree uint32 // head of the free slots, through vtepSlot.nextFree; 0 = none

	learned, moves, evictions, aged, refused uint64

	// Move-log rate limit: lines logged in second logSec, and moves not
	// logged since the last line.
	logSec     int64
	logged     int
	suppressed uint64
}

// New returns an empty table with all its storage allocated.
func New(cfg Config) *Table {
	size := cfg.Size
	if size <= 0 {
		size = DefaultSize
	}
	size = min(size, MaxSize)
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	t := &Table{
		log:     lg,
		size:    int32(size),
		index:   make(map[Key]int32, size),
		nodes:   make([]node, size),
		ports:   make([]portState, 1, 8),
		vteps:   make([]vtepSlot, 1, 8),
		vtepIdx: make(map[netip.Addr]uint32),
		logSec:  -1,
	}
	t.setAging(cfg.Aging)
	for i := range t.nodes {
		t.nodes[i].next = int32(i + 1)
	}
	t.nodes[size-1].next = nilIdx
	return t
}

// BeginRead takes the read lock for a batch of LookupLocked and NeedsLearn
// calls. Hold it for one batch only: learns wait for it.
func (t *Table) BeginRead() { t.mu.RLock() }

// EndRead releases the read lock taken by BeginRead.
func (t *Table) EndRead() { t.mu.RUnlock() }

// LookupLocked returns where frames for k go. The caller holds the read
// lock (BeginRead). It does not allocate.
func (t *Table) LookupLocked(k Key) (Dest, bool) {
	i, ok := t.index[k]
	if !ok {
		return Dest{}, false
	}
	return t.dest(&t.nodes[i]), true
}

// NeedsLearn reports whether a frame with source k arriving from d at time
// now needs a write (a LearnReq for LearnBatch). The caller holds the read
// lock. It is true when k is absent, when k sits on another Dest (a move),
// or when k was last seen in an earlier second than now; never for a
// multicast MAC, a Dest on NoPort, or a static entry (traffic does not
// move a static entry). It does not allocate.
func (t *Table) NeedsLearn(k Key, d Dest, now int64) bool {
	if k.MAC.IsMulticast() || d.Port == NoPort {
		return false
	}
	i, ok := t.index[k]
	if !ok {
		return true
	}
	n := &t.nodes[i]
	if n.flags&flagStatic != 0 {
		return false
	}
	if !t.sameDest(n, d) {
		return true
	}
	return now/1e9 > n.lastSeen/1e9
}

// Lookup is LookupLocked with its own read lock, for the control path.
func (t *Table) Lookup(k Key) (Dest, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.LookupLocked(k)
}

// Len returns the number of entries, static ones included.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return int(t.count)
}

// Stats returns the table-wide counters.
func (t *Table) Stats() Stats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return Stats{
		Entries:   int(t.count),
		Static:    int(t.static),
		Capacity:  int(t.size),
		Learned:   t.learned,
		Moves:     t.moves,
		Evictions: t.evictions,
		Aged:      t.aged,
		Refused:   t.refused,
	}
}

// PortStats returns p's counters: its entries (static ones included) and
// the moves onto it. A port never seen has zero counters.
func (t *Table) PortStats(p PortID) PortStats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	pi := t.portOf(p)
	if pi == 0 {
		return PortStats{}
	}
	ps := &t.ports[pi]
	return PortStats{Entries: int(ps.learned + ps.static), Moves: ps.moves}
}

// SetAging sets mac-aging; d <= 0 means DefaultAging. It takes effect at
// the next Age.
func (t *Table) SetAging(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setAging(d)
}

func (t *Table) setAging(d time.Duration) {
	if d <= 0 {
		d = DefaultAging
	}
	t.aging = int64(d)
}

// SetPortLimit sets p's mac-limit: at most n learned entries (static ones
// do not count); 0 means unlimited. A port at its limit that learns a new
// MAC evicts its own least recently seen entry. Lowering the limit below
// what p holds evicts p's oldest entries at once, so the limit always holds.
func (t *Table) SetPortLimit(p PortID, n int) {
	if p == NoPort {
		return
	}
	n = max(0, min(n, MaxSize))
	t.mu.Lock()
	defer t.mu.Unlock()
	pi := t.portOf(p)
	if pi == 0 {
		if n == 0 {
			return
		}
		pi = t.portFor(p)
	}
	ps := &t.ports[pi]
	ps.limit = int32(n)
	for ps.limit > 0 && ps.learned > ps.limit {
		t.remove(ps.tail)
		t.evictions++
	}
}
