package dataplane

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/mmsg"
	"github.com/vxswitch/vxswitch/internal/testutil"
)

// Tests in this file and port_*_test.go need root (netns, veth, TAP); the
// pure ones (VLAN insertion, aux data) are in port_vlan_test.go.

// ptEtherType is the IEEE local experimental EtherType: nothing in a
// test namespace sends it, so test frames are easy to pick out.
const ptEtherType = 0x88b5

// ptOff is the headroom the tests leave in front of each frame, as the
// pipeline does.
const ptOff = 16

var ptNameSeq atomic.Uint32

// ptName returns an interface or namespace name unique to this process
// and test: "vxp" + PID + a sequence number + tag, at most 15 bytes.
func ptName(t testing.TB, tag string) string {
	t.Helper()
	n := fmt.Sprintf("%s%x%s", testutil.Prefix("vxp"), ptNameSeq.Add(1), tag)
	if len(n) > 15 {
		t.Fatalf("name %q longer than 15 bytes", n)
	}
	return n
}

// ptInNS runs fn on a fresh goroutine locked to its thread, switched into
// namespace ns; sockets fn creates stay in ns. fn must not call t.Fatal.
// If switching back fails the thread stays locked and dies with the
// goroutine.
func ptInNS(t testing.TB, ns string, fn func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("in netns %s: %v", ns, err)
	}
}

// ptVeth makes a netns and a veth whose local end stays here and whose
// peer end (same name with "p" for "l") is in the namespace, both up, IPv6
// off so the namespace's kernel stays quiet.
func ptVeth(t testing.TB, mtu int) (local, peer, ns string) {
	t.Helper()
	testutil.RequireRoot(t)
	ns = testutil.NetNS(t, ptName(t, "n"))
	local = ptName(t, "l")
	peer = local[:len(local)-1] + "p"
	testutil.Veth(t, local, peer)
	testutil.Run(t, "ip", "link", "set", peer, "netns", ns)
	for _, args := range [][]string{
		{"ip", "link", "set", local, "mtu", fmt.Sprint(mtu), "up"},
		{"ip", "-n", ns, "link", "set", peer, "mtu", fmt.Sprint(mtu), "up"},
		{"sysctl", "-qw", "net.ipv6.conf." + local + ".disable_ipv6=1"},
		{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf." + peer + ".disable_ipv6=1"},
	} {
		testutil.Run(t, args[0], args[1:]...)
	}
	return local, peer, ns
}

// ptOpenPacketSocket opens a blocking AF_PACKET socket bound to ifname in
// the calling thread's namespace, for the test's side of the wire. Sends
// bypass the qdisc.
func ptOpenPacketSocket(ifname string) (int, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// ptPacketSocket is ptOpenPacketSocket inside namespace ns ("" for this
// one); the socket is closed when the test ends.
func ptPacketSocket(t testing.TB, ns, ifname string) int {
	t.Helper()
	var fd int
	var err error
	if ns == "" {
		fd, err = ptOpenPacketSocket(ifname)
	} else {
		ptInNS(t, ns, func() { fd, err = ptOpenPacketSocket(ifname) })
	}
	if err != nil {
		t.Fatalf("packet socket on %s in netns %q: %v", ifname, ns, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

var (
	ptMACA = net.HardwareAddr{0x02, 0, 0x5e, 0, 0, 0xa}
	ptMACB = net.HardwareAddr{0x02, 0, 0x5e, 0, 0, 0xb}
)

// ptSerialize builds a frame from gopacket layers, padded to the Ethernet
// minimum.
func ptSerialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatal(err)
	}
	f := buf.Bytes()
	if len(f) < 60 {
		f = append(f, make([]byte, 60-len(f))...)
	}
	return f
}

// ptFrame is a frame of size bytes of ptEtherType whose payload starts
// with seq.
func ptFrame(t testing.TB, src, dst net.HardwareAddr, size int, seq uint32) []byte {
	t.Helper()
	payload := make([]byte, size-14)
	binary.BigEndian.PutUint32(payload, seq)
	for i := 4; i < len(payload); i++ {
		payload[i] = byte(i)
	}
	return ptSerialize(t, &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: ptEtherType}, gopacket.Payload(payload))
}

func ptIsTest(f []byte) bool {
	return len(f) >= 18 && binary.BigEndian.Uint16(f[12:]) == ptEtherType
}

func ptSeq(f []byte) uint32 { return binary.BigEndian.Uint32(f[14:]) }

// ptBufs returns n buffers with ptOff headroom and room for size.
func ptBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, ptOff+size)
	}
	return bufs, make([]int, n)
}

