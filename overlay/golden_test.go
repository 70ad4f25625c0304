package overlay

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestKernelCaptures reads VXLAN packets the Linux vxlan device put on the
// wire (testdata/capture.sh made them) and checks that ParseHeader finds
// the VNI and inner frame gopacket's layers.VXLAN finds, and that
// PutHeader in front of the inner frame reproduces the UDP payload byte
// for byte.
func TestKernelCaptures(t *testing.T) {
	tests := []struct {
		file      string
		vni       uint32
		ipv6      bool
		arp, icmp int // inner frames of each kind expected
	}{
		{"kernel_vxlan_ipv4.pcap", 42, false, 2, 4},
		{"kernel_vxlan_ipv6.pcap", 4242, true, 2, 4},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := pcapgo.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			var arp, icmp int
			for {
				data, _, err := r.ReadPacketData()
				if err != nil {
					break
				}
				pkt := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
				if (pkt.Layer(layers.LayerTypeIPv6) != nil) != tt.ipv6 {
					t.Fatalf("underlay family: %v", pkt)
				}
				udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
				if !ok || udp.DstPort != DefaultPort {
					t.Fatalf("not VXLAN over UDP 4789: %v", pkt)
				}
				payload := udp.Payload
				vni, reason := ParseHeader(payload)
				if reason != DropNone || vni != tt.vni {
					t.Fatalf("ParseHeader = %d, %v; want %d", vni, reason, tt.vni)
				}
				vx, ok := pkt.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
				if !ok {
					t.Fatalf("gopacket found no VXLAN layer: %v", pkt)
				}
				if !vx.ValidIDFlag || vx.VNI != vni || !bytes.Equal(vx.Payload, payload[VXLANHdrLen:]) {
					t.Errorf("gopacket: I %v VNI %d, %d inner bytes; ours: VNI %d, %d inner bytes",
						vx.ValidIDFlag, vx.VNI, len(vx.Payload), vni, len(payload)-VXLANHdrLen)
				}
				enc := make([]byte, len(payload))
				PutHeader(enc, vni)
				copy(enc[VXLANHdrLen:], payload[VXLANHdrLen:])
				if !bytes.Equal(enc, payload) {
					t.Errorf("re-encoded payload differs:\n got % x\nwant % x", enc[:16], payload[:16])
				}
				inner := gopacket.NewPacket(payload[VXLANHdrLen:], layers.LayerTypeEthernet, gopacket.Default)
				switch {
				case inner.Layer(layers.LayerTypeARP) != nil:
					arp++
				case inner.Layer(layers.LayerTypeICMPv4) != nil:
					icmp++
				default:
					t.Errorf("unexpected inner frame %v", inner)
				}
			}
			if arp != tt.arp || icmp != tt.icmp {
				t.Errorf("%d ARP and %d ICMP frames, want %d and %d", arp, icmp, tt.arp, tt.icmp)
			}
		})
	}
}
