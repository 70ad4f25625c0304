//go:build !linux

package busypoll

import (
	"errors"
	"syscall"
)

// Watch needs epoll; elsewhere NewWatch fails and a flooded reader does
// not give the others a turn.
type Watch struct{}

// A Member is one reader's place in a Watch.
type Member struct{}

func NewWatch(bool) (*Watch, error) { return nil, errors.New("busypoll: no watch on this system") }

func (*Watch) Add(syscall.RawConn, int32) (*Member, error) { return nil, errors.ErrUnsupported }
func (*Watch) Close() error                                { return nil }
func (*Member) Remove()                                    {}
func (*Member) OthersReady() bool                          { return false }
func (*Member) Yield()                                     {}
