package overlay

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/dataplane"
)

const (
	// txChunk is how many messages one sendmmsg call holds; a larger
	// WriteBatch (a flood to many VTEPs) goes out in several.
	txChunk = 256
	// txWaitMax bounds the one wait for writability a WriteBatch may do
	// when a send socket is full. Past it the rest is dropped
	// (tx_would_block), so a stuck underlay cannot stall the switch.
	txWaitMax = 10 * time.Millisecond
	// portAttempts bounds the binds tried per send socket.
	portAttempts = 64
)

// Outer source ports. RFC 7348 asks for a source port derived from the
// inner flow so that ECMP and RSS in the underlay spread flows. A UDP
// socket has exactly one source port, and setting it per datagram would
// need a raw socket (CAP_NET_RAW, our own IP and UDP headers, no kernel
// routing conveniences). So the endpoint opens K send sockets bound to K
// ports spread over the configured range, and the flow hash picks one:
// every packet of a flow leaves from the same port, and flows spread over
// K ports, i.e. log2(K) bits of entropy (4 with the default 16) instead of
// the 14 bits of the whole range. That is plenty for the 2-16-way ECMP of
// a lab or a small fabric; a user who needs more raises SendSockets, at
// the cost of one fd, one bound port and a little kernel memory each.
type txSocket struct {
	conn *net.UDPConn
	rc   syscall.RawConn
	port uint16
}

// openSendSockets binds cfg.SendSockets sockets to cfg.Local, socket k to
// a random free port of the k-th slice of the range (any free port of the
// range when its slice is full), and sets TTL and DF on them.
func openSendSockets(cfg Config, network string) ([]txSocket, error) {
	lo, span := int(cfg.SrcPortMin), int(cfg.SrcPortMax)-int(cfg.SrcPortMin)+1
	k := cfg.SendSockets
	socks := make([]txSocket, 0, k)
	fail := func(err error) ([]txSocket, error) {
		for _, t := range socks {
			t.conn.Close()
		}
		return nil, err
	}
	for i := range k {
		slotLo, slotN := lo+i*span/k, (i+1)*span/k-i*span/k
		var conn *net.UDPConn
		var lastErr error
		for a := 0; a < portAttempts && conn == nil; a++ {
			port := slotLo + rand.IntN(slotN)
			if a >= portAttempts/2 || (slotN == 1 && a > 0) {
				port = lo + rand.IntN(span)
			}
			ap := netip.AddrPortFrom(cfg.Local, uint16(port))
			c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
			if errors.Is(err, syscall.EADDRINUSE) {
				lastErr = err
				continue
			}
			if err != nil {
				return fail(fmt.Errorf("vxlan: send socket on %s: %w", ap, err))
			}
			conn = c
		}
		if conn == nil {
			return fail(fmt.Errorf("vxlan: no free source port in %d-%d on %s after %d tries: %w",
				cfg.SrcPortMin, cfg.SrcPortMax, cfg.Local, portAttempts, lastErr))
		}
		t := txSocket{conn: conn, port: conn.LocalAddr().(*net.UDPAddr).AddrPort().Port()}
		socks = append(socks, t) // before the checks below, so fail closes it
		rc, err := conn.SyscallConn()
		if err != nil {
			return fail(fmt.Errorf("vxlan: send socket %d: %w", t.port, err))
		}
		socks[len(socks)-1].rc = rc
		if err := setSendOptions(rc, cfg); err != nil {
			return fail(fmt.Errorf("vxlan: send socket %d: %w", t.port, err))
		}
		_ = conn.SetReadBuffer(txSocketRecvBuffer)
	}
	return socks, nil
}