// ptReadFrames reads from p until it has collected want frames that match
// keep, or fails after a timeout. Other frames are ignored.
func ptReadFrames(t testing.TB, p Port, bufSize, want int, keep func([]byte) bool) [][]byte {
	t.Helper()
	type result struct {
		frames [][]byte
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		bufs, sizes := ptBufs(p.BatchSize(), bufSize)
		var got [][]byte
		for len(got) < want {
			n, err := p.ReadBatch(bufs, sizes, ptOff)
			if err != nil {
				ch <- result{got, err}
				return
			}
			for i := range n {
				f := bufs[i][ptOff : ptOff+sizes[i]]
				if keep(f) {
					got = append(got, bytes.Clone(f))
				}
			}
		}
		ch <- result{got, nil}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("ReadBatch: %v (after %d frames)", r.err, len(r.frames))
		}
		return r.frames
	case <-time.After(10 * time.Second):
		p.Close() // unblocks the reader
		t.Fatalf("timed out waiting for %d frames", want)
		return nil
	}
}

// ptSend sends frames on a blocking packet socket.
func ptSend(t testing.TB, fd int, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := unix.Write(fd, f); err != nil {
			t.Fatalf("send %d-byte frame: %v", len(f), err)
		}
	}
}

// ptRecv reads from fd (a packet socket or a TAP) until keep accepts
// a frame, waiting at most 10 s.
func ptRecv(t testing.TB, fd int, keep func([]byte) bool) []byte {
	t.Helper()
	buf := make([]byte, 65536)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, int(time.Until(deadline)/time.Millisecond)+1); err != nil && err != unix.EINTR {
			t.Fatalf("poll: %v", err)
		} else if n == 0 {
			break
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if keep(buf[:n]) {
			return bytes.Clone(buf[:n])
		}
	}
	t.Fatal("no matching frame within 10s")
	return nil
}

func ptOpenSystem(t testing.TB, ifname string, opts SystemOptions) *afpacketPort {
	t.Helper()
	p, err := OpenSystem(ifname, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p.(*afpacketPort)
}

func TestSystemReadWrite(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)

	// In: frames sent in the namespace come out of ReadBatch whole and in
	// order, several per batch.
	const n = 100
	var sent [][]byte
	for i := range n {
		sent = append(sent, ptFrame(t, ptMACB, ptMACA, 60+i*10, uint32(i)))
	}
	ptSend(t, fd, sent...)
	got := ptReadFrames(t, p, 2048, n, ptIsTest)
	for i := range got {
		if !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("frame %d: got %d bytes seq %d, want %d bytes seq %d", i, len(got[i]), ptSeq(got[i]), len(sent[i]), i)
		}
	}

	// Out: a WriteBatch larger than one batch arrives in the namespace.
	var out [][]byte
	for i := range 150 {
		out = append(out, ptFrame(t, ptMACA, ptMACB, 64+i, uint32(1000+i)))
	}
	if m, err := p.WriteBatch(out); m != len(out) || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", m, err, len(out))
	}
	for i := range out {
		f := ptRecv(t, fd, ptIsTest)
		if !bytes.Equal(f, out[i]) {
			t.Fatalf("frame %d in netns: got seq %d len %d, want seq %d len %d", i, ptSeq(f), len(f), 1000+i, len(out[i]))
		}
	}
	if d := p.DropCounts(); d != (PortDrops{}) {
		t.Errorf("drops %+v, want none", d)
	}
}

func TestSystemJumbo(t *testing.T) {
	local, peer, ns := ptVeth(t, 9000)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)
	in := ptFrame(t, ptMACB, ptMACA, 9014, 1)
	ptSend(t, fd, in)
	got := ptReadFrames(t, p, 9014, 1, ptIsTest)
	if !bytes.Equal(got[0], in) {
		t.Fatalf("jumbo in: got %d bytes, want %d", len(got[0]), len(in))
	}
	out := ptFrame(t, ptMACA, ptMACB, 9014, 2)
	if m, err := p.WriteBatch([][]byte{out}); m != 1 || err != nil {
		t.Fatalf("WriteBatch jumbo = %d, %v", m, err)
	}
	if f := ptRecv(t, fd, ptIsTest); !bytes.Equal(f, out) {
		t.Fatalf("jumbo out: got %d bytes, want %d", len(f), len(out))
	}
	// Over the MTU: refused by the kernel, skipped and counted, and the
	// frame behind it still goes.
	big := ptFrame(t, ptMACA, ptMACB, 9100, 3)
	if m, err := p.WriteBatch([][]byte{big, out}); m != 1 || err != nil {
		t.Fatalf("WriteBatch over MTU = %d, %v; want 1, nil", m, err)
	}
	if d := p.DropCounts(); d.TxError != 1 {
		t.Fatalf("drops %+v, want TxError 1", d)
	}
}

