package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxswitch/vxswitch/fdb"
	"github.com/vxswitch/vxswitch/internal/busypoll"
)

var (
	ErrNoSuchPort = errors.New("no such port")
	ErrPortExists = errors.New("port already exists")
)

// TunnelName is the port name under which FDB entries behind the tunnel
// are shown.
const TunnelName = "vxlan"

// Config configures a Switch.
type Config struct {
	Bridge string
	FDB    *fdb.Table
	Logger *slog.Logger
	// Open opens the device behind a port. Nil: OpenDevice (TAP for
	// internal ports, AF_PACKET for system ports). Tests pass fakes.
	Open func(PortConfig) (Port, error)
	// Workers is how many queues the switch asks each port's device for
	// (PortConfig.Queues, when the port does not set its own), and so how
	// many goroutines read each port; the tunnel is opened with as many
	// by its owner. 0 means 1; more than MaxQueues means MaxQueues. The
	// switch reads every queue a device has, whatever this says.
	Workers int
	// BusyPoll, when above 0, keeps every reader polling its queue
	// (without sleeping) until the switch has read no frame for this long,
	// and then parks them on a busypoll.Waker, which wakes them all when
	// any of their queues has a frame: a wake-up per frame is what makes
	// sparse traffic (ping) slow, and polling trades CPU for it, like
	// Linux's net.core.busy_poll or Open vSwitch's PMD threads. The window
	// is the switch's, not each reader's, and readers do not park in Go's
	// netpoller one by one: one parked there while others spin would be
	// woken late (see busypoll.Waker). Queues that are not ReadReadiers
	// are read the ordinary way; those that are not PollConners park in
	// ReadBatch.
	BusyPoll time.Duration
}

// TunnelConfig says how VLANs map onto the tunnel.
type TunnelConfig struct {
	// VNIs maps VLAN -> VNI. Nil (and no TrunkVNI) means VNI = VLAN.
	VNIs map[uint16]uint32
	// TrunkVNI, when HasTrunkVNI, carries every VLAN in one VNI with the
	// 802.1Q tag kept in the inner frame (an OVS vxlan port without tag).
	TrunkVNI    uint32
	HasTrunkVNI bool
}

// Switch is one learning Ethernet switch: its ports, its FDB and,
// optionally, a VXLAN tunnel. One goroutine per queue of each port (and
// of the tunnel) reads a batch, forwards it and writes to the egress
// ports: the goroutine of queue i (lane i) writes through queue i of
// each egress port, so the lanes of a port share no lock (see
// MultiQueuePort).
type Switch struct {
	cfg Config
	fdb *fdb.Table
	log *slog.Logger

	// table is the read-mostly forwarding state, swapped whole by the
	// control path (under mu) and read by workers without locks.
	table atomic.Pointer[portTable]

	mu     sync.Mutex // serialises control-path changes; guards ports, tunnel, closed
	ports  []*port    // index = PortID; nil = free slot
	tunnel *port      // nil without a tunnel
	closed bool

	wg sync.WaitGroup // readers

	activity *busypoll.Activity // when a reader last read a frame; busy polling only
	waker    *busypoll.Waker    // parks busy-polling readers while the switch is idle; nil without

	// turns lets a flooded reader give readers with frames waiting a
	// turn (see busypoll.Watch); nil where epoll is missing. readerIDs
	// numbers the readers in it.
	turns     *busypoll.Watch
	readerIDs atomic.Int32
}

// port is one switch port (or the tunnel, which has tun set and dev nil).
type port struct {
	id   fdb.PortID
	cfg  PortConfig
	dev  Port
	tun  Tunnel
	tcfg TunnelConfig
	// The device's queues, set before the port is published and not
	// changed after: queues for a local port, tunQueues for the tunnel.
	// Lane i reads queue i and writes to queue i modulo their number.
	queues    []Queue
	tunQueues []TunnelQueue
	up        atomic.Bool
	ctr       counters
	readers   sync.WaitGroup // one per queue; Wait returns when all exited
}