func setSendOptions(rc syscall.RawConn, cfg Config) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		f := int(fd)
		if cfg.Local.Is4() {
			pmtu := unix.IP_PMTUDISC_DONT
			if cfg.DF {
				pmtu = unix.IP_PMTUDISC_DO
			}
			if serr = unix.SetsockoptInt(f, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, pmtu); serr != nil {
				serr = fmt.Errorf("IP_MTU_DISCOVER: %w", serr)
				return
			}
			if cfg.TTL > 0 {
				if serr = unix.SetsockoptInt(f, unix.IPPROTO_IP, unix.IP_TTL, cfg.TTL); serr != nil {
					serr = fmt.Errorf("IP_TTL %d: %w", cfg.TTL, serr)
				}
			}
			return
		}
		pmtu := unix.IPV6_PMTUDISC_DONT
		if cfg.DF {
			pmtu = unix.IPV6_PMTUDISC_DO
		}
		if serr = unix.SetsockoptInt(f, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, pmtu); serr != nil {
			serr = fmt.Errorf("IPV6_MTU_DISCOVER: %w", serr)
			return
		}
		if cfg.TTL > 0 {
			if serr = unix.SetsockoptInt(f, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, cfg.TTL); serr != nil {
				serr = fmt.Errorf("IPV6_UNICAST_HOPS %d: %w", cfg.TTL, serr)
			}
		}
	})
	return errors.Join(err, serr)
}

// txMsg is one datagram to send: a copy of frame (size bytes with the
// VXLAN header) to dst through socket sock. v is the destination's table
// entry, nil for a unicast to an address the table does not know; dkey
// is v.idx, or one past the last index for such an address.
type txMsg struct {
	frame int32
	sock  int32
	size  int32
	dkey  int32
	dst   netip.AddrPort
	v     *vtep
}

// txScratch is WriteBatch's reusable state and the send sockets of one
// lane, guarded by its txLane's mu. Slices grow to the largest batch (and
// VTEP table) seen and are then reused.
type txScratch struct {
	e       *Endpoint
	socks   []txSocket   // this lane's send sockets; the flow hash picks one
	msgs    []txMsg      // in frame order
	tmp     []txMsg      // by destination (first pass of the sort)
	sorted  []txMsg      // by socket, then destination, then frame order
	counts  []int        // per socket, then start offsets
	dcounts []int        // per destination key, then start offsets
	sent    []bool       // per frame: at least one copy left
	res     []DropReason // per datagram of sorted: DropNone = sent
	bufs    [][]byte     // the WriteBatch in progress, nil between calls
	offs    []int

	gso txGSO // messages of one sendmmsg call, GSO staging and state

	// State of the send in progress, read by the RawConn callback fn.
	sock     *txSocket
	from, to int  // messages of gso.b
	waited   bool // the one wait of this WriteBatch is used
	deadline bool // a write deadline is armed on sock
	fn       func(fd uintptr) bool
}

func (x *txScratch) init(e *Endpoint, socks []txSocket) {
	x.e = e
	x.socks = socks
	x.counts = make([]int, len(socks)+1)
	x.gso.init(e.cfg.Local.Is4())
	if e.cfg.NoOffload {
		x.gso.off = true
		e.ctr.gsoOff.Store(true)
	}
	x.fn = x.send
}

// WriteBatch encapsulates each frame bufs[i][offs[i]:] in place (the
// VXLAN header goes into bufs[i][offs[i]-VXLANHdrLen:offs[i]]) and sends
// it to meta[i].VTEP, or, when that is the zero Addr, to every VTEP that
// serves meta[i].VNI (head-end replication). A unicast to an address the
// table does not know goes to that address at the endpoint's port.
//
// Datagrams are grouped by send socket (the flow hash picks it), then by
// destination, keeping frame order within each, and sent with sendmmsg.
// Consecutive datagrams of one size to one destination go as one
// UDP_SEGMENT (GSO) message, copied into a staging buffer; the rest point
// at the caller's buffers (see txGSO). A datagram the kernel refuses
// (unreachable, too big) is counted and skipped, and the rest of the
// batch goes on. A full socket buffer gets one bounded wait per
// WriteBatch; after that, datagrams that still do not fit are dropped and
// counted.
//
// It returns the number of frames of which at least one copy was sent (a
// flood to no VTEP sends nothing and is no drop), and net.ErrClosed after
// Close. It does not allocate once its scratch space has grown to the
// batch sizes in use. Safe for concurrent use; one lock per batch. It
// sends through the first queue's send sockets (see Queues for the
// others).
func (e *Endpoint) WriteBatch(bufs [][]byte, offs []int, meta []dataplane.TunnelMeta) (int, error) {
	return e.sys.lanes[0].write(bufs, offs, meta)
}

