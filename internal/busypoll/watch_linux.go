package busypoll

import (
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Watch lets a reader that always finds frames waiting (a port flooded
// beyond what the switch forwards) see whether another reader of its
// switch has frames too, and give it a turn.
//
// Without it, with one P (workers: 1) the flooded reader never blocks, so
// the scheduler never polls the network, and a reader parked in Go's
// netpoller waits for sysmon: 10 ms at a time, tens of ms per frame for
// a ping across the flooded switch. Runtime.Gosched does not help: the
// scheduler runs the yielding goroutine again before it polls. Watch
// keeps every reader's fd in one epoll instance (level-triggered, each
// with the reader's id) that the flooded reader asks, after a full
// batch, with one epoll_wait that does not wait; when another reader is
// ready, Yield parks the caller until the scheduler has polled the
// network, which makes the ready readers runnable too. Readers in normal
// traffic, which drain their queue, never ask.
//
// Readers may Add, Remove and ask at the same time; Close only after
// every reader has stopped.
type Watch struct {
	epfd     int
	spinning bool
}

// NewWatch returns an empty Watch. spinning says that the readers busy
// poll (Spin): they are then runnable goroutines, not parked in the
// netpoller, and Yield is runtime.Gosched.
func NewWatch(spinning bool) (*Watch, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return &Watch{epfd: fd, spinning: spinning}, nil
}

// A Member is one reader's place in a Watch. It is for that reader's
// goroutine alone.
type Member struct {
	w  *Watch
	rc syscall.RawConn
	id int32
	ev [8]unix.EpollEvent // OthersReady's scratch; the kernel rotates ready entries through it

	// Yield parks on an eventfd of its own in Go's netpoller (see Yield).
	turn    *os.File
	turnRC  syscall.RawConn
	turnFn  func(fd uintptr) bool
	written bool
}

// Add makes a reader a member; id tells its events from the others' and
// must be unique in w. The fd behind rc is watched; a reader without one
// (nil rc) can ask but is not seen by the others.
func (w *Watch) Add(rc syscall.RawConn, id int32) (*Member, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	m := &Member{w: w, rc: rc, id: id, turn: os.NewFile(uintptr(efd), "busypoll-turn")}
	if m.turnRC, err = m.turn.SyscallConn(); err != nil {
		m.turn.Close()
		return nil, err
	}
	m.turnFn = m.yielded
	if rc != nil {
		if err := epollCtl(w.epfd, rc, unix.EPOLL_CTL_ADD, unix.EPOLLIN, id); err != nil {
			m.turn.Close()
			return nil, err
		}
	}
	return m, nil
}

// Remove stops watching the reader's fd, if it is still open, and
// releases the member. A reader whose device is gone must be removed: its
// fd stays readable (an error).
func (m *Member) Remove() {
	if m.rc != nil {
		_ = epollCtl(m.w.epfd, m.rc, unix.EPOLL_CTL_DEL, 0, 0)
	}
	m.turn.Close()
}

// OthersReady says whether another reader of the Watch has something to
// read (or an error to see), without waiting and without allocating.
func (m *Member) OthersReady() bool {
	// A raw system call, as the readers' reads are (see Yield).
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(m.w.epfd),
		uintptr(unsafe.Pointer(&m.ev[0])), uintptr(len(m.ev)), 0, 0, 0)
	if e != 0 {
		return false
	}
	for i := range int(r) {
		if m.ev[i].Fd != m.id {
			return true
		}
	}
	return false
}

// Yield lets the readers that have frames waiting run before the caller
// goes on. It makes the member's eventfd readable and parks the caller in
// Go's netpoller on it: the caller is woken only by a poll of the
// network, which wakes the other readers parked there in the same sweep.
// (Parking on a timer is not enough: the scheduler runs expired timers
// before it polls the network, and a short sleep has often expired by
// then.) Two system calls and a poll; nothing is allocated. The system
// calls are raw: one made through the runtime would wake sysmon.
func (m *Member) Yield() {
	if m.w.spinning {
		// The others wait in the run queue, where Gosched puts the
		// caller behind them. (Parking on the eventfd would wait for a
		// poll of the network, which the scheduler makes only when
		// nothing is runnable: never while readers spin.)
		runtime.Gosched()
		return
	}
	m.written = false
	_ = m.turnRC.Read(m.turnFn) // an error: the member was removed; go on
}

// yielded is Yield's netpoller callback: write, then wait (false) until
// the eventfd has been polled readable, then read it back.
func (m *Member) yielded(fd uintptr) bool {
	var v [8]byte
	if !m.written {
		m.written = true
		v[0] = 1
		unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&v[0])), 8)
		return false
	}
	_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&v[0])), 8)
	return e != unix.EAGAIN
}

// Close releases the epoll instance.
func (w *Watch) Close() error { return unix.Close(w.epfd) }
