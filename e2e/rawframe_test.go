package e2e

import (
	"encoding/binary"
	"errors"
	"net"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

// rawSock is an AF_PACKET socket on one interface that sees 802.1Q tags:
// the kernel strips a received frame's tag into auxdata, and recv puts it
// back into the frame.
type rawSock struct {
	fd      int
	ifindex int
}

func openRaw(ifname string) (*rawSock, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		unix.Close(fd)
		return nil, err
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &rawSock{fd: fd, ifindex: ifi.Index}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (r *rawSock) Close() { unix.Close(r.fd) }

func (r *rawSock) send(frame []byte) error {
	return unix.Sendto(r.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: r.ifindex})
}

// recv waits until match accepts a received frame (with its tag restored)
// or the deadline passes.
func (r *rawSock) recv(deadline time.Time, match func(gopacket.Packet) bool) (gopacket.Packet, error) {
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for time.Now().Before(deadline) {
		n, oobn, _, from, err := unix.Recvmsg(r.fd, buf, oob, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		frame := append([]byte(nil), buf[:n]...)
		if tci, ok := auxTag(oob[:oobn]); ok && n >= 12 {
			tagged := make([]byte, 0, n+4)
			tagged = append(tagged, frame[:12]...)
			tagged = binary.BigEndian.AppendUint16(tagged, 0x8100)
			tagged = binary.BigEndian.AppendUint16(tagged, tci)
			frame = append(tagged, frame[12:]...)
		}
		p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		if match(p) {
			return p, nil
		}
	}
	return nil, errors.New("no matching frame before the deadline")
}

// auxTag finds the VLAN TCI in a PACKET_AUXDATA control message
// (struct tpacket_auxdata: status u32, len u32, snaplen u32, mac u16,
// net u16, vlan_tci u16, vlan_tpid u16).
func auxTag(oob []byte) (uint16, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= 20 {
			status := binary.NativeEndian.Uint32(m.Data[0:])
			if status&unix.TP_STATUS_VLAN_VALID != 0 {
				return binary.NativeEndian.Uint16(m.Data[16:]), true
			}
		}
	}
	return 0, false
}

// arpRequest builds an ARP who-has for target from (mac, ip), tagged with
// vlan when vlan >= 0.
func arpRequest(mac net.HardwareAddr, ip, target net.IP, vlan int) []byte {
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: mac, SourceProtAddress: ip.To4(),
		DstHwAddress: make([]byte, 6), DstProtAddress: target.To4(),
	}
	buf := gopacket.NewSerializeBuffer()
	ls := []gopacket.SerializableLayer{eth, arp}
	if vlan >= 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = []gopacket.SerializableLayer{eth, &layers.Dot1Q{VLANIdentifier: uint16(vlan), Type: layers.EthernetTypeARP}, arp}
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// isARPReply matches an ARP reply from ip, returning its VLAN (-1 untagged).
func isARPReply(p gopacket.Packet, from net.IP) (vlan int, ok bool) {
	a, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if a == nil || a.Operation != layers.ARPReply || !net.IP(a.SourceProtAddress).Equal(from) {
		return 0, false
	}
	vlan = -1
	if q, _ := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); q != nil {
		vlan = int(q.VLANIdentifier)
	}
	return vlan, true
}

var layersEthernet = layers.LayerTypeEthernet