func TestSystemTooBigDropped(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)
	small := ptFrame(t, ptMACB, ptMACA, 100, 2)
	ptSend(t, fd, ptFrame(t, ptMACB, ptMACA, 1000, 1), small)
	// 256-byte buffers: the 1000-byte frame is dropped, not truncated.
	got := ptReadFrames(t, p, 256, 1, ptIsTest)
	if !bytes.Equal(got[0], small) {
		t.Fatalf("got seq %d len %d, want the 100-byte frame", ptSeq(got[0]), len(got[0]))
	}
	if d := p.DropCounts(); d.RxTooBig != 1 {
		t.Fatalf("drops %+v, want RxTooBig 1", d)
	}
}

func TestSystemIgnoresOwnFrames(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)
	// Broadcast frames, so the peer's kernel would not reflect them.
	var own [][]byte
	for i := range 10 {
		own = append(own, ptFrame(t, ptMACA, layers.EthernetBroadcast, 64, uint32(i)))
	}
	if m, err := p.WriteBatch(own); m != len(own) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", m, err)
	}
	for range own {
		ptRecv(t, fd, ptIsTest) // they went out
	}
	// The marker from the peer comes after our frames; none of ours may be
	// read before it.
	ptSend(t, fd, ptFrame(t, ptMACB, ptMACA, 64, 999))
	got := ptReadFrames(t, p, 2048, 1, func(f []byte) bool {
		if ptIsTest(f) && bytes.Equal(f[6:12], ptMACA) {
			t.Errorf("read back own frame seq %d", ptSeq(f))
		}
		return ptIsTest(f) && ptSeq(f) == 999
	})
	if len(got) != 1 {
		t.Fatal("marker not read")
	}
}

func TestSystemVLANTagKept(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)
	tagged := ptSerialize(t,
		&layers.Ethernet{SrcMAC: ptMACB, DstMAC: ptMACA, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{Priority: 5, VLANIdentifier: 7, Type: ptEtherType},
		gopacket.Payload(bytes.Repeat([]byte{0xab}, 100)))
	prio0 := ptSerialize(t, // priority tag: VLAN 0, PCP 0; the kernel still strips it
		&layers.Ethernet{SrcMAC: ptMACB, DstMAC: ptMACA, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 0, Type: ptEtherType},
		gopacket.Payload(bytes.Repeat([]byte{0xcd}, 100)))
	qinq := ptSerialize(t,
		&layers.Ethernet{SrcMAC: ptMACB, DstMAC: ptMACA, EthernetType: layers.EthernetTypeQinQ},
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 7, Type: ptEtherType},
		gopacket.Payload(bytes.Repeat([]byte{0xef}, 100)))
	ptSend(t, fd, tagged, prio0, qinq)
	isOurs := func(f []byte) bool { return bytes.Equal(f[6:12], ptMACB) }
	got := ptReadFrames(t, p, 2048, 3, isOurs)
	for i, want := range [][]byte{tagged, prio0, qinq} {
		if !bytes.Equal(got[i], want) {
			t.Errorf("frame %d:\n got % x\nwant % x", i, got[i][:20], want[:20])
		}
	}
}

func TestSystemCloseUnblocksRead(t *testing.T) {
	local, _, _ := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	done := make(chan error, 1)
	go func() {
		bufs, sizes := ptBufs(p.BatchSize(), 2048)
		for {
			if _, err := p.ReadBatch(bufs, sizes, ptOff); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond) // let it block; the test holds either way
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.WriteBatch([][]byte{ptFrame(t, ptMACA, ptMACB, 64, 0)}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v, want net.ErrClosed", err)
	}
}

// TestSystemGone deletes the interface under a blocked ReadBatch: while up,
// and after it was set down first (the kernel then sends no wake-up on
// deletion). It also checks that down and up again is not "gone".
func TestSystemGone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		downFirst bool
	}{{"up", false}, {"down-then-deleted", true}} {
		t.Run(tc.name, func(t *testing.T) {
			local, peer, ns := ptVeth(t, 1500)
			p := ptOpenSystem(t, local, SystemOptions{})
			fd := ptPacketSocket(t, ns, peer)
			frames := make(chan uint32, 16)
			done := make(chan error, 1)
			go func() {
				bufs, sizes := ptBufs(p.BatchSize(), 2048)
				for {
					n, err := p.ReadBatch(bufs, sizes, ptOff)
					if err != nil {
						done <- err
						return
					}
					for i := range n {
						if f := bufs[i][ptOff : ptOff+sizes[i]]; ptIsTest(f) {
							frames <- ptSeq(f)
						}
					}
				}
			}()
			if tc.downFirst {
				testutil.Run(t, "ip", "link", "set", local, "down")
				time.Sleep(3 * downPoll) // a few polls: down is not gone
				select {
				case err := <-done:
					t.Fatalf("ReadBatch returned %v while the link was only down", err)
				default:
				}
				testutil.Run(t, "ip", "link", "set", local, "up")
				// Back up: frames flow again on the same port.
				deadline := time.After(5 * time.Second)
			again:
				for {
					ptSend(t, fd, ptFrame(t, ptMACB, ptMACA, 64, 7))
					select {
					case <-frames:
						break again
					case <-time.After(50 * time.Millisecond):
					case <-deadline:
						t.Fatal("no frames after the link came back up")
					}
				}
				testutil.Run(t, "ip", "link", "set", local, "down")
			}
			start := time.Now()
			testutil.Run(t, "ip", "link", "del", local)
			select {
			case err := <-done:
				if !errors.Is(err, ErrPortGone) {
					t.Fatalf("ReadBatch after delete: %v, want ErrPortGone", err)
				}
				t.Logf("ErrPortGone %v after delete", time.Since(start))
			case <-time.After(5 * time.Second):
				t.Fatal("ReadBatch still blocked 5s after the interface was deleted")
			}
			if _, err := p.WriteBatch([][]byte{ptFrame(t, ptMACA, ptMACB, 64, 0)}); !errors.Is(err, ErrPortGone) {
				t.Fatalf("WriteBatch after delete: %v, want ErrPortGone", err)
			}
		})
	}
}

