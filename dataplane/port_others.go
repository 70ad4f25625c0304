//go:build !linux

package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
)

// DefaultBatchSize is how many frames a port moves per system call unless
// its options say otherwise.
const DefaultBatchSize = 64

// SystemOptions tunes a system port; see port_afpacket_linux.go.
type SystemOptions struct {
	BatchSize    int
	SocketBuffer int
	Queues       int
	RingFrames   int
}

// InternalOptions tunes an internal port; see port_tap_linux.go.
type InternalOptions struct {
	MTU       int
	BatchSize int
	Queues    int
}

// PortDrops counts frames a port dropped on its own.
type PortDrops struct {
	RxTooBig, TxError, TxDown, RxOffload, RxOverflow uint64
}

// A DropCounter reports the drops a port counted itself.
type DropCounter interface {
	DropCounts() PortDrops
}

// OpenSystem needs AF_PACKET, which only Linux has.
func OpenSystem(ifname string, opts SystemOptions) (Port, error) {
	return nil, fmt.Errorf("system port %q: %w", ifname, errors.ErrUnsupported)
}

// OpenInternal needs Linux TAP devices.
func OpenInternal(name string, opts InternalOptions) (Port, error) {
	return nil, fmt.Errorf("internal port %q: %w", name, errors.ErrUnsupported)
}

// SetupInternalLink needs Linux netlink.
func SetupInternalLink(name string, mtu int, netnsPath string, addrs []netip.Prefix) error {
	return fmt.Errorf("port %q: %w", name, errors.ErrUnsupported)
}

// DeleteLink does nothing outside Linux.
func DeleteLink(name, netnsPath string) {}

// BatchIOError: no io_uring on this system.
func BatchIOError() error { return errors.ErrUnsupported }
