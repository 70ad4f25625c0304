package vnet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// frameSpec describes a test frame built with gopacket.
type frameSpec struct {
	name    string
	v6      bool
	udp     bool
	tags    int  // 0, 1 (802.1Q) or 2 (802.1ad outer, 802.1Q inner)
	ipOpts  bool // IPv4 options (router alert)
	tcpOpts bool // NOP, NOP, timestamps, as Linux sends on data segments
	fin     bool
	psh     bool
	cwr     bool
	payload int
	mss     int // gso_size
}

// payloadBytes is a pattern that makes misplaced bytes visible.
func payloadBytes(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	return p
}

// buildFrame serializes s with gopacket, lengths fixed and checksums
// computed: a correct frame before any offload.
func buildFrame(t testing.TB, s frameSpec) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{
		SrcMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 1},
		DstMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 2},
	}
	ipType := layers.EthernetTypeIPv4
	if s.v6 {
		ipType = layers.EthernetTypeIPv6
	}
	ls = append(ls, eth)
	switch s.tags {
	case 0:
		eth.EthernetType = ipType
	case 1:
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 100, Type: ipType})
	case 2:
		eth.EthernetType = layers.EthernetTypeQinQ
		ls = append(ls,
			&layers.Dot1Q{VLANIdentifier: 200, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Type: ipType})
	}
	proto := layers.IPProtocolTCP
	if s.udp {
		proto = layers.IPProtocolUDP
	}
	var netLayer gopacket.NetworkLayer
	if s.v6 {
		ip := &layers.IPv6{
			Version: 6, TrafficClass: 0x10, FlowLabel: 0x12345, HopLimit: 64, NextHeader: proto,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2"),
		}
		netLayer = ip
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv4{
			Version: 4, TOS: 0x10, Id: 0xfffe, Flags: layers.IPv4DontFragment, TTL: 64, Protocol: proto,
			SrcIP: net.IPv4(192, 0, 2, 1), DstIP: net.IPv4(192, 0, 2, 2),
		}
		if s.ipOpts {
			ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		}
		netLayer = ip
		ls = append(ls, ip)
	}
	if s.udp {
		udp := &layers.UDP{SrcPort: 40000, DstPort: 9000} // not 4789: gopacket would decode VXLAN
		if err := udp.SetNetworkLayerForChecksum(netLayer); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, udp)
	} else {
		tcp := &layers.TCP{
			SrcPort: 40000, DstPort: 5201, Seq: 0xfffff000, Ack: 0x01020304, Window: 512,
			ACK: true, FIN: s.fin, PSH: s.psh, CWR: s.cwr,
		}
		if s.tcpOpts {
			tcp.Options = []layers.TCPOption{
				{OptionType: layers.TCPOptionKindNop},
				{OptionType: layers.TCPOptionKindNop},
				{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
			}
		}
		if err := tcp.SetNetworkLayerForChecksum(netLayer); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, tcp)
	}
	ls = append(ls, gopacket.Payload(payloadBytes(s.payload)))
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("%s: serialize: %v", s.name, err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// offloaded turns a correct frame into what the kernel hands a packet
// socket with offloads on: the L4 checksum field holds only the folded
// pseudo-header sum (computed here with the model, not with pseudoSum), and
// the header says where it is. gso_size 0 means no GSO.
func offloaded(t testing.TB, frame []byte, s frameSpec) ([]byte, Hdr) {
	t.Helper()
	f := append([]byte(nil), frame...)
	l, err := parse(f)
	if err != nil {
		t.Fatalf("%s: parse: %v", s.name, err)
	}
	var ph []byte
	l4len := l.end - l.l4
	if l.v6 {
		ph = append(ph, f[l.ip+8:l.ip+40]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(l4len))
		ph = append(ph, 0, 0, 0, l.proto)
	} else {
		ph = append(ph, f[l.ip+12:l.ip+20]...)
		ph = append(ph, 0, l.proto)
		ph = binary.BigEndian.AppendUint16(ph, uint16(l4len))
	}
	csumOff := uint16(tcpCsumOff)
	if s.udp {
		csumOff = udpCsumOff
	}
	binary.BigEndian.PutUint16(f[l.l4+int(csumOff):], refChecksum(ph, 0))
	h := Hdr{
		Flags:      FlagNeedsCsum,
		HdrLen:     uint16(l.data),
		CsumStart:  uint16(l.l4),
		CsumOffset: csumOff,
	}
	if s.mss > 0 {
		h.GSOSize = uint16(s.mss)
		switch {
		case s.udp:
			h.GSOType = GSOUDPL4
		case s.v6:
			h.GSOType = GSOTCPv6
		default:
			h.GSOType = GSOTCPv4
		}
		if s.cwr && !s.udp {
			h.GSOType |= GSOECN
		}
	}
	return f, h
}

// decoded is what checkSegments needs to know about one frame.
type decoded struct {
	pkt     gopacket.Packet
	ip4     *layers.IPv4
	ip6     *layers.IPv6
	tcp     *layers.TCP
	udp     *layers.UDP
	ipOff   int
	payload []byte
}

// decode decodes a frame with gopacket and fails unless it is a clean
// Ethernet/IP/TCP-or-UDP frame whose checksums gopacket finds valid.
func decode(t testing.TB, what string, f []byte) decoded {
	t.Helper()
	var d decoded
	d.pkt = gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if el := d.pkt.ErrorLayer(); el != nil {
		t.Fatalf("%s: gopacket: %v", what, el.Error())
	}
	nl := d.pkt.NetworkLayer()
	switch ip := nl.(type) {
	case *layers.IPv4:
		d.ip4 = ip
		if _, r := ip.VerifyChecksum(); !r.Valid {
			t.Fatalf("%s: IPv4 header checksum %#04x, want %#04x", what, r.Actual, r.Correct)
		}
	case *layers.IPv6:
		d.ip6 = ip
	default:
		t.Fatalf("%s: no IP layer", what)
	}
	d.ipOff = len(f) - len(nl.LayerContents()) - len(nl.LayerPayload())
	var r gopacket.ChecksumVerificationResult
	switch l4 := d.pkt.TransportLayer().(type) {
	case *layers.TCP:
		d.tcp = l4
		_ = l4.SetNetworkLayerForChecksum(nl)
		_, r = l4.VerifyChecksum()
	case *layers.UDP:
		d.udp = l4
		_ = l4.SetNetworkLayerForChecksum(nl)
		_, r = l4.VerifyChecksum()
	default:
		t.Fatalf("%s: no TCP or UDP layer", what)
	}
	if !r.Valid {
		t.Fatalf("%s: L4 checksum %#04x, want %#04x", what, r.Actual, r.Correct)
	}
	d.payload = d.pkt.TransportLayer().LayerPayload()
	return d
}

// checkSegments checks segments of the super-frame orig (correct
// checksums, as built) against it: each decodes cleanly with valid
// checksums; lengths, IDs, sequence numbers and flags are as TSO/USO makes
// them; everything else in the headers is unchanged; and the payloads,
// concatenated, are the original payload.
func checkSegments(t testing.TB, orig []byte, mss int, segs [][]byte) {
	t.Helper()
	o := decode(t, "original", orig)
	hdrLen := len(orig) - len(o.payload)
	var all []byte
	for i, seg := range segs {
		last := i == len(segs)-1
		what := fmt.Sprintf("segment %d", i)
		s := decode(t, what, seg)
		if len(seg) > hdrLen+mss {
			t.Fatalf("%s: %d bytes, more than headers %d + gso_size %d", what, len(seg), hdrLen, mss)
		}
		if !last && len(s.payload) != mss {
			t.Fatalf("%s: payload %d bytes, want gso_size %d", what, len(s.payload), mss)
		}
		if !bytes.Equal(seg[:o.ipOff], orig[:o.ipOff]) {
			t.Fatalf("%s: Ethernet header changed: % x, want % x", what, seg[:o.ipOff], orig[:o.ipOff])
		}
		switch {
		case o.ip4 != nil:
			got, want := s.ip4, o.ip4
			if int(got.Length) != len(seg)-s.ipOff {
				t.Fatalf("%s: IPv4 total length %d, frame has %d", what, got.Length, len(seg)-s.ipOff)
			}
			if got.Id != want.Id+uint16(i) {
				t.Fatalf("%s: IPv4 ID %#x, want %#x", what, got.Id, want.Id+uint16(i))
			}
			if !sameExcept(seg[s.ipOff:s.ipOff+int(got.IHL)*4], orig[o.ipOff:o.ipOff+int(want.IHL)*4], 2, 3, 4, 5, 10, 11) {
				t.Fatalf("%s: IPv4 header changed beyond length, ID and checksum", what)
			}
		default:
			got := s.ip6
			if int(got.Length) != len(seg)-s.ipOff-ipv6HdrLen {
				t.Fatalf("%s: IPv6 payload length %d, frame has %d", what, got.Length, len(seg)-s.ipOff-ipv6HdrLen)
			}
			if !sameExcept(seg[s.ipOff:s.ipOff+ipv6HdrLen], orig[o.ipOff:o.ipOff+ipv6HdrLen], 4, 5) {
				t.Fatalf("%s: IPv6 header changed beyond payload length", what)
			}
		}
		if o.tcp != nil {
			got, want := s.tcp, o.tcp
			if wantSeq := want.Seq + uint32(len(all)); got.Seq != wantSeq {
				t.Fatalf("%s: seq %#x, want %#x", what, got.Seq, wantSeq)
			}
			if got.FIN != (want.FIN && last) || got.PSH != (want.PSH && last) || got.CWR != (want.CWR && i == 0) {
				t.Fatalf("%s: FIN/PSH/CWR = %v/%v/%v; original %v/%v/%v", what, got.FIN, got.PSH, got.CWR, want.FIN, want.PSH, want.CWR)
			}
			if !sameExcept(got.Contents, want.Contents, 4, 5, 6, 7, 13, 16, 17) ||
				got.Contents[13]&^(tcpFlagFIN|tcpFlagPSH|tcpFlagCWR) != want.Contents[13]&^(tcpFlagFIN|tcpFlagPSH|tcpFlagCWR) {
				t.Fatalf("%s: TCP header changed beyond seq, FIN/PSH/CWR and checksum:\n% x\n% x", what, got.Contents, want.Contents)
			}
		} else {
			if int(s.udp.Length) != udpHdrLen+len(s.payload) {
				t.Fatalf("%s: UDP length %d, want %d", what, s.udp.Length, udpHdrLen+len(s.payload))
			}
			if s.udp.SrcPort != o.udp.SrcPort || s.udp.DstPort != o.udp.DstPort {
				t.Fatalf("%s: UDP ports changed", what)
			}
		}
		all = append(all, s.payload...)
	}
	if !bytes.Equal(all, o.payload) {
		t.Fatalf("payloads concatenated: %d bytes differ from the original %d", len(all), len(o.payload))
	}
}

// sameExcept reports whether a and b have the same length and bytes,
// except at the indexes in skip.
func sameExcept(a, b []byte, skip ...int) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = bytes.Clone(a), bytes.Clone(b)
	for _, i := range skip {
		a[i], b[i] = 0, 0
	}
	return bytes.Equal(a, b)
}

// outBufs returns n buffers of size bytes each.
func outBufs(n, size int) ([][]byte, []int) {
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, size)
	}
	return out, make([]int, n)
}