// newPort makes the switch port id for device dev, up, with dev's queues.
func newPort(id fdb.PortID, pc PortConfig, dev Port) *port {
	p := &port{id: id, cfg: pc, dev: dev, queues: []Queue{dev}}
	if mq, ok := dev.(MultiQueuePort); ok && len(mq.Queues()) > 0 {
		p.queues = mq.Queues()
	}
	p.up.Store(true)
	return p
}

// newTunnelPort makes the tunnel's port id, up, with t's queues.
func newTunnelPort(id fdb.PortID, t Tunnel, tc TunnelConfig) *port {
	p := &port{id: id, cfg: PortConfig{Name: TunnelName, Mode: ModeTrunk}, tun: t, tcfg: tc, tunQueues: []TunnelQueue{t}}
	if mq, ok := t.(MultiQueueTunnel); ok && len(mq.Queues()) > 0 {
		p.tunQueues = mq.Queues()
	}
	p.up.Store(true)
	return p
}

// portTable is an immutable snapshot of the forwarding state.
type portTable struct {
	byID   []*port              // index = PortID
	flood  [MaxVLAN + 1][]*port // local members of each VLAN
	tunnel *port
	// vlanVNI maps VLAN -> VNI for the tunnel; vlanHasVNI marks mapped VLANs.
	vlanVNI    [MaxVLAN + 1]uint32
	vlanHasVNI VLANSet
	vniVLAN    map[uint32]uint16
}

// New makes a switch with no ports.
func New(cfg Config) *Switch {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FDB == nil {
		cfg.FDB = fdb.New(fdb.Config{Logger: cfg.Logger})
	}
	if cfg.Open == nil {
		cfg.Open = defaultOpen
	}
	cfg.Workers = min(max(cfg.Workers, 1), MaxQueues)
	s := &Switch{cfg: cfg, fdb: cfg.FDB, log: cfg.Logger}
	if cfg.BusyPoll > 0 {
		s.activity = busypoll.NewActivity()
		w, err := busypoll.NewWaker(s.activity, cfg.BusyPoll)
		if err != nil {
			s.log.Warn("busy polling: readers sleep one by one", "err", err)
		} else {
			s.waker = w
		}
	}
	// With one worker the readers share one P, and a flooded one keeps
	// the others from it; with more, the flooded lanes can still take
	// every P now and then (ping p99 0.2-0.8 s under a flood with
	// workers: 2 without turns, 4 ms with them).
	if t, err := busypoll.NewWatch(cfg.BusyPoll > 0); err != nil {
		s.log.Warn("a flooded port may hold up the others for up to 10 ms a frame", "err", err)
	} else {
		s.turns = t
	}
	s.table.Store(&portTable{})
	return s
}

// FDB returns the switch's forwarding database.
func (s *Switch) FDB() *fdb.Table { return s.fdb }

// AddPort opens the port's device, with pc.Queues queues (Config.Workers
// when 0), and starts forwarding on it: one reader per queue the device
// has.
func (s *Switch) AddPort(pc PortConfig) (fdb.PortID, error) {
	if pc.Queues == 0 {
		pc.Queues = s.cfg.Workers
	}
	if err := pc.Normalize(); err != nil {
		return fdb.NoPort, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fdb.NoPort, errors.New("switch is closed")
	}
	if pc.Name == TunnelName || s.byNameLocked(pc.Name) != nil {
		return fdb.NoPort, fmt.Errorf("port %q: %w", pc.Name, ErrPortExists)
	}
	dev, err := s.cfg.Open(pc)
	if err != nil {
		return fdb.NoPort, err
	}
	if pc.MTU == 0 && pc.Type == PortSystem {
		pc.MTU = linkMTU(pc.Name) // egress limit: the interface's own MTU
	}
	id := s.freeIDLocked()
	p := newPort(id, pc, dev)
	if int(id) == len(s.ports) {
		s.ports = append(s.ports, p)
	} else {
		s.ports[id] = p
	}
	s.fdb.SetPortLimit(id, pc.MACLimit)
	s.rebuildLocked()
	s.startReaders(p, len(p.queues))
	s.log.Info("port added", "port", pc.Name, "type", pc.Type, "vlan_mode", pc.Mode.String(), "id", id,
		"queues", len(p.queues))
	return id, nil
}

