package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

func vniRange(n int) []uint32 {
	v := make([]uint32, n)
	for i := range v {
		v[i] = uint32(i + 1)
	}
	return v
}

func TestMetaRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   Meta
		want Meta // after decoding; VNIs canonical
	}{
		{
			name: "ipv4",
			in:   Meta{VTEP: netip.MustParseAddr("172.16.220.2"), Port: 4789, Bridge: "blue", VNIs: []uint32{7}},
			want: Meta{VTEP: netip.MustParseAddr("172.16.220.2"), Port: 4789, Bridge: "blue", VNIs: []uint32{7}},
		},
		{
			name: "ipv6 unsorted duplicates",
			in:   Meta{VTEP: netip.MustParseAddr("2001:db8::2"), Port: 8472, Bridge: "green", VNIs: []uint32{220, 7, 1<<24 - 1, 7, 0}},
			want: Meta{VTEP: netip.MustParseAddr("2001:db8::2"), Port: 8472, Bridge: "green", VNIs: []uint32{0, 7, 220, 1<<24 - 1}},
		},
		{
			name: "no bridge no VNIs",
			in:   Meta{VTEP: netip.MustParseAddr("10.0.0.1"), Port: 4789},
			want: Meta{VTEP: netip.MustParseAddr("10.0.0.1"), Port: 4789},
		},
		{
			name: "4in6 stays 16 bytes",
			in:   Meta{VTEP: netip.MustParseAddr("::ffff:10.0.0.1"), Port: 4789},
			want: Meta{VTEP: netip.MustParseAddr("::ffff:10.0.0.1"), Port: 4789},
		},
		{
			name: "largest",
			in:   Meta{VTEP: netip.MustParseAddr("2001:db8::2"), Port: 4789, Bridge: strings.Repeat("b", MaxBridgeLen), VNIs: vniRange(MaxVNIs)},
			want: Meta{VTEP: netip.MustParseAddr("2001:db8::2"), Port: 4789, Bridge: strings.Repeat("b", MaxBridgeLen), VNIs: vniRange(MaxVNIs)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := fmt.Sprint(tt.in.VNIs)
			b, err := EncodeMeta(tt.in)
			if err != nil {
				t.Fatalf("EncodeMeta(%+v): %v", tt.in, err)
			}
			if fmt.Sprint(tt.in.VNIs) != orig {
				t.Errorf("EncodeMeta modified its input VNIs: %v, was %s", tt.in.VNIs, orig)
			}
			if len(b) > memberlist.MetaMaxSize {
				t.Errorf("encoded %d bytes > MetaMaxSize %d", len(b), memberlist.MetaMaxSize)
			}
			got, err := DecodeMeta(b)
			if err != nil {
				t.Fatalf("DecodeMeta(% x): %v", b, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeMeta(EncodeMeta(m)):\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestMetaLargestFits(t *testing.T) {
	m := Meta{VTEP: netip.MustParseAddr("2001:db8::2"), Port: 4789, Bridge: strings.Repeat("b", MaxBridgeLen), VNIs: vniRange(MaxVNIs)}
	b, err := encodeMeta(m, 0xff)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != maxMetaLen {
		t.Errorf("largest meta is %d bytes, maxMetaLen says %d", len(b), maxMetaLen)
	}
	t.Logf("largest meta: %d of %d bytes (%d spare for later fields)", len(b), memberlist.MetaMaxSize, memberlist.MetaMaxSize-len(b))
}

func TestMetaWireFormat(t *testing.T) {
	// Pinned: other releases decode this. Change only by adding fields.
	m := Meta{VTEP: netip.MustParseAddr("192.0.2.1"), Port: 4789, Bridge: "ab", VNIs: []uint32{7, 0x123456}}
	b, err := encodeMeta(m, flagLeaving)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		1,                     // version
		1, 0, 4, 192, 0, 2, 1, // VTEP
		2, 0, 2, 0x12, 0xb5, // port 4789
		3, 0, 2, 'a', 'b', // bridge
		4, 0, 6, 0, 0, 7, 0x12, 0x34, 0x56, // VNIs
		5, 0, 1, 1, // flags: leaving
	}
	if !bytes.Equal(b, want) {
		t.Errorf("encodeMeta:\n got % x\nwant % x", b, want)
	}
}

func TestDecodeMetaSkipsUnknownFields(t *testing.T) {
	m := Meta{VTEP: netip.MustParseAddr("192.0.2.1"), Port: 4789, Bridge: "blue", VNIs: []uint32{7}}
	b, err := EncodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	unknown := func(typ byte, v []byte) []byte { return appendField(nil, typ, v) }
	tests := []struct {
		name string
		in   []byte
	}{
		{"unknown at end", append(bytes.Clone(b), unknown(200, []byte("from the future"))...)},
		{"unknown first", append(append([]byte{1}, unknown(99, bytes.Repeat([]byte{0xee}, 40))...), b[1:]...)},
		{"unknown empty", append(bytes.Clone(b), unknown(6, nil)...)},
		{"type 0", append(bytes.Clone(b), unknown(0, []byte{1, 2, 3})...)},
		{"unknown twice", append(bytes.Clone(b), append(unknown(77, []byte{1}), unknown(77, []byte{2})...)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeMeta(tt.in)
			if err != nil {
				t.Fatalf("DecodeMeta(% x): %v", tt.in, err)
			}
			if !got.Equal(m) {
				t.Errorf("got %+v, want %+v", got, m)
			}
		})
	}
}

func TestDecodeMetaErrors(t *testing.T) {
	good, err := EncodeMeta(Meta{VTEP: netip.MustParseAddr("192.0.2.1"), Port: 4789, Bridge: "blue", VNIs: []uint32{7, 8}})
	if err != nil {
		t.Fatal(err)
	}
	field := func(typ byte, v []byte) []byte { return appendField(nil, typ, v) }
	vtep := field(metaFieldVTEP, []byte{192, 0, 2, 1})
	port := field(metaFieldPort, []byte{0x12, 0xb5})
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name      string
		in        []byte
		truncated bool
		want      string // in the message
	}{
		{name: "nil", in: nil, want: "empty"},
		{name: "version 0", in: []byte{0}, want: "unsupported version 0"},
		{name: "version 2", in: append([]byte{2}, good[1:]...), want: "unsupported version 2"},
		{name: "version only", in: []byte{1}, want: "no VTEP field"},
		{name: "no port", in: cat([]byte{1}, vtep), want: "no port field"},
		{name: "cut in header", in: good[:len(good)-8], truncated: true, want: "field header"},
		{name: "cut in value", in: good[:len(good)-1], truncated: true, want: "needs 6 bytes, 5 left"},
		{name: "one byte header", in: append(bytes.Clone(good), 4), truncated: true},
		{name: "unknown field cut", in: append(bytes.Clone(good), 200, 0, 10, 1, 2), truncated: true},
		{name: "length past 512", in: append(bytes.Clone(good), 200, 0xff, 0xff), truncated: true},
		{name: "VTEP 5 bytes", in: cat([]byte{1}, field(metaFieldVTEP, []byte{1, 2, 3, 4, 5}), port), want: "want 4 or 16"},
		{name: "port 3 bytes", in: cat([]byte{1}, vtep, field(metaFieldPort, []byte{1, 2, 3})), want: "want 2"},
		{name: "port 0", in: cat([]byte{1}, vtep, field(metaFieldPort, []byte{0, 0})), want: "port 0"},
		{name: "VTEP 0.0.0.0", in: cat([]byte{1}, field(metaFieldVTEP, []byte{0, 0, 0, 0}), port), want: "unspecified"},
		{name: "VNIs 4 bytes", in: cat([]byte{1}, vtep, port, field(metaFieldVNIs, []byte{0, 0, 0, 7})), want: "multiple of 3"},
		{name: "duplicate VTEP", in: cat([]byte{1}, vtep, port, vtep), want: "twice"},
		{name: "flags 2 bytes", in: cat([]byte{1}, vtep, port, field(metaFieldFlags, []byte{1, 0})), want: "want 1"},
		{name: "bridge too long", in: cat([]byte{1}, vtep, port, field(metaFieldBridge, bytes.Repeat([]byte{'x'}, MaxBridgeLen+1))), want: "at most 32"},
		{name: "too many VNIs", in: cat([]byte{1}, vtep, port, field(metaFieldVNIs, make([]byte, 0, 3*(MaxVNIs+1)))), want: ""},
	}
	// "too many VNIs": fill in distinct VNIs.
	v := make([]byte, 0, 3*(MaxVNIs+1))
	for i := range MaxVNIs + 1 {
		v = append(v, 0, byte(i>>8), byte(i))
	}
	tests[len(tests)-1].in = cat([]byte{1}, vtep, port, field(metaFieldVNIs, v))
	tests[len(tests)-1].want = "129 VNIs, at most 128"

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeMeta(tt.in)
			if err == nil {
				t.Fatalf("DecodeMeta(% x) = %+v, want an error", tt.in, got)
			}
			if errors.Is(err, ErrMetaTruncated) != tt.truncated {
				t.Errorf("errors.Is(%q, ErrMetaTruncated) = %v, want %v", err, !tt.truncated, tt.truncated)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !reflect.DeepEqual(got, Meta{}) {
				t.Errorf("got %+v with the error, want the zero Meta", got)
			}
		})
	}
}

func TestEncodeMetaErrors(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name string
		in   Meta
		is   error
		want string
	}{
		{name: "too many VNIs", in: Meta{VTEP: v4, Port: 4789, VNIs: vniRange(MaxVNIs + 1)}, is: ErrTooManyVNIs,
			want: "129 VNIs, at most 128 fit in memberlist's 512-byte node metadata"},
		{name: "no VTEP", in: Meta{Port: 4789}, want: "no VTEP address"},
		{name: "unspecified VTEP", in: Meta{VTEP: netip.IPv6Unspecified(), Port: 4789}, want: "unspecified"},
		{name: "zone", in: Meta{VTEP: netip.MustParseAddr("fe80::1%eth0"), Port: 4789}, want: "zone"},
		{name: "port 0", in: Meta{VTEP: v4}, want: "VXLAN port 0"},
		{name: "VNI 2^24", in: Meta{VTEP: v4, Port: 4789, VNIs: []uint32{7, 1 << 24}}, want: "VNI 16777216 does not fit in 24 bits"},
		{name: "bridge too long", in: Meta{VTEP: v4, Port: 4789, Bridge: strings.Repeat("x", 33)}, want: "33 bytes, at most 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeMeta(tt.in)
			if err == nil {
				t.Fatalf("EncodeMeta(%+v) = % x, want an error", tt.in, b)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%q, %v) = false", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	// Duplicates do not count against the limit.
	if _, err := EncodeMeta(Meta{VTEP: v4, Port: 4789, VNIs: append(vniRange(MaxVNIs), vniRange(MaxVNIs)...)}); err != nil {
		t.Errorf("%d distinct VNIs given twice: %v", MaxVNIs, err)
	}
}

// FuzzDecodeMeta: DecodeMeta never panics, and what it accepts encodes
// (with the same flags) to bytes that decode to the same Meta.
func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{
		{VTEP: netip.MustParseAddr("172.16.220.2"), Port: 4789, Bridge: "blue", VNIs: []uint32{7}},
		{VTEP: netip.MustParseAddr("2001:db8::2"), Port: 4789, Bridge: "green", VNIs: vniRange(MaxVNIs)},
	} {
		b, err := encodeMeta(m, flagLeaving)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(b, 42, 0, 1, 0)) // a later release's field
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, flags, err := decodeMeta(b)
		if err != nil {
			return
		}
		re, err := encodeMeta(m, flags)
		if err != nil {
			t.Fatalf("decoded %+v (flags %#x) from % x, but it does not encode: %v", m, flags, b, err)
		}
		m2, flags2, err := decodeMeta(re)
		if err != nil {
			t.Fatalf("re-encoded % x does not decode: %v", re, err)
		}
		if !reflect.DeepEqual(m, m2) || flags != flags2 {
			t.Fatalf("round trip changed the meta:\n first %+v %#x\nsecond %+v %#x", m, flags, m2, flags2)
		}
		if len(re) > memberlist.MetaMaxSize {
			t.Fatalf("re-encoded meta is %d bytes", len(re))
		}
	})
}
