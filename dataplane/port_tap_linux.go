package dataplane

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/busypoll"
	"github.com/vxswitch/vxswitch/internal/uring"
	"github.com/vxswitch/vxswitch/internal/vnet"
)

// InternalOptions tunes an internal port (a TAP the switch creates). The
// zero value is ready to use.
type InternalOptions struct {
	// MTU of the kernel-side interface; 0 leaves the kernel's default
	// (1500).
	MTU int
	// BatchSize is the most frames one ReadBatch returns; 0 means
	// DefaultBatchSize.
	BatchSize int
	// Queues is the number of TAP queues: 0 or 1 makes a single-queue
	// TAP; more (up to MaxQueues) makes a multi-queue TAP
	// (IFF_MULTI_QUEUE) with one fd per queue, returned as a
	// MultiQueuePort.
	Queues int
	// PlainIO reads and writes every frame with a system call of its own
	// instead of batches through io_uring (for tests: where io_uring
	// cannot be set up, ports fall back to this by themselves).
	PlainIO bool
}

// tapPort is an internal port: a TAP opened non-blocking on /dev/net/tun
// and wrapped in an os.File, so the fd is in Go's netpoller and Close
// wakes a reader. The TAP is not persistent: closing the fd removes the
// interface, wherever its kernel side is. A multi-queue TAP is one tapPort
// per queue fd (see OpenInternal); closing the last one removes it.
//
// The kernel-side MAC is left to the kernel (random, locally
// administered). The TAP has IFF_VNET_HDR, checksum offload and TSO
// (TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6): every frame carries a 10-byte
// virtio_net_hdr. The kernel hands over frames whose checksum it left
// unfinished (NEEDS_CSUM), which the port finishes, and TCP super-frames
// of up to 64 KiB, which the port cuts into wire-sized segments (see
// port_tap_vnet_linux.go). Frames written carry a zero header: complete
// frames, nothing for the kernel to do.
type tapPort struct {
	name  string
	file  *os.File
	rc    syscall.RawConn
	batch int

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// Receive side, used by the one ReadBatch goroutine. Each read is a
	// readv of three iovecs: the virtio_net_hdr scratch, the caller's
	// buffer, and the backlog's one slot as overflow: read() on a TAP
	// silently truncates a frame longer than the iovecs, so bytes landing
	// in the slot mean the frame did not fit the caller's buffer (dropped,
	// unless it is a super-frame, which is cut from the slot).
	rbufs  [][]byte
	rsizes []int
	roff   int
	rmax   int
	rn     int
	rerr   error
	riov   [3]unix.Iovec
	rhdr   [vnet.HdrLen]byte
	q      rxBacklog // one slot: a super-frame being cut, else the overflow
	readFn func(fd uintptr) bool
	// rxFinished counts frames whose checksum the port finished; only the
	// reader touches it (tests read it between ReadBatch calls).
	rxFinished uint64
	rxSuper    uint64 // super-frames received, likewise
	probe      *busypoll.Probe
	// rxRing, when not nil, reads the frames after a batch's first as
	// readv requests submitted together (see readRing); rxMu keeps Close
	// from closing it under a ReadBatch.
	rxMu     sync.Mutex
	rxRing   *uring.Ring
	rrIov    [][3]unix.Iovec
	rrHdr    [][vnet.HdrLen]byte
	rrTail   [][ringTail]byte
	rrRes    []int32
	rrNext   int // requests the next ring read asks for
	rrDoneFn func(k uint64, res int32)
	rxRings  uint64 // ring reads submitted (tests)

	// Send side, guarded by txMu: a writev of a zero virtio_net_hdr and
	// the frame.
	txMu    sync.Mutex
	wbufs   [][]byte
	wi      int
	wsent   int
	werr    error
	wiov    [2]unix.Iovec
	whdr    [vnet.HdrLen]byte // the header of the frame being written
	writeFn func(fd uintptr) bool
	// co merges consecutive TCP segments of a flow into one GSO frame
	// (userspace GRO); wpend is the frame it handed out that is still to
	// be written (after EAGAIN), holding wpendN of the batch's frames.
	co     *vnet.Coalescer
	wpend  []byte
	wpendN int
	// txRing, when not nil, takes the batch's writes as writev requests
	// submitted together (one io_uring_enter for up to Entries frames
	// instead of a system call each). Request k writes ringIov[k] and
	// holds ringN[k] of the batch's frames.
	txRing  *uring.Ring
	ringIov [][2]unix.Iovec
	ringHdr [][vnet.HdrLen]byte
	ringN   []int
	doneFn  func(k uint64, res int32)

	rxTooBig, rxOffload, txError, txDown atomic.Uint64
}

