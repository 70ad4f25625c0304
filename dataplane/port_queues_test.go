package dataplane

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/testutil"
)

// Root tests of multi-queue ports: a two-queue TAP and a two-socket
// fanout group, each read by one goroutine per queue as the switch does.
// Names come from ptName (prefix and PID), and everything is removed when
// the test ends, however it ends.

// flowFrame is a UDP/IPv4 frame of flow f (its own source port), carrying
// seq in its payload after a marker. The flow hash the kernel spreads
// frames by covers addresses and ports.
func flowFrame(t testing.TB, f int, seq uint32) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IP{198, 18, 0, 1}, DstIP: net.IP{198, 18, 0, 2}}
	udp := &layers.UDP{SrcPort: layers.UDPPort(20000 + f), DstPort: 9}
	udp.SetNetworkLayerForChecksum(ip)
	payload := make([]byte, 12)
	copy(payload, "hwkq")
	binary.BigEndian.PutUint32(payload[4:], uint32(f))
	binary.BigEndian.PutUint32(payload[8:], seq)
	return ptSerialize(t, &layers.Ethernet{SrcMAC: ptMACB, DstMAC: ptMACA, EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload(payload))
}

// flowOf reads flow and seq back from a flowFrame; ok is false for any
// other frame.
func flowOf(fr []byte) (flow int, seq uint32, ok bool) {
	const at = 14 + 20 + 8 // Ethernet, IPv4 without options, UDP
	if len(fr) < at+12 || !bytes.Equal(fr[at:at+4], []byte("hwkq")) {
		return 0, 0, false
	}
	return int(binary.BigEndian.Uint32(fr[at+4:])), binary.BigEndian.Uint32(fr[at+8:]), true
}

// queueReaders reads every queue of p on a goroutine of its own, as the
// switch does, and records which queue got which frame of the test.
type queueReaders struct {
	mu    sync.Mutex
	got   [][]uint64 // per queue: flow<<32 | seq, in the order read
	total atomic.Int64
	wg    sync.WaitGroup
	errs  []error
}

func readQueues(t *testing.T, p MultiQueuePort) *queueReaders {
	t.Helper()
	qs := p.Queues()
	r := &queueReaders{got: make([][]uint64, len(qs))}
	for i, q := range qs {
		r.wg.Go(func() {
			bufs, sizes := ptBufs(p.BatchSize(), 2048)
			for {
				n, err := q.ReadBatch(bufs, sizes, ptOff)
				for k := range n {
					if f, seq, ok := flowOf(bufs[k][ptOff : ptOff+sizes[k]]); ok {
						r.mu.Lock()
						r.got[i] = append(r.got[i], uint64(f)<<32|uint64(seq))
						r.mu.Unlock()
						r.total.Add(1)
					}
				}
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						r.mu.Lock()
						r.errs = append(r.errs, fmt.Errorf("queue %d: %w", i, err))
						r.mu.Unlock()
					}
					return
				}
			}
		})
	}
	return r
}

