package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/testutil"
)

// Helpers for the port tests (ports_test.go, port_tap_test.go,
// port_bench_test.go), which need root for netns, veth and TAP. Their
// names start with "pt" so they do not collide with the pipeline's tests.

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

// ptRxMode is merged into the options of every system port the tests
// open: TestSystemRecvmmsg sets it to run the port tests again without a
// receive ring. Tests of this package do not run in parallel.
var ptRxMode SystemOptions

func ptSystemOptions(opts SystemOptions) SystemOptions {
	if opts.RingFrames == 0 {
		opts.RingFrames = ptRxMode.RingFrames
	}
	return opts
}

func ptOpenSystem(t testing.TB, ifname string, opts SystemOptions) *afpacketPort {
	t.Helper()
	p, err := OpenSystem(ifname, ptSystemOptions(opts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p.(*afpacketPort)
}
