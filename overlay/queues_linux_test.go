package overlay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/dataplane"
)

// Tests of an endpoint with two queues: two receive sockets with
// SO_REUSEPORT, two send lanes. Loopback only; no root needed.

// seqOff is where testFrame's payload starts; the tests put the flow and a
// sequence number there.
const seqOff = 14 + 20 + 8

func seqFrame(t testing.TB, flow int, seq uint32) []byte {
	f := testFrame(t, uint16(30000+flow), 0, 64)
	binary.BigEndian.PutUint32(f[seqOff:], uint32(flow))
	binary.BigEndian.PutUint32(f[seqOff+4:], seq)
	return f
}

// TestQueuesSpreadFlows sends 1000 VXLAN packets of 32 flows (each from
// its own UDP source port, as a peer VTEP's entropy does) to an endpoint
// with two queues, read by a goroutine each: the kernel spreads the flows
// over both sockets, every frame arrives once, each flow on one queue and
// in order. Both sockets have UDP GRO and SO_REUSEPORT.
func TestQueuesSpreadFlows(t *testing.T) {
	e := listenEndpoints(t, func(_ int, c *Config) { c.VNIs, c.Queues = []uint32{7}, 2 }, "127.0.0.2")[0]
	qs := e.Queues()
	if len(qs) != 2 || len(e.sys.rxq) != 2 {
		t.Fatalf("%d queues, %d receive sockets; want 2", len(qs), len(e.sys.rxq))
	}
	for i, q := range e.sys.rxq {
		rc, _ := q.conn.SyscallConn()
		var gro, reuse int
		var err1, err2 error
		rc.Control(func(fd uintptr) {
			gro, err1 = unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO)
			reuse, err2 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT)
		})
		if err1 != nil || err2 != nil || gro != 1 || reuse != 1 {
			t.Errorf("receive socket %d: UDP_GRO %d, SO_REUSEPORT %d (%v %v); want both on", i, gro, reuse, err1, err2)
		}
	}
	if !e.Stats().GRO {
		t.Error("Stats().GRO is false with GRO on every socket")
	}

	const flows, frames = 32, 1000
	var mu sync.Mutex
	got := make([][]uint64, len(qs)) // per queue: flow<<32 | seq
	var total atomic.Int64
	var wg sync.WaitGroup
	for i, q := range qs {
		wg.Go(func() {
			rb := newRxBatch(e.BatchSize(), 2048)
			for {
				n, err := q.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
				for k := range n {
					f := rb.bufs[k][testOff : testOff+rb.sizes[k]]
					mu.Lock()
					got[i] = append(got[i], uint64(binary.BigEndian.Uint32(f[seqOff:]))<<32|uint64(binary.BigEndian.Uint32(f[seqOff+4:])))
					mu.Unlock()
					total.Add(1)
				}
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						t.Errorf("queue %d: %v", i, err)
					}
					return
				}
			}
		})
	}
	senders := make([]*net.UDPConn, flows)
	for f := range senders {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		senders[f] = c
	}
	dst := net.UDPAddrFromAddrPort(e.LocalAddr())
	pkt := make([]byte, VXLANHdrLen+64)
	for sent := 0; sent < frames; {
		for range min(100, frames-sent) {
			f := sent % flows
			PutHeader(pkt, 7)
			copy(pkt[VXLANHdrLen:], seqFrame(t, f, uint32(sent)))
			if _, err := senders[f].WriteToUDP(pkt, dst); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		deadline := time.Now().Add(5 * time.Second)
		for total.Load() < int64(sent) {
			if time.Now().After(deadline) {
				t.Fatalf("read %d of %d sent", total.Load(), sent)
			}
			time.Sleep(time.Millisecond)
		}
	}
	e.Close()
	wg.Wait()

	seen := make([]int, frames)
	flowQueue := map[int]int{}
	for q, vs := range got {
		if len(vs) == 0 {
			t.Errorf("queue %d read nothing of %d flows", q, flows)
		}
		last := map[int]int{}
		for _, v := range vs {
			f, seq := int(v>>32), int(uint32(v))
			if seq >= frames || f != seq%flows {
				t.Fatalf("queue %d read a frame not sent: flow %d seq %d", q, f, seq)
			}
			seen[seq]++
			if fq, ok := flowQueue[f]; ok && fq != q {
				t.Errorf("flow %d on queues %d and %d", f, fq, q)
			}
			flowQueue[f] = q
			if l, ok := last[f]; ok && seq <= l {
				t.Errorf("flow %d out of order on queue %d", f, q)
			}
			last[f] = seq
		}
	}
	for seq, n := range seen {
		if n != 1 {
			t.Errorf("frame %d read %d times", seq, n)
		}
	}
	t.Logf("queue 0: %d frames, queue 1: %d", len(got[0]), len(got[1]))
	if st := e.Stats(); st.RxPackets != frames {
		t.Errorf("RxPackets %d, want %d", st.RxPackets, frames)
	}
}

