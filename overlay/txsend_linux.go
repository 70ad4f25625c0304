package overlay

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/mmsg"
)

// UDP generic segmentation offload (GSO, UDP_SEGMENT, Linux 4.18): one
// sendmsg hands the kernel a buffer of datagrams of gso_size bytes each
// (the last may be shorter), which it carries as one packet through the
// stack and cuts into datagrams at the device, or not at all when the
// receiver asked for UDP_GRO. Sending 64 small datagrams then costs about
// one datagram's trip through the stack. The kernel's rules
// (udp_send_skb): at most UDP_MAX_SEGMENTS segments (64 on older kernels,
// 128 on newer; 64 works everywhere), the payload must fit one IP packet,
// the socket must not be corked (we never cork) and must checksum
// (SO_NO_CHECK or UDP_NO_CHECK6_TX: EINVAL), no IPsec on the route (EIO),
// and, on older kernels, the route's device must do checksum offload
// (EIO; veth and lo do; 6.18 sends GSO through a veth with "tx off"). A
// segment plus headers over the route's MTU gets EMSGSIZE even when
// fragmenting is allowed.
const (
	gsoMaxSegments = 64
	// Largest UDP payload of one GSO message: what fits an IPv4 packet
	// of 65535 bytes (header 20, UDP 8), or an IPv6 payload of 65535.
	gsoMaxPayload4 = 1<<16 - 1 - 20 - 8
	gsoMaxPayload6 = 1<<16 - 1 - 8
	// gsoReprobe is how many WriteBatch calls pass before a segment size
	// that drew EMSGSIZE is tried with GSO again (the route may change).
	gsoReprobe = 4096
)

// txGroup is one sendmmsg message: datagrams sorted[from:to], as one
// UDP_SEGMENT message of gso-byte segments, or a plain one (gso 0).
type txGroup struct {
	from, to int32
	gso      uint16
}

// txGSO holds the messages of one sendmmsg call and the GSO state. A GSO
// message gathers its datagrams from the caller's buffers, one iovec
// each (the kernel copies them into one packet as it would one buffer),
// so the datagrams are not copied in userspace first.
type txGSO struct {
	b          *mmsg.Batch      // txChunk messages with an iovec per segment and room for a UDP_SEGMENT cmsg each
	groups     [txChunk]txGroup // per message of b
	one        *mmsg.Batch      // a refused GSO message's datagrams, one per message
	maxPayload int

	off    bool // UDP_SEGMENT failed where plain sends work: send plain only, for good
	tooBig int  // smallest segment size that drew EMSGSIZE; 0: none. Sizes from it go plain
	since  int  // WriteBatch calls since tooBig was set

	// Counts of the WriteBatch in progress, added to the endpoint's
	// counters at its end.
	msgs, dgrams, plain uint64
	turnedOff           error // the error that made this batch set off
}

func (g *txGSO) init(is4 bool) {
	g.b = mmsg.NewBatch(txChunk, mmsg.Options{Iovs: gsoMaxSegments, Addrs: true, Control: unix.CmsgSpace(2)})
	g.one = mmsg.NewBatch(gsoMaxSegments, mmsg.Options{Addrs: true})
	g.maxPayload = gsoMaxPayload6
	if is4 {
		g.maxPayload = gsoMaxPayload4
	}
}

// dgram returns the datagram of d: the frame and the header in front.
func (x *txScratch) dgram(d *txMsg) []byte {
	return x.bufs[d.frame][x.offs[d.frame]-VXLANHdrLen:]
}

