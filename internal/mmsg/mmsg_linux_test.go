package mmsg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestMmsghdrSize(t *testing.T) {
	// struct mmsghdr: a msghdr then an unsigned int, padded to pointer size.
	want := unsafe.Sizeof(unix.Msghdr{}) + unsafe.Sizeof(uintptr(0))
	if got := unsafe.Sizeof(Mmsghdr{}); got != want {
		t.Fatalf("sizeof(Mmsghdr) = %d, want %d", got, want)
	}
}

// socketpair returns a connected non-blocking AF_UNIX SOCK_DGRAM pair.
func socketpair(t testing.TB) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func makeBufs(n, size int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs
}

func TestSocketpairBatch(t *testing.T) {
	a, b := socketpair(t)
	const n = 8
	sb := NewBatch(n, Options{})
	for i := range n {
		sb.SetBuf(i, bytes.Repeat([]byte{byte(i)}, 10+i))
	}
	sent, err := sb.Send(a, 0, n, 0)
	if err != nil || sent != n {
		t.Fatalf("Send = %d, %v; want %d, nil", sent, err, n)
	}
	rb := NewBatch(n, Options{})
	bufs := makeBufs(n, 64)
	for i := range bufs {
		rb.SetBuf(i, bufs[i])
	}
	got, err := rb.Recv(b, n, 0)
	if err != nil || got != n {
		t.Fatalf("Recv = %d, %v; want %d, nil", got, err, n)
	}
	for i := range got {
		if rb.Len(i) != 10+i || rb.Truncated(i) {
			t.Errorf("msg %d: len %d trunc %v, want %d false", i, rb.Len(i), rb.Truncated(i), 10+i)
		}
		if want := bytes.Repeat([]byte{byte(i)}, 10+i); !bytes.Equal(bufs[i][:rb.Len(i)], want) {
			t.Errorf("msg %d: got % x want % x", i, bufs[i][:rb.Len(i)], want)
		}
	}
	if _, err := rb.Recv(b, n, 0); err != unix.EAGAIN {
		t.Fatalf("Recv on empty socket: %v, want EAGAIN", err)
	}
	rb.Release(n)
	for i := range n * rb.iovN {
		if rb.iovs[i].Base != nil {
			t.Fatalf("iov %d still references a buffer after Release", i)
		}
	}
}

func TestSocketpairTruncated(t *testing.T) {
	a, b := socketpair(t)
	sb := NewBatch(2, Options{})
	sb.SetBuf(0, make([]byte, 100))
	sb.SetBuf(1, make([]byte, 20))
	if n, err := sb.Send(a, 0, 2, 0); n != 2 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	rb := NewBatch(2, Options{})
	rb.SetBuf(0, make([]byte, 50))
	rb.SetBuf(1, make([]byte, 50))
	n, err := rb.Recv(b, 2, unix.MSG_TRUNC)
	if n != 2 || err != nil {
		t.Fatalf("Recv = %d, %v", n, err)
	}
	if !rb.Truncated(0) || rb.Len(0) != 100 {
		t.Errorf("msg 0: trunc %v len %d, want true 100", rb.Truncated(0), rb.Len(0))
	}
	if rb.Truncated(1) || rb.Len(1) != 20 {
		t.Errorf("msg 1: trunc %v len %d, want false 20", rb.Truncated(1), rb.Len(1))
	}
}

func TestScatterGather(t *testing.T) {
	a, b := socketpair(t)
	sb := NewBatch(1, Options{Iovs: 2})
	sb.SetBufs(0, []byte("head"), []byte("payload"))
	if n, err := sb.Send(a, 0, 1, 0); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	rb := NewBatch(1, Options{Iovs: 2})
	h, p := make([]byte, 2), make([]byte, 20)
	rb.SetBufs(0, h, p)
	if n, err := rb.Recv(b, 1, 0); n != 1 || err != nil {
		t.Fatalf("Recv = %d, %v", n, err)
	}
	if got := string(h) + string(p[:rb.Len(0)-2]); got != "headpayload" {
		t.Fatalf("got %q", got)
	}
}

