package overlay

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vxswitch/vxswitch/dataplane"
)

const testOff = 64 // headroom the tests leave, like the pipeline's

// listenPair opens endpoints on the given addresses, all on one port that
// is free on each, retrying with another port when one is taken.
func listenEndpoints(t testing.TB, mod func(i int, c *Config), addrs ...string) []*Endpoint {
	t.Helper()
	for try := 0; try < 20; try++ {
		port := freePort(t, addrs[0])
		var eps []*Endpoint
		var err error
		for i, a := range addrs {
			cfg := Config{Local: netip.MustParseAddr(a), Port: port, HashSeed: 1}
			if mod != nil {
				mod(i, &cfg)
			}
			var e *Endpoint
			e, err = Listen(cfg)
			if err != nil {
				break
			}
			eps = append(eps, e)
		}
		if err == nil {
			for _, e := range eps {
				t.Cleanup(func() { e.Close() })
			}
			return eps
		}
		for _, e := range eps {
			e.Close()
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
	}
	t.Fatal("no common free port")
	return nil
}

func freePort(t testing.TB, addr string) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(addr), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
}

// testFrame builds an Ethernet/IPv4/UDP frame of at least size bytes whose
// flow (the inner UDP source port) is flow and whose payload starts with
// tag, so frames can be told apart.
func testFrame(t testing.TB, flow uint16, tag byte, size int) []byte {
	t.Helper()
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, 1},
		DstMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, 2},
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(192, 0, 2, 1), DstIP: net.IPv4(192, 0, 2, 2)}
	udp := &layers.UDP{SrcPort: layers.UDPPort(flow), DstPort: 7}
	_ = udp.SetNetworkLayerForChecksum(ip)
	payload := make([]byte, max(size-14-20-8, 1))
	payload[0] = tag
	for i := 1; i < len(payload); i++ {
		payload[i] = byte(i)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// txBatch holds frames placed at testOff in buffers, ready for WriteBatch.
type txBatch struct {
	bufs [][]byte
	offs []int
	meta []dataplane.TunnelMeta
}

func newTxBatch(frames [][]byte, meta []dataplane.TunnelMeta) *txBatch {
	b := &txBatch{meta: meta}
	for _, f := range frames {
		buf := make([]byte, testOff+len(f))
		copy(buf[testOff:], f)
		b.bufs = append(b.bufs, buf)
		b.offs = append(b.offs, testOff)
	}
	return b
}

// rxBatch is a receive batch of n buffers of size bytes after testOff.
type rxBatch struct {
	bufs  [][]byte
	sizes []int
	meta  []dataplane.TunnelMeta
}

func newRxBatch(n, size int) *rxBatch {
	b := &rxBatch{sizes: make([]int, n), meta: make([]dataplane.TunnelMeta, n)}
	for range n {
		b.bufs = append(b.bufs, make([]byte, testOff+size))
	}
	return b
}

// received is one frame as ReadBatch returned it.
type received struct {
	frame []byte
	meta  dataplane.TunnelMeta
}

// readN reads until n frames arrived or the timeout passed.
func readN(t testing.TB, e *Endpoint, n int, timeout time.Duration) []received {
	t.Helper()
	rb := newRxBatch(e.BatchSize(), 9100)
	deadline := time.Now().Add(timeout)
	var out []received
	for len(out) < n {
		_ = e.sys.rx.SetReadDeadline(deadline)
		got, err := e.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		for i := range got {
			out = append(out, received{append([]byte(nil), rb.bufs[i][testOff:testOff+rb.sizes[i]]...), rb.meta[i]})
		}
	}
	_ = e.sys.rx.SetReadDeadline(time.Time{})
	return out
}

// expectNothing checks that no frame arrives within d.
func expectNothing(t testing.TB, e *Endpoint, d time.Duration) {
	t.Helper()
	if got := readN(t, e, 1, d); len(got) != 0 {
		t.Errorf("%s received %d unexpected frames, first VNI %d from %s", e.LocalAddr(), len(got), got[0].meta.VNI, got[0].meta.VTEP)
	}
}

// waitFor polls cond until it holds or a few seconds passed.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func drops(e *Endpoint, r DropReason) uint64 { return e.ctr.drops[r].Load() }

func totalDrops(e *Endpoint) uint64 {
	var n uint64
	for r := range numDropReasons {
		n += e.ctr.drops[r].Load()
	}
	return n
}
