package vnet

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Hdr
		err  error
	}{
		{
			name: "tcpv4 tso as AF_PACKET delivers it",
			in:   []byte{0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00},
			want: Hdr{Flags: FlagNeedsCsum, GSOType: GSOTCPv4, HdrLen: 66, GSOSize: 1448, CsumStart: 34, CsumOffset: 16},
		},
		{
			name: "tcpv6 with ecn",
			in:   []byte{0x01, 0x84, 0x56, 0x00, 0x94, 0x05, 0x36, 0x00, 0x10, 0x00},
			want: Hdr{Flags: FlagNeedsCsum, GSOType: GSOTCPv6 | GSOECN, HdrLen: 86, GSOSize: 1428, CsumStart: 54, CsumOffset: 16},
		},
		{
			name: "data valid, longer buffer",
			in:   []byte{0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
			want: Hdr{Flags: FlagDataValid},
		},
		{name: "empty", in: nil, err: ErrShortHdr},
		{name: "nine bytes", in: make([]byte, 9), err: ErrShortHdr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.in)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("Decode(% x) = %+v, %v; want %+v, %v", tt.in, got, err, tt.want, tt.err)
			}
			if err != nil {
				return
			}
			b := make([]byte, HdrLen)
			got.Encode(b)
			if string(b) != string(tt.in[:HdrLen]) {
				t.Fatalf("Encode(%+v) = % x, want % x", got, b, tt.in[:HdrLen])
			}
		})
	}
}

func TestHdrRoundTrip(t *testing.T) {
	for _, h := range []Hdr{
		{},
		{Flags: 0xff, GSOType: 0xff, HdrLen: 0xffff, GSOSize: 0xffff, CsumStart: 0xffff, CsumOffset: 0xffff},
		{Flags: 1, GSOType: 5, HdrLen: 0x0102, GSOSize: 0x0304, CsumStart: 0x0506, CsumOffset: 0x0708},
	} {
		b := make([]byte, HdrLen)
		h.Encode(b)
		if got, err := Decode(b); err != nil || got != h {
			t.Errorf("Decode(Encode(%+v)) = %+v, %v", h, got, err)
		}
	}
}

func TestEncodeShortPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Encode into 9 bytes did not panic")
		}
	}()
	Hdr{}.Encode(make([]byte, HdrLen-1))
}

// TestConstantsMatchKernel checks our constants against x/sys/unix, which
// is generated from the kernel's uapi headers.
func TestConstantsMatchKernel(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"FlagNeedsCsum", FlagNeedsCsum, unix.VIRTIO_NET_HDR_F_NEEDS_CSUM},
		{"FlagDataValid", FlagDataValid, unix.VIRTIO_NET_HDR_F_DATA_VALID},
		{"GSONone", GSONone, unix.VIRTIO_NET_HDR_GSO_NONE},
		{"GSOTCPv4", GSOTCPv4, unix.VIRTIO_NET_HDR_GSO_TCPV4},
		{"GSOUDP", GSOUDP, unix.VIRTIO_NET_HDR_GSO_UDP},
		{"GSOTCPv6", GSOTCPv6, unix.VIRTIO_NET_HDR_GSO_TCPV6},
		{"GSOUDPL4", GSOUDPL4, unix.VIRTIO_NET_HDR_GSO_UDP_L4},
		{"GSOECN", GSOECN, unix.VIRTIO_NET_HDR_GSO_ECN},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, kernel says %#x", c.name, c.got, c.want)
		}
	}
}

func TestDecodeAllocs(t *testing.T) {
	b := []byte{0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00}
	var sink Hdr
	if a := testing.AllocsPerRun(100, func() { sink, _ = Decode(b); sink.Encode(b) }); a != 0 {
		t.Errorf("Decode+Encode: %v allocs per run, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = Decode(b[:3]) }); a != 0 {
		t.Errorf("Decode error: %v allocs per run, want 0", a)
	}
}
