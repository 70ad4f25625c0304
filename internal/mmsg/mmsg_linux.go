package mmsg

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mmsghdr is struct mmsghdr from <sys/socket.h>: one message of a
// recvmmsg/sendmmsg batch and, after the call, its length.
type Mmsghdr struct {
	Hdr unix.Msghdr
	Len uint32
	_   [unsafe.Sizeof(uintptr(0)) - 4]byte // 4 on 64-bit, 0 on 32-bit
}

// Options says what a Batch reserves per message.
type Options struct {
	// Iovs is the number of iovecs (scatter/gather buffers) per message;
	// 0 means 1.
	Iovs int
	// Addrs reserves socket address storage per message: the sender after
	// Recv, the destination for Send (SetAddrPort). Leave it off for
	// connected or bound sockets.
	Addrs bool
	// Control is the size in bytes of each message's control (cmsg)
	// buffer, e.g. unix.CmsgSpace(unix.SizeofTpacketAuxdata); 0 means none.
	// It is rounded up to a multiple of 8 so every buffer is aligned.
	Control int
}

// A Batch is a preallocated set of message headers with their iovecs,
// addresses and control buffers. It is not safe for concurrent use; use one
// per goroutine (or per direction, behind a lock).
//
// The iovecs point at the caller's buffers between SetBuf and Release: a
// Batch keeps those buffers reachable until Release is called.
type Batch struct {
	msgs  []Mmsghdr
	iovs  []unix.Iovec
	addrs []unix.RawSockaddrAny
	ctrl  []byte
	ctrlN int // control bytes per message
	iovN  int // iovecs per message
}

// NewBatch returns a Batch of n messages. It allocates; nothing else in
// this package does.
func NewBatch(n int, o Options) *Batch {
	if n <= 0 {
		panic("mmsg: batch size must be positive")
	}
	if o.Iovs <= 0 {
		o.Iovs = 1
	}
	b := &Batch{
		msgs:  make([]Mmsghdr, n),
		iovs:  make([]unix.Iovec, n*o.Iovs),
		iovN:  o.Iovs,
		ctrlN: (o.Control + 7) &^ 7,
	}
	if o.Addrs {
		b.addrs = make([]unix.RawSockaddrAny, n)
	}
	if b.ctrlN > 0 {
		// Backed by uint64s so each message's buffer is 8-byte aligned, as
		// cmsg headers need.
		words := make([]uint64, n*b.ctrlN/8)
		b.ctrl = unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n*b.ctrlN)
	}
	for i := range b.msgs {
		h := &b.msgs[i].Hdr
		h.Iov = &b.iovs[i*b.iovN]
		if b.addrs != nil {
			h.Name = (*byte)(unsafe.Pointer(&b.addrs[i]))
		}
		if b.ctrlN > 0 {
			h.Control = &b.ctrl[i*b.ctrlN]
		}
	}
	return b
}

// Cap returns the number of messages in the batch.
func (b *Batch) Cap() int { return len(b.msgs) }

// Hdr returns message i's header, for what the other methods do not cover.
func (b *Batch) Hdr(i int) *Mmsghdr { return &b.msgs[i] }

// SetBuf makes p the only buffer of message i: the kernel reads the
// datagram from p on Send and writes up to len(p) bytes into it on Recv.
func (b *Batch) SetBuf(i int, p []byte) {
	iov := &b.iovs[i*b.iovN]
	iov.Base = unsafe.SliceData(p)
	iov.SetLen(len(p))
	b.msgs[i].Hdr.SetIovlen(1)
}

// SetBufs makes ps the buffers of message i, gathered in order on Send
// and scattered on Recv. len(ps) must not exceed Options.Iovs.
func (b *Batch) SetBufs(i int, ps ...[]byte) {
	if len(ps) > b.iovN {
		panic("mmsg: more buffers than Options.Iovs")
	}
	iovs := b.iovs[i*b.iovN:]
	for j, p := range ps {
		iovs[j].Base = unsafe.SliceData(p)
		iovs[j].SetLen(len(p))
	}
	b.msgs[i].Hdr.SetIovlen(len(ps))
}