// DelPort stops a port, closes its device (removing a TAP the switch
// created) and purges its FDB entries.
func (s *Switch) DelPort(name string) error {
	s.mu.Lock()
	p := s.byNameLocked(name)
	if p == nil {
		s.mu.Unlock()
		return fmt.Errorf("port %q: %w", name, ErrNoSuchPort)
	}
	s.ports[p.id] = nil
	s.rebuildLocked()
	s.mu.Unlock()

	err := p.dev.Close()
	if s.waker != nil {
		s.waker.Kick() // a reader parked there must see that its queue closed
	}
	p.readers.Wait()
	s.fdb.PurgePort(p.id)
	s.fdb.SetPortLimit(p.id, 0)
	s.log.Info("port deleted", "port", name)
	return err
}

// SetTunnel attaches the VXLAN tunnel and starts reading from it, one
// reader per queue when it is a MultiQueueTunnel. The tunnel gets its own
// PortID, shown as "vxlan".
func (s *Switch) SetTunnel(t Tunnel, tc TunnelConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tunnel != nil {
		return errors.New("the switch already has a tunnel")
	}
	id := s.freeIDLocked()
	p := newTunnelPort(id, t, tc)
	if int(id) == len(s.ports) {
		s.ports = append(s.ports, p)
	} else {
		s.ports[id] = p
	}
	s.tunnel = p
	s.rebuildLocked()
	s.startReaders(p, len(p.tunQueues))
	return nil
}

