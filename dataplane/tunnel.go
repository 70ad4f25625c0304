package dataplane

import "net/netip"

// TunnelMeta travels beside each frame that crosses the tunnel.
type TunnelMeta struct {
	VNI uint32
	// VTEP is the sender on receive. On send it is the destination VTEP,
	// or the zero Addr to flood the frame to every VTEP that serves VNI
	// (head-end replication).
	VTEP netip.Addr
}

// A Tunnel is the VXLAN side of the switch as the forwarding pipeline sees
// it; package overlay implements it. Frames are plain Ethernet frames; the
// tunnel adds and removes the VXLAN header.
//
// ReadBatch blocks until at least one VXLAN packet has arrived, then for
// i < n puts the decapsulated inner frame at bufs[i][off:off+sizes[i]] and
// its VNI and sender in meta[i]. Packets that are malformed, for a VNI the
// tunnel does not carry, or from a sender it does not accept are dropped
// and counted inside the tunnel, never returned.
//
// WriteBatch encapsulates the frame bufs[i][offs[i]:] and sends it per
// meta[i]. offs[i] >= TunnelHeadroom: the tunnel writes the VXLAN header
// into bufs[i][offs[i]-TunnelHeadroom:offs[i]] and nothing else. It never
// blocks on one unreachable VTEP.
//
// Close unblocks ReadBatch, which then returns net.ErrClosed.
type Tunnel interface {
	ReadBatch(bufs [][]byte, sizes []int, meta []TunnelMeta, off int) (n int, err error)
	WriteBatch(bufs [][]byte, offs []int, meta []TunnelMeta) (n int, err error)
	BatchSize() int
	Close() error
}

// TunnelHeadroom is what a Tunnel may write in front of a frame: the
// 8-byte VXLAN header (outer IP/UDP headers are added by the kernel).
const TunnelHeadroom = 8

// A TunnelQueue is one queue of a tunnel: a receive socket, read by its
// own goroutine, and a transmit path of its own. ReadBatch and WriteBatch
// are as Tunnel's. A Tunnel is a TunnelQueue (its first).
type TunnelQueue interface {
	ReadBatch(bufs [][]byte, sizes []int, meta []TunnelMeta, off int) (n int, err error)
	WriteBatch(bufs [][]byte, offs []int, meta []TunnelMeta) (n int, err error)
}

// A MultiQueueTunnel is a Tunnel with several queues, such as UDP sockets
// bound to one address with SO_REUSEPORT, among which the kernel spreads
// packets by flow. As with a MultiQueuePort, lane i of the switch reads
// queue i and writes to the tunnel through queue i.
type MultiQueueTunnel interface {
	Tunnel
	// Queues returns the queues, at least one; Queues()[0] is what the
	// Tunnel's own ReadBatch and WriteBatch use. Callers must not change
	// the slice.
	Queues() []TunnelQueue
}