var (
	_ Port        = (*tapPort)(nil)
	_ ReadReadier = (*tapPort)(nil)
)

// OpenInternal creates the TAP name (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, with
// checksum offload and TSO) in the calling thread's network namespace and returns
// it as a Port. The interface is created down; SetupInternalLink moves it,
// addresses it and sets it up. Close removes it.
//
// With opts.Queues > 1 the TAP is multi-queue (IFF_MULTI_QUEUE): one fd
// per queue, each set up as above, and the Port is a MultiQueuePort whose
// queues are single-queue ports of their own (own receive state, own
// transmit lock). The kernel picks the queue of a frame it sends by flow
// hash, and steers a flow to the queue that last wrote a frame of it, so
// a flow stays on one queue.
func OpenInternal(name string, opts InternalOptions) (Port, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("internal port %q: interface name must be 1-%d bytes", name, unix.IFNAMSIZ-1)
	}
	if opts.Queues < 0 || opts.Queues > MaxQueues {
		return nil, fmt.Errorf("internal port %q: %d queues: want 1-%d", name, opts.Queues, MaxQueues)
	}
	files, err := openTAP(name, max(opts.Queues, 1))
	if err != nil {
		return nil, fmt.Errorf("internal port %q: %w", name, err)
	}
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	qs := make([]Port, len(files))
	for i, f := range files {
		rc, err := f.SyscallConn()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("internal port %q: %w", name, err)
		}
		q := newTAPQueue(name, f, rc, opts.BatchSize)
		if !opts.PlainIO {
			q.openRings()
		}
		qs[i] = q
	}
	if opts.MTU > 0 {
		if err := setMTU(name, opts.MTU); err != nil {
			closeAll()
			return nil, fmt.Errorf("internal port %q: %w", name, err)
		}
	}
	if len(qs) == 1 {
		return qs[0], nil
	}
	return newQueuedPort(qs), nil
}

// ringTail is the room behind the caller's buffer that each ring read
// has, so that with a worker's buffers (64 KiB from the offset) a frame
// as big as the backlog's slot still fits.
const ringTail = rxSlotSize - maxSuperFrame

// newTAPQueue makes the port of one TAP fd.
func newTAPQueue(name string, f *os.File, rc syscall.RawConn, batch int) *tapPort {
	p := &tapPort{name: name, file: f, rc: rc, batch: batch}
	p.riov[0].Base = &p.rhdr[0]
	p.riov[0].SetLen(len(p.rhdr))
	p.q = newRxBacklog(1)
	over := p.q.slot(0)
	p.riov[2].Base = &over[0]
	p.riov[2].SetLen(len(over))
	p.wiov[0].Base = &p.whdr[0]
	p.wiov[0].SetLen(len(p.whdr))
	p.readFn = p.read
	p.writeFn = p.write
	p.co = vnet.NewCoalescer()
	p.probe = busypoll.NewProbe(rc)
	return p
}

// BatchIOError says whether internal ports can batch their reads and
// writes through io_uring here: nil, or why not (kernel.io_uring_disabled,
// a seccomp filter that refuses io_uring_setup). Without it they read and
// write frame by frame, at about half the packet rate.
func BatchIOError() error {
	r, err := uring.New(2)
	if err != nil {
		return err
	}
	return r.Close()
}

// openRings gives the port an io_uring for its writes and one for its
// reads, sized for a batch; without them (io_uring disabled or filtered)
// it reads and writes frame by frame.
func (p *tapPort) openRings() {
	p.openTxRing()
	r := p.newRing()
	if r == nil {
		return
	}
	n := r.Entries()
	p.rxRing = r
	p.rrIov = make([][3]unix.Iovec, n)
	p.rrHdr = make([][vnet.HdrLen]byte, n)
	p.rrTail = make([][ringTail]byte, n)
	p.rrRes = make([]int32, n)
	p.rrNext = 2
	for k := range n {
		p.rrIov[k][0].Base = &p.rrHdr[k][0]
		p.rrIov[k][0].SetLen(vnet.HdrLen)
		p.rrIov[k][2].Base = &p.rrTail[k][0]
		p.rrIov[k][2].SetLen(ringTail)
	}
	p.rrDoneFn = func(k uint64, res int32) { p.rrRes[k] = res }
	// Frames behind a super-frame in a ring read wait in the backlog.
	p.q.grow(1 + n)
}