// TestSetIov builds a message buffer by buffer, as a GSO send does, and
// checks that SetIovlen decides how many are sent.
func TestSetIov(t *testing.T) {
	a, b := socketpair(t)
	sb := NewBatch(1, Options{Iovs: 3})
	sb.SetIov(0, 0, []byte("one,"))
	sb.SetIov(0, 1, []byte("two,"))
	sb.SetIov(0, 2, []byte("not sent"))
	sb.SetIovlen(0, 2)
	if n, err := sb.Send(a, 0, 1, 0); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	rb := NewBatch(1, Options{})
	p := make([]byte, 32)
	rb.SetBuf(0, p)
	if n, err := rb.Recv(b, 1, 0); n != 1 || err != nil {
		t.Fatalf("Recv = %d, %v", n, err)
	}
	if got := string(p[:rb.Len(0)]); got != "one,two," {
		t.Fatalf("got %q, want %q", got, "one,two,")
	}
	for _, bad := range []func(){
		func() { sb.SetIov(0, 3, nil) },
		func() { sb.SetIovlen(0, 4) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic beyond Options.Iovs")
				}
			}()
			bad()
		}()
	}
}

// udpConn listens on a loopback address with port 0.
func udpConn(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func rawConn(t testing.TB, c syscall.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func addrPort(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestUDPPerMessageAddr sends one batch to two receivers, each message
// with its own destination, and checks the senders' addresses on receipt.
func TestUDPPerMessageAddr(t *testing.T) {
	for _, fam := range []struct{ name, lo string }{{"ipv4", "127.0.0.1:0"}, {"ipv6", "[::1]:0"}} {
		t.Run(fam.name, func(t *testing.T) {
			src := udpConn(t, fam.lo)
			dst := []*net.UDPConn{udpConn(t, fam.lo), udpConn(t, fam.lo)}
			const n = 6
			sb := NewBatch(n, Options{Addrs: true})
			for i := range n {
				sb.SetBuf(i, []byte(fmt.Sprintf("msg%d", i)))
				sb.SetAddrPort(i, addrPort(dst[i%2]))
			}
			w := NewWriter(rawConn(t, src), sb)
			if next, err := w.Write(0, n, 0); next != n || err != nil {
				t.Fatalf("Write = %d, %v", next, err)
			}
			for k, d := range dst {
				rb := NewBatch(n, Options{Addrs: true})
				bufs := makeBufs(n, 64)
				for i := range bufs {
					rb.SetBuf(i, bufs[i])
				}
				r := NewReader(rawConn(t, d), rb)
				got := 0
				for got < n/2 {
					m, err := r.Read(n, 0)
					if err != nil {
						t.Fatal(err)
					}
					for i := range m {
						if want := fmt.Sprintf("msg%d", 2*(got+i)+k); string(bufs[i][:rb.Len(i)]) != want {
							t.Errorf("receiver %d: got %q want %q", k, bufs[i][:rb.Len(i)], want)
						}
						if rb.AddrPort(i) != addrPort(src) {
							t.Errorf("receiver %d: from %v want %v", k, rb.AddrPort(i), addrPort(src))
						}
					}
					got += m
				}
			}
		})
	}
}

// TestUDPControl sends with a UDP_SEGMENT cmsg (GSO: one buffer, several
// datagrams) and receives IP_PKTINFO cmsgs.
func TestUDPControl(t *testing.T) {
	src, dst := udpConn(t, "127.0.0.1:0"), udpConn(t, "127.0.0.1:0")
	var serr error
	if err := rawConn(t, dst).Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	sb := NewBatch(1, Options{Addrs: true, Control: unix.CmsgSpace(2)})
	payload := bytes.Repeat([]byte("x"), 300)
	sb.SetBuf(0, payload)
	sb.SetAddrPort(0, addrPort(dst))
	data, space := PutCmsg(sb.ControlBuf(0), unix.SOL_UDP, unix.UDP_SEGMENT, 2)
	binary.NativeEndian.PutUint16(data, 100)
	sb.SetControlLen(0, space)
	if next, err := NewWriter(rawConn(t, src), sb).Write(0, 1, 0); next != 1 || err != nil {
		t.Fatalf("Write = %d, %v", next, err)
	}

	rb := NewBatch(4, Options{Addrs: true, Control: unix.CmsgSpace(unix.SizeofInet4Pktinfo)})
	bufs := makeBufs(4, 200)
	for i := range bufs {
		rb.SetBuf(i, bufs[i])
	}
	r := NewReader(rawConn(t, dst), rb)
	got := 0
	for got < 3 {
		m, err := r.Read(4, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range m {
			if rb.Len(i) != 100 {
				t.Errorf("datagram %d: %d bytes, want 100 (one GSO segment)", got+i, rb.Len(i))
			}
			level, typ, data, _, ok := NextCmsg(rb.Control(i))
			if !ok || level != unix.IPPROTO_IP || typ != unix.IP_PKTINFO || len(data) < unix.SizeofInet4Pktinfo {
				t.Fatalf("cmsg: ok %v level %d type %d len %d", ok, level, typ, len(data))
			}
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			if pi.Addr != [4]byte{127, 0, 0, 1} {
				t.Errorf("pktinfo dst %v", pi.Addr)
			}
		}
		got += m
	}
}

// TestReaderClose checks that closing the socket unblocks a Read waiting
// in the netpoller.
func TestReaderClose(t *testing.T) {
	c := udpConn(t, "127.0.0.1:0")
	rb := NewBatch(4, Options{})
	buf := make([]byte, 64)
	rb.SetBuf(0, buf)
	r := NewReader(rawConn(t, c), rb)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(1, 0)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let Read park; it works either way
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after Close")
	}
}

// TestWriterSkip checks that a message the kernel refuses is reported with
// its index, and the rest can be sent after it.
func TestWriterSkip(t *testing.T) {
	src, dst := udpConn(t, "127.0.0.1:0"), udpConn(t, "127.0.0.1:0")
	sb := NewBatch(3, Options{Addrs: true})
	big := make([]byte, 70000) // over the 65507-byte UDP limit: EMSGSIZE
	for i, p := range [][]byte{[]byte("a"), big, []byte("c")} {
		sb.SetBuf(i, p)
		sb.SetAddrPort(i, addrPort(dst))
	}
	w := NewWriter(rawConn(t, src), sb)
	next, err := w.Write(0, 3, 0)
	if next != 1 || !errors.Is(err, unix.EMSGSIZE) {
		t.Fatalf("Write = %d, %v; want 1, EMSGSIZE", next, err)
	}
	if next, err = w.Write(next+1, 3, 0); next != 3 || err != nil {
		t.Fatalf("Write after skip = %d, %v; want 3, nil", next, err)
	}
}

func TestNextCmsg(t *testing.T) {
	buf := make([]byte, 2*unix.CmsgSpace(4))
	d, s := PutCmsg(buf, 1, 2, 4)
	copy(d, "abcd")
	d, _ = PutCmsg(buf[s:], 3, 4, 4)
	copy(d, "efgh")
	var got []string
	for rest := buf; ; {
		level, typ, data, r, ok := NextCmsg(rest)
		if !ok {
			break
		}
		got = append(got, fmt.Sprintf("%d/%d/%s", level, typ, data))
		rest = r
	}
	if fmt.Sprint(got) != "[1/2/abcd 3/4/efgh]" {
		t.Fatalf("got %v", got)
	}
	if _, _, _, _, ok := NextCmsg([]byte{1, 2, 3}); ok {
		t.Fatal("short buffer parsed")
	}
	bad := make([]byte, unix.CmsgSpace(4))
	PutCmsg(bad, 1, 1, 4)
	(*unix.Cmsghdr)(unsafe.Pointer(&bad[0])).SetLen(1000)
	if _, _, _, _, ok := NextCmsg(bad); ok {
		t.Fatal("cmsg longer than the buffer parsed")
	}
}

// TestAllocs holds the promise that a full batch is received and sent
// without allocating, through the netpoller.
func TestAllocs(t *testing.T) {
	const n = 64
	src, dst := udpConn(t, "127.0.0.1:0"), udpConn(t, "127.0.0.1:0")
	sb := NewBatch(n, Options{Addrs: true})
	rb := NewBatch(n, Options{Addrs: true, Control: 64})
	bufs := makeBufs(n, 128)
	w := NewWriter(rawConn(t, src), sb)
	r := NewReader(rawConn(t, dst), rb)
	to := addrPort(dst)
	allocs := testing.AllocsPerRun(100, func() {
		for i := range n {
			sb.SetBuf(i, bufs[i][:64])
			sb.SetAddrPort(i, to)
		}
		if next, err := w.Write(0, n, 0); next != n || err != nil {
			t.Fatalf("Write = %d, %v", next, err)
		}
		sb.Release(n)
		for i := range n {
			rb.SetBuf(i, bufs[i])
		}
		for got := 0; got < n; {
			m, err := r.Read(n, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i := range m {
				_ = rb.AddrPort(i)
			}
			got += m
		}
		rb.Release(n)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per send+receive of %d messages, want 0", allocs, n)
	}
}

func TestFileRawConn(t *testing.T) {
	// os.File over a non-blocking socket also goes through the netpoller.
	a, b := socketpair(t)
	fa, fb := os.NewFile(uintptr(a), "a"), os.NewFile(uintptr(b), "b")
	defer fa.Close()
	defer fb.Close()
	sb, rb := NewBatch(2, Options{}), NewBatch(2, Options{})
	sb.SetBuf(0, []byte("one"))
	sb.SetBuf(1, []byte("two"))
	rbuf := makeBufs(2, 8)
	rb.SetBuf(0, rbuf[0])
	rb.SetBuf(1, rbuf[1])
	if next, err := NewWriter(rawConn(t, fa), sb).Write(0, 2, 0); next != 2 || err != nil {
		t.Fatalf("Write = %d, %v", next, err)
	}
	r := NewReader(rawConn(t, fb), rb)
	n, err := r.Read(2, 0)
	if err != nil || n < 1 {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if string(rbuf[0][:rb.Len(0)]) != "one" {
		t.Fatalf("got %q", rbuf[0][:rb.Len(0)])
	}
}

// BenchmarkUDP sends and receives batches of 64-byte datagrams over
// loopback, both on the benchmark goroutine.
func BenchmarkUDP(b *testing.B) {
	for _, batch := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			src, dst := udpConn(b, "127.0.0.1:0"), udpConn(b, "127.0.0.1:0")
			sb := NewBatch(batch, Options{Addrs: true})
			rb := NewBatch(batch, Options{Addrs: true})
			bufs := makeBufs(batch, 128)
			to := addrPort(dst)
			for i := range batch {
				sb.SetBuf(i, bufs[i][:64])
				sb.SetAddrPort(i, to)
				rb.SetBuf(i, bufs[i])
			}
			w := NewWriter(rawConn(b, src), sb)
			r := NewReader(rawConn(b, dst), rb)
			b.ReportAllocs()
			b.SetBytes(int64(64 * batch))
			for b.Loop() {
				if next, err := w.Write(0, batch, 0); next != batch || err != nil {
					b.Fatalf("Write = %d, %v", next, err)
				}
				for got := 0; got < batch; {
					m, err := r.Read(batch, 0)
					if err != nil {
						b.Fatal(err)
					}
					got += m
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}
