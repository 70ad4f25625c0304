package busypoll

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Probe asks whether a non-blocking fd has something to read, without
// reading and without blocking (ppoll with a zero timeout). It does not
// allocate; it is for one goroutine.
type Probe struct {
	rc    syscall.RawConn
	fn    func(fd uintptr)
	fds   [1]unix.PollFd
	zero  unix.Timespec
	ready bool
}

// NewProbe returns a probe of rc's fd.
func NewProbe(rc syscall.RawConn) *Probe {
	p := &Probe{rc: rc}
	p.fn = p.poll
	return p
}

// Readable reports whether a read would find data or an error (POLLERR,
// POLLHUP count as readable: the read reports them). When the fd cannot
// be probed (closed) it says true, so the caller goes on to read and sees
// the error there.
func (p *Probe) Readable() bool {
	p.ready = false
	if err := p.rc.Control(p.fn); err != nil {
		return true
	}
	return p.ready
}

func (p *Probe) poll(fd uintptr) {
	p.fds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&p.fds[0])), 1,
		uintptr(unsafe.Pointer(&p.zero)), 0, 0, 0)
	p.ready = e == 0 && n > 0
}

// yield gives the CPU to any other runnable thread (sched_yield): a
// spinning reader must not keep the processes it serves, or the kernel's
// softirq threads, off a CPU. It is not a raw system call: entering one
// through the runtime wakes sysmon if it sleeps, and sysmon is what polls
// the network for goroutines parked in the netpoller while readers spin
// (at most 10 ms late; asleep, it was 0.6 s late).
func yield() { syscall.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
