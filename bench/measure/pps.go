package measure

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
)

// FrameLen is the length of the test frames without the FCS: a 64-byte
// Ethernet frame on the wire.
const FrameLen = 60

// A PPSResult is one packet-rate run. Rates are packets per second over
// the measured window.
type PPSResult struct {
	// Offered is what the generator got into the sender's interface
	// (tx_packets + tx_dropped).
	Offered float64
	// Delivered is what reached the receiver's interface (rx_packets).
	Delivered float64
	Window    time.Duration
	// OfferedPackets and DeliveredPackets are the counts behind the
	// rates: the packets of the window.
	OfferedPackets, DeliveredPackets uint64
}

// A Probe watches a PPS window: WindowStart is called as the window
// opens and WindowEnd as it closes, each at the instant of the window's
// time stamp (after the sender's counters are read and before the
// receiver's), so that what a probe measures covers exactly the counted
// packets. Both must return at once (a read of /proc, a signal); a probe
// with slow work starts it in the background and the caller collects it
// after PPS returns. An error from a probe fails the run.
type Probe interface {
	WindowStart() error
	WindowEnd() error
}

// PPS sends 64-byte UDP frames with trafgen from src to dst for dur and
// returns the offered and delivered rates. A ping first fills ARP and the
// switches' FDBs, so frames are forwarded, not flooded. The window
// starts 0.5 s after trafgen, once it runs at full speed. The probes, if
// any, see the window open and close.
func PPS(l *lab.Lab, src, dst *lab.Container, dur time.Duration, probes ...Probe) (PPSResult, error) {
	var r PPSResult
	if _, err := src.Ping(dst.Addr4.Addr(), 2); err != nil {
		return r, fmt.Errorf("priming ping %s -> %s: %w", src, dst, err)
	}
	srcMAC, err := readMAC(l, src)
	if err != nil {
		return r, err
	}
	dstMAC, err := readMAC(l, dst)
	if err != nil {
		return r, err
	}
	cfg := filepath.Join(l.Dir, fmt.Sprintf("trafgen-%s-%s.cfg", src, dst))
	frame := UDPFrame(srcMAC, dstMAC, src.Addr4.Addr().As4(), dst.Addr4.Addr().As4())
	if err := os.WriteFile(cfg, []byte(TrafgenConfig(frame)), 0o644); err != nil {
		return r, err
	}
	// -P 1: one generator process; -Q: leave IRQ affinity alone; -C: no
	// CPU statistics. (-A, which leaves socket memory alone, is in the
	// help text of Debian's trafgen 0.6.8 but rejected by it.)
	gen, err := l.Start(src.NS, "trafgen", "-o", src.IfName, "-i", cfg, "-P", "1", "-Q", "-C")
	if err != nil {
		return r, err
	}
	defer gen.Stop()
	select {
	case <-gen.Done():
		return r, gen.Alive()
	case <-time.After(500 * time.Millisecond):
	}
	tx0, rx0, t0, err := readCounters(l, src, dst, func() error {
		for _, p := range probes {
			if err := p.WindowStart(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	select {
	case <-gen.Done():
		return r, gen.Alive()
	case <-l.Context().Done():
		return r, lab.ErrClosed
	case <-time.After(dur):
	}
	tx1, rx1, t1, err := readCounters(l, src, dst, func() error {
		var errs []error
		for _, p := range probes {
			errs = append(errs, p.WindowEnd())
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return r, err
	}
	if err := gen.Alive(); err != nil {
		return r, err
	}
	r.Window = t1.Sub(t0)
	secs := r.Window.Seconds()
	r.OfferedPackets, r.DeliveredPackets = tx1-tx0, rx1-rx0
	r.Offered = float64(r.OfferedPackets) / secs
	r.Delivered = float64(r.DeliveredPackets) / secs
	return r, nil
}

func readMAC(l *lab.Lab, c *lab.Container) (net.HardwareAddr, error) {
	out, err := l.Exec(c.NS, "cat", "/sys/class/net/"+c.IfName+"/address")
	if err != nil {
		return nil, err
	}
	return net.ParseMAC(strings.TrimSpace(out))
}

// readCounters reads src's tx_packets+tx_dropped and dst's rx_packets;
// the time returned is halfway between the two reads, where atMid runs.
func readCounters(l *lab.Lab, src, dst *lab.Container, atMid func() error) (tx, rx uint64, at time.Time, err error) {
	s := "/sys/class/net/" + src.IfName + "/statistics/"
	out, err := l.Exec(src.NS, "cat", s+"tx_packets", s+"tx_dropped")
	if err != nil {
		return 0, 0, at, err
	}
	txs, err := parseUints(out, 2)
	if err != nil {
		return 0, 0, at, err
	}
	mid := time.Now()
	if err := atMid(); err != nil {
		return 0, 0, at, fmt.Errorf("probe: %w", err)
	}
	out, err = l.Exec(dst.NS, "cat", "/sys/class/net/"+dst.IfName+"/statistics/rx_packets")
	if err != nil {
		return 0, 0, at, err
	}
	rxs, err := parseUints(out, 1)
	if err != nil {
		return 0, 0, at, err
	}
	return txs[0] + txs[1], rxs[0], mid, nil
}

func parseUints(s string, n int) ([]uint64, error) {
	f := strings.Fields(s)
	if len(f) != n {
		return nil, fmt.Errorf("want %d counters, got %q", n, s)
	}
	out := make([]uint64, n)
	for i, x := range f {
		v, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("counter %q: %w", x, err)
		}
		out[i] = v
	}
	return out, nil
}

// UDPFrame returns a 60-byte Ethernet/IPv4/UDP frame (64 bytes on the
// wire with the FCS) from src to dst, UDP port 9000 to 9 (discard), with
// a correct IPv4 header checksum and no UDP checksum (allowed over IPv4).
func UDPFrame(srcMAC, dstMAC net.HardwareAddr, srcIP, dstIP [4]byte) []byte {
	b := make([]byte, FrameLen)
	copy(b[0:6], dstMAC)
	copy(b[6:12], srcMAC)
	binary.BigEndian.PutUint16(b[12:14], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(FrameLen-14))
	binary.BigEndian.PutUint16(ip[6:8], 0x4000) // DF
	ip[8] = 64
	ip[9] = 17
	copy(ip[12:16], srcIP[:])
	copy(ip[16:20], dstIP[:])
	binary.BigEndian.PutUint16(ip[10:12], ipChecksum(ip))
	udp := b[34:42]
	binary.BigEndian.PutUint16(udp[0:2], 9000)
	binary.BigEndian.PutUint16(udp[2:4], 9)
	binary.BigEndian.PutUint16(udp[4:6], uint16(FrameLen-34))
	return b
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// TrafgenConfig returns a trafgen packet configuration that sends frame
// over and over.
func TrafgenConfig(frame []byte) string {
	var b strings.Builder
	b.WriteString("{\n")
	for i, x := range frame {
		fmt.Fprintf(&b, "0x%02x,", x)
		if i%16 == 15 {
			b.WriteString("\n")
		}
	}
	b.WriteString("\n}\n")
	return b.String()
}
