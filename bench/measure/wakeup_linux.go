package measure

import (
	"fmt"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Wakeup measures what waking a sleeping thread costs on this machine:
// the median round trip of one byte between two threads over two pipes,
// each blocked in read(2), after an idle gap in which an idle CPU halts
// (as between two pings). One round trip is two wake-ups. With cpuA !=
// cpuB each wake-up is an interrupt to another, halted CPU, which a
// hypervisor makes expensive; with cpuA == cpuB it is a context switch.
// Every hop through a userspace switch that is not busy polling pays
// one wake-up; the kernel's bridge pays none, forwarding in the sender's
// own system call.
func Wakeup(cpuA, cpuB, rounds int, gap time.Duration) (time.Duration, error) {
	if rounds < 1 {
		return 0, fmt.Errorf("wakeup: rounds %d < 1", rounds)
	}
	p, err := newWakePair(cpuA, cpuB)
	if err != nil {
		return 0, err
	}
	defer p.close()
	rtts := make([]time.Duration, rounds)
	for i := range rtts {
		time.Sleep(gap)
		if rtts[i], err = p.roundTrip(); err != nil {
			return 0, err
		}
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], nil
}

// WakeupCosts runs Wakeup on the first two CPUs this process may use
// (cross) and on the first alone (same). cross is 0 when it may use one.
func WakeupCosts(rounds int, gap time.Duration) (cross, same time.Duration, err error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, 0, fmt.Errorf("wakeup: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return 0, 0, fmt.Errorf("wakeup: no CPU")
	}
	if same, err = Wakeup(cpus[0], cpus[0], rounds, gap); err != nil || len(cpus) < 2 {
		return 0, same, err
	}
	cross, err = Wakeup(cpus[0], cpus[1], rounds, gap)
	return cross, same, err
}

// A wakePair is the calling goroutine's thread, pinned to one CPU, and an
// echo thread pinned to another, joined by two pipes. Use it from one
// goroutine, which stays on its thread until close.
type wakePair struct {
	ab, ba [2]int // caller -> echo, echo -> caller
	old    unix.CPUSet
	done   chan struct{}
}

func newWakePair(cpuA, cpuB int) (*wakePair, error) {
	p := &wakePair{ab: [2]int{-1, -1}, ba: [2]int{-1, -1}, done: make(chan struct{})}
	if err := unix.Pipe2(p.ab[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("wakeup: %w", err)
	}
	if err := unix.Pipe2(p.ba[:], unix.O_CLOEXEC); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("wakeup: %w", err)
	}
	ready := make(chan error, 1)
	go p.echo(cpuB, ready)
	if err := <-ready; err != nil {
		p.closeFDs()
		<-p.done
		return nil, err
	}
	runtime.LockOSThread()
	err := unix.SchedGetaffinity(0, &p.old)
	if err == nil {
		err = pinThread(cpuA)
	}
	if err != nil {
		runtime.UnlockOSThread()
		p.closeFDs()
		<-p.done
		return nil, err
	}
	return p, nil
}

// echo sends back every byte; it ends when the caller's write end closes.
func (p *wakePair) echo(cpu int, ready chan<- error) {
	defer close(p.done)
	// Locked and never unlocked: the thread exits with the goroutine, so
	// its CPU affinity goes with it.
	runtime.LockOSThread()
	if err := pinThread(cpu); err != nil {
		ready <- err
		return
	}
	ready <- nil
	var c [1]byte
	for {
		if n, err := unix.Read(p.ab[0], c[:]); n != 1 || err != nil {
			return
		}
		if _, err := unix.Write(p.ba[1], c[:]); err != nil {
			return
		}
	}
}

func (p *wakePair) roundTrip() (time.Duration, error) {
	c := []byte{1}
	t0 := time.Now()
	if _, err := unix.Write(p.ab[1], c); err != nil {
		return 0, fmt.Errorf("wakeup: %w", err)
	}
	if n, err := unix.Read(p.ba[0], c); n != 1 || err != nil {
		return 0, fmt.Errorf("wakeup: echo thread gone (%d, %v)", n, err)
	}
	return time.Since(t0), nil
}

func (p *wakePair) close() {
	unix.SchedSetaffinity(0, &p.old)
	runtime.UnlockOSThread()
	p.closeFDs()
	<-p.done
}

func (p *wakePair) closeFDs() {
	for _, fd := range []int{p.ab[1], p.ab[0], p.ba[0], p.ba[1]} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// pinThread binds the calling OS thread to cpu.
func pinThread(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("wakeup: CPU %d: %w", cpu, err)
	}
	return nil
}