// newRing returns a ring for a batch, or nil where io_uring is unavailable.
func (p *tapPort) newRing() *uring.Ring {
	r, err := uring.New(uint32(min(p.batch, 256)))
	if err != nil {
		return nil
	}
	return r
}

func (p *tapPort) openTxRing() {
	r := p.newRing()
	if r == nil {
		return
	}
	n := r.Entries()
	p.txRing = r
	p.ringIov = make([][2]unix.Iovec, n)
	p.ringHdr = make([][vnet.HdrLen]byte, n)
	p.ringN = make([]int, n)
	for k := range n {
		p.ringIov[k][0].Base = &p.ringHdr[k][0]
		p.ringIov[k][0].SetLen(vnet.HdrLen)
	}
	p.doneFn = p.written
}

// openTAP creates the TAP name with n queues (IFF_MULTI_QUEUE when n > 1)
// and returns one file per queue. Each is a non-blocking /dev/net/tun fd
// with a 10-byte virtio_net_hdr, checksum offload and TSO, in Go's
// netpoller. On failure nothing stays open, so a TAP it created is gone.
func openTAP(name string, n int) ([]*os.File, error) {
	files := make([]*os.File, 0, n)
	for i := range n {
		f, err := openTAPQueue(name, n > 1)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			if n > 1 {
				err = fmt.Errorf("queue %d of %d: %w", i, n, err)
			}
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// openTAPQueue opens one fd of the TAP name, creating the TAP if it does
// not exist, and sets it up as openTAP says.
func openTAPQueue(name string, multi bool) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if multi {
		flags |= unix.IFF_MULTI_QUEUE
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create TAP (TUNSETIFF): %w", err)
	}
	if got := ifr.Name(); got != name {
		unix.Close(fd)
		return nil, fmt.Errorf("kernel named the TAP %q", got)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnet.HdrLen); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETVNETHDRSZ: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETOFFLOAD: %w", err)
	}
	// The fd is non-blocking, so os.NewFile puts it in the netpoller.
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

func (p *tapPort) BatchSize() int { return p.batch }

// DropCounts returns the frames the port dropped itself.
func (p *tapPort) DropCounts() PortDrops {
	return PortDrops{
		RxTooBig:  p.rxTooBig.Load() + p.q.tooBig.Load(),
		RxOffload: p.rxOffload.Load() + p.q.offload.Load(),
		TxError:   p.txError.Load(),
		TxDown:    p.txDown.Load(),
	}
}

// ReadBatch waits in the netpoller for the first frame, then keeps reading
// without blocking until the TAP is empty or the batch is full: one
// read per frame (a TAP has no batched read). Frames the kernel left with
// an unfinished checksum are finished in place. A frame larger than the
// buffer is dropped and counted (RxTooBig), as is one whose offload work
// cannot be done (RxOffload). When the interface is deleted it returns
// ErrPortGone.
func (p *tapPort) ReadBatch(bufs [][]byte, sizes []int, off int) (int, error) {
	p.rxMu.Lock()
	defer p.rxMu.Unlock()
	rmax := min(len(bufs), p.batch)
	if rmax == 0 {
		return 0, nil
	}
	// Segments of a super-frame left over from the last call come first.
	if out := p.q.drain(bufs[:rmax], sizes[:rmax], off); out > 0 {
		return out, nil
	}
	for {
		p.rbufs, p.rsizes, p.roff = bufs, sizes, off
		p.rmax = rmax
		p.rn, p.rerr = 0, nil
		err := p.rc.Read(p.readFn)
		n := p.rn
		p.rbufs, p.rsizes, p.riov[1].Base = nil, nil, nil
		if !p.q.empty() {
			// A super-frame ended the read: cut it behind the frames
			// before it.
			n += p.q.drain(bufs[n:rmax], sizes[n:rmax], off)
		}
		if err == nil {
			err = p.rerr
		}
		if n > 0 {
			// Frames read before an error are returned; the error comes
			// back on the next call.
			return n, nil
		}
		if err == nil {
			continue // a super-frame was dropped whole: wait again
		}
		switch {
		case p.closed.Load():
			return 0, net.ErrClosed
		case errors.Is(err, unix.EBADFD):
			return 0, ErrPortGone // the interface was deleted
		}
		return 0, fmt.Errorf("internal port %q: read: %w", p.name, err)
	}
}

// read is the RawConn.Read callback; it returns false to wait for the fd
// to become readable. It stops after a super-frame, which it leaves in the
// backlog.
func (p *tapPort) read(fd uintptr) bool {
	over := p.q.slots[0]
	for p.rn < p.rmax {
		if p.rn > 0 && p.rxRing != nil && p.rrNext > 1 && p.rmax-p.rn > 1 {
			// The TAP had a frame; the rest of the batch in one go.
			if !p.readRing(fd) {
				return true
			}
			continue
		}
		buf := p.rbufs[p.rn][p.roff:]
		p.riov[1].Base = unsafe.SliceData(buf)
		p.riov[1].SetLen(len(buf))
		// A raw syscall: the fd is non-blocking (see mmsg.Batch.Recv).
		r, _, e := unix.RawSyscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&p.riov[0])), uintptr(len(p.riov)))
		size := int(r) - vnet.HdrLen
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return p.rn > 0
		case e != 0:
			p.rerr = e
			return true
		case size > len(buf)+len(over):
			p.rxTooBig.Add(1)
			continue
		case size < 0: // cannot happen: the kernel writes the header first
			p.rxOffload.Add(1)
			continue
		}
		h, _ := vnet.Decode(p.rhdr[:])
		if h.GSO() != vnet.GSONone {
			p.toBacklog(buf, size, h)
			return true
		}
		if size > len(buf) {
			p.rxTooBig.Add(1)
			continue
		}
		if !p.finish(buf[:size], h) {
			p.rxOffload.Add(1)
			continue
		}
		p.rsizes[p.rn] = size
		p.rn++
	}
	return true
}

