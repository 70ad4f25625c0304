package dataplane

import (
	"errors"
	"syscall"
)

// A Port moves Ethernet frames in batches. One goroutine reads; writes may
// come from several goroutines, so WriteBatch serialises internally (one
// lock per batch, not per frame).
//
// ReadBatch blocks until at least one frame is available, then fills
// bufs[i][off:off+sizes[i]] for i < n with as many frames as are ready
// without blocking again. len(sizes) >= len(bufs); each bufs[i] must have
// room for off + the largest frame the port can deliver. Frames that do
// not fit are dropped and counted by the port, never truncated.
//
// WriteBatch sends every frame bufs[i] (the whole slice; callers slice off
// their headroom). It returns the number sent; a frame the device refuses
// is skipped, not retried. Neither call keeps a reference to a buffer after
// it returns, and neither allocates in steady state.
//
// Close unblocks a ReadBatch in progress, which then returns net.ErrClosed.
// A port whose device disappears returns ErrPortGone from ReadBatch.
type Port interface {
	ReadBatch(bufs [][]byte, sizes []int, off int) (n int, err error)
	WriteBatch(bufs [][]byte) (n int, err error)
	BatchSize() int
	Close() error
}

// A Queue is one queue of a port: its own receive path, read by its own
// goroutine, and its own transmit path. ReadBatch and WriteBatch are as
// Port's. A Port is a Queue (its first).
type Queue interface {
	ReadBatch(bufs [][]byte, sizes []int, off int) (n int, err error)
	WriteBatch(bufs [][]byte) (n int, err error)
}

// A MultiQueuePort is a Port with several queues: a multi-queue TAP (one
// fd per queue) or AF_PACKET sockets in one fanout group. The kernel
// spreads received frames over the queues by flow, so the frames of one
// flow stay in order on one queue.
//
// The switch reads every queue with a goroutine of its own ("lane" i
// reads queue i) and has lane i write to queue i of every egress port, so
// the lanes of one port never wait for each other's locks: each queue has
// its own receive state (buffers, super-frame backlog) and transmit lock.
// Close closes every queue; a port that is not a MultiQueuePort has one
// queue, itself.
type MultiQueuePort interface {
	Port
	// Queues returns the queues, at least one; Queues()[0] is what the
	// Port's own ReadBatch and WriteBatch use. The slice is the port's:
	// callers must not change it.
	Queues() []Queue
}

// MaxQueues bounds the queues of one port and the switch's readers per
// port (Config.Workers).
const MaxQueues = 16

// ErrPortGone is returned by ReadBatch when the port's device has
// disappeared (deleted veth, unplugged NIC). The switch marks the port down
// and keeps running.
var ErrPortGone = errors.New("port device is gone")

// A ReadReadier is a port or tunnel queue that can say, without blocking
// and without reading, whether ReadBatch would return at once (frames
// waiting in the device or left over in the queue, or an error to
// report). Busy polling (Config.BusyPoll) needs it; a queue without it is
// read the ordinary way.
type ReadReadier interface {
	ReadReady() bool
}

// A PollConner is a ReadReadier whose readiness the kernel can report on
// one file descriptor (readable exactly when ReadReady would say true,
// apart from frames the queue holds itself). Busy-polling readers of such
// queues sleep on the switch's busypoll.Waker when the switch is idle,
// instead of in Go's netpoller each.
type PollConner interface {
	PollConn() syscall.RawConn
}