func TestSystemNoSuchInterface(t *testing.T) {
	testutil.RequireRoot(t)
	name := ptName(t, "none")
	_, err := OpenSystem(name, SystemOptions{})
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("OpenSystem(%q) = %v, want an error naming it", name, err)
	}
}

// TestSystemAllocs holds the promise of no allocation per batch in steady
// state, with frames ready to read.
func TestSystemAllocs(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)
	const n = 64
	frames := make([][]byte, n)
	gen := mmsg.NewBatch(n, mmsg.Options{})
	for i := range frames {
		frames[i] = ptFrame(t, ptMACB, ptMACA, 64, uint32(i))
		gen.SetBuf(i, frames[i])
	}
	bufs, sizes := ptBufs(n, 2048)
	// Warm up: the first read parks in the poller, which may allocate once.
	ptSend(t, fd, frames[0])
	if _, err := p.ReadBatch(bufs, sizes, ptOff); err != nil {
		t.Fatal(err)
	}
	read := testing.AllocsPerRun(100, func() {
		if m, err := gen.Send(fd, 0, n, 0); m != n || err != nil {
			t.Fatalf("send: %d, %v", m, err)
		}
		if _, err := p.ReadBatch(bufs, sizes, ptOff); err != nil {
			t.Fatal(err)
		}
	})
	write := testing.AllocsPerRun(100, func() {
		if m, err := p.WriteBatch(frames); m != n || err != nil {
			t.Fatalf("WriteBatch: %d, %v", m, err)
		}
	})
	if read != 0 || write != 0 {
		t.Fatalf("allocations per batch: ReadBatch %v, WriteBatch %v; want 0", read, write)
	}
}

// TestSystemOnForeignTAP attaches to a multi-queue TAP that another
// process holds open, as QEMU does (-netdev tap,ifname=...,script=no).
func TestSystemOnForeignTAP(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NetNS(t, ptName(t, "n"))
	tap := ptName(t, "t")
	testutil.Run(t, "ip", "-n", ns, "tuntap", "add", "mode", "tap", "dev", tap, "multi_queue")
	var tapfd int
	var err error
	ptInNS(t, ns, func() { tapfd, err = ptOpenTAPQueue(tap) })
	if err != nil {
		t.Fatalf("open TAP queue: %v", err)
	}
	t.Cleanup(func() { unix.Close(tapfd) })
	testutil.Run(t, "ip", "-n", ns, "link", "set", tap, "up")
	var port Port
	ptInNS(t, ns, func() { port, err = OpenSystem(tap, SystemOptions{}) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { port.Close() })
	p := port.(*afpacketPort)
	// Guest -> switch: the "VM" writes into its TAP fd.
	in := ptFrame(t, ptMACB, ptMACA, 200, 1)
	ptSend(t, tapfd, in)
	if got := ptReadFrames(t, p, 2048, 1, ptIsTest); !bytes.Equal(got[0], in) {
		t.Fatalf("from the VM: got %d bytes", len(got[0]))
	}
	// Switch -> guest: the VM reads what the port writes.
	out := ptFrame(t, ptMACA, ptMACB, 300, 2)
	if m, err := p.WriteBatch([][]byte{out}); m != 1 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", m, err)
	}
	if got := ptRecv(t, tapfd, ptIsTest); !bytes.Equal(got, out) {
		t.Fatalf("to the VM: got %d bytes", len(got))
	}
}

// ptOpenTAPQueue attaches a blocking fd to TAP name as one queue of a
// multi-queue TAP, the way QEMU does.
func ptOpenTAPQueue(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
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