// ReadReady reports whether ReadBatch would return at once: segments of
// a super-frame are left over, or the TAP has a frame (or an error).
func (p *tapPort) ReadReady() bool { return !p.q.empty() || p.probe.Readable() }

// PollConn is the TAP queue's fd (PollConner).
func (p *tapPort) PollConn() syscall.RawConn { return p.rc }

// WriteBatch writes the frames in order, all inside one netpoller
// callback. Consecutive TCP segments of one flow are merged into one
// frame with a virtio_net_hdr asking for GSO (see vnet.Coalescer), so a
// bulk TCP stream costs one write() and one trip through the receiving
// stack per up to 64 KiB instead of per segment; every other frame is
// written alone with a zero header. A frame the TAP refuses (EINVAL for a
// runt) is skipped and counted; while the interface is down (EIO) frames
// are dropped and counted as TxDown. It returns ErrPortGone once the
// interface is deleted.
func (p *tapPort) WriteBatch(bufs [][]byte) (int, error) {
	p.txMu.Lock()
	defer p.txMu.Unlock()
	p.wbufs, p.wi, p.wsent, p.werr = bufs, 0, 0, nil
	err := p.rc.Write(p.writeFn)
	p.wbufs, p.wpend = nil, nil
	p.co.Flush() // after an error: drop the rest of the run
	if err == nil {
		err = p.werr
	}
	switch {
	case err == nil:
		return p.wsent, nil
	case p.closed.Load():
		return p.wsent, net.ErrClosed
	case errors.Is(err, unix.EBADFD):
		return p.wsent, ErrPortGone
	}
	return p.wsent, fmt.Errorf("internal port %q: write: %w", p.name, err)
}

// write is the RawConn.Write callback: it feeds frames to the coalescer
// and writes each run it closes with a writev of header and frame. After
// EAGAIN it resumes with the pending run.
func (p *tapPort) write(fd uintptr) bool {
	if p.txRing != nil {
		return p.writeRing(fd)
	}
	for {
		if p.wpend != nil {
			switch p.writeOne(fd) {
			case unix.EAGAIN:
				return false // resume with wpend when writable
			case unix.EBADFD:
				return true
			}
			p.wpend = nil
		}
		if p.wi == len(p.wbufs) {
			if p.co.Segments() == 0 {
				return true
			}
			p.pend()
			continue
		}
		if p.co.Append(p.wbufs[p.wi]) {
			p.wi++
			continue
		}
		p.pend()
	}
}

