package dataplane

import (
	"bytes"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/mmsg"
)

func TestInsertVLAN(t *testing.T) {
	macs := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	untagged := append(append([]byte{}, macs...), 0x08, 0x00, 0xaa, 0xbb)
	tests := []struct {
		name     string
		frame    []byte
		bufLen   int
		tpid     uint16
		tci      uint16
		want     []byte
		wantFail bool
	}{
		{
			name: "802.1Q", frame: untagged, bufLen: 64, tpid: 0x8100, tci: 0xa007,
			want: append(append(append([]byte{}, macs...), 0x81, 0x00, 0xa0, 0x07), 0x08, 0x00, 0xaa, 0xbb),
		},
		{
			name: "802.1ad", frame: untagged, bufLen: 64, tpid: 0x88a8, tci: 100,
			want: append(append(append([]byte{}, macs...), 0x88, 0xa8, 0x00, 0x64), 0x08, 0x00, 0xaa, 0xbb),
		},
		{
			name: "exactly fits", frame: untagged, bufLen: len(untagged) + 4, tpid: 0x8100, tci: 1,
			want: append(append(append([]byte{}, macs...), 0x81, 0x00, 0x00, 0x01), 0x08, 0x00, 0xaa, 0xbb),
		},
		{name: "no room for the tag", frame: untagged, bufLen: len(untagged) + 3, tpid: 0x8100, tci: 1, wantFail: true},
		{name: "runt", frame: macs[:10], bufLen: 64, tpid: 0x8100, tci: 1, wantFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, tc.bufLen)
			copy(buf, tc.frame)
			n, ok := insertVLAN(buf, len(tc.frame), tc.tpid, tc.tci)
			if ok == tc.wantFail {
				t.Fatalf("ok = %v, want %v", ok, !tc.wantFail)
			}
			if tc.wantFail {
				if n != len(tc.frame) || !bytes.Equal(buf[:len(tc.frame)], tc.frame) {
					t.Fatalf("failed insert changed the frame: % x", buf[:n])
				}
				return
			}
			if !bytes.Equal(buf[:n], tc.want) {
				t.Fatalf("got  % x\nwant % x", buf[:n], tc.want)
			}
		})
	}
}

// auxCmsg builds a control buffer holding one PACKET_AUXDATA message.
func auxCmsg(status uint32, tci, tpid uint16) []byte {
	buf := make([]byte, auxSpace)
	data, _ := mmsg.PutCmsg(buf, unix.SOL_PACKET, unix.PACKET_AUXDATA, sizeofAuxdata)
	aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&data[0]))
	aux.Status, aux.Vlan_tci, aux.Vlan_tpid = status, tci, tpid
	return buf
}

func TestAuxVLAN(t *testing.T) {
	tests := []struct {
		name      string
		ctrl      []byte
		tpid, tci uint16
		ok        bool
	}{
		{name: "none", ctrl: nil},
		{name: "no tag", ctrl: auxCmsg(0, 0, 0)},
		{name: "tag with tpid", ctrl: auxCmsg(unix.TP_STATUS_VLAN_VALID|unix.TP_STATUS_VLAN_TPID_VALID, 7, 0x88a8), tpid: 0x88a8, tci: 7, ok: true},
		{name: "tag, old kernel without tpid", ctrl: auxCmsg(unix.TP_STATUS_VLAN_VALID, 0x2007, 0), tpid: 0x8100, tci: 0x2007, ok: true},
		{name: "priority tag VLAN 0", ctrl: auxCmsg(unix.TP_STATUS_VLAN_VALID|unix.TP_STATUS_VLAN_TPID_VALID, 0, 0x8100), tpid: 0x8100, tci: 0, ok: true},
		{name: "truncated cmsg", ctrl: auxCmsg(unix.TP_STATUS_VLAN_VALID, 7, 0)[:20]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpid, tci, ok := auxVLAN(tc.ctrl)
			if tpid != tc.tpid || tci != tc.tci || ok != tc.ok {
				t.Fatalf("auxVLAN = %#x, %#x, %v; want %#x, %#x, %v", tpid, tci, ok, tc.tpid, tc.tci, tc.ok)
			}
		})
	}
}

// FuzzInsertVLAN checks the invariants: never writes past the buffer,
// keeps the addresses and the rest of the frame, grows it by exactly 4.
func FuzzInsertVLAN(f *testing.F) {
	f.Add([]byte("0123456789abXXpayload"), 4, uint16(0x8100), uint16(7))
	f.Add([]byte("short"), 0, uint16(0x88a8), uint16(0))
	f.Fuzz(func(t *testing.T, frame []byte, spare int, tpid, tci uint16) {
		spare = spare & 15
		buf := make([]byte, len(frame)+spare)
		copy(buf, frame)
		n, ok := insertVLAN(buf, len(frame), tpid, tci)
		if !ok {
			if len(frame) >= 12 && spare >= 4 {
				t.Fatalf("refused a %d-byte frame with %d spare bytes", len(frame), spare)
			}
			return
		}
		if n != len(frame)+4 || !bytes.Equal(buf[:12], frame[:12]) || !bytes.Equal(buf[16:n], frame[12:]) {
			t.Fatalf("bad insert: % x -> % x", frame, buf[:n])
		}
		if uint16(buf[12])<<8|uint16(buf[13]) != tpid || uint16(buf[14])<<8|uint16(buf[15]) != tci {
			t.Fatalf("tag not written: % x", buf[12:16])
		}
	})
}
