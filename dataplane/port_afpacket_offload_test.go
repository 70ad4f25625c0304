package dataplane

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/internal/testutil"
)

// Root tests of system ports with the kernel's offloads left on: TCP
// between two namespaces through two system ports joined by a tiny hub.
// Helper names start with "va" ("vnet AF_PACKET").

var vaNameSeq atomic.Uint32

// vaName returns an interface or namespace name unique to this process
// and test: "vxa" + PID + a sequence number + tag, at most 15 bytes.
func vaName(t testing.TB, tag string) string {
	t.Helper()
	n := fmt.Sprintf("%s%x%s", testutil.Prefix("vxa"), vaNameSeq.Add(1), tag)
	if len(n) > 15 {
		t.Fatalf("name %q longer than 15 bytes", n)
	}
	return n
}

// vaSwitchNS makes the namespace the ports live in. Keeping the switch
// side out of the test's namespace matters: a local veth end there would
// be an interface of that namespace's IP stack, which answers ARP for its
// own addresses (this machine's root namespace has 192.0.2.2).
func vaSwitchNS(t testing.TB) string {
	t.Helper()
	return testutil.NetNS(t, vaName(t, "s"))
}

// vaHost makes a namespace with a veth whose peer end ("eth0" inside)
// carries cidr and whose local end goes into namespace sw, for a system
// port. Both ends keep the kernel's default offloads (TSO, checksum
// offload on).
func vaHost(t testing.TB, sw, cidr string) (local, ns string) {
	t.Helper()
	ns = testutil.NetNS(t, vaName(t, "n"))
	local = vaName(t, "l")
	peer := local[:len(local)-1] + "p"
	testutil.Veth(t, local, peer)
	testutil.Run(t, "ip", "link", "set", peer, "netns", ns)
	testutil.Run(t, "ip", "link", "set", local, "netns", sw)
	testutil.Run(t, "ip", "-n", ns, "link", "set", peer, "name", "eth0")
	args := []string{"-n", ns, "addr", "add", cidr, "dev", "eth0"}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	testutil.Run(t, "ip", args...)
	testutil.Run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	testutil.InNS(t, sw, "sysctl", "-qw", "net.ipv6.conf."+local+".disable_ipv6=1")
	testutil.Run(t, "ip", "-n", sw, "link", "set", local, "up")
	return local, ns
}

