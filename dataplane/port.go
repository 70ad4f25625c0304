package dataplane

import "errors"

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

// ErrPortGone is returned by ReadBatch when the port's device has
// disappeared (deleted veth, unplugged NIC). The switch marks the port down
// and keeps running.
var ErrPortGone = errors.New("port device is gone")