// sendAll sends x.sorted, one or more sendmmsg calls per socket run, and
// does the accounting.
func (x *txScratch) sendAll() error {
	e, g := x.e, &x.gso
	x.waited = false
	g.msgs, g.dgrams, g.plain, g.turnedOff = 0, 0, 0, nil
	if g.tooBig != 0 {
		if g.since++; g.since >= gsoReprobe {
			g.tooBig = 0
		}
	}
	if cap(x.res) < len(x.sorted) {
		x.res = make([]DropReason, len(x.sorted), cap(x.sorted))
	}
	x.res = x.res[:len(x.sorted)]
	for j := range x.res {
		x.res[j] = numDropReasons // not tried (the endpoint was closed first)
	}
	var err error
	for r := 0; r < len(x.sorted) && err == nil; {
		sock := x.sorted[r].sock
		q := r + 1
		for q < len(x.sorted) && x.sorted[q].sock == sock {
			q++
		}
		for r < q {
			var m int
			m, r = x.build(r, q)
			err = x.sendRun(&x.socks[sock], m)
			g.b.Release(m)
			if err != nil {
				break
			}
		}
	}

	var pkts, bytes uint64
	var drops [numDropReasons]uint64
	// A VTEP's counters are added to once per run of its datagrams (they
	// are sorted by destination within a socket), not per datagram: they
	// are shared by every lane, and an atomic add per datagram on a
	// shared cache line is what makes lanes slow each other down.
	var vt vtepTally
	for j := range x.sorted {
		m := &x.sorted[j]
		if m.v != vt.v {
			vt.flush()
			vt.v = m.v
		}
		switch r := x.res[j]; r {
		case DropNone:
			size := uint64(m.size - VXLANHdrLen)
			pkts++
			bytes += size
			x.sent[m.frame] = true
			vt.pkts++
			vt.bytes += size
		case numDropReasons:
		default:
			drops[r]++
			vt.drops++
		}
	}
	vt.flush()
	e.ctr.txPackets.Add(pkts)
	e.ctr.txBytes.Add(bytes)
	for r, n := range drops {
		e.ctr.drop(DropReason(r), n)
	}
	if g.msgs != 0 {
		e.ctr.txGSOMsgs.Add(g.msgs)
		e.ctr.txGSODgrams.Add(g.dgrams)
	}
	if g.plain != 0 {
		e.ctr.txPlainDgrams.Add(g.plain)
	}
	if g.turnedOff != nil {
		e.ctr.gsoOff.Store(true)
		e.cfg.Logger.Warn("vxlan: UDP GSO refused where plain sends work; sending one datagram per message from now on",
			"err", g.turnedOff)
	}
	return err
}

// vtepTally adds up one VTEP's transmit counters over a run of datagrams.
type vtepTally struct {
	v                  *vtep // nil: an address the table does not know
	pkts, bytes, drops uint64
}

func (t *vtepTally) flush() {
	if t.v != nil {
		if t.pkts != 0 {
			t.v.stats.txPackets.Add(t.pkts)
			t.v.stats.txBytes.Add(t.bytes)
		}
		if t.drops != 0 {
			t.v.stats.txDrops.Add(t.drops)
		}
	}
	*t = vtepTally{}
}

// build fills the messages of one sendmmsg call from datagrams
// sorted[r:q] (one socket's) and returns how many messages it made and
// the first datagram left for the next call. A run of datagrams to one
// destination, all of the first one's size but the last (which may be
// shorter), becomes one GSO message: at most gsoMaxSegments datagrams and
// maxPayload bytes, gathered from the caller's buffers. A lone datagram
// is sent from the caller's buffer as it is.
func (x *txScratch) build(r, q int) (int, int) {
	g := &x.gso
	m := 0
	for r < q && m < txChunk {
		d := &x.sorted[r]
		seg := int(d.size)
		end, total := r+1, seg
		if !g.off && (g.tooBig == 0 || seg < g.tooBig) {
			for end < q && end-r < gsoMaxSegments {
				n := &x.sorted[end]
				if n.dst != d.dst || int(n.size) > seg || total+int(n.size) > g.maxPayload {
					break
				}
				total += int(n.size)
				end++
				if int(n.size) < seg {
					break
				}
			}
		}
		grp := &g.groups[m]
		grp.from, grp.to = int32(r), int32(end)
		if end-r == 1 {
			grp.gso = 0
			g.b.SetBuf(m, x.dgram(d))
			g.b.SetControlLen(m, 0)
		} else {
			grp.gso = uint16(seg)
			for j := r; j < end; j++ {
				g.b.SetIov(m, j-r, x.dgram(&x.sorted[j]))
			}
			g.b.SetIovlen(m, end-r)
			data, space := mmsg.PutCmsg(g.b.ControlBuf(m), unix.SOL_UDP, unix.UDP_SEGMENT, 2)
			binary.NativeEndian.PutUint16(data, uint16(seg))
			g.b.SetControlLen(m, space)
		}
		g.b.SetAddrPort(m, d.dst)
		m++
		r = end
	}
	return m, r
}

// done records result r for every datagram of message k.
func (x *txScratch) done(k int, r DropReason) {
	g := &x.gso
	grp := &g.groups[k]
	for j := grp.from; j < grp.to; j++ {
		x.res[j] = r
	}
	if r != DropNone {
		return
	}
	if grp.gso != 0 {
		g.msgs++
		g.dgrams += uint64(grp.to - grp.from)
	} else {
		g.plain++
	}
}