// vaOpenSystem opens a system port on ifname inside namespace ns.
func vaOpenSystem(t testing.TB, ns, ifname string, opts SystemOptions) *afpacketPort {
	t.Helper()
	var p Port
	var err error
	ptInNS(t, ns, func() { p, err = OpenSystem(ifname, ptSystemOptions(opts)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p.(*afpacketPort)
}

// vaOffloads returns the peer's TSO and tx-checksumming lines of ethtool -k.
func vaOffloads(t testing.TB, ns string) string {
	out := testutil.InNS(t, ns, "ethtool", "-k", "eth0")
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "tcp-segmentation-offload") || strings.HasPrefix(l, "tx-checksumming") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return strings.Join(keep, ", ")
}

// vaHub forwards every frame one port reads to the other, both ways,
// with buffers of bufSize after the headroom: a two-port hub. It stops
// when the ports are closed; the cleanup closes them and waits.
func vaHub(t testing.TB, a, b Port, bufSize int) {
	t.Helper()
	var wg sync.WaitGroup
	for _, d := range [][2]Port{{a, b}, {b, a}} {
		in, out := d[0], d[1]
		wg.Go(func() {
			bufs, sizes := ptBufs(in.BatchSize(), bufSize)
			frames := make([][]byte, len(bufs))
			for {
				n, err := in.ReadBatch(bufs, sizes, ptOff)
				if err != nil {
					return
				}
				for i := range n {
					frames[i] = bufs[i][ptOff : ptOff+sizes[i]]
				}
				out.WriteBatch(frames[:n])
			}
		})
	}
	t.Cleanup(func() { a.Close(); b.Close(); wg.Wait() })
}

// TestSystemTCPThroughHub runs a 20 MB TCP transfer between two
// namespaces whose veths keep the default offloads, through two system
// ports joined by vaHub. The kernel hands the ports TCP super-frames of
// up to 64 KB and frames with unfinished checksums; the ports must turn
// them into wire frames. The data must arrive intact well within 30 s.
// The hub's buffers are 64 KiB, as the switch's (super-frames land in
// them), or 2 KiB (they go through the port's own buffers).
func TestSystemTCPThroughHub(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name, network, a, b string
		bufSize             int
	}{
		{"ipv4", "tcp4", "192.0.2.1/24", "192.0.2.2/24", 65536},
		{"ipv6", "tcp6", "2001:db8:a::1/64", "2001:db8:a::2/64", 65536},
		{"ipv4-2k", "tcp4", "192.0.2.1/24", "192.0.2.2/24", 2048},
		{"ipv6-2k", "tcp6", "2001:db8:a::1/64", "2001:db8:a::2/64", 2048},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw := vaSwitchNS(t)
			la, nsA := vaHost(t, sw, tc.a)
			lb, nsB := vaHost(t, sw, tc.b)
			t.Logf("peer offloads: %s", vaOffloads(t, nsA))
			pa := vaOpenSystem(t, sw, la, SystemOptions{})
			pb := vaOpenSystem(t, sw, lb, SystemOptions{})
			vaHub(t, pa, pb, tc.bufSize)

			addrB, _, _ := strings.Cut(tc.b, "/")
			vaTransfer(t, nsA, nsB, tc.network, addrB, 20<<20, 30*time.Second)
			for _, p := range []*afpacketPort{pa, pb} {
				if d := p.DropCounts(); d.RxOffload != 0 || d.RxTooBig != 0 {
					t.Errorf("port %s drops %+v, want no RxOffload or RxTooBig", p.name, d)
				}
			}
		})
	}
}

// vaTransfer sends size pseudo-random bytes over TCP from namespace nsA
// to a listener on addrB in nsB and checks that they arrive intact within
// limit.
func vaTransfer(t *testing.T, nsA, nsB, network, addrB string, size int, limit time.Duration) {
	t.Helper()
	var ln net.Listener
	var err error
	ptInNS(t, nsB, func() { ln, err = net.Listen(network, net.JoinHostPort(addrB, "0")) })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{7})
	rng.Read(data)
	want := sha256.Sum256(data)

	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	got := make(chan result, 1)
	start := time.Now()
	deadline := start.Add(limit)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		r.n, r.err = n, err
		copy(r.sum[:], h.Sum(nil))
		got <- r
	}()
	var conn net.Conn
	ptInNS(t, nsA, func() {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err = d.Dial(network, ln.Addr().String())
	})
	if err != nil {
		t.Fatalf("dial %s from %s through the ports: %v", ln.Addr(), nsA, err)
	}
	conn.SetDeadline(deadline)
	wn, werr := conn.Write(data)
	conn.Close()
	r := <-got
	took := time.Since(start)
	switch {
	case werr != nil:
		t.Fatalf("sender: wrote %d of %d bytes in %v: %v", wn, size, took.Round(time.Millisecond), werr)
	case r.err != nil && !errors.Is(r.err, io.EOF):
		t.Fatalf("receiver: got %d of %d bytes in %v: %v", r.n, size, took.Round(time.Millisecond), r.err)
	case r.n != int64(size) || !bytes.Equal(r.sum[:], want[:]):
		t.Fatalf("receiver: got %d bytes (sha256 %x), want %d (sha256 %x)", r.n, r.sum[:6], size, want[:6])
	}
	t.Logf("%d MB in %v (%.2f Gbit/s)", size>>20, took.Round(time.Millisecond), float64(size)*8/took.Seconds()/1e9)
}