// write is WriteBatch through lane l.
func (l *txLane) write(bufs [][]byte, offs []int, meta []dataplane.TunnelMeta) (int, error) {
	x := &l.x
	if x.e.sys.closed.Load() {
		return 0, net.ErrClosed
	}
	n := min(len(bufs), len(offs), len(meta))
	l.mu.Lock()
	x.bufs, x.offs = bufs, offs
	x.encap(meta[:n])
	err := x.sendAll()
	x.bufs, x.offs = nil, nil
	sent := 0
	for _, ok := range x.sent[:n] {
		if ok {
			sent++
		}
	}
	l.mu.Unlock()
	return sent, err
}

// encap writes the headers and lists the datagrams in x.sorted.
func (x *txScratch) encap(meta []dataplane.TunnelMeta) {
	e := x.e
	bufs, offs := x.bufs, x.offs
	snap := e.table.load()
	is4 := e.cfg.Local.Is4()
	nsock := len(x.socks)
	unknown := int32(len(snap.byAddr)) // dkey of addresses not in the table
	if cap(x.sent) < len(meta) {
		x.sent = make([]bool, len(meta))
	}
	x.sent = x.sent[:len(meta)]
	clear(x.sent)
	x.msgs = x.msgs[:0]
	var drops [numDropReasons]uint64
	for i := range meta {
		m := &meta[i]
		off := offs[i]
		if off < VXLANHdrLen || len(bufs[i])-off < EthHdrLen {
			drops[DropTxNoHeadroom]++
			continue
		}
		if m.VNI > MaxVNI {
			drops[DropTxBadVNI]++
			continue
		}
		PutHeader(bufs[i][off-VXLANHdrLen:], m.VNI)
		sock := int32(pick(flowHash(bufs[i][off:], e.sys.seed), nsock))
		size := int32(len(bufs[i]) - off + VXLANHdrLen)
		if m.VTEP.IsValid() {
			a := m.VTEP.Unmap()
			if a.Is4() != is4 || a.IsUnspecified() || a.IsMulticast() {
				drops[DropTxBadDest]++
				continue
			}
			v := snap.byAddr[a]
			dst, dkey := netip.AddrPortFrom(a, e.cfg.Port), unknown
			if v != nil {
				dst, dkey = v.dst, v.idx
			}
			x.msgs = append(x.msgs, txMsg{frame: int32(i), sock: sock, size: size, dkey: dkey, dst: dst, v: v})
			continue
		}
		for _, v := range snap.flood[m.VNI] {
			if v.dst.Addr().Is4() != is4 {
				drops[DropTxBadDest]++
				v.stats.txDrops.Add(1)
				continue
			}
			x.msgs = append(x.msgs, txMsg{frame: int32(i), sock: sock, size: size, dkey: v.idx, dst: v.dst, v: v})
		}
	}
	for r, n := range drops {
		e.ctr.drop(DropReason(r), n)
	}
	x.sortMsgs(nsock, int(unknown)+1)
}

// sortMsgs sorts x.msgs into x.sorted by socket, then destination, with a
// stable two-pass counting sort (destination first): each socket's
// datagrams are contiguous for one sendmmsg, and within them each
// destination's, in frame order, ready to be coalesced for GSO. A flood
// lists frame by frame (F1 to A, F1 to B, F2 to A, ...); sorted, it is
// F1..Fn to A, then F1..Fn to B. Order only changes between destinations.
func (x *txScratch) sortMsgs(nsock, ndst int) {
	n := len(x.msgs)
	if cap(x.sorted) < n {
		x.sorted = make([]txMsg, n, cap(x.msgs))
		x.tmp = make([]txMsg, n, cap(x.msgs))
	}
	x.sorted, x.tmp = x.sorted[:n], x.tmp[:n]
	if len(x.dcounts) < ndst+1 {
		x.dcounts = make([]int, ndst+1)
	}
	dc := x.dcounts[:ndst+1]
	clear(dc)
	for i := range x.msgs {
		dc[x.msgs[i].dkey+1]++
	}
	for k := 1; k <= ndst; k++ {
		dc[k] += dc[k-1]
	}
	for _, m := range x.msgs {
		x.tmp[dc[m.dkey]] = m
		dc[m.dkey]++
	}
	clear(x.counts)
	for i := range x.tmp {
		x.counts[x.tmp[i].sock+1]++
	}
	for k := 1; k <= nsock; k++ {
		x.counts[k] += x.counts[k-1]
	}
	for _, m := range x.tmp {
		x.sorted[x.counts[m.sock]] = m
		x.counts[m.sock]++
	}
}