// writeRing is write through the ring: each run the coalescer closes
// becomes a writev request, and the requests go to the kernel together
// when the batch is done or the ring is full. A merged run lives in the
// coalescer's buffer until the next run starts, so it is submitted at
// once. A TAP write does not block (the TAP's socket send buffer is
// unlimited), so every request completes inside the submit and the
// callback never waits for writability.
func (p *tapPort) writeRing(fd uintptr) bool {
	for {
		if p.wi == len(p.wbufs) && p.co.Segments() == 0 {
			break
		}
		if p.wi < len(p.wbufs) && p.co.Append(p.wbufs[p.wi]) {
			p.wi++
			continue
		}
		k := p.txRing.Queued()
		p.ringN[k] = p.co.Segments()
		h, f := p.co.Flush()
		h.Encode(p.ringHdr[k][:])
		iov := &p.ringIov[k]
		iov[1].Base = unsafe.SliceData(f)
		iov[1].SetLen(len(f))
		p.txRing.Writev(int(fd), &iov[0], len(iov), uint64(k))
		if p.ringN[k] > 1 || p.txRing.Queued() == p.txRing.Entries() {
			if !p.submit(fd) {
				return true
			}
		}
	}
	p.submit(fd)
	return true
}

// submit sends the queued writes and accounts for their results. One
// write alone goes out as a plain writev: measured with TCP, whose
// batches are mostly one merged run or one ACK, a ring submit of a single
// request cost 2-7 % of the throughput. It returns false once the
// interface is gone (EBADFD).
func (p *tapPort) submit(fd uintptr) bool {
	k := p.txRing.Queued()
	if k == 1 {
		p.txRing.Discard()
		p.account(p.ringN[0], writev(fd, p.ringIov[0][:]))
	} else if _, err := p.txRing.Submit(p.doneFn); err != nil && p.werr == nil {
		p.werr = err
	}
	for i := range k {
		p.ringIov[i][1].Base = nil // do not keep the frame alive
	}
	return p.werr == nil
}

// written accounts for write request k's result (the doneFn of submit).
func (p *tapPort) written(k uint64, res int32) {
	var e unix.Errno
	if res < 0 {
		e = unix.Errno(-res)
	}
	p.account(p.ringN[k], e)
}

// pend takes the coalescer's run as the next frame to write.
func (p *tapPort) pend() {
	p.wpendN = p.co.Segments()
	h, f := p.co.Flush()
	h.Encode(p.whdr[:])
	p.wpend = f
}

// writeOne writes wpend and accounts for the wpendN frames it holds. It
// returns the errno that stops the batch (EAGAIN, EBADFD) or 0.
func (p *tapPort) writeOne(fd uintptr) unix.Errno {
	p.wiov[1].Base = unsafe.SliceData(p.wpend)
	p.wiov[1].SetLen(len(p.wpend))
	e := writev(fd, p.wiov[:])
	p.wiov[1].Base = nil
	if e != unix.EAGAIN { // the frame waits for writability
		p.account(p.wpendN, e)
	}
	return e
}

// writev writes iov to the TAP, again after EINTR. A raw syscall: the fd
// is non-blocking (see mmsg.Batch.Recv).
func writev(fd uintptr, iov []unix.Iovec) unix.Errno {
	for {
		_, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if e != unix.EINTR {
			return e
		}
	}
}

// account records how a write holding n of the batch's frames went.
func (p *tapPort) account(n int, e unix.Errno) {
	switch e {
	case 0:
		p.wsent += n
	case unix.EIO: // interface down
		p.txDown.Add(uint64(n))
	case unix.EBADFD: // the interface is gone: WriteBatch says so
		p.werr = e
	default:
		// EINVAL for a runt, and from the ring EAGAIN, which a TAP's
		// unlimited send buffer never gives: counted, like any write
		// the TAP refuses.
		p.txError.Add(uint64(n))
	}
}

