package overlay

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestPutHeader(t *testing.T) {
	tests := []struct {
		name string
		vni  uint32
		want string
	}{
		{"vni 0", 0, "0800000000000000"},
		{"vni 7", 7, "0800000000000700"},
		{"vni 0x123456", 0x123456, "0800000012345600"},
		{"max vni", MaxVNI, "08000000ffffff00"},
		{"too big is cut to 24 bits", 0x1000007, "0800000000000700"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Repeat([]byte{0xee}, 10)
			PutHeader(b, tt.vni)
			if got := hex.EncodeToString(b[:VXLANHdrLen]); got != tt.want {
				t.Errorf("PutHeader(%#x) = %s, want %s", tt.vni, got, tt.want)
			}
			if b[8] != 0xee || b[9] != 0xee {
				t.Errorf("PutHeader wrote past the header: % x", b)
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	eth := make([]byte, EthHdrLen)
	pkt := func(hdr string, inner []byte) []byte {
		h, err := hex.DecodeString(hdr)
		if err != nil {
			t.Fatal(err)
		}
		return append(h, inner...)
	}
	tests := []struct {
		name       string
		b          []byte
		wantVNI    uint32
		wantReason DropReason
	}{
		{"good", pkt("0800000000000700", eth), 7, DropNone},
		{"good max vni", pkt("08000000ffffff00", eth), MaxVNI, DropNone},
		{"reserved bits ignored", pkt("ffffffff0000ffff", eth), 0xff, DropNone},
		{"other flags with I", pkt("0c00000000002a00", eth), 42, DropNone},
		{"no I flag", pkt("0000000000000700", eth), 0, DropNoIFlag},
		{"other flags without I", pkt("f7ffffff00000700", eth), 0, DropNoIFlag},
		{"empty", nil, 0, DropShort},
		{"header only", pkt("0800000000000700", nil), 0, DropShort},
		{"inner 13 bytes", pkt("0800000000000700", eth[:13]), 0, DropShort},
		{"short without I", pkt("00", nil), 0, DropShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vni, r := ParseHeader(tt.b)
			if vni != tt.wantVNI || r != tt.wantReason {
				t.Errorf("ParseHeader(% x) = %d, %v; want %d, %v", tt.b, vni, r, tt.wantVNI, tt.wantReason)
			}
		})
	}
}

func TestHeaderView(t *testing.T) {
	h := Header{0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0x01}
	if !h.IsValid() || !h.HasI() || h.Flags() != 0x08 || h.VNI() != 0xabcdef {
		t.Errorf("view of % x: valid %v I %v flags %#x vni %#x", []byte(h), h.IsValid(), h.HasI(), h.Flags(), h.VNI())
	}
	if Header(make([]byte, 7)).IsValid() {
		t.Error("7-byte header reported valid")
	}
}

func TestDropReasonString(t *testing.T) {
	want := map[DropReason]string{
		DropShort:         "short",
		DropNoIFlag:       "no_i_flag",
		DropUnknownVNI:    "unknown_vni",
		DropUnknownSender: "unknown_sender",
		DropTruncated:     "truncated",
		DropTxUnreachable: "tx_unreachable",
		DropTxWouldBlock:  "tx_would_block",
	}
	for r, s := range want {
		if r.String() != s {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), s)
		}
	}
	seen := map[string]bool{}
	for _, r := range DropReasons() {
		s := r.String()
		if s == "" || s == "none" || s == "unknown" || seen[s] {
			t.Errorf("reason %d has bad or duplicate name %q", r, s)
		}
		seen[s] = true
	}
	if DropReason(200).String() != "unknown" {
		t.Error("out-of-range reason not named unknown")
	}
}

func TestCodecAllocs(t *testing.T) {
	b := make([]byte, 64)
	if n := testing.AllocsPerRun(100, func() {
		PutHeader(b, 7)
		_, _ = ParseHeader(b)
		_ = flowHash(b[VXLANHdrLen:], 1)
	}); n != 0 {
		t.Errorf("codec allocates %v per run, want 0", n)
	}
}

// FuzzVXLAN checks that the decoder never panics, that what it accepts
// re-encodes to the same header modulo reserved bits, and that encoding
// any VNI decodes back to it.
func FuzzVXLAN(f *testing.F) {
	f.Add([]byte{0x08, 0, 0, 0, 0, 0, 7, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00}, uint32(7))
	f.Add([]byte{0x00, 0, 0, 0, 0, 0, 7, 0}, uint32(0))
	f.Add([]byte{}, uint32(MaxVNI))
	f.Fuzz(func(t *testing.T, b []byte, vni uint32) {
		got, r := ParseHeader(b)
		switch r {
		case DropNone:
			if len(b) < MinPacketLen || b[0]&vxlanFlagI == 0 || got > MaxVNI {
				t.Fatalf("accepted % x as vni %d", b, got)
			}
			re := bytes.Clone(b)
			PutHeader(re, got)
			if v2, r2 := ParseHeader(re); v2 != got || r2 != DropNone {
				t.Fatalf("re-encode of % x: %d %v, want %d", b, v2, r2, got)
			}
			// Only reserved bits may differ.
			if !bytes.Equal(re[VXLANHdrLen:], b[VXLANHdrLen:]) || re[4] != b[4] || re[5] != b[5] || re[6] != b[6] {
				t.Fatalf("re-encode changed more than reserved bits: % x -> % x", b, re)
			}
		case DropShort:
			if len(b) >= MinPacketLen {
				t.Fatalf("% x (%d bytes) called short", b, len(b))
			}
		case DropNoIFlag:
			if len(b) < MinPacketLen || b[0]&vxlanFlagI != 0 {
				t.Fatalf("% x: wrong no_i_flag", b)
			}
		default:
			t.Fatalf("unexpected reason %v", r)
		}
		if len(b) >= EthHdrLen {
			_ = flowHash(b, uint64(vni)) // must not panic on any frame
		}
		vni &= MaxVNI
		pkt := make([]byte, MinPacketLen)
		PutHeader(pkt, vni)
		if v, r := ParseHeader(pkt); v != vni || r != DropNone {
			t.Fatalf("decode(encode(%d)) = %d, %v", vni, v, r)
		}
	})
}
