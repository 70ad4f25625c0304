package dataplane

import (
	"encoding/binary"
	"errors"
	"sync/atomic"

	"github.com/vxswitch/vxswitch/internal/vnet"
)

// A system port's socket has PACKET_VNET_HDR, so the kernel says what is
// left to do for each frame: a checksum to finish (CHECKSUM_PARTIAL) or a
// TCP/UDP super-frame of up to 64 KB to cut into wire-sized segments
// (TSO/USO). This file holds the receive backlog that makes the second
// possible within the Port contract: one received message can turn into
// dozens of frames, more than the caller's batch may have room for, and
// the caller's buffers cannot be kept across calls.

// maxSuperFrame is the largest frame a packet socket hands over with GSO:
// 64 KiB, a device's default gso_max_size. Larger super-frames (BIG TCP
// raised gso_max_size) are cut short by the kernel and counted RxTooBig.
const maxSuperFrame = 1 << 16

// rxSlotSize is the room of one backlog slot: a super-frame, a VLAN tag
// put back, some slack.
const rxSlotSize = maxSuperFrame + 256

// maxSuperHdr is the longest header run a super-frame can have: Ethernet,
// two VLAN tags, IPv4 with options (60), TCP with options (60).
const maxSuperHdr = 14 + 2*4 + 60 + 60

// rxBacklog holds received frames that have not been handed to the
// caller yet, oldest first, in port-owned buffers: super-frames (read
// straight into a slot in super-frame mode, or copied there) and every
// frame that came after one in the same receive, so order is kept. It is
// used only by the goroutine that calls ReadBatch.
//
// Slots are allocated the first time they are needed, so a port that never
// sees a super-frame holds none, and one that does holds as many as it
// ever needed at once (at most a receive batch), then allocates no more.
type rxBacklog struct {
	slots      [][]byte // rxSlotSize each, nil until first used
	hdrs       []vnet.Hdr
	sizes      []int
	head, tail int      // slots [head, tail) hold frames
	cut        superCut // progress through slots[head] if it is a super-frame

	// Drops counted here; the port adds them to its own.
	tooBig, offload atomic.Uint64
}

func newRxBacklog(n int) rxBacklog {
	return rxBacklog{slots: make([][]byte, n), hdrs: make([]vnet.Hdr, n), sizes: make([]int, n)}
}

func (q *rxBacklog) empty() bool { return q.head == q.tail }

// grow makes room for n slots (allocated on first use, as always).
func (q *rxBacklog) grow(n int) {
	for len(q.slots) < n {
		q.slots = append(q.slots, nil)
		q.hdrs = append(q.hdrs, vnet.Hdr{})
		q.sizes = append(q.sizes, 0)
	}
}

// slot returns the buffer of slot i, allocating it on first use.
func (q *rxBacklog) slot(i int) []byte {
	if q.slots[i] == nil {
		q.slots[i] = make([]byte, rxSlotSize)
	}
	return q.slots[i]
}

// next returns the buffer of the first free slot, for a frame to be copied
// into and then committed. ok is false when the backlog is full.
func (q *rxBacklog) next() (buf []byte, ok bool) {
	if q.tail == len(q.slots) {
		return nil, false
	}
	return q.slot(q.tail), true
}

// commit appends the frame now in the first free slot.
func (q *rxBacklog) commit(h vnet.Hdr, size int) {
	q.hdrs[q.tail], q.sizes[q.tail] = h, size
	q.tail++
}

// commitSlot appends the frame received straight into slot i (i >=
// tail), swapping buffers so that the backlog stays dense.
func (q *rxBacklog) commitSlot(i int, h vnet.Hdr, size int) {
	if i != q.tail {
		q.slots[q.tail], q.slots[i] = q.slots[i], q.slots[q.tail]
	}
	q.commit(h, size)
}

// drain moves frames from the backlog into bufs[i][off:] and sizes[i],
// oldest first, cutting super-frames into segments and finishing
// checksums, until the backlog is empty or bufs is full. A super-frame
// that does not fit bufs is cut part of the way; the rest waits for the
// next call. It returns the number of frames written. Frames that cannot
// be finished or cut are dropped and counted (offload), as are frames or
// segments too big for bufs (tooBig). It does not allocate.
func (q *rxBacklog) drain(bufs [][]byte, sizes []int, off int) int {
	out := 0
	for q.head < q.tail && out < len(bufs) {
		f := q.slots[q.head][:q.sizes[q.head]]
		h := q.hdrs[q.head]
		if h.GSO() == vnet.GSONone {
			q.head++
			switch {
			case vnet.FinishChecksum(f, h) != nil:
				q.offload.Add(1)
			case len(f) > len(bufs[out])-off:
				q.tooBig.Add(1)
			default:
				sizes[out] = copy(bufs[out][off:], f)
				out++
			}
			continue
		}
		n, done, err := q.cut.cut(f, h, bufs[out:], sizes[out:len(bufs)], off)
		out += n
		if done {
			q.head++
		}
		switch {
		case err == nil:
		case errors.Is(err, vnet.ErrShortBuffer):
			q.tooBig.Add(1)
		default:
			q.offload.Add(1)
		}
	}
	if q.head == q.tail {
		q.head, q.tail = 0, 0
	}
	return out
}