// sendFlows sends frames frames of flows flows (round robin) on packet
// socket fd, in chunks that it waits for r to have read, so that no
// queue of the receiving device overflows: a lost frame is then the
// port's fault.
func sendFlows(t *testing.T, fd int, r *queueReaders, flows, frames int) {
	t.Helper()
	const chunk = 100
	for sent := 0; sent < frames; {
		for range min(chunk, frames-sent) {
			ptSend(t, fd, flowFrame(t, sent%flows, uint32(sent)))
			sent++
		}
		deadline := time.Now().Add(10 * time.Second)
		for r.total.Load() < int64(sent) {
			if time.Now().After(deadline) {
				t.Fatalf("read %d of %d frames sent", r.total.Load(), sent)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// check closes p, waits for its readers and checks what they read: every
// frame exactly once, frames of every queue, each flow on one queue only
// and in order there.
func (r *queueReaders) check(t *testing.T, p Port, flows, frames int) {
	t.Helper()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	r.wg.Wait()
	for _, err := range r.errs {
		t.Error(err)
	}
	seen := make([]int, frames)
	flowQueue := map[int]int{}
	for q, got := range r.got {
		if len(got) == 0 {
			t.Errorf("queue %d read no frame of %d flows", q, flows)
		}
		last := map[int]int64{}
		for _, v := range got {
			f, seq := int(v>>32), int(uint32(v))
			if seq >= frames || f != seq%flows {
				t.Fatalf("queue %d read a frame that was not sent: flow %d seq %d", q, f, seq)
			}
			seen[seq]++
			if fq, ok := flowQueue[f]; ok && fq != q {
				t.Errorf("flow %d read on queues %d and %d", f, fq, q)
			}
			flowQueue[f] = q
			if l, ok := last[f]; ok && int64(seq) <= l {
				t.Errorf("flow %d out of order on queue %d: seq %d after %d", f, q, seq, l)
			}
			last[f] = int64(seq)
		}
	}
	lost, dup := 0, 0
	for _, n := range seen {
		switch {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
	}
	if lost != 0 || dup != 0 {
		t.Errorf("%d frames lost, %d duplicated of %d", lost, dup, frames)
	}
	var per []string
	for q, got := range r.got {
		per = append(per, fmt.Sprintf("queue %d: %d", q, len(got)))
	}
	t.Logf("%d frames of %d flows: %s", frames, flows, strings.Join(per, ", "))
}

// TestInternalTwoQueues opens a two-queue internal port, has the kernel
// send 1000 frames of 32 UDP flows through the TAP, and reads both queues
// concurrently: the kernel spreads the flows over both, every frame comes
// once, each flow on one queue and in order. Both queues also write.
func TestInternalTwoQueues(t *testing.T) {
	testutil.RequireRoot(t)
	name := ptName(t, "i")
	dev, err := OpenInternal(name, InternalOptions{Queues: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close(); DeleteLink(name, "") })
	p, ok := dev.(MultiQueuePort)
	if !ok || len(p.Queues()) != 2 {
		t.Fatalf("OpenInternal with 2 queues returned %T", dev)
	}
	out := testutil.Run(t, "ip", "-d", "link", "show", name)
	if !strings.Contains(out, "multi_queue") {
		t.Fatalf("TAP is not multi-queue:\n%s", out)
	}
	testutil.Run(t, "sysctl", "-qw", "net.ipv6.conf."+name+".disable_ipv6=1")
	if err := SetupInternalLink(name, 0, "", nil); err != nil {
		t.Fatal(err)
	}
	fd := ptPacketSocket(t, "", name) // the kernel side: sends into the TAP
	// Each queue writes; the frames come out of the kernel side.
	for i, q := range p.Queues() {
		if n, err := q.WriteBatch([][]byte{ptFrame(t, ptMACA, layers.EthernetBroadcast, 64, uint32(100+i))}); n != 1 || err != nil {
			t.Fatalf("queue %d WriteBatch = %d, %v", i, n, err)
		}
		if f := ptRecv(t, fd, ptIsTest); ptSeq(f) != uint32(100+i) {
			t.Fatalf("queue %d wrote seq %d", i, ptSeq(f))
		}
	}
	r := readQueues(t, p)
	sendFlows(t, fd, r, 32, 1000)
	r.check(t, dev, 32, 1000)
	if err := exec.Command("ip", "link", "show", name).Run(); err == nil {
		t.Errorf("TAP %s still exists after Close of both queues", name)
	}
}

// TestSystemFanout opens a system port with two sockets in a fanout
// group and has the namespace send it 1000 frames of 32 UDP flows: both
// sockets read some, every frame comes once, each flow on one socket and
// in order. Frames the port sends on either socket are not read back
// (PACKET_FANOUT_FLAG_IGNORE_OUTGOING), nor is what the host sends out of
// the interface.
func TestSystemFanout(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	dev, err := OpenSystem(local, SystemOptions{Queues: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	p, ok := dev.(MultiQueuePort)
	if !ok || len(p.Queues()) != 2 {
		t.Fatalf("OpenSystem with 2 queues returned %T", dev)
	}
	fd := ptPacketSocket(t, ns, peer)
	r := readQueues(t, p)

	// Outgoing frames first: from each socket of the group, and from
	// another socket on the host (as the host's stack would send).
	for i, q := range p.Queues() {
		if n, err := q.WriteBatch([][]byte{flowFrame(t, i, uint32(5000+i))}); n != 1 || err != nil {
			t.Fatalf("queue %d WriteBatch = %d, %v", i, n, err)
		}
	}
	host := hostSocket(t, local)
	ptSend(t, host, flowFrame(t, 7, 5007))
	for range 3 {
		ptRecv(t, fd, func(f []byte) bool { _, seq, ok := flowOf(f); return ok && seq >= 5000 })
	}

	sendFlows(t, fd, r, 32, 1000)
	// The frames sent above are not read: check counts them as "not
	// sent" (seq >= frames) and fails.
	r.check(t, dev, 32, 1000)
}

// hostSocket is a packet socket on ifname that sends through the qdisc,
// as the host's own stack does, so that packet taps see what it sends
// (PACKET_QDISC_BYPASS would skip them).
func hostSocket(t *testing.T, ifname string) int {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: 0, Ifindex: ifi.Index}); err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestSystemFanoutGroupsApart opens two two-socket system ports on two
// interfaces: each gets its own fanout group (the kernel picks the ids),
// and one fails cleanly on an interface that does not exist.
func TestSystemFanoutGroupsApart(t *testing.T) {
	l1, _, _ := ptVeth(t, 1500)
	l2, _, _ := ptVeth(t, 1500)
	var ids []int
	for _, name := range []string{l1, l2} {
		dev, err := OpenSystem(name, SystemOptions{Queues: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() })
		var gid [2]int
		for i, q := range dev.(MultiQueuePort).Queues() {
			var v int
			var serr error
			q.(*afpacketPort).rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_FANOUT) })
			if serr != nil {
				t.Fatal(serr)
			}
			gid[i] = v & 0xffff
		}
		if gid[0] != gid[1] {
			t.Fatalf("%s: sockets in groups %d and %d", name, gid[0], gid[1])
		}
		ids = append(ids, gid[0])
	}
	if ids[0] == ids[1] {
		t.Errorf("both ports in fanout group %d", ids[0])
	}
	if _, err := OpenSystem("hwk-nonesuch", SystemOptions{Queues: 2}); err == nil || !strings.Contains(err.Error(), "hwk-nonesuch") {
		t.Errorf("OpenSystem on a missing interface: %v", err)
	}
	if _, err := OpenSystem(l1, SystemOptions{Queues: MaxQueues + 1}); err == nil || !strings.Contains(err.Error(), "queues") {
		t.Errorf("OpenSystem with %d queues: %v", MaxQueues+1, err)
	}
}

// TestQueuesGone deletes the device under a two-queue internal port and
// a two-socket system port while each queue has a reader blocked in
// ReadBatch: every queue's reader returns ErrPortGone.
func TestQueuesGone(t *testing.T) {
	testutil.RequireRoot(t)
	tap := ptName(t, "i")
	in, err := OpenInternal(tap, InternalOptions{Queues: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); DeleteLink(tap, "") })
	local, _, _ := ptVeth(t, 1500)
	sys, err := OpenSystem(local, SystemOptions{Queues: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	for _, c := range []struct {
		name, ifname string
		p            Port
	}{{"internal", tap, in}, {"system", local, sys}} {
		t.Run(c.name, func(t *testing.T) {
			qs := c.p.(MultiQueuePort).Queues()
			errs := make(chan error, len(qs))
			for _, q := range qs {
				go func() {
					bufs, sizes := ptBufs(64, 2048)
					for {
						if _, err := q.ReadBatch(bufs, sizes, ptOff); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			time.Sleep(20 * time.Millisecond) // let them block; the test holds either way
			testutil.Run(t, "ip", "link", "del", c.ifname)
			for i := range qs {
				select {
				case err := <-errs:
					if !errors.Is(err, ErrPortGone) {
						t.Errorf("reader %d: %v, want ErrPortGone", i, err)
					}
				case <-time.After(5 * time.Second):
					c.p.Close()
					t.Fatalf("reader %d still blocked after the device was deleted", i)
				}
			}
		})
	}
}