// TestQueuesSendOwnSockets: each queue sends from send sockets of its
// own (source ports no other lane uses), all with TTL and DF set.
func TestQueuesSendOwnSockets(t *testing.T) {
	e := listenEndpoints(t, func(_ int, c *Config) {
		c.VNIs, c.Queues, c.SendSockets, c.TTL, c.DF = []uint32{7}, 2, 4, 9, true
	}, "127.0.0.1")[0]
	if len(e.sys.lanes) != 2 {
		t.Fatalf("%d send lanes, want 2", len(e.sys.lanes))
	}
	lanePort := map[uint16]int{}
	for i, l := range e.sys.lanes {
		if len(l.x.socks) != 4 {
			t.Fatalf("lane %d has %d send sockets, want 4", i, len(l.x.socks))
		}
		for _, s := range l.x.socks {
			if other, dup := lanePort[s.port]; dup {
				t.Fatalf("source port %d in lanes %d and %d", s.port, other, i)
			}
			lanePort[s.port] = i
			var ttl int
			s.rc.Control(func(fd uintptr) { ttl, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL) })
			if ttl != 9 {
				t.Errorf("lane %d port %d: TTL %d, want 9", i, s.port, ttl)
			}
		}
	}
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: int(e.LocalAddr().Port())})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	e.AddVTEP(netip.MustParseAddr("127.0.0.2"), 0, nil, SourceStatic)
	for lane, q := range e.Queues() {
		var frames [][]byte
		var meta []dataplane.TunnelMeta
		for f := range 16 {
			frames = append(frames, seqFrame(t, f, uint32(lane)))
			meta = append(meta, dataplane.TunnelMeta{VNI: 7})
		}
		b := newTxBatch(frames, meta)
		if n, err := q.WriteBatch(b.bufs, b.offs, b.meta); n != 16 || err != nil {
			t.Fatalf("lane %d WriteBatch = %d, %v", lane, n, err)
		}
		buf := make([]byte, 2048)
		ports := map[uint16]bool{}
		for range 16 {
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("lane %d: %v", lane, err)
			}
			if n < VXLANHdrLen+seqOff+8 || binary.BigEndian.Uint32(buf[VXLANHdrLen+seqOff+4:]) != uint32(lane) {
				t.Fatalf("lane %d: unexpected datagram", lane)
			}
			if l, ok := lanePort[from.Port()]; !ok || l != lane {
				t.Errorf("lane %d sent from port %d, which is lane %d's (known: %v)", lane, from.Port(), l, ok)
			}
			ports[from.Port()] = true
		}
		if len(ports) < 2 {
			t.Errorf("lane %d: 16 flows left from %d source ports", lane, len(ports))
		}
	}
}

// TestQueuesAddressTaken: SO_REUSEPORT must not let a second endpoint
// share the address of a running one (it would take part of its
// packets): with one queue or two, on either side, the second Listen
// fails as it would without queues.
func TestQueuesAddressTaken(t *testing.T) {
	for _, tc := range []struct{ first, second int }{{2, 2}, {2, 1}, {1, 2}} {
		t.Run(fmt.Sprintf("%d then %d", tc.first, tc.second), func(t *testing.T) {
			a := listenEndpoints(t, func(_ int, c *Config) { c.Queues = tc.first }, "127.0.0.1")[0]
			b, err := Listen(Config{Local: netip.MustParseAddr("127.0.0.1"), Port: a.LocalAddr().Port(), Queues: tc.second})
			if err == nil {
				b.Close()
				t.Fatal("a second endpoint listened on the address of a running one")
			}
			if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), a.LocalAddr().String()) {
				t.Errorf("error %q: want EADDRINUSE naming %s", err, a.LocalAddr())
			}
		})
	}
}

func TestQueuesConfig(t *testing.T) {
	local := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
		sockets int
	}{
		{"default", Config{Local: local}, "", 16},
		{"too many", Config{Local: local, Queues: dataplane.MaxQueues + 1}, "vxlan queues 17: must be 1-16", 0},
		{"negative", Config{Local: local, Queues: -1}, "vxlan queues -1: must be 1-16", 0},
		{"range shared", Config{Local: local, Queues: 2, SrcPortMin: 1000, SrcPortMax: 1009}, "", 5},
		{"range too small", Config{Local: local, Queues: 4, SrcPortMin: 1000, SrcPortMax: 1002},
			"vxlan source ports 1000-1002: 3 ports cannot give each of 4 queues a send socket", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.cfg.withDefaults()
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || c.SendSockets != tc.sockets {
				t.Fatalf("SendSockets %d, err %v; want %d sockets", c.SendSockets, err, tc.sockets)
			}
		})
	}
}

// TestQueueAllocs is TestEndpointAllocs's unicast case through the second
// queue on both sides: its send lane, and whichever receive socket the
// kernel picks for the one flow.
func TestQueueAllocs(t *testing.T) {
	eps := listenEndpoints(t, func(_ int, c *Config) { c.VNIs, c.Queues = []uint32{7}, 2 }, "127.0.0.1", "127.0.0.2")
	a, b := eps[0], eps[1]
	a.AddVTEP(b.LocalAddr().Addr(), 0, nil, SourceStatic)
	tx := oneFlow(floodBatch(t, 64, 200, 7, b.LocalAddr().Addr()))
	send := a.Queues()[1]
	rb := newRxBatch(64, 2048)
	if n, err := send.WriteBatch(tx.bufs, tx.offs, tx.meta); n != 64 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	// Find the socket the flow lands on.
	var recv dataplane.TunnelQueue
	for i, q := range b.Queues() {
		b.sys.rxq[i].conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		got := 0
		for got < 64 {
			n, err := q.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
			if err != nil {
				break
			}
			got += n
		}
		b.sys.rxq[i].conn.SetReadDeadline(time.Time{})
		if got == 64 {
			recv = q
		}
	}
	if recv == nil {
		t.Fatal("the flow reached no receive socket whole")
	}
	if n := testing.AllocsPerRun(100, func() {
		if n, err := send.WriteBatch(tx.bufs, tx.offs, tx.meta); n != 64 || err != nil {
			t.Fatalf("WriteBatch = %d, %v", n, err)
		}
		for got := 0; got < 64; {
			n, err := recv.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}); n != 0 {
		t.Errorf("queue WriteBatch+ReadBatch of 64: %v allocations per run, want 0", n)
	}
}
