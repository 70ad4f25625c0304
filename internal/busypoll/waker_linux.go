package busypoll

import (
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Waker parks the busy-polling readers of one switch while it is idle and
// wakes them all when any of their file descriptors becomes readable.
//
// Readers must not park in Go's netpoller one by one: while any reader
// spins, the scheduler has runnable goroutines and does not poll the
// network, so a reader parked there is woken by sysmon alone, up to 10 ms
// late (and up to its next timer when it was asleep: 0.6 s was measured
// with one P). Instead, once the switch has been idle for the window, the
// readers wait on a channel and one goroutine waits in the netpoller on an
// epoll instance that holds every reader's fd. When the switch is idle
// every P is, so that goroutine is woken at once; it marks the switch
// active and wakes the readers, which poll again until it is idle.
type Waker struct {
	act    *Activity
	window time.Duration
	ep     *os.File // the epoll instance, in Go's netpoller
	epfd   int      // its fd (ep.Fd would make it blocking); valid until closed
	rc     syscall.RawConn
	waitFn func(fd uintptr) bool
	events [4]unix.EpollEvent

	mu     sync.Mutex
	wake   chan struct{} // closed to wake the readers parked on it
	closed bool
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when run returns
}

// minWaitGiveUp bounds from below how long Wait waits without a wake-up.
const minWaitGiveUp = 10 * time.Millisecond

// NewWaker starts a waker for readers sharing act.
func NewWaker(act *Activity, window time.Duration) (*Waker, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	ep := os.NewFile(uintptr(fd), "busypoll-epoll")
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, err
	}
	w := &Waker{act: act, window: window, ep: ep, epfd: fd, rc: rc,
		wake: make(chan struct{}), done: make(chan struct{}), exited: make(chan struct{})}
	w.waitFn = w.readable
	go w.run()
	return w, nil
}

// Add watches the fd behind rc (level-triggered). A reader must be added
// before it parks with Wait, or nothing wakes it for its own traffic.
func (w *Waker) Add(rc syscall.RawConn) error {
	return w.ctl(rc, unix.EPOLL_CTL_ADD, unix.EPOLLIN)
}

// Remove stops watching the fd behind rc, if it is still open (closing
// an fd removes it anyway). A reader whose device is gone must be removed:
// its fd stays readable (an error) and would wake the waker over and over.
func (w *Waker) Remove(rc syscall.RawConn) { _ = w.ctl(rc, unix.EPOLL_CTL_DEL, 0) }

func (w *Waker) ctl(rc syscall.RawConn, op int, events uint32) error {
	w.mu.Lock() // epfd is not reused while it is held: Close closes it under mu
	defer w.mu.Unlock()
	if w.closed {
		return os.ErrClosed
	}
	return epollCtl(w.epfd, rc, op, events, 0)
}

// epollCtl adds, changes or removes the fd behind rc in epoll instance
// epfd, with data as the events' user data.
func epollCtl(epfd int, rc syscall.RawConn, op int, events uint32, data int32) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: events, Fd: data}
		err = unix.EpollCtl(epfd, op, int(fd), &ev)
	}); cerr != nil {
		return cerr
	}
	return os.NewSyscallError("epoll_ctl", err)
}

// Ticket returns what Wait waits on. A reader takes it before its last
// Spin, so that a wake-up that comes between Spin giving up and Wait is
// not lost.
func (w *Waker) Ticket() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wake
}

// Wait parks until the waker has woken the readers since t was taken, or
// for one window at most (minWaitGiveUp at least, so that a tiny window
// does not turn sleeping readers into spinning ones): a reader that found the switch idle just as
// another marked it active parks while the waker, which saw it active,
// does not watch the fds; it must not stay parked for as long as the
// others have traffic. It returns false once the waker is closed: the
// reader should then read the ordinary way.
func (w *Waker) Wait(t <-chan struct{}) bool {
	timer := time.NewTimer(max(w.window, minWaitGiveUp))
	select {
	case <-t:
	case <-timer.C:
	}
	timer.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.closed
}

// Kick wakes every parked reader now: one of them may have to see that
// its queue was closed.
func (w *Waker) Kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		close(w.wake)
		w.wake = make(chan struct{})
	}
}

// Close stops the waker and wakes every parked reader for good.
func (w *Waker) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.wake)
	close(w.done)
	err := w.ep.Close() // ends a wait in the netpoller
	w.mu.Unlock()
	<-w.exited
	return err
}

// run waits for the switch to go idle, then for one of the fds to be
// readable, and wakes the readers; until Close.
func (w *Waker) run() {
	defer close(w.exited)
	idle := time.NewTimer(w.window)
	defer idle.Stop()
	for {
		for {
			left := w.window - w.act.idleFor()
			if left <= 0 {
				break
			}
			idle.Reset(left)
			select {
			case <-idle.C:
			case <-w.done:
				return
			}
		}
		if err := w.rc.Read(w.waitFn); err != nil {
			// Closed (then done is too), or something that should not
			// happen: do not spin on it.
			select {
			case <-w.done:
				return
			case <-time.After(w.window):
				continue
			}
		}
		w.act.Mark(w.window)
		w.Kick()
	}
}

// readable is the netpoller's check: does any watched fd have something
// (epoll_wait without waiting; level-triggered, so nothing is consumed).
func (w *Waker) readable(fd uintptr) bool {
	n, err := unix.EpollWait(int(fd), w.events[:], 0)
	return err == nil && n > 0
}
