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

	"github.com/songgao/water"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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
}

// tapPort is an internal port: a TAP created through songgao/water, which
// opens /dev/net/tun non-blocking and wraps it in an os.File, so the fd is
// in Go's netpoller and Close wakes a reader. The TAP is not persistent:
// closing the fd removes the interface, wherever its kernel side is.
//
// The kernel-side MAC is left to the kernel (random, locally
// administered). No IFF_VNET_HDR: the TAP offers no offloads, so the
// kernel hands over finished, MTU-sized frames.
type tapPort struct {
	name  string
	file  *os.File
	rc    syscall.RawConn
	batch int

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// Receive side, used by the one ReadBatch goroutine. read() on a TAP
	// silently truncates a frame longer than the buffer, so each read is a
	// readv with a 1-byte spare iovec behind the buffer: a byte landing
	// there means the frame did not fit.
	rbufs  [][]byte
	rsizes []int
	roff   int
	rmax   int
	rn     int
	rerr   error
	riov   [2]unix.Iovec
	spare  [1]byte
	readFn func(fd uintptr) bool

	// Send side, guarded by txMu.
	txMu    sync.Mutex
	wbufs   [][]byte
	wi      int
	wsent   int
	werr    error
	writeFn func(fd uintptr) bool

	rxTooBig, txError, txDown atomic.Uint64
}

var _ Port = (*tapPort)(nil)

// OpenInternal creates the TAP name (IFF_TAP|IFF_NO_PI) in the calling
// thread's network namespace and returns it as a Port. The interface is
// created down; SetupInternalLink moves it, addresses it and sets it up.
// Close removes it.
func OpenInternal(name string, opts InternalOptions) (Port, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("internal port %q: interface name must be 1-%d bytes", name, unix.IFNAMSIZ-1)
	}
	ifc, err := water.New(water.Config{
		DeviceType:             water.TAP,
		PlatformSpecificParams: water.PlatformSpecificParams{Name: name},
	})
	if err != nil {
		return nil, fmt.Errorf("internal port %q: create TAP: %w", name, err)
	}
	f, ok := ifc.ReadWriteCloser.(*os.File)
	if !ok { // water changed: we need the fd
		ifc.Close()
		return nil, fmt.Errorf("internal port %q: TAP is a %T, not an *os.File", name, ifc.ReadWriteCloser)
	}
	if ifc.Name() != name {
		f.Close()
		return nil, fmt.Errorf("internal port %q: kernel named the TAP %q", name, ifc.Name())
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("internal port %q: %w", name, err)
	}
	if opts.MTU > 0 {
		if err := setMTU(name, opts.MTU); err != nil {
			f.Close()
			return nil, fmt.Errorf("internal port %q: %w", name, err)
		}
	}
	p := &tapPort{name: name, file: f, rc: rc, batch: opts.BatchSize}
	p.riov[1].Base = &p.spare[0]
	p.riov[1].SetLen(len(p.spare))
	p.readFn = p.read
	p.writeFn = p.write
	return p, nil
}

func setMTU(name string, mtu int) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link: %w", err)
	}
	if err := netlink.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("set MTU %d: %w", mtu, err)
	}
	return nil
}

func (p *tapPort) BatchSize() int { return p.batch }

// DropCounts returns the frames the port dropped itself.
func (p *tapPort) DropCounts() PortDrops {
	return PortDrops{RxTooBig: p.rxTooBig.Load(), TxError: p.txError.Load(), TxDown: p.txDown.Load()}
}

// ReadBatch waits in the netpoller for the first frame, then keeps reading
// without blocking until the TAP is empty or the batch is full: one
// read per frame (a TAP has no batched read). A frame larger than the
// buffer is dropped and counted. When the interface is deleted it returns
// ErrPortGone.
func (p *tapPort) ReadBatch(bufs [][]byte, sizes []int, off int) (int, error) {
	p.rbufs, p.rsizes, p.roff = bufs, sizes, off
	p.rmax = min(len(bufs), p.batch)
	p.rn, p.rerr = 0, nil
	if p.rmax == 0 {
		return 0, nil
	}
	err := p.rc.Read(p.readFn)
	n := p.rn
	p.rbufs, p.rsizes, p.riov[0].Base = nil, nil, nil
	if err == nil {
		err = p.rerr
	}
	if err == nil || n > 0 {
		// Frames read before an error are returned; the error comes back
		// on the next call.
		return n, nil
	}
	switch {
	case p.closed.Load():
		return 0, net.ErrClosed
	case errors.Is(err, unix.EBADFD):
		return 0, ErrPortGone // the interface was deleted
	}
	return 0, fmt.Errorf("internal port %q: read: %w", p.name, err)
}

// read is the RawConn.Read callback; it returns false to wait for the fd
// to become readable.
func (p *tapPort) read(fd uintptr) bool {
	for p.rn < p.rmax {
		buf := p.rbufs[p.rn][p.roff:]
		p.riov[0].Base = unsafe.SliceData(buf)
		p.riov[0].SetLen(len(buf))
		r, _, e := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&p.riov[0])), uintptr(len(p.riov)))
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return p.rn > 0
		case e != 0:
			p.rerr = e
			return true
		case int(r) > len(buf):
			p.rxTooBig.Add(1)
			continue
		}
		p.rsizes[p.rn] = int(r)
		p.rn++
	}
	return true
}

// WriteBatch writes every frame with one write() each, all inside one
// netpoller callback. A frame the TAP refuses (EINVAL for a runt) is
// skipped and counted; while the interface is down (EIO) frames are
// dropped and counted as TxDown. It returns ErrPortGone once the interface
// is deleted.
func (p *tapPort) WriteBatch(bufs [][]byte) (int, error) {
	p.txMu.Lock()
	defer p.txMu.Unlock()
	p.wbufs, p.wi, p.wsent, p.werr = bufs, 0, 0, nil
	err := p.rc.Write(p.writeFn)
	p.wbufs = nil
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

// write is the RawConn.Write callback.
func (p *tapPort) write(fd uintptr) bool {
	for p.wi < len(p.wbufs) {
		_, err := unix.Write(int(fd), p.wbufs[p.wi])
		switch err {
		case nil:
			p.wsent++
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // resume at p.wi when writable
		case unix.EIO: // interface down
			p.txDown.Add(1)
		case unix.EBADFD:
			p.werr = err
			return true
		default:
			p.txError.Add(1)
		}
		p.wi++
	}
	return true
}

// Close closes the TAP fd, which removes the interface; a ReadBatch in
// progress returns net.ErrClosed. It is safe to call more than once.
func (p *tapPort) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.closeErr = p.file.Close()
	})
	return p.closeErr
}
