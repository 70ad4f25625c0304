package testutil

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// OpenTAPQueue attaches an fd to the existing TAP name as one queue of a
// multi-queue TAP (IFF_MULTI_QUEUE), the way QEMU opens a tap netdev. It
// works in the calling thread's network namespace. flags may add
// unix.O_NONBLOCK.
func OpenTAPQueue(name string, flags int) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return -1, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_MULTI_QUEUE)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	return fd, nil
}
