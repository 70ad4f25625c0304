//go:build !linux

package busypoll

import (
	"errors"
	"syscall"
	"time"
)

// Waker needs epoll; elsewhere NewWaker fails and readers park the
// ordinary way.
type Waker struct{}

func NewWaker(*Activity, time.Duration) (*Waker, error) {
	return nil, errors.New("busypoll: no waker on this system")
}

func (*Waker) Add(syscall.RawConn) error { return errors.ErrUnsupported }
func (*Waker) Remove(syscall.RawConn)    {}
func (*Waker) Ticket() <-chan struct{}   { return nil }
func (*Waker) Wait(<-chan struct{}) bool { return false }
func (*Waker) Kick()                     {}
func (*Waker) Close() error              { return nil }