// SetIov makes p buffer j of message i, without changing how many
// buffers the message has (SetIovlen): building a message of many
// buffers one at a time, without a slice of them. Release drops only the
// buffers below the message's count.
func (b *Batch) SetIov(i, j int, p []byte) {
	if j >= b.iovN {
		panic("mmsg: buffer index beyond Options.Iovs")
	}
	iov := &b.iovs[i*b.iovN+j]
	iov.Base = unsafe.SliceData(p)
	iov.SetLen(len(p))
}

// SetIovlen says message i has its first n buffers (set with SetIov).
func (b *Batch) SetIovlen(i, n int) {
	if n > b.iovN {
		panic("mmsg: more buffers than Options.Iovs")
	}
	b.msgs[i].Hdr.SetIovlen(n)
}

// Release drops the references to the caller's buffers held by the first
// n messages, so the Batch does not keep them alive. Only each message's
// buffers in use (its iovec count) are cleared, so that a Batch with many
// iovecs per message costs little to release.
func (b *Batch) Release(n int) {
	if b.iovN == 1 {
		clear(b.iovs[:n])
		return
	}
	for i := range n {
		k := min(int(b.msgs[i].Hdr.Iovlen), b.iovN)
		clear(b.iovs[i*b.iovN : i*b.iovN+k])
	}
}

// Len returns the length of message i after Recv (the bytes the datagram
// had when recvmmsg was given MSG_TRUNC, else the bytes stored) or Send
// (bytes sent).
func (b *Batch) Len(i int) int { return int(b.msgs[i].Len) }

// Flags returns the msg_flags the kernel set on message i in Recv.
func (b *Batch) Flags(i int) int { return int(b.msgs[i].Hdr.Flags) }

// Truncated reports whether message i did not fit its buffers in Recv
// (MSG_TRUNC in msg_flags).
func (b *Batch) Truncated(i int) bool { return b.msgs[i].Hdr.Flags&unix.MSG_TRUNC != 0 }

// SetAddrPort sets message i's destination for Send: a sockaddr_in for an
// IPv4 address, a sockaddr_in6 otherwise (an IPv4-mapped IPv6 address
// stays IPv6, as a dual-stack AF_INET6 socket needs). The Batch must have
// been made with Options.Addrs.
func (b *Batch) SetAddrPort(i int, ap netip.AddrPort) {
	h := &b.msgs[i].Hdr
	sa := &b.addrs[i]
	h.Name = (*byte)(unsafe.Pointer(sa))
	a := ap.Addr()
	if a.Is4() {
		sin := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sin = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		putPort(&sin.Port, ap.Port())
		h.Namelen = unix.SizeofSockaddrInet4
		return
	}
	sin6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
	*sin6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
	putPort(&sin6.Port, ap.Port())
	// Scope zones are not supported: the overlay uses global addresses.
	h.Namelen = unix.SizeofSockaddrInet6
}

// ClearAddr sends message i without a destination (connected socket).
func (b *Batch) ClearAddr(i int) {
	b.msgs[i].Hdr.Name = nil
	b.msgs[i].Hdr.Namelen = 0
}

// AddrPort returns message i's sender after Recv, or the zero AddrPort
// when it is not an IPv4 or IPv6 socket address.
func (b *Batch) AddrPort(i int) netip.AddrPort {
	if b.addrs == nil {
		return netip.AddrPort{}
	}
	sa := &b.addrs[i]
	n := b.msgs[i].Hdr.Namelen
	switch {
	case sa.Addr.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sin := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sin.Addr), getPort(&sin.Port))
	case sa.Addr.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		sin6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(sin6.Addr), getPort(&sin6.Port))
	}
	return netip.AddrPort{}
}

// RawAddr returns message i's address storage and the length the kernel
// filled in, for families other than IP (AF_PACKET's sockaddr_ll, AF_UNIX).
func (b *Batch) RawAddr(i int) (*unix.RawSockaddrAny, int) {
	if b.addrs == nil {
		return nil, 0
	}
	return &b.addrs[i], int(b.msgs[i].Hdr.Namelen)
}

// ControlBuf returns message i's whole control buffer, to write cmsgs into
// before Send (then SetControlLen).
func (b *Batch) ControlBuf(i int) []byte {
	return b.ctrl[i*b.ctrlN : (i+1)*b.ctrlN : (i+1)*b.ctrlN]
}