// readRing reads up to rrNext more frames with one submit of readv
// requests into the batch's next buffers, each with the virtio_net_hdr
// scratch and a small tail of its own, and handles them in order as read
// does. A frame behind a super-frame cannot go to the buffers the
// super-frame's segments need, so it is copied into the backlog after it.
// It adapts rrNext to how many frames the TAP had, and reports whether
// reading should go on (every request found a frame).
func (p *tapPort) readRing(fd uintptr) bool {
	k := min(p.rrNext, p.rmax-p.rn, p.rxRing.Entries())
	for i := range k {
		buf := p.rbufs[p.rn+i][p.roff:]
		if len(buf)+ringTail < rxSlotSize {
			// Small buffers: a super-frame would not fit; read the
			// plain way, which catches it in the backlog's slot.
			p.rxRing.Discard()
			p.rrNext = 1
			return true
		}
		iov := &p.rrIov[i]
		iov[1].Base = unsafe.SliceData(buf)
		iov[1].SetLen(len(buf))
		p.rxRing.Readv(int(fd), &iov[0], len(iov), uint64(i))
	}
	p.rxRings++
	_, err := p.rxRing.Submit(p.rrDoneFn)
	for i := range k {
		p.rrIov[i][1].Base = nil
	}
	if err != nil {
		// io_uring itself failed (it should not): read the plain way.
		p.rrNext = 0
		return true
	}
	got, first := 0, p.rn
	backlog := false // a super-frame came: the rest goes behind it
	for i := range k {
		res := p.rrRes[i]
		if res < 0 {
			switch e := unix.Errno(-res); e {
			case unix.EAGAIN, unix.EINTR:
				continue
			case unix.EOPNOTSUPP, unix.EINVAL:
				// The TAP cannot be read this way: stop trying.
				p.rrNext = 0
			default:
				if p.rerr == nil {
					p.rerr = e
				}
			}
			break
		}
		got++
		buf, tail := p.rbufs[first+i][p.roff:], p.rrTail[i][:]
		size := int(res) - vnet.HdrLen
		if size < 0 || size > len(buf)+len(tail) {
			p.rxTooBig.Add(1)
			continue
		}
		h, _ := vnet.Decode(p.rrHdr[i][:])
		if backlog || h.GSO() != vnet.GSONone {
			backlog = true
			p.queueBacklog(buf, tail, size, h)
			continue
		}
		if size > len(buf) {
			p.rxTooBig.Add(1)
			continue
		}
		if !p.finish(buf[:size], h) {
			p.rxOffload.Add(1)
			continue
		}
		if j := p.rn; j != first+i {
			// An earlier request found nothing or was dropped: close the gap.
			copy(p.rbufs[j][p.roff:], buf[:size])
		}
		p.rsizes[p.rn] = size
		p.rn++
	}
	switch {
	case p.rrNext == 0:
	case backlog:
		// Super-frames (TCP) come one per read anyway: start small.
		p.rrNext = 2
	case got == k:
		p.rrNext = min(2*k, p.rxRing.Entries())
	default:
		p.rrNext = max(got+1, 2)
	}
	return got == k && !backlog && p.rerr == nil
}

// queueBacklog copies a frame read by readRing (size bytes in buf, then
// tail) into the backlog, to be returned after what is there.
func (p *tapPort) queueBacklog(buf, tail []byte, size int, h vnet.Hdr) {
	slot, ok := p.q.next()
	if !ok { // cannot happen: the backlog has a slot per request
		p.rxTooBig.Add(1)
		return
	}
	n := copy(slot, buf[:min(size, len(buf))])
	copy(slot[n:size], tail)
	if h.GSO() != vnet.GSONone {
		p.rxSuper++
	}
	p.q.commit(h, size)
}

// Close closes the TAP fd, which removes the interface; a ReadBatch in
// progress returns net.ErrClosed. It is safe to call more than once.
func (p *tapPort) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.closeErr = p.file.Close()
		// After the file: a WriteBatch waiting for writability holds
		// txMu until the close wakes it.
		p.txMu.Lock()
		if p.txRing != nil {
			p.txRing.Close()
			p.txRing = nil
		}
		p.txMu.Unlock()
		p.rxMu.Lock()
		if p.rxRing != nil {
			p.rxRing.Close()
			p.rxRing = nil
		}
		p.rxMu.Unlock()
	})
	return p.closeErr
}