// superCut cuts one super-frame into segments across several calls when
// the caller's batch is smaller than the number of segments.
//
// vnet.Segment needs room for all segments of the frame it is given, so a
// part of the frame is offered as a smaller super-frame of its own: the
// headers are copied in front of the payload of the first segment still to
// go (over payload already handed out), and fixed as the kernel's TSO
// would for that part: IP length, IPv4 ID and TCP sequence number moved
// on, CWR kept only on the very first segment, FIN and PSH only on the
// very last. Segment then rewrites every header of every segment as
// usual. Nothing is copied but the headers.
type superCut struct {
	busy        bool // a super-frame is part way through
	next, total int  // segments handed out, segments in all
	mss         int  // payload bytes per segment (gso_size)
	hdrLen      int  // bytes of headers in front of the payload
	end         int  // end of the IP packet in the frame
	ip, l4      int  // offsets of the IP and TCP/UDP headers
	v6, tcp     bool
	id          uint16 // IPv4 identification of the first segment
	seq         uint32 // TCP sequence number of the first segment
	flags       uint8  // TCP flags of the super-frame
	tmpl        [maxSuperHdr]byte
}

// errCut: Segment made a different number of segments than the part
// should have; the headers are not what parse saw.
var errCut = errors.New("super-frame part did not segment as expected")

// cut writes the next segments of super-frame f (header h) into out[i][off:]
// and sizes[i], as many as fit len(out) (which must be at least 1). done
// reports that the frame is finished with: all segments written, or an
// error, in which case the rest of the frame is dropped.
func (c *superCut) cut(f []byte, h vnet.Hdr, out [][]byte, sizes []int, off int) (n int, done bool, err error) {
	if !c.busy {
		total, err := c.start(f, h)
		if err != nil || total <= len(out) {
			// Fits, or Segment says why not: the common case.
			n, err := vnet.Segment(f, h, out, sizes, off)
			return n, true, err
		}
		c.busy, c.next, c.total = true, 0, total
	}
	a := c.next
	b := min(c.total, a+len(out))
	n, err = vnet.Segment(c.part(f, a, b), h, out[:b-a], sizes[:b-a], off)
	if err == nil && n != b-a {
		n, err = 0, errCut
	}
	if err != nil {
		c.busy = false
		return 0, true, err
	}
	c.next = b
	if b == c.total {
		c.busy = false
		return n, true, nil
	}
	return n, false, nil
}

// start reads the layout of super-frame f and returns its number of
// segments. An error means the frame is not one this cutting handles;
// vnet.Segment then says exactly why.
func (c *superCut) start(f []byte, h vnet.Hdr) (int, error) {
	switch h.GSO() {
	case vnet.GSOTCPv4, vnet.GSOTCPv6, vnet.GSOUDPL4:
	default:
		return 0, vnet.ErrGSOType
	}
	c.mss = int(h.GSOSize)
	if c.mss == 0 || !c.parse(f) {
		return 0, vnet.ErrMalformed
	}
	copy(c.tmpl[:], f[:c.hdrLen])
	c.id = binary.BigEndian.Uint16(f[c.ip+4:])
	if c.tcp {
		c.seq = binary.BigEndian.Uint32(f[c.l4+4:])
		c.flags = f[c.l4+13]
	}
	payload := c.end - c.hdrLen
	return max(1, (payload+c.mss-1)/c.mss), nil
}

// part turns segments [a, b) of the super-frame into a super-frame of
// their own, in place, and returns it.
func (c *superCut) part(f []byte, a, b int) []byte {
	const (
		tcpFIN, tcpPSH, tcpCWR = 0x01, 0x08, 0x80
	)
	base := a * c.mss
	p := f[base : c.hdrLen+min(b*c.mss, c.end-c.hdrLen)]
	copy(p, c.tmpl[:c.hdrLen])
	// IP length; 0 (as BIG TCP does) if the part is over 64 KiB, which
	// makes it run to the end of p.
	if c.v6 {
		binary.BigEndian.PutUint16(p[c.ip+4:], uint16(lenOrZero(len(p)-c.ip-40)))
	} else {
		binary.BigEndian.PutUint16(p[c.ip+2:], uint16(lenOrZero(len(p)-c.ip)))
		binary.BigEndian.PutUint16(p[c.ip+4:], c.id+uint16(a))
	}
	if c.tcp {
		binary.BigEndian.PutUint32(p[c.l4+4:], c.seq+uint32(base))
		fl := c.flags
		if a > 0 {
			fl &^= tcpCWR
		}
		if b < c.total {
			fl &^= tcpFIN | tcpPSH
		}
		p[c.l4+13] = fl
	}
	return p
}

func lenOrZero(n int) int {
	if n > 0xffff {
		return 0
	}
	return n
}

// parse finds the headers of f with vnet's own parser, so the cutting
// agrees with Segment on every frame.
func (c *superCut) parse(f []byte) bool {
	l, err := vnet.ParseLayout(f)
	if err != nil {
		return false
	}
	c.ip, c.l4, c.end, c.v6 = l.IP, l.L4, l.End, l.V6
	c.tcp, c.hdrLen = l.Proto == 6, l.Data
	return c.hdrLen <= maxSuperHdr
}