// SetControlLen sends the first n bytes of ControlBuf(i) with message i;
// 0 sends no control data.
func (b *Batch) SetControlLen(i, n int) {
	if n > b.ctrlN {
		panic("mmsg: control data larger than Options.Control")
	}
	b.msgs[i].Hdr.SetControllen(n)
}

// Control returns the control data the kernel stored for message i in
// Recv (a sequence of cmsgs; see NextCmsg).
func (b *Batch) Control(i int) []byte {
	n := int(b.msgs[i].Hdr.Controllen)
	return b.ControlBuf(i)[:min(n, b.ctrlN)]
}

// Recv receives up to n messages into the first n slots with one
// recvmmsg(2) call. It returns the number received. flags are recvmmsg
// flags: MSG_TRUNC makes Len report the full length of a datagram that did
// not fit; MSG_WAITFORONE returns after the first message on a blocking
// socket. On a non-blocking socket with nothing to read it returns
// unix.EAGAIN. It does not allocate.
//
// Recv and Send are raw system calls: the Go scheduler is not told, so it
// neither hands the P to another thread nor wakes sysmon to retake it,
// which on the dataplane's non-blocking sockets (tens of thousands of
// calls a second) saved context switches and about 8 % of TCP throughput.
// Use them on non-blocking fds: a call that blocks holds its P.
func (b *Batch) Recv(fd, n, flags int) (int, error) {
	msgs := b.msgs[:n]
	for i := range msgs {
		h := &msgs[i].Hdr
		if b.addrs != nil {
			h.Name = (*byte)(unsafe.Pointer(&b.addrs[i]))
			h.Namelen = unix.SizeofSockaddrAny
		}
		h.SetControllen(b.ctrlN)
		h.Flags = 0
		msgs[i].Len = 0
	}
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd),
			uintptr(unsafe.Pointer(&msgs[0])), uintptr(n), uintptr(flags), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, errnoErr(e)
		}
		return int(r), nil
	}
}

// Send sends messages [from, to) with one sendmmsg(2) call and returns how
// many the kernel took, counting from from. When the first of them fails,
// it returns 0 and the error; a failure after the first cuts the count
// short and the next call reports it. It does not allocate.
func (b *Batch) Send(fd, from, to, flags int) (int, error) {
	if from >= to {
		return 0, nil
	}
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd),
			uintptr(unsafe.Pointer(&b.msgs[from])), uintptr(to-from), uintptr(flags), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, errnoErr(e)
		}
		return int(r), nil
	}
}

// NextCmsg splits the first control message off buf (as returned by
// Control): its level, type and data, and the rest of buf. ok is false
// when buf holds no complete control message. Unlike
// unix.ParseSocketControlMessage it does not allocate.
func NextCmsg(buf []byte) (level, typ int32, data, rest []byte, ok bool) {
	if len(buf) < unix.SizeofCmsghdr {
		return 0, 0, nil, nil, false
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&buf[0]))
	l := int(h.Len)
	if l < unix.SizeofCmsghdr || l > len(buf) {
		return 0, 0, nil, nil, false
	}
	data = buf[unix.CmsgLen(0):l]
	next := min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(buf))
	return h.Level, h.Type, data, buf[next:], true
}

// PutCmsg writes one control message (level, typ, a data of n bytes) at
// the start of buf and returns the data part to fill and the space used
// (aligned), to add to SetControlLen. buf must have CmsgSpace(n) bytes.
func PutCmsg(buf []byte, level, typ int32, n int) (data []byte, space int) {
	space = unix.CmsgSpace(n)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&buf[0]))
	h.Level = level
	h.Type = typ
	h.SetLen(unix.CmsgLen(n))
	return buf[unix.CmsgLen(0):unix.CmsgLen(n):unix.CmsgLen(n)], space
}

func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// errnoErr returns e as an error without allocating: an Errno is boxed
// from the runtime's table of small integers.
func errnoErr(e unix.Errno) error {
	switch e {
	case 0:
		return nil
	case unix.EAGAIN:
		return errEAGAIN
	}
	return e
}

var errEAGAIN error = unix.EAGAIN
