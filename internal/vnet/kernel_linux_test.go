package vnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/testutil"
)

// TestKernelTSO shows the real thing on this kernel: a TCP connection
// across a veth pair with the default offloads (TSO and checksum offload
// on), an AF_PACKET socket with PACKET_VNET_HDR on the receiving end, and
// the super-frames it hands over. Every frame is decoded, super-frames are
// segmented, others have their checksums finished, and the result must be
// frames gopacket accepts with valid checksums carrying the bytes the
// client wrote, at the right sequence numbers.
//
//	namespace <p>c: veth <p>a 192.0.2.1 ==== veth <p>b 192.0.2.2 :namespace <p>s
//	  TCP client writes 4 MB              AF_PACKET (PACKET_VNET_HDR) + TCP server
func TestKernelTSO(t *testing.T) {
	testutil.RequireRoot(t)
	for _, v6 := range []bool{false, true} {
		name := "ipv4"
		if v6 {
			name = "ipv6"
		}
		t.Run(name, func(t *testing.T) { testKernelTSO(t, v6) })
	}
}

func testKernelTSO(t *testing.T, v6 bool) {
	p := testutil.Prefix("vxv")
	if v6 {
		p += "6"
	} else {
		p += "4"
	}
	nsC, nsS, a, b := p+"c", p+"s", p+"a", p+"b"
	testutil.NetNS(t, nsC)
	testutil.NetNS(t, nsS)
	testutil.Veth(t, a, b)
	testutil.Run(t, "ip", "link", "set", a, "netns", nsC)
	testutil.Run(t, "ip", "link", "set", b, "netns", nsS)
	cAddr, sAddr, network := "192.0.2.1/24", "192.0.2.2", "tcp4"
	if v6 {
		cAddr, sAddr, network = "2001:db8::1/64", "2001:db8::2", "tcp6"
	}
	addArgs := func(addr string) []string {
		args := []string{"addr", "add", addr}
		if v6 {
			args = append(args, "nodad")
		}
		return args
	}
	testutil.Run(t, "ip", append([]string{"-n", nsC}, append(addArgs(cAddr), "dev", a)...)...)
	testutil.Run(t, "ip", append([]string{"-n", nsS}, append(addArgs(sAddr+cAddr[strings.Index(cAddr, "/"):]), "dev", b)...)...)
	testutil.Run(t, "ip", "-n", nsC, "link", "set", a, "up")
	testutil.Run(t, "ip", "-n", nsS, "link", "set", b, "up")
	if out, err := exec.Command("ip", "netns", "exec", nsC, "ethtool", "-k", a).Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "tcp-segmentation-offload") || strings.HasPrefix(l, "tx-checksumming") {
				t.Logf("%s: %s", a, l)
			}
		}
	}

	// The packet socket and the listener are made on a thread inside the
	// server namespace; they stay there when the thread leaves.
	var fd int
	var ln net.Listener
	err := inNetNS(nsS, func() error {
		ifi, err := net.InterfaceByName(b)
		if err != nil {
			return err
		}
		if fd, err = openVnetSocket(ifi.Index); err != nil {
			return err
		}
		ln, err = net.Listen(network, net.JoinHostPort(sAddr, "0"))
		return err
	})
	if err != nil {
		t.Fatalf("set up in %s: %v", nsS, err)
	}
	t.Cleanup(func() { ln.Close() })

	// Capture: a goroutine copies frames to a channel, as fast as it can.
	frames := make(chan []byte, 8192)
	var stop atomic.Bool
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, HdrLen+70000)
		for !stop.Load() {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue // EAGAIN every 100 ms, from SO_RCVTIMEO
			}
			select {
			case frames <- append([]byte(nil), buf[:n]...):
			default:
			}
		}
	}()
	t.Cleanup(func() {
		stop.Store(true)
		<-readerDone
		unix.Close(fd)
	})

	const total = 4 << 20
	stream := payloadBytes(total)
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	var conn net.Conn
	if err := inNetNS(nsC, func() error {
		var err error
		conn, err = net.DialTimeout(network, ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("dial from %s: %v", nsC, err)
	}
	sPort := uint16(ln.Addr().(*net.TCPAddr).Port)
	wrote := make(chan error, 1)
	go func() {
		_, err := conn.Write(stream)
		conn.Close()
		wrote <- err
	}()

	// Check what arrived until the transfer is over and enough was seen.
	var (
		isn                             uint32
		haveISN                         bool
		superFrames, segments, finished int
		largest                         int
		hints                           []string
	)
	out, sizes := outBufs(64, 1600)
	deadline := time.After(20 * time.Second)
	var recvd int64 = -2
	for done := false; !done; {
		select {
		case raw := <-frames:
			h, err := Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			f := raw[HdrLen:]
			l, err := parse(f)
			if err != nil || l.proto != protoTCP || binary.BigEndian.Uint16(f[l.l4+2:]) != sPort {
				continue // not our connection's client-to-server direction
			}
			seq := binary.BigEndian.Uint32(f[l.l4+tcpSeqOff:])
			if f[l.l4+tcpFlagsOff]&0x02 != 0 { // SYN
				isn, haveISN = seq, true
			}
			if h.GSO() == GSONone {
				if err := FinishChecksum(f, h); err != nil {
					t.Fatalf("FinishChecksum(%+v): %v", h, err)
				}
				if h.Flags&FlagNeedsCsum != 0 {
					finished++
				}
				d := decode(t, "small frame", f)
				checkStream(t, stream, isn, haveISN, seq, d.payload)
				continue
			}
			superFrames++
			largest = max(largest, len(f))
			if len(hints) < 3 {
				hints = append(hints, fmt.Sprintf("%+v (headers %d, frame %d)", h, l.data, len(f)))
			}
			n, err := Segment(f, h, out, sizes, 0)
			if err != nil {
				t.Fatalf("Segment(%+v, %d bytes): %v", h, len(f), err)
			}
			off := 0
			for i := range n {
				seg := out[i][:sizes[i]]
				if len(seg) > l.data+int(h.GSOSize) {
					t.Fatalf("segment %d: %d bytes > %d + gso_size %d", i, len(seg), l.data, h.GSOSize)
				}
				d := decode(t, fmt.Sprintf("segment %d of %d", i, n), seg)
				if d.tcp.Seq != seq+uint32(off) {
					t.Fatalf("segment %d: seq %d, want %d", i, d.tcp.Seq, seq+uint32(off))
				}
				checkStream(t, stream, isn, haveISN, d.tcp.Seq, d.payload)
				off += len(d.payload)
			}
			if off != l.end-l.data {
				t.Fatalf("segments carry %d payload bytes, super-frame %d", off, l.end-l.data)
			}
			segments += n
		case err := <-wrote:
			if err != nil {
				t.Fatalf("client write: %v", err)
			}
			wrote = nil
		case recvd = <-got:
			got = nil
		case <-time.After(500 * time.Millisecond):
			done = wrote == nil && got == nil // quiet after the transfer
		case <-deadline:
			t.Fatalf("transfer did not finish in time (server got %d bytes)", recvd)
		}
	}
	if recvd != total {
		t.Fatalf("server received %d bytes, want %d", recvd, total)
	}
	for _, s := range hints {
		t.Logf("super-frame header: %s", s)
	}
	t.Logf("%d super-frames (largest %d bytes) segmented into %d frames; %d small frames finished", superFrames, largest, segments, finished)
	if !haveISN {
		t.Error("never saw the SYN")
	}
	if superFrames == 0 {
		t.Error("no super-frame arrived: is TSO off on the veth?")
	}
}

// checkStream checks that payload is the client's stream at seq.
func checkStream(t *testing.T, stream []byte, isn uint32, haveISN bool, seq uint32, payload []byte) {
	t.Helper()
	if !haveISN || len(payload) == 0 {
		return
	}
	off := int(seq - isn - 1)
	if off < 0 || off+len(payload) > len(stream) || string(stream[off:off+len(payload)]) != string(payload) {
		t.Fatalf("payload of %d bytes at stream offset %d is not what the client wrote", len(payload), off)
	}
}

// openVnetSocket opens an AF_PACKET socket on ifindex that prefixes every
// frame with a virtio_net_hdr, ignores the interface's outgoing frames and
// times out reads every 100 ms.
func openVnetSocket(ifindex int) (int, error) {
	const ethPAll = 0x0300 // htons(ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, ethPAll)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	for _, o := range []struct {
		level, opt, val int
		name            string
	}{
		{unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"},
		{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"},
		{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16 << 20, "SO_RCVBUFFORCE"},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("%s: %w", o.name, err)
		}
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: ethPAll, Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind: %w", err)
	}
	return fd, nil
}

// inNetNS runs fn on a fresh goroutine locked to its thread, switched into
// the named network namespace. If switching back fails the thread stays
// locked, so it dies with the goroutine instead of serving others.
func inNetNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return // still locked: the thread exits with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
