package uring

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel ABI (include/uapi/linux/io_uring.h).
const (
	opReadv  = 1
	opWritev = 2

	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000

	featSingleMmap = 1 << 0

	setupSubmitAll = 1 << 7

	enterGetEvents = 1 << 0
)

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// sqe is struct io_uring_sqe (64 bytes).
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	rwFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFDIn  int32
	addr3       uint64
	pad         uint64
}

// cqe is struct io_uring_cqe (16 bytes, no CQE32).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// A Ring is an io_uring instance with room for Entries requests at once.
type Ring struct {
	fd      int
	entries uint32

	sqMem, cqMem, sqeMem []byte // mmaps; cqMem aliases sqMem with single mmap

	sqHead, sqTail *uint32
	sqMask         uint32
	sqes           []sqe

	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []cqe

	queued uint32 // requests written since the last Submit
}

// ErrUnsupported is returned by New where io_uring cannot be used (an
// old kernel, kernel.io_uring_disabled, a seccomp filter); callers fall
// back to plain system calls.
var ErrUnsupported = errors.New("io_uring is not available")

// New makes a ring for up to entries requests per Submit (rounded up to a
// power of two by the kernel).
func New(entries uint32) (*Ring, error) {
	var p params
	p.flags = setupSubmitAll // do not stop a batch at the first failed request
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		if e == unix.EINVAL {
			// Kernels before 5.18 lack SUBMIT_ALL; batches then stop at
			// a failed request, which Submit handles.
			p = params{}
			fd, _, e = unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
		}
		if e != 0 {
			if e == unix.ENOSYS || e == unix.EPERM || e == unix.EACCES {
				return nil, fmt.Errorf("%w: io_uring_setup: %v", ErrUnsupported, e)
			}
			return nil, os.NewSyscallError("io_uring_setup", e)
		}
	}
	r := &Ring{fd: int(fd), entries: p.sqEntries}
	if err := r.mmap(&p); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Ring) mmap(p *params) error {
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	single := p.features&featSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	r.sqMem, err = unix.Mmap(r.fd, offSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap sq ring", err)
	}
	r.cqMem = r.sqMem
	if !single {
		r.cqMem, err = unix.Mmap(r.fd, offCQRing, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return os.NewSyscallError("mmap cq ring", err)
		}
	}
	sqeSize := int(p.sqEntries) * int(unsafe.Sizeof(sqe{}))
	r.sqeMem, err = unix.Mmap(r.fd, offSQEs, sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap sqes", err)
	}
	sq, cq := unsafe.Pointer(&r.sqMem[0]), unsafe.Pointer(&r.cqMem[0])
	r.sqHead = (*uint32)(unsafe.Add(sq, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(sq, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(sq, p.sqOff.ringMask))
	// The index array maps ring slots to SQEs; slot i always uses SQE i.
	array := unsafe.Slice((*uint32)(unsafe.Add(sq, p.sqOff.array)), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(cq, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(cq, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(cq, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(cq, p.cqOff.cqes)), p.cqEntries)
	return nil
}

// Entries is how many requests one Submit can take.
func (r *Ring) Entries() int { return int(r.entries) }

// Queued is how many requests wait for Submit.
func (r *Ring) Queued() int { return int(r.queued) }

// Writev queues a writev(fd, iov, n) whose completion carries user. The
// iovecs and what they point at must stay put until Submit returns. It
// returns false when the ring is full (Submit first).
func (r *Ring) Writev(fd int, iov *unix.Iovec, n int, user uint64) bool {
	return r.queue(opWritev, 0, fd, iov, n, user)
}

// Readv queues a readv(fd, iov, n), like Writev, with RWF_NOWAIT: with
// nothing to read it completes with -EAGAIN at once instead of waiting
// (io_uring would otherwise wait for data even on a non-blocking fd, and
// so would Submit); a file that cannot read that way completes it with
// -EOPNOTSUPP. Requests run in the order they were queued.
func (r *Ring) Readv(fd int, iov *unix.Iovec, n int, user uint64) bool {
	return r.queue(opReadv, unix.RWF_NOWAIT, fd, iov, n, user)
}

func (r *Ring) queue(op uint8, rwFlags uint32, fd int, iov *unix.Iovec, n int, user uint64) bool {
	if r.queued == r.entries {
		return false
	}
	tail := *r.sqTail + r.queued // only this process moves the tail
	s := &r.sqes[tail&r.sqMask]
	// off -1: the file's own position, as readv and writev use (a stream
	// has none; 0 would ask a seekable file for pread/pwrite).
	*s = sqe{opcode: op, fd: int32(fd), off: ^uint64(0), addr: uint64(uintptr(unsafe.Pointer(iov))), len: uint32(n), rwFlags: rwFlags, userData: user}
	r.queued++
	return true
}

// Discard forgets the requests queued since the last Submit.
func (r *Ring) Discard() { r.queued = 0 }

// Submit hands the queued requests to the kernel with one io_uring_enter
// and waits until every one of them has completed; then done is called
// with each request's user value and result (bytes, or a negative
// errno), in the order the kernel completed them. It returns the number
// of requests completed and the error of io_uring_enter itself, if any.
func (r *Ring) Submit(done func(user uint64, res int32)) (int, error) {
	n := r.queued
	if n == 0 {
		return 0, nil
	}
	atomic.StoreUint32(r.sqTail, *r.sqTail+n)
	r.queued = 0
	completed := uint32(0)
	toSubmit, wait, flags := n, uint32(0), uintptr(0)
	for {
		if toSubmit > 0 || wait > 0 {
			// Requests on a file that cannot block (a TAP write, a
			// RWF_NOWAIT read) complete inside this call: a raw system
			// call, since entering one through the runtime wakes sysmon
			// when it sleeps, a futex wake-up per batch (measured: +25 %
			// on ping). Waiting for the others (min_complete) may block,
			// so that goes through the runtime.
			enter := unix.RawSyscall6
			if wait > 0 {
				enter = unix.Syscall6
			}
			got, _, e := enter(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(wait), flags, 0, 0)
			switch {
			case e == unix.EINTR || e == unix.EAGAIN || e == unix.EBUSY:
			case e != 0:
				// Requests the kernel did not take stay in the ring;
				// take them back so the next batch does not resend them.
				r.reclaim()
				completed += r.reap(done)
				return int(completed), os.NewSyscallError("io_uring_enter", e)
			default:
				toSubmit -= min(uint32(got), toSubmit)
			}
		}
		completed += r.reap(done)
		if completed >= n {
			return int(completed), nil
		}
		// A request went asynchronous (or a pre-5.18 kernel stopped the
		// batch at a failure): submit the rest and wait for them.
		wait, flags = n-completed, enterGetEvents
	}
}

// reclaim moves the submission tail back to what the kernel consumed.
func (r *Ring) reclaim() {
	atomic.StoreUint32(r.sqTail, atomic.LoadUint32(r.sqHead))
}

// reap calls done for every completion in the ring and frees their slots.
func (r *Ring) reap(done func(uint64, int32)) uint32 {
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail)
	for i := head; i != tail; i++ {
		c := &r.cqes[i&r.cqMask]
		done(c.userData, c.res)
	}
	atomic.StoreUint32(r.cqHead, tail)
	return tail - head
}

// Close unmaps the ring and closes its fd. It is safe to call more than
// once.
func (r *Ring) Close() error {
	if r.sqeMem != nil {
		_ = unix.Munmap(r.sqeMem)
	}
	if r.cqMem != nil && (r.sqMem == nil || &r.cqMem[0] != &r.sqMem[0]) {
		_ = unix.Munmap(r.cqMem) // not the single mmap's alias
	}
	if r.sqMem != nil {
		_ = unix.Munmap(r.sqMem)
	}
	r.sqeMem, r.cqMem, r.sqMem = nil, nil, nil
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}