// sendRun sends messages [0, m) of x.gso.b through t, filling x.res. It
// returns an error only when the endpoint is closed.
func (x *txScratch) sendRun(t *txSocket, m int) error {
	x.sock, x.from, x.to = t, 0, m
	err := t.rc.Write(x.fn)
	if x.deadline {
		x.deadline = false
		_ = t.conn.SetWriteDeadline(time.Time{})
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, net.ErrClosed) || x.e.sys.closed.Load() {
		return net.ErrClosed
	}
	// The deadline passed (os.ErrDeadlineExceeded), or another poller
	// error: drop what is left of the run.
	reason := DropTxWouldBlock
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		reason = DropTxError
	}
	for k := x.from; k < x.to; k++ {
		x.done(k, reason)
	}
	return nil
}

// send is the RawConn.Write callback: sendmmsg until the run is done,
// skipping messages the kernel refuses (a refused GSO message is retried
// datagram by datagram). Returning false makes the poller wait for
// writability (once per WriteBatch, bounded by txWaitMax).
func (x *txScratch) send(fd uintptr) bool {
	for x.from < x.to {
		n, err := x.gso.b.Send(int(fd), x.from, x.to, 0)
		for k := x.from; k < x.from+n; k++ {
			x.done(k, DropNone)
		}
		x.from += n
		switch {
		case err == nil:
		case err == unix.EAGAIN:
			if !x.waited {
				x.waited, x.deadline = true, true
				_ = x.sock.conn.SetWriteDeadline(time.Now().Add(txWaitMax))
				return false
			}
			for k := x.from; k < x.to; k++ {
				x.done(k, DropTxWouldBlock)
			}
			x.from = x.to
		case x.gso.groups[x.from].gso != 0:
			x.unbundle(int(fd), x.from, err)
			x.from++
		default:
			x.done(x.from, sendErrReason(err))
			x.from++
		}
	}
	return true
}

// unbundle sends the datagrams of GSO message k one per message, from the
// caller's buffers, after the kernel refused the message with gerr, so
// that each datagram gets the fate it would have had without GSO (sent,
// fragmented, or refused and counted). If gerr was EIO or EINVAL and a
// plain datagram then went out, GSO itself is what failed (no checksum
// offload on the route, or a kernel without UDP_SEGMENT): it is turned
// off for good. EMSGSIZE means a segment is over the route's MTU: that
// size and larger go plain until gsoReprobe batches have passed.
func (x *txScratch) unbundle(fd, k int, gerr error) {
	g := &x.gso
	grp := g.groups[k]
	n := int(grp.to - grp.from)
	for j := range n {
		d := &x.sorted[int(grp.from)+j]
		g.one.SetBuf(j, x.dgram(d))
		g.one.SetAddrPort(j, d.dst)
	}
	sentAny := false
	for i := 0; i < n; {
		m, err := g.one.Send(fd, i, n, 0)
		for j := i; j < i+m; j++ {
			x.res[int(grp.from)+j] = DropNone
		}
		g.plain += uint64(m)
		sentAny = sentAny || m > 0
		i += m
		switch {
		case err == nil:
		case err == unix.EAGAIN:
			for ; i < n; i++ {
				x.res[int(grp.from)+i] = DropTxWouldBlock
			}
		default:
			x.res[int(grp.from)+i] = sendErrReason(err)
			i++
		}
	}
	g.one.Release(n)
	switch {
	case gerr == unix.EMSGSIZE:
		if g.tooBig == 0 || int(grp.gso) < g.tooBig {
			g.tooBig, g.since = int(grp.gso), 0
		}
	case (gerr == unix.EIO || gerr == unix.EINVAL) && sentAny && !g.off:
		g.off, g.turnedOff = true, gerr
	}
}

// sendErrReason maps a sendmmsg error for one datagram to a drop reason.
func sendErrReason(err error) DropReason {
	switch err {
	case unix.ENETUNREACH, unix.EHOSTUNREACH, unix.ECONNREFUSED, unix.EHOSTDOWN,
		unix.ENETDOWN, unix.EACCES, unix.EPERM, unix.EINVAL:
		return DropTxUnreachable
	case unix.EMSGSIZE:
		return DropTxTooBig
	}
	return DropTxError
}
