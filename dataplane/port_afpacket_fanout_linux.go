package dataplane

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// fanoutFlags: PACKET_FANOUT_HASH (the kernel picks a socket by the
// frame's flow hash, so a flow stays on one socket and in order) and
// PACKET_FANOUT_FLAG_IGNORE_OUTGOING. Inside a fanout group the kernel
// ignores each socket's own PACKET_IGNORE_OUTGOING; without the group's
// flag the sockets would read back every frame sent out of the interface,
// the switch's own included, and loop. No FLAG_DEFRAG: the switch
// forwards fragments as they come, and all fragments of a packet hash
// alike (the flow dissector reads no ports in fragments).
const fanoutFlags = unix.PACKET_FANOUT_HASH | unix.PACKET_FANOUT_FLAG_IGNORE_OUTGOING

// dropAll is a classic BPF program that accepts nothing ("ret #0").
var dropAll = [1]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}

// openFanout opens opts.Queues packet sockets on interface ifindex, each
// set up as OpenSystem's one socket, joined into one new PACKET_FANOUT
// group, and returns them as a MultiQueuePort. The group's id is chosen
// by the kernel (PACKET_FANOUT_FLAG_UNIQUEID), so it is unique in the
// namespace: each port has its own group, and no other process's group
// can be joined by mistake.
//
// A bound socket outside the group receives every frame of the
// interface, so while the group forms, the sockets would each receive
// the same frames: duplicates. So each socket drops everything (a BPF
// filter) from before bind until every socket is in the group. Frames
// that arrive meanwhile are lost, as they would be before the port
// existed.
func openFanout(ifname string, ifindex int, opts SystemOptions) (Port, error) {
	n := opts.Queues
	fds := make([]int, 0, n)
	rings := make([]*rxRing, 0, n)
	closeFDs := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
		for _, r := range rings {
			if r != nil {
				r.unmap()
			}
		}
	}
	fail := func(i int, err error) (Port, error) {
		closeFDs()
		return nil, fmt.Errorf("system port %q: socket %d of %d: %w", ifname, i+1, n, err)
	}
	var id int
	for i := range n {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(i, fmt.Errorf("AF_PACKET socket: %w", err))
		}
		fds = append(fds, fd)
		prog := unix.SockFprog{Len: uint16(len(dropAll)), Filter: &dropAll[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			return fail(i, fmt.Errorf("attach drop-all filter: %w", err))
		}
		ring, err := setupPacketSocket(fd, ifindex, opts)
		if err != nil {
			return fail(i, err)
		}
		rings = append(rings, ring)
		if i == 0 {
			id, err = newFanoutGroup(fd)
		} else {
			err = joinFanout(fd, id, fanoutFlags)
		}
		if err != nil {
			return fail(i, err)
		}
	}
	for i, fd := range fds {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0); err != nil {
			return fail(i, fmt.Errorf("detach drop-all filter: %w", err))
		}
	}
	qs := make([]Port, 0, n)
	for i, fd := range fds {
		q, err := newPacketQueue(ifname, ifindex, fd, rings[i], opts)
		if err != nil {
			for _, q := range qs {
				q.Close()
			}
			for j, fd := range fds[i+1:] {
				unix.Close(fd)
				if r := rings[i+1+j]; r != nil {
					r.unmap()
				}
			}
			return nil, err
		}
		qs = append(qs, q)
	}
	return newQueuedPort(qs), nil
}

// newFanoutGroup makes the bound socket fd the first member of a new
// fanout group whose id the kernel picks, and returns the id.
func newFanoutGroup(fd int) (int, error) {
	if err := joinFanout(fd, 0, fanoutFlags|unix.PACKET_FANOUT_FLAG_UNIQUEID); err != nil {
		return 0, err
	}
	// The option reads back as id | type << 16 | flags << 24.
	v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
	if err != nil {
		return 0, fmt.Errorf("read fanout group id (PACKET_FANOUT): %w", err)
	}
	return v & 0xffff, nil
}

// joinFanout puts the bound socket fd into fanout group id with the given
// type and flags.
func joinFanout(fd, id, typeFlags int) error {
	err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, id|typeFlags<<16)
	if errors.Is(err, unix.EINVAL) && typeFlags&unix.PACKET_FANOUT_FLAG_UNIQUEID != 0 {
		return fmt.Errorf("create fanout group (PACKET_FANOUT): %w (a kernel without "+
			"PACKET_FANOUT_FLAG_IGNORE_OUTGOING refuses it; set workers: 1)", err)
	}
	if err != nil {
		return fmt.Errorf("join fanout group %d (PACKET_FANOUT): %w", id, err)
	}
	return nil
}
