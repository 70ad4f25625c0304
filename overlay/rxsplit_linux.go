package overlay

import (
	"net/netip"

	"github.com/vxswitch/vxswitch/dataplane"
)

// rxMsg is one received UDP message not yet fully handed to the caller.
// With UDP_GRO on, the kernel may have coalesced several datagrams of one
// flow into it: segments of gso bytes each, the last possibly shorter.
//
// Its bytes are p0 followed by p1. When received straight into a caller's
// buffer (inCaller), p0 is that buffer from off-VXLANHdrLen and p1 is the
// rest of the message's scratch slot, so that p0+p1 hold 64 KiB even
// when the caller's buffer is smaller; otherwise p0 is the slot itself.
type rxMsg struct {
	p0, p1   []byte
	slot     []byte // this message's scratch slot (rxSlotSize bytes)
	n        int    // bytes in the message
	gso      int    // segment size; n when not coalesced
	next     int    // offset of the next segment to hand out
	src      netip.Addr
	inCaller bool
	trunc    bool // MSG_TRUNC: did not fit p0+p1
}

// set describes a received message of n bytes from src with UDP_GRO
// segment size gso (0 or n or more: not coalesced). inCaller says it was
// received into p0 (the caller's buffer) and then the rest of its slot;
// otherwise it was received into slot alone. (Fields are set one by one:
// assigning a whole struct literal costs a typedmemmove.)
func (m *rxMsg) set(slot, p0 []byte, inCaller bool, n, gso int, src netip.Addr, trunc bool) {
	m.slot, m.n, m.next, m.src, m.inCaller, m.trunc = slot, n, 0, src, inCaller, trunc
	m.gso = n
	if 0 < gso && gso < n {
		m.gso = gso
	}
	m.p0, m.p1 = slot, nil
	if inCaller {
		m.p0 = p0
		if len(p0) < len(slot) {
			m.p1 = slot[len(p0):]
		}
	}
}

// segments returns how many datagrams are left in m.
func (m *rxMsg) segments() int {
	if m.n == 0 {
		return 1 - min(m.next, 1) // an empty datagram is still one
	}
	return (m.n - m.next + m.gso - 1) / m.gso
}

// read copies the message bytes [from, to) into dst.
func (m *rxMsg) read(dst []byte, from, to int) {
	if from < len(m.p0) {
		k := copy(dst, m.p0[from:min(to, len(m.p0))])
		dst, from = dst[k:], from+k
	}
	if from < to {
		copy(dst, m.p1[from-len(m.p0):to-len(m.p0)])
	}
}

// evacuate moves the bytes of m not yet handed out from the caller's
// buffer into its slot, so the buffer can take another datagram. p1 is
// the slot from len(p0) on, so afterwards slot[:n] is the whole message.
func (m *rxMsg) evacuate() {
	if !m.inCaller {
		return
	}
	if k := min(m.n, len(m.p0)); m.next < k {
		copy(m.slot[m.next:k], m.p0[m.next:k])
	}
	m.p0, m.p1, m.inCaller = m.slot[:m.n], nil, false
}

// rxSplit hands the datagrams of received messages out to the caller's
// buffers, one per buffer, across ReadBatch calls: what does not fit this
// call's buffers stays pending (moved into scratch slots) for the next.
//
// Why not always receive into scratch, or always into the caller's
// buffers? A message must have room for 64 KiB (a coalesced one is up to
// that, and truncation would lose datagrams), and the caller's buffers
// may be smaller; its extra datagrams must also go to buffers that, in a
// batch received straight into the caller's buffers, still hold later
// messages. So there are two layouts, chosen per recvmmsg by the
// endpoint: straight into the caller's buffers with the slot behind (a
// plain datagram then costs no copy, as before GRO), and into the slots
// only (each datagram costs one copy, and no message is ever in the way).
// The first suits traffic that is not coalesced, the second coalesced
// traffic; fill handles both, and a coalesced message arriving in the
// first layout by moving the later messages out of the way once
// (evacuate): correct, and only as costly as the second layout plus one
// copy for the batch that switches. A batch in the first layout without
// any coalesced message skips rxSplit altogether (Endpoint.decap, 10 ns
// a datagram against 19 here).
type rxSplit struct {
	msgs []rxMsg // this recvmmsg's messages; [head:] have datagrams left
	head int
}

// pending reports whether datagrams are left from an earlier call.
func (s *rxSplit) pending() bool { return s.head < len(s.msgs) }

// fill hands out up to n datagrams into bufs[w][off:] with sizes[w] and
// meta[w], and returns how many and their bytes. Datagrams from senders
// that are not members (when members is set), with a bad header or an
// unknown VNI, or larger than the caller's buffer are counted in drops,
// each on its own, and skipped. It does not allocate.
func (s *rxSplit) fill(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off, n int,
	snap *vtepSnapshot, members bool, drops *[numDropReasons]uint64) (w int, bytes uint64) {
	for s.head < len(s.msgs) && w < n {
		i := s.head
		m := &s.msgs[i]
		switch {
		case m.trunc:
			drops[DropTruncated]++ // cannot happen with 64 KiB of room; one drop if it does
			s.head++
			continue
		case members && snap.byAddr[m.src] == nil:
			drops[DropUnknownSender] += uint64(m.segments())
			s.head++
			continue
		case m.n == 0:
			drops[DropShort]++
			s.head++
			continue
		}
		if m.inCaller && m.gso < m.n {
			// Its datagrams go to the buffers of the messages after it.
			for j := i + 1; j < len(s.msgs); j++ {
				s.msgs[j].evacuate()
			}
		}
		for m.next < m.n && w < n {
			from := m.next
			to := min(from+m.gso, m.n)
			m.next = to
			if to-from > len(bufs[w])-off+VXLANHdrLen {
				drops[DropTruncated]++
				continue
			}
			// bufs[w] is free: w < i was handed out or moved out, w > i
			// was evacuated above, and w == i is m's own buffer, where
			// only bytes before from (handed out) are overwritten.
			pkt := bufs[w][off-VXLANHdrLen : off-VXLANHdrLen+to-from]
			if !m.inCaller || w != i || from != 0 {
				m.read(pkt, from, to)
			} // else the datagram is already where it belongs
			vni, r := ParseHeader(pkt)
			if r == DropNone {
				if _, ok := snap.vnis[vni]; !ok {
					r = DropUnknownVNI
				}
			}
			if r != DropNone {
				drops[r]++
				continue
			}
			inner := len(pkt) - VXLANHdrLen
			sizes[w] = inner
			meta[w] = dataplane.TunnelMeta{VNI: vni, VTEP: m.src}
			bytes += uint64(inner)
			w++
		}
		if m.next >= m.n {
			s.head++
		}
	}
	if s.head == len(s.msgs) {
		s.msgs, s.head = s.msgs[:0], 0
		return w, bytes
	}
	// The caller's buffers are full; what is left must not stay in them.
	for j := s.head; j < len(s.msgs); j++ {
		s.msgs[j].evacuate()
	}
	return w, bytes
}