// VNIs returns the VNIs the bridge carries, for the overlay's VNI filter
// and gossip: the trunk VNI if set; else the values of the VLAN map; else
// (VNI = VLAN) every VLAN a local port names by tag or trunks, plus VLAN 0
// when a trunk port carries untagged frames.
func (s *Switch) VNIs() []uint32 {
	t := s.table.Load()
	tp := t.tunnel
	if tp == nil {
		return nil
	}
	if tp.tcfg.HasTrunkVNI {
		return []uint32{tp.tcfg.TrunkVNI}
	}
	var out []uint32
	if tp.tcfg.VNIs != nil {
		for _, vni := range tp.tcfg.VNIs {
			out = append(out, vni)
		}
	} else {
		var named VLANSet
		for _, p := range t.byID {
			if p == nil || p.tun != nil {
				continue
			}
			if p.cfg.HasTag {
				named.Add(p.cfg.Tag)
			}
			for _, v := range p.cfg.Trunks.List() {
				named.Add(v)
			}
			if p.cfg.Mode == ModeTrunk && p.cfg.Carries(0) {
				named.Add(0)
			}
		}
		for _, v := range named.List() {
			out = append(out, uint32(v))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// PortStatus describes one port for show and stats.
type PortStatus struct {
	ID       fdb.PortID
	Config   PortConfig
	Up       bool
	Counters PortCounters
}

// Ports lists the local ports in ID order (the tunnel is not included).
func (s *Switch) Ports() []PortStatus {
	t := s.table.Load()
	out := make([]PortStatus, 0, len(t.byID))
	for _, p := range t.byID {
		if p == nil || p.tun != nil {
			continue
		}
		out = append(out, PortStatus{ID: p.id, Config: p.cfg, Up: p.up.Load(), Counters: p.counters()})
	}
	return out
}

// counters snapshots a port's counters, with the drops its device counted
// below the pipeline (frames too big for a buffer, offload work that could
// not be done, frames for a device that was down, frames the kernel dropped
// because the reader fell behind).
func (p *port) counters() PortCounters {
	c := p.ctr.snapshot()
	if dc, ok := p.dev.(DropCounter); ok {
		d := dc.DropCounts()
		c.Drops["rx_too_big"] += d.RxTooBig
		c.Drops["rx_offload"] += d.RxOffload
		c.Drops["port_down"] += d.TxDown
		c.Drops["rx_overflow"] += d.RxOverflow
	}
	return c
}

// TunnelStats returns the switch-side counters of the tunnel port.
func (s *Switch) TunnelStats() (PortCounters, bool) {
	t := s.table.Load()
	if t.tunnel == nil {
		return PortCounters{}, false
	}
	return t.tunnel.ctr.snapshot(), true
}

// PortByName finds a port's ID (the tunnel's under TunnelName).
func (s *Switch) PortByName(name string) (fdb.PortID, bool) {
	for _, p := range s.table.Load().byID {
		if p != nil && p.cfg.Name == name {
			return p.id, true
		}
	}
	return fdb.NoPort, false
}

// PortName names a port ID; "" if there is none.
func (s *Switch) PortName(id fdb.PortID) string {
	t := s.table.Load()
	if int(id) < len(t.byID) && t.byID[id] != nil {
		return t.byID[id].cfg.Name
	}
	return ""
}

// TunnelPortID is the tunnel's port ID, or fdb.NoPort without a tunnel.
func (s *Switch) TunnelPortID() fdb.PortID {
	if tp := s.table.Load().tunnel; tp != nil {
		return tp.id
	}
	return fdb.NoPort
}

// Close stops every reader and closes every port (removing TAPs) and the
// tunnel. It is idempotent.
func (s *Switch) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ports := slices.Clone(s.ports)
	s.mu.Unlock()
	var errs []error
	for _, p := range ports {
		if p == nil {
			continue
		}
		if p.dev != nil {
			errs = append(errs, p.dev.Close())
		} else {
			errs = append(errs, p.tun.Close())
		}
	}
	if s.waker != nil {
		errs = append(errs, s.waker.Close())
	}
	s.wg.Wait()
	if s.turns != nil {
		errs = append(errs, s.turns.Close()) // every reader has exited
	}
	return errors.Join(errs...)
}

// startReaders starts the n readers of p, lanes 0 to n-1.
func (s *Switch) startReaders(p *port, n int) {
	s.wg.Add(n)
	p.readers.Add(n)
	for lane := range n {
		go s.readLoop(p, lane)
	}
}

// Workers is Config.Workers as the switch uses it (1-MaxQueues).
func (s *Switch) Workers() int { return s.cfg.Workers }

func (s *Switch) byNameLocked(name string) *port {
	for _, p := range s.ports {
		if p != nil && p.cfg.Name == name {
			return p
		}
	}
	return nil
}

func (s *Switch) freeIDLocked() fdb.PortID {
	for i, p := range s.ports {
		if p == nil {
			return fdb.PortID(i)
		}
	}
	return fdb.PortID(len(s.ports))
}

// rebuildLocked makes a new forwarding snapshot from s.ports and s.tunnel.
func (s *Switch) rebuildLocked() {
	t := &portTable{byID: slices.Clone(s.ports), tunnel: s.tunnel}
	for _, p := range s.ports {
		if p == nil || p.tun != nil {
			continue
		}
		for v := 0; v <= MaxVLAN; v++ {
			if p.cfg.Carries(uint16(v)) {
				t.flood[v] = append(t.flood[v], p)
			}
		}
	}
	if tp := s.tunnel; tp != nil {
		t.vniVLAN = make(map[uint32]uint16)
		switch {
		case tp.tcfg.HasTrunkVNI:
			// Every VLAN goes in TrunkVNI; the inner tag says which.
		case tp.tcfg.VNIs != nil:
			for vlan, vni := range tp.tcfg.VNIs {
				t.vlanVNI[vlan] = vni
				t.vlanHasVNI.Add(vlan)
				t.vniVLAN[vni] = vlan
			}
		default:
			for v := 0; v <= MaxVLAN; v++ {
				t.vlanVNI[v] = uint32(v)
				t.vlanHasVNI.Add(uint16(v))
				t.vniVLAN[uint32(v)] = uint16(v)
			}
		}
	}
	s.table.Store(t)
}
